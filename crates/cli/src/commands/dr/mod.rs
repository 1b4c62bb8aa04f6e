//! The DR orchestration commands: `plan`, `switchover`, `failover`, `failback`, `runs`, `resume`.
//!
//! They are thin: the runbooks, the journal, the lock and the report live in `lifeboat-runbook`; the
//! target (`--target aws|local`) decides which backend, journal and lock they run on ([`target`]).

pub mod plan;
pub mod runbooks;
pub mod runs;
pub mod target;

use std::sync::Mutex;

use lifeboat_contract::exit;
use lifeboat_runbook::engine::{RunResult, progress_line};
use lifeboat_runbook::{EngineError, JournalEvent, RunId, RunOutcome};

use crate::context::Context;
use crate::error::CliError;

/// Maps an engine error to the exit code it means.
fn engine_error(e: EngineError) -> CliError {
    use lifeboat_runbook::JournalError;
    let code = match &e {
        EngineError::Refused(_) => exit::REFUSED,
        EngineError::Invalid(_) => exit::USAGE,
        EngineError::Locked(_) => exit::LOCKED,
        EngineError::Lock(_) => exit::UNAVAILABLE,
        EngineError::Journal(JournalError::UnknownRun(_)) => exit::USAGE,
        EngineError::Journal(JournalError::Storage { .. }) => exit::UNAVAILABLE,
        EngineError::Journal(_) => exit::INTERNAL,
        EngineError::NothingToResume { .. } => exit::USAGE,
        EngineError::CannotResume { .. } => exit::FAILED,
    };
    CliError::new(code, e.to_string())
}

/// Progress lines on stderr (stdout stays for the report), remembering the run id for Ctrl-C.
struct Progress {
    run_id: Mutex<Option<RunId>>,
}

impl Progress {
    fn new(known: Option<RunId>) -> Self {
        Progress {
            run_id: Mutex::new(known),
        }
    }

    fn on_event(&self, event: &JournalEvent) {
        if let JournalEvent::RunStarted { run_id, .. } = event {
            *self
                .run_id
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(run_id.clone());
        }
        if let Some(line) = progress_line(event) {
            eprintln!("{line}");
        }
    }

    fn run_id(&self) -> Option<RunId> {
        self.run_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Runs `work` (an engine run) until it ends or the user presses Ctrl-C; then prints the report and maps
/// the outcome to an exit code.
fn drive<F>(
    ctx: &Context,
    rt: &tokio::runtime::Runtime,
    progress: &Progress,
    work: F,
) -> Result<(), CliError>
where
    F: std::future::Future<Output = Result<RunResult, EngineError>>,
{
    let finished = rt.block_on(async {
        tokio::select! {
            result = work => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(result) = finished else {
        let resume = progress.run_id().map_or_else(
            || "the run had not started".to_owned(),
            |id| format!("continue with: lifeboat resume {id}"),
        );
        return Err(CliError::new(
            exit::INTERRUPTED,
            format!("interrupted; the journal records where the run stopped ({resume})"),
        ));
    };
    let result = result.map_err(engine_error)?;
    print_result(ctx, &result)?;
    let report = &result.report;
    match report.outcome {
        RunOutcome::Succeeded => Ok(()),
        RunOutcome::Refused => Err(CliError::refused(format!(
            "{} refused: {}",
            report.kind, report.message
        ))),
        RunOutcome::Failed | RunOutcome::Interrupted => Err(CliError::failed(format!(
            "{} {} failed: {}",
            report.kind, report.run_id, report.message
        ))),
    }
}

fn print_result(ctx: &Context, result: &RunResult) -> Result<(), CliError> {
    if ctx.json {
        let json = serde_json::to_string_pretty(&result.report)
            .map_err(|e| CliError::internal(format!("cannot render the report as JSON: {e}")))?;
        outln!("{json}");
    } else {
        outln!();
        out!("{}", result.report.render_text());
    }
    match &result.report_location {
        Ok(location) => eprintln!("report: {location}"),
        Err(e) => eprintln!("warning: the report could not be stored: {e}"),
    }
    Ok(())
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the async runtime: {e}")))
}
