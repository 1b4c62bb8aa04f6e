//! `lifeboat diff`: per stack what a deploy would add, modify and remove; data at risk flagged loudly.

use lifeboat_aws::assets;
use lifeboat_aws::changes::{Action, Replacement, ResourceChange};
use lifeboat_aws::engine::{DiffResult, Engine, StackDiff};
use lifeboat_aws::progress::{Observer, Progress};

use super::{
    StackArgs, connect, engine_error, load_synth, refuse_reserved_domain, runtime, target_line,
};
use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Creates a change set per stack, describes it and deletes it again; nothing is executed. A new stack
whose inputs come from stacks not deployed yet is shown from its template (all additions).
Replacing or removing a database, bucket, table or key is marked !! DATA.

Examples:
  lifeboat diff
  lifeboat diff --stacks 'storage-*' --json";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: StackArgs,
    /// Directory with the Lambda packages, to preview their keys (see `deploy --artifacts`).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<std::path::PathBuf>,
}

/// Previews ask nothing and report warnings only.
struct Quiet;

impl Observer for Quiet {
    fn event(&self, event: Progress) {
        if let Progress::Warning { message } = event {
            eprintln!("warning: {message}");
        }
    }
    fn approve_data_risk(&self, _: &str, _: &[lifeboat_aws::changes::StatefulRisk]) -> bool {
        false
    }
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let (synth, _tmp) = load_synth(args.common.out.as_deref(), ctx)?;
    refuse_reserved_domain(&synth, args.common.out.as_deref(), ctx)?;
    let rt = runtime()?;
    let diffs = rt.block_on(async {
        let apis = connect(&synth, ctx).await;
        let options = args.common.options(ctx);
        let engine = Engine::new(&synth, &apis, options.clone());
        let selection = engine
            .select(args.common.stacks.as_deref())
            .map_err(engine_error)?;
        eprintln!(
            "comparing {} stacks with {}",
            selection.ordered.len(),
            target_line(&synth, ctx)
        );
        let prepared = assets::prepare_assets(
            &synth,
            &apis,
            &selection.ordered,
            args.artifacts.as_deref(),
            &options,
            false,
            &Quiet,
        )
        .await
        .map_err(engine_error)?;
        engine
            .diff(&selection, &prepared.artifacts)
            .await
            .map_err(engine_error)
    })?;
    if ctx.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "stacks": diffs }))
                .unwrap_or_default()
        );
    } else {
        for d in &diffs {
            print_stack(d, ctx);
        }
    }
    let failed = diffs
        .iter()
        .filter(|d| matches!(d.result, DiffResult::Failed { .. }))
        .count();
    if failed > 0 {
        return Err(CliError::failed(format!(
            "{failed} change set(s) could not be created"
        )));
    }
    Ok(())
}

fn symbol(c: &ResourceChange) -> &'static str {
    match c.action {
        Action::Add | Action::Import => "+",
        Action::Modify | Action::Dynamic => "~",
        Action::Remove => "-",
    }
}

fn print_stack(d: &StackDiff, ctx: &Context) {
    let header = format!("{} ({}, {})", d.id, d.name, d.region);
    let print_changes = |changes: &[ResourceChange]| {
        for c in changes {
            let replacement = match c.replacement {
                Some(Replacement::True) => " [replacement]",
                Some(Replacement::Conditional) => " [may be replaced]",
                _ => "",
            };
            outln!(
                "  {} {} {}{replacement}",
                symbol(c),
                c.logical_id,
                c.resource_type
            );
        }
    };
    match &d.result {
        DiffResult::NoChanges => outln!("{header}: no changes"),
        DiffResult::Changes {
            changes,
            stateful_risks,
        } => {
            let counts = lifeboat_aws::changes::count(changes);
            outln!(
                "{header}: {}{} to add, {} to modify ({} replaced), {} to remove",
                if d.exists { "" } else { "new stack, " },
                counts.add,
                counts.modify,
                counts.replace,
                counts.remove
            );
            print_changes(changes);
            for r in stateful_risks {
                outln!("  {} {r}", ctx.style.error("!! DATA: would"));
            }
        }
        DiffResult::Unknown { reason, changes } => {
            outln!(
                "{header}: {} ({reason})",
                if d.exists {
                    "cannot preview"
                } else {
                    "new stack"
                }
            );
            print_changes(changes);
        }
        DiffResult::Failed { reason } => outln!(
            "{header}: {} {reason}",
            ctx.style.error("change set failed:")
        ),
    }
}
