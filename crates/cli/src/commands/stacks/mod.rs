//! The commands that work on the deployed stacks: `bootstrap`, `diff`, `deploy`, `destroy`, `status`.
//! They share how they find the synth output, talk to AWS and show progress.

pub mod bootstrap;
pub mod deploy;
pub mod destroy;
pub mod diff;
pub mod status;
mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeboat_aws::EngineError;
use lifeboat_aws::assets;
use lifeboat_aws::sdk::{AwsTarget, SdkRegion};
use lifeboat_aws::synth_output::SynthOutput;
use lifeboat_contract::exit;

use crate::context::Context;
use crate::error::CliError;

/// Flags shared by the stack commands.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// Synth output directory to work from. Without it the current config is synthesized first.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only stacks whose id matches: a glob such as 'networking-*', several separated by commas.
    #[arg(long, value_name = "PATTERN")]
    pub stacks: Option<String>,
    /// Stacks worked on at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub concurrency: u16,
    /// Longest wait, in minutes, for one change set or stack operation.
    #[arg(long, value_name = "MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub timeout: u64,
}

impl StackArgs {
    pub fn options(&self, ctx: &Context) -> lifeboat_aws::EngineOptions {
        lifeboat_aws::EngineOptions {
            concurrency: usize::from(self.concurrency),
            timeout: Duration::from_secs(self.timeout * 60),
            // A local endpoint is moto, which needs outputs recomputed (see the option's documentation).
            recompute_outputs: ctx.endpoint_url.is_some(),
            ..Default::default()
        }
    }
}

pub fn engine_error(e: EngineError) -> CliError {
    CliError::new(e.exit_code(), e.to_string())
}

pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::from_error(exit::INTERNAL, "cannot start the async runtime", &e))
}

/// The synth output to work from: `--out DIR`, or a fresh synthesis of the current config in a temporary
/// directory (removed again when the command ends).
pub fn load_synth(
    out: Option<&Path>,
    ctx: &Context,
) -> Result<(SynthOutput, Option<TempDir>), CliError> {
    if let Some(dir) = out {
        let synth = SynthOutput::load(dir).map_err(engine_error)?;
        return Ok((synth, None));
    }
    let config = ctx.config()?;
    let synthesis = lifeboat_platform::synthesize(&config).map_err(|e| {
        CliError::from_error(
            exit::USAGE,
            "the platform cannot be synthesized from this configuration",
            &e,
        )
    })?;
    let files = synthesis
        .render()
        .map_err(|e| CliError::from_error(exit::INTERNAL, "rendering the templates failed", &e))?;
    let dir = TempDir(std::env::temp_dir().join(format!("lifeboat-synth-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).map_err(|e| {
        CliError::from_error(
            exit::FAILED,
            format!("cannot create {}", dir.0.display()),
            &e,
        )
    })?;
    for (name, content) in &files {
        let path = dir.0.join(name);
        std::fs::write(&path, content).map_err(|e| {
            CliError::from_error(exit::FAILED, format!("cannot write {}", path.display()), &e)
        })?;
    }
    let synth = SynthOutput::load(&dir.0).map_err(engine_error)?;
    Ok((synth, Some(dir)))
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One client set per region of the manifest.
pub async fn connect(synth: &SynthOutput, ctx: &Context) -> BTreeMap<String, SdkRegion> {
    let target = AwsTarget {
        endpoint_url: ctx.endpoint_url.clone(),
        profile: ctx.profile.clone(),
    };
    let regions = assets::manifest_regions(&synth.manifest);
    let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
    lifeboat_aws::sdk::connect_regions(&target, &regions).await
}

/// Where the command talks to, for the first line of output.
pub fn target_line(synth: &SynthOutput, ctx: &Context) -> String {
    let m = &synth.manifest;
    format!(
        "{}-{} in {} and {} via {}",
        m.project,
        m.environment,
        m.primary_region,
        m.standby_region,
        ctx.endpoint_url.as_deref().unwrap_or("AWS")
    )
}
