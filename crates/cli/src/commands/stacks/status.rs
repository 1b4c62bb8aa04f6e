//! `lifeboat status`: each stack's state, last update, drift status and outputs.
//!
//! The JSON has a `stacks` key; other sections (DR readiness) sit beside it.

use lifeboat_aws::assets;
use lifeboat_aws::engine::{Engine, StackStatus};
use lifeboat_aws::graph;

use super::{StackArgs, connect, engine_error, load_synth, runtime};
use crate::context::Context;
use crate::error::CliError;
use crate::output::table;

pub const AFTER_HELP: &str = "\
Drift status is what CloudFormation last recorded (NOT_CHECKED until a drift detection ran).
Stacks that do not exist show NOT_DEPLOYED. The bootstrap stacks are listed too.

Examples:
  lifeboat status
  lifeboat status --json | jq '.stacks[] | {id, status}'";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: StackArgs,
}

/// The `stacks` section: every selected stack and the bootstrap stacks, queried from CloudFormation.
pub fn collect(args: &StackArgs, ctx: &Context) -> Result<(String, Vec<StackStatus>), CliError> {
    let (synth, _tmp) = load_synth(args.out.as_deref(), ctx)?;
    let boot =
        assets::bootstrap_output(&synth.manifest, &assets::manifest_regions(&synth.manifest))
            .map_err(engine_error)?;
    let rt = runtime()?;
    let rows = rt.block_on(async {
        let apis = connect(&synth, ctx).await;
        let engine = Engine::new(&synth, &apis, args.options(ctx));
        let selection = engine
            .select(args.stacks.as_deref())
            .map_err(engine_error)?;
        let mut rows = engine
            .status(&selection.ordered)
            .await
            .map_err(engine_error)?;
        let boot_engine = Engine::new(&boot, &apis, args.options(ctx));
        let boot_ids = graph::select(&boot.manifest.stacks, None)
            .map_err(engine_error)?
            .ordered;
        rows.extend(boot_engine.status(&boot_ids).await.map_err(engine_error)?);
        Ok::<_, CliError>(rows)
    })?;
    let env = format!("{}-{}", synth.manifest.project, synth.manifest.environment);
    Ok((env, rows))
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let (environment, rows) = collect(&args.common, ctx)?;
    let dr = dr_readiness(ctx);
    if ctx.json {
        let dr_json = match &dr {
            Ok(section) => serde_json::json!({
                "from": section.from,
                "to": section.to,
                "verdict": section.verdict,
                "readiness": section.readiness,
            }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let doc = serde_json::json!({ "environment": environment, "stacks": rows, "dr": dr_json });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.region.clone(),
                r.status.clone(),
                r.last_updated.clone().unwrap_or_else(|| "-".into()),
                r.drift_status.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    outln!("stacks of {environment}");
    out!(
        "{}",
        table(
            &["stack", "region", "status", "last update", "drift"],
            &table_rows
        )
    );
    for r in rows
        .iter()
        .filter(|r| !r.outputs.is_empty() || r.status_reason.is_some() || r.next_step.is_some())
    {
        outln!("\n{} ({})", r.id, r.name);
        if let Some(reason) = &r.status_reason {
            outln!("  reason: {reason}");
        }
        if let Some(step) = &r.next_step {
            outln!("  next: {step}");
        }
        if r.termination_protection {
            outln!("  termination protection: on (destroy --force turns it off)");
        }
        for (k, v) in &r.outputs {
            outln!("  {k} = {v}");
        }
    }
    print_dr_readiness(&dr);
    Ok(())
}

/// The DR readiness section: both regions observed through the AWS DR backend, and the verdict for a
/// switchover away from the active region.
struct DrSection {
    readiness: lifeboat_runbook::Readiness,
    verdict: lifeboat_runbook::Verdict,
    from: String,
    to: String,
}

fn dr_readiness(ctx: &Context) -> Result<DrSection, CliError> {
    use crate::commands::dr::target::{Target, backend_for};
    let config = ctx.config()?;
    let rt = runtime()?;
    rt.block_on(async {
        let target = backend_for(Target::Aws, &config, ctx).await?;
        let readiness = target.backend.readiness().await.map_err(|e| {
            CliError::unavailable(format!("DR readiness could not be observed: {}", e.message))
        })?;
        let from = readiness
            .active_region()
            .unwrap_or_else(|| config.regions.primary.clone());
        let to = target
            .settings
            .region_pair()
            .other_region(&from)
            .unwrap_or(config.regions.standby.as_str())
            .to_owned();
        let verdict = lifeboat_runbook::readiness::assess(
            lifeboat_runbook::RunKind::Switchover,
            &readiness,
            &from,
            &to,
            &target.settings,
        );
        Ok(DrSection {
            readiness,
            verdict,
            from,
            to,
        })
    })
}

fn print_dr_readiness(dr: &Result<DrSection, CliError>) {
    outln!();
    match dr {
        Ok(section) => {
            outln!(
                "DR readiness: {} for a switchover from {} to {}",
                section.verdict.label(),
                section.from,
                section.to
            );
            for reason in &section.verdict.reasons {
                outln!("  - {reason}");
            }
            for warning in &section.verdict.warnings {
                outln!("  ! {warning}");
            }
            out!("{}", section.readiness.render_text());
        }
        Err(e) => outln!("DR readiness: unknown ({e})"),
    }
}
