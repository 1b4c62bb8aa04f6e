//! The AWS side of DR orchestration.
//!
//! The runbook engine ([`lifeboat_runbook`]) knows no AWS; this crate gives it:
//!
//! - [`AwsBackend`] ([`backend`]): every runbook operation on the AWS SDK (RDS, Route 53, SSM, SNS,
//!   CloudWatch, DynamoDB, Lambda, S3) and the readiness observation;
//! - [`JournalTable`] ([`journal_table`]): the run journal, the run lock and the fencing epoch in the
//!   DynamoDB journal table, with conditional writes;
//! - [`S3ReportSink`] ([`report_sink`]): run reports uploaded to S3 (and kept locally);
//! - [`lambda`]: the DR automation Lambda's event handling (the `dr-automation` binary wraps it);
//! - [`package`]: the Lambda zip layout `lifeboat package` writes;
//! - [`control_state`]: creating the DR control parameters once, outside any stack.
//!
//! [`AwsEnvironment::connect`] wires all of it for one environment.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod clients;
pub mod control_state;
pub mod errors;
pub mod journal_table;
pub mod lambda;
pub mod observe;
pub mod package;
pub mod report_sink;
pub mod tasks;
pub mod topology;
pub mod traffic;

pub use backend::AwsBackend;
pub use clients::{Clients, Connection, RegionClients};
pub use journal_table::JournalTable;
pub use report_sink::S3ReportSink;
pub use topology::{Bounds, Topology};

use std::sync::Arc;

/// Everything the engine needs to act on one AWS environment.
pub struct AwsEnvironment {
    pub backend: Arc<AwsBackend>,
    /// Journal, lock and epoch (one object: the journal table).
    pub journal: Arc<JournalTable>,
    pub reports: Arc<S3ReportSink>,
    /// The region whose replica of the journal table (and whose report bucket region) is used.
    pub coordination_region: String,
}

impl AwsEnvironment {
    /// Connects to both regions. The journal and lock live in `coordination_region`'s replica of the
    /// journal table: the region that survives the loss of the other (the standby for the CLI, the
    /// Lambda's own region for automation).
    pub async fn connect(
        connection: &Connection,
        topology: Topology,
        coordination_region: &str,
    ) -> Self {
        let clients = Clients::connect(connection, &topology.regions()).await;
        // Bucket names carry the account id; where the caller did not know it, the credentials tell it
        // (without it the bucket checks name the placeholder and fail, saying so).
        let topology = if topology.knows_account() {
            topology
        } else {
            match clients.account_id().await {
                Ok(account) => topology.in_account(&account),
                Err(e) => {
                    tracing::warn!(error = %e.message, "the AWS account is unknown");
                    topology
                }
            }
        };
        Self::from_clients(clients, topology, coordination_region)
    }

    /// As [`Self::connect`], over clients built by the caller (tests swap in instrumented ones).
    pub fn from_clients(clients: Clients, topology: Topology, coordination_region: &str) -> Self {
        let coordination = clients
            .regions
            .get(coordination_region)
            .or_else(|| clients.regions.get(&topology.standby_region))
            .cloned();
        let coordination = match coordination {
            Some(c) => c,
            None => clients.regions.values().next().cloned().unwrap_or_else(|| {
                // Clients::connect always builds both regions; an empty map only comes from a caller's own
                // construction, and every call through it will say which region is missing.
                let sdk = aws_types::SdkConfig::builder().build();
                RegionClients::new(coordination_region, &sdk)
            }),
        };
        let mut journal = JournalTable::new(
            coordination.dynamodb().clone(),
            &topology.journal_table,
            &coordination.region,
        );
        for region in clients.regions.values() {
            journal = journal.with_epoch_floor(region.ssm().clone(), topology.ssm_epoch());
        }
        let reports_bucket = topology
            .reports_bucket
            .clone()
            .or_else(|| topology.assets_buckets.get(&coordination.region).cloned())
            .unwrap_or_else(|| format!("{}-assets-{}", topology.prefix, coordination.region));
        let reports = S3ReportSink::new(
            coordination.s3().clone(),
            &coordination.region,
            reports_bucket,
            &topology.reports_prefix,
        );
        let coordination_region = coordination.region.clone();
        AwsEnvironment {
            backend: Arc::new(AwsBackend::new(clients, topology)),
            journal: Arc::new(journal),
            reports: Arc::new(reports),
            coordination_region,
        }
    }
}
