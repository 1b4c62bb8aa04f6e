//! `--target aws|local`: where the runbooks act, and the one place that builds a backend, journal, lock
//! and report sink for it ([`backend_for`]).

use std::sync::Arc;

use clap::{Args as ClapArgs, ValueEnum};
use lifeboat_config::Config;
use lifeboat_runbook::{DrBackend, DrSettings, EpochStore, Journal, ReportSink, RunLock};

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The AWS environment the config describes (or the emulator at --endpoint-url).
    Aws,
    /// The local two-region runtime (`lifeboat local up`).
    Local,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Aws => "aws",
            Target::Local => "local",
        }
    }
}

#[derive(Debug, Clone, ClapArgs)]
pub struct TargetArgs {
    /// Where to act: the AWS environment or the local two-region runtime.
    #[arg(long, value_enum, env = "LIFEBOAT_TARGET", default_value = "aws")]
    pub target: Target,
}

/// The runbooks' settings for `target` from the config: `[regions]` and `[dr]`, and the write lease the
/// target's storefronts hold (the local runtime's `local.lease_ms`; on AWS the storefront's control-state
/// refresh bound).
pub fn settings_for(target: Target, config: &Config) -> DrSettings {
    let mut settings = lifeboat_aws_dr::topology::settings_from_config(config);
    if target == Target::Local {
        settings.write_lease_ms = u64::from(config.local.lease_ms);
    }
    settings
}

/// Everything a run needs on one target.
pub struct DrTarget {
    pub target: Target,
    pub backend: Arc<dyn DrBackend>,
    pub journal: Arc<dyn Journal>,
    pub lock: Arc<dyn RunLock>,
    pub epochs: Arc<dyn EpochStore>,
    pub reports: Arc<dyn ReportSink>,
    pub settings: DrSettings,
    /// On AWS: the clients and topology, to coordinate a run in another region's replica.
    aws: Option<(lifeboat_aws_dr::Clients, lifeboat_aws_dr::Topology)>,
}

impl DrTarget {
    /// This target with a run's journal, lock, epoch and reports in `region`'s replica (AWS; the local
    /// runtime has one store). A run is coordinated in the region it moves to, as the DR automation of
    /// that region coordinates it: an operator's run and the automation's meet on one lock.
    pub fn coordinated_in(&self, region: &str) -> DrTarget {
        let Some((clients, topology)) = &self.aws else {
            return self.clone_parts();
        };
        let env = lifeboat_aws_dr::AwsEnvironment::from_clients(
            clients.clone(),
            topology.clone(),
            region,
        );
        DrTarget {
            journal: env.journal.clone(),
            lock: env.journal.clone(),
            epochs: env.journal,
            reports: env.reports,
            ..self.clone_parts()
        }
    }

    /// Every store of runs: the one journal locally; on AWS each region's replica of the journal table (a
    /// run is written in the replica of the region it moves to, and replication copies it to the other;
    /// with a region lost, or replication behind, only one of them may have it).
    pub fn journals(&self) -> Vec<(String, Arc<dyn Journal>)> {
        let Some((clients, topology)) = &self.aws else {
            return vec![(self.target.as_str().to_owned(), self.journal.clone())];
        };
        topology
            .regions()
            .iter()
            .map(|region| {
                let env = lifeboat_aws_dr::AwsEnvironment::from_clients(
                    clients.clone(),
                    topology.clone(),
                    region,
                );
                let journal: Arc<dyn Journal> = env.journal;
                ((*region).to_owned(), journal)
            })
            .collect()
    }

    fn clone_parts(&self) -> DrTarget {
        DrTarget {
            target: self.target,
            backend: self.backend.clone(),
            journal: self.journal.clone(),
            lock: self.lock.clone(),
            epochs: self.epochs.clone(),
            reports: self.reports.clone(),
            settings: self.settings.clone(),
            aws: self.aws.clone(),
        }
    }

    pub fn engine(&self) -> lifeboat_runbook::Engine<'_> {
        lifeboat_runbook::Engine::new(
            &*self.backend,
            &*self.journal,
            &*self.lock,
            &*self.epochs,
            &*self.reports,
        )
    }
}

/// Connects to `target`. Fails with `UNAVAILABLE` when it cannot be reached (the local runtime is not up).
pub async fn backend_for(
    target: Target,
    config: &Config,
    ctx: &Context,
) -> Result<DrTarget, CliError> {
    match target {
        Target::Local => {
            let state_dir = lifeboat_local::LocalSettings::from_config(config).state_dir;
            let dr = lifeboat_local::LocalDr::open(&state_dir)
                .map_err(|e| CliError::new(e.exit_code(), format!("local target: {e}")))?;
            let lifeboat_local::LocalDr {
                backend,
                journal,
                coordination,
                reports,
                settings,
            } = dr;
            let coordination = Arc::new(coordination);
            Ok(DrTarget {
                target,
                backend: Arc::new(backend),
                journal: Arc::new(journal),
                lock: coordination.clone(),
                epochs: coordination,
                reports: Arc::new(reports),
                settings,
                aws: None,
            })
        }
        Target::Aws => {
            let connection = lifeboat_aws_dr::Connection {
                endpoint_url: ctx.endpoint_url.clone(),
                static_credentials: None,
            };
            let mut topology = lifeboat_aws_dr::Topology::from_config(config);
            ctx.overrides.apply_to(&mut topology.bounds);
            // Reading runs and resuming use the standby region's replica of the journal table (the region a
            // failover runs from keeps it when the primary is gone); a new run is coordinated in the region
            // it moves to (`coordinated_in`).
            let coordination_region = config.regions.standby.clone();
            let clients = match &ctx.overrides.aws_clients {
                Some(clients) => clients.clone(),
                None => lifeboat_aws_dr::Clients::connect(&connection, &topology.regions()).await,
            };
            // Bucket names carry the account id, which only the credentials in use can tell. Unknown, the
            // names keep their placeholder and the checks that need them say so; the command still runs
            // as far as the endpoints answer (and names the first that does not).
            let topology = match clients.account_id().await {
                Ok(account) => topology.in_account(&account),
                Err(e) => {
                    eprintln!("warning: the AWS account is unknown: {}", e.message);
                    topology
                }
            };
            let env = lifeboat_aws_dr::AwsEnvironment::from_clients(
                clients.clone(),
                topology.clone(),
                &coordination_region,
            );
            Ok(DrTarget {
                target,
                backend: env.backend,
                journal: env.journal.clone(),
                lock: env.journal.clone(),
                epochs: env.journal,
                reports: env.reports,
                settings: settings_for(target, config),
                aws: Some((clients, topology)),
            })
        }
    }
}
