//! The stable data contract of lifeboat.
//!
//! Everything in here is read by something other than the code that writes it: exit codes by shell scripts
//! and CI, `manifest.json` by the deploy engine (and by users' own tooling). Changing a shape here is a
//! breaking change and bumps [`MANIFEST_FORMAT_VERSION`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod automation;
pub mod control;
pub mod exit;
pub mod manifest;
pub mod region;

pub use control::ControlState;
pub use manifest::{
    MANIFEST_FORMAT_VERSION, Manifest, ParameterSource, StackEntry, StackParameter,
};
pub use region::RegionPair;
