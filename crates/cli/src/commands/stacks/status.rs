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
    if ctx.json {
        let doc = serde_json::json!({ "environment": environment, "stacks": rows });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
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
    println!("stacks of {environment}");
    print!(
        "{}",
        table(
            &["stack", "region", "status", "last update", "drift"],
            &table_rows
        )
    );
    for r in rows
        .iter()
        .filter(|r| !r.outputs.is_empty() || r.status_reason.is_some())
    {
        println!("\n{} ({})", r.id, r.name);
        if let Some(reason) = &r.status_reason {
            println!("  reason: {reason}");
        }
        for (k, v) in &r.outputs {
            println!("  {k} = {v}");
        }
    }
    Ok(())
}
