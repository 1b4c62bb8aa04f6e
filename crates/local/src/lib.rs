//! The local two-region runtime: lifeboat's DR setup on one machine, with real components.
//!
//! Each region runs in its own network namespace (a veth pair onto one bridge) with its own MariaDB
//! (GTID replication primary → standby, semi-sync by default) and its own storefront. HAProxy in the root
//! namespace is the front door; a control server holds the active region, epoch, fence and write leases; a
//! supervisor restarts crashed storefronts, probes the regions and runs the DR automation through the same
//! runbooks as on AWS, via [`backend::LocalBackend`].
//!
//! Entry points: [`Runtime::up`], [`Runtime::down`], [`Runtime::open_up`] and [`Runtime::status`]; fault
//! injection for drills on [`Runtime`] (`kill_database`, `kill_region`, `isolate`, `heal`); the event log
//! ([`events::EventLog`]) with detection and step timings.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod assets;
pub mod backend;
pub mod control;
pub mod dr;
pub mod error;
pub mod events;
pub mod haproxy;
pub mod layout;
pub mod mariadb;
pub mod netns;
pub mod process;
pub mod rebuild;
pub mod runtime;
pub mod settings;
pub mod supervisor;

pub use backend::LocalBackend;
pub use control::{ControlClient, ControlUpdate, ControlView};
pub use dr::LocalDr;
pub use error::{LocalError, Result};
pub use events::{Event, EventLog};
pub use layout::Layout;
pub use runtime::{
    DownReport, RegionInfo, RegionStatus, Runtime, RuntimeInfo, RuntimeStatus, UpOutcome,
};
pub use settings::{LocalSettings, Ports, ReplicationMode};
