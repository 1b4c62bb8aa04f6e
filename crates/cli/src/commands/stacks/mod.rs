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
            // moto 5.2 has no UpdateTerminationProtection; an emulator holds no data worth protecting.
            termination_protection: !is_emulator_endpoint(ctx.endpoint_url.as_deref()),
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
        return Ok((for_endpoint(synth, ctx), None));
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
    // Unique per call: a program embedding the command line may run several commands at once.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        TempDir(std::env::temp_dir().join(format!("lifeboat-synth-{}-{call}", std::process::id())));
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
    Ok((for_endpoint(synth, ctx), Some(dir)))
}

/// The synthesized stacks as the endpoint in use can take them (see [`SynthOutput::for_emulator`]).
fn for_endpoint(synth: SynthOutput, ctx: &Context) -> SynthOutput {
    if is_emulator_endpoint(ctx.endpoint_url.as_deref()) {
        synth.for_emulator()
    } else {
        synth
    }
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `--endpoint-url` names a local AWS emulator (moto, LocalStack, ...) rather than an AWS service
/// endpoint. AWS's own endpoints (regional, FIPS, dual-stack, VPC interface endpoints) all live under
/// amazonaws.com, amazonaws.com.cn or api.aws; anything else is an emulator.
pub fn is_emulator_endpoint(url: Option<&str>) -> bool {
    let Some(url) = url else {
        return false;
    };
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    !["amazonaws.com", "amazonaws.com.cn", "api.aws"]
        .iter()
        .any(|aws| host == *aws || host.ends_with(&format!(".{aws}")))
}

/// Refuses (exit 2) to send a reserved domain (`shop.example.com`, `*.test`, ...) to AWS: Route 53 refuses
/// the hosted zone and every stack after networking would be skipped. The domain is `dns.domain` of the
/// config, or, with `--out DIR`, the hosted zone name in the synthesized templates.
///
/// A local emulator (see [`is_emulator_endpoint`]) may use one: no real Route 53 zone is created there, and
/// the default config is what the demo and the tests deploy to moto.
pub fn refuse_reserved_domain(
    synth: &SynthOutput,
    out: Option<&Path>,
    ctx: &Context,
) -> Result<(), CliError> {
    if is_emulator_endpoint(ctx.endpoint_url.as_deref()) {
        return Ok(());
    }
    let Some(dir) = out else {
        let config = ctx.config()?;
        return config.validate_for_deploy().map_err(|kind| {
            CliError::from(lifeboat_config::ConfigError {
                origin: ctx.config_source(),
                kind,
            })
        });
    };
    for entry in &synth.manifest.stacks {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(synth.template(&entry.id)) else {
            continue;
        };
        let Some(resources) = doc.get("Resources").and_then(|r| r.as_object()) else {
            continue;
        };
        for (logical_id, resource) in resources {
            if resource.get("Type").and_then(|t| t.as_str()) != Some("AWS::Route53::HostedZone") {
                continue;
            }
            let Some(name) = resource
                .pointer("/Properties/Name")
                .and_then(|n| n.as_str())
            else {
                continue;
            };
            if let Some(why) = lifeboat_config::reserved_domain(name) {
                return Err(CliError::usage(format!(
                    "{}: hosted zone {logical_id} of {} is for {name:?}, which comes from `dns.domain` and cannot be \
                     deployed: {why}, and Route 53 refuses to create a hosted zone for it. Set a domain you own in \
                     the config ([dns] domain = \"shop.your-company.com\"), run `lifeboat synth` again and deploy that",
                    dir.display(),
                    entry.id
                )));
            }
        }
    }
    Ok(())
}

/// One client set per region of the manifest.
pub async fn connect(synth: &SynthOutput, ctx: &Context) -> BTreeMap<String, SdkRegion> {
    if let Some(clients) = &ctx.stack_clients {
        return clients.clone();
    }
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

#[cfg(test)]
mod tests {
    use super::is_emulator_endpoint;

    #[test]
    fn aws_endpoints_are_not_emulators_and_everything_else_is() {
        for aws in [
            "https://cloudformation.us-east-1.amazonaws.com",
            "https://cloudformation-fips.us-east-1.amazonaws.com/",
            "https://vpce-0abc-123.cloudformation.us-east-1.vpce.amazonaws.com",
            "https://cloudformation.cn-north-1.amazonaws.com.cn",
            "https://cloudformation.us-east-1.api.aws",
            "https://CLOUDFORMATION.US-EAST-1.AMAZONAWS.COM.",
        ] {
            assert!(!is_emulator_endpoint(Some(aws)), "{aws}");
        }
        assert!(!is_emulator_endpoint(None));
        for local in [
            "http://127.0.0.1:5000",
            "http://localhost:4566",
            "http://[::1]:5000/",
            "http://moto:5000",
            "https://localhost.localstack.cloud:4566",
            "http://amazonaws.com.evil.test:80",
        ] {
            assert!(is_emulator_endpoint(Some(local)), "{local}");
        }
    }
}
