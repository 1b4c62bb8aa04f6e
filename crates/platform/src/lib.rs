//! The seven components of the two-region DR platform, synthesized into CloudFormation stacks and a manifest.
//!
//! Pure: [`synthesize`] turns a [`lifeboat_config::Config`] into templates and a
//! [`lifeboat_contract::Manifest`] in memory; writing them is the caller's business.
//!
//! | original design (Pulumi)   | here                  | stacks                                        |
//! |----------------------------|-----------------------|-----------------------------------------------|
//! | `networking_stack.py`      | [`networking`]        | `networking-primary`, `networking-standby`    |
//! | `database_stack.py`        | [`database`]          | `database-primary`, `database-standby`        |
//! | `storage_stack.py`         | [`storage`]           | `storage-standby`, `storage-primary`          |
//! | `compute_stack.py`         | [`compute`]           | `compute-primary`, `compute-standby`          |
//! | `monitoring_stack.py`      | [`monitoring`]        | `monitoring-primary`, `monitoring-standby`    |
//! | `dr_automation_stack.py`   | [`dr_automation`]     | `dr-automation-primary`, `dr-automation-standby` |
//! | `tap_stack.py`             | [`platform`]          | wires them; writes the manifest               |

pub mod networking;
pub mod platform;
mod util;

pub use platform::{MANIFEST_FILE, PlatformError, Synthesis, synthesize};
