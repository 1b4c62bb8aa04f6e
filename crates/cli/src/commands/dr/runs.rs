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
    // Every store's runs, merged: a run found in two replicas is listed once, as the replica that has
    // seen more of it tells it.
    let mut merged: std::collections::BTreeMap<String, lifeboat_runbook::RunSummary> =
        std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    let journals = target.journals();
    for (place, journal) in &journals {
        match rt.block_on(list_runs(&**journal)) {
            Ok(found) => {
                for summary in found {
                    let key = summary.run_id.to_string();
                    let newer = merged.get(&key).is_none_or(|known| {
                        (
                            summary.outcome != lifeboat_runbook::RunOutcome::Interrupted,
                            summary.steps_done,
                        ) > (
                            known.outcome != lifeboat_runbook::RunOutcome::Interrupted,
                            known.steps_done,
                        )
                    });
                    if newer {
                        merged.insert(key, summary);
                    }
                }
            }
            Err(e) => failures.push((place.clone(), e)),
        }
    }
    if failures.len() == journals.len() {
        let (place, e) = failures.remove(0);
        let code = match e {
            lifeboat_runbook::JournalError::Storage { .. } => lifeboat_contract::exit::UNAVAILABLE,
            _ => lifeboat_contract::exit::INTERNAL,
        };
        return Err(CliError::new(
            code,
            format!("cannot list runs ({place}): {e}"),
        ));
    }
    for (place, e) in &failures {
        eprintln!("warning: the runs journaled in {place} could not be read: {e}");
    }
    let mut summaries: Vec<_> = merged.into_values().collect();
    summaries
        .sort_by(|a, b| (a.started_at, a.run_id.as_str()).cmp(&(b.started_at, b.run_id.as_str())));
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
    // The run is resumed where it is coordinated: the replica of the region it moves to, as its start
    // and the DR automation do; found only elsewhere (replication behind), where it was found.
    let mut found = None;
    for (place, journal) in target.journals() {
        if let Ok(events) = rt.block_on(journal.read(&run_id))
            && let Some(lifeboat_runbook::JournalEvent::RunStarted { to, .. }) = events.first()
        {
            let coordinated = target.coordinated_in(to);
            let there = rt
                .block_on(coordinated.journal.read(&run_id))
                .is_ok_and(|e| e.len() >= events.len());
            found = Some(if there {
                coordinated
            } else {
                target.coordinated_in(&place)
            });
            break;
        }
    }
    let target = found.unwrap_or(target);
    let progress = Progress::new(Some(run_id.clone()));
    let on_event = |e: &lifeboat_runbook::JournalEvent| progress.on_event(e);
    let engine = target.engine().with_progress(&on_event);
    drive(ctx, &rt, &progress, engine.resume(&run_id))
}
