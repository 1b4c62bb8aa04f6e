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
}

impl DrTarget {
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
            })
        }
        Target::Aws => {
            let connection = lifeboat_aws_dr::Connection {
                endpoint_url: ctx.endpoint_url.clone(),
                static_credentials: None,
            };
            let mut topology = lifeboat_aws_dr::Topology::from_config(config);
            ctx.overrides.apply_to(&mut topology.bounds);
            // The journal and lock live in the standby region's replica of the journal table: the region a
            // failover runs from keeps them when the primary is gone.
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
                clients,
                topology,
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
            })
        }
    }
}
