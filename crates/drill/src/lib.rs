//! Drills on the local two-region runtime.
//!
//! A drill offers real checkouts through the front door at a fixed rate (open loop: a slow server does not
//! slow the client down), keeps a client-side ledger of every acknowledgement, injects a fault, lets the DR
//! automation recover, and then checks the ledger against the surviving primary database. The figures
//! (lost, duplicates, writes accepted after the fence, detection, RTO, write unavailability) go into
//! `report.json` and a self-contained `report.html`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cycle;
pub mod html;
pub mod ledger;
pub mod load;
pub mod metrics;
pub mod report;
pub mod run;
pub mod scenario;
pub mod verify;
