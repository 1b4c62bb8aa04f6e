//! The AWS adapter: the CloudFormation deploy engine and the DR backend, on the official AWS SDK.
//!
//! The deploy engine reads a synth output directory (`manifest.json` and templates) and applies it to both
//! regions through change sets. Its logic ([`graph`], [`changes`], [`engine`], [`assets`]) talks to AWS only
//! through the [`api::RegionApi`] trait; [`sdk`] implements that trait on aws-sdk-rust.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod assets;
pub mod changes;
pub mod engine;
pub mod error;
pub mod graph;
pub mod progress;
pub mod sdk;
pub mod synth_output;

pub use engine::{Engine, EngineOptions, RunReport};
pub use error::EngineError;
pub use progress::{Observer, Outcome, Progress};
pub use synth_output::SynthOutput;

#[cfg(test)]
mod engine_tests;
