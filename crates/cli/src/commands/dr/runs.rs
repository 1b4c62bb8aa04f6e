//! `lifeboat runs [--json]` and `lifeboat resume RUN`.

use clap::Args as ClapArgs;
use lifeboat_runbook::RunId;
use lifeboat_runbook::journal::list_runs;

use super::target::{TargetArgs, backend_for};
use super::{Progress, drive, tokio_runtime};
use crate::context::Context;
use crate::error::CliError;
use crate::output::table;

pub const RUNS_AFTER_HELP: &str = "\
Examples:
  lifeboat runs                       every run in the journal, oldest first
  lifeboat runs --json
  lifeboat runs --target local";

pub const RESUME_AFTER_HELP: &str = "\
Examples:
  lifeboat resume 20261125T101500Z-1a2b3c4d
  lifeboat resume 20261125T101500Z-1a2b3c4d --target local

Steps that finished are not run again; a step that started and did not finish is run again (every step is
idempotent). The run keeps its fencing epoch.";

#[derive(Debug, ClapArgs)]
pub struct RunsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, ClapArgs)]
pub struct ResumeArgs {
    /// The run id, as `lifeboat runs` lists it.
    #[arg(value_name = "RUN")]
    pub run: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn runs(args: RunsArgs, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    let rt = tokio_runtime()?;
    let target = rt.block_on(backend_for(args.target.target, &config, ctx))?;
    let summaries = rt.block_on(list_runs(&*target.journal)).map_err(|e| {
        let code = match e {
            lifeboat_runbook::JournalError::Storage { .. } => lifeboat_contract::exit::UNAVAILABLE,
            _ => lifeboat_contract::exit::INTERNAL,
        };
        CliError::new(code, format!("cannot list runs: {e}"))
    })?;
    if ctx.json {
        let json = serde_json::to_string_pretty(&summaries)
            .map_err(|e| CliError::internal(format!("cannot render runs as JSON: {e}")))?;
        outln!("{json}");
        return Ok(());
    }
    if summaries.is_empty() {
        outln!("no runs yet ({} target)", target.target.as_str());
        return Ok(());
    }
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.run_id.to_string(),
                s.kind.to_string(),
                format!("{} → {}", s.from, s.to),
                s.started_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| s.started_at.to_string()),
                s.outcome.to_string(),
                format!("{}/{}", s.steps_done, s.steps_total),
                s.epoch.map_or("-".to_owned(), |e| e.to_string()),
            ]
        })
        .collect();
    out!(
        "{}",
        table(
            &[
                "run",
                "kind",
                "direction",
                "started",
                "outcome",
                "steps",
                "epoch"
            ],
            &rows
        )
    );
    Ok(())
}

pub fn resume(args: ResumeArgs, ctx: &Context) -> Result<(), CliError> {
    let run_id = RunId::parse(&args.run).map_err(CliError::usage)?;
    let config = ctx.config()?;
    let rt = tokio_runtime()?;
    let target = rt.block_on(backend_for(args.target.target, &config, ctx))?;
    let progress = Progress::new(Some(run_id.clone()));
    let on_event = |e: &lifeboat_runbook::JournalEvent| progress.on_event(e);
    let engine = target.engine().with_progress(&on_event);
    drive(ctx, &rt, &progress, engine.resume(&run_id))
}
