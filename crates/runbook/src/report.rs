//! The report written after every run (also a failed or refused one), and where it goes.
//!
//! # Contract for sinks
//!
//! [`ReportSink::store`] persists the JSON and the text summary of one run and returns where they are
//! (a path, an `s3://` URL). Storing the same run's report again overwrites it (a resumed run ends with a
//! new, complete report). Implemented by [`FileReportSink`] and, on AWS, an S3 sink.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::journal::{RunState, StepOutcome};
use crate::model::{Mode, RunId, RunKind, RunOutcome};
use crate::readiness::{Readiness, Verdict};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run_id: RunId,
    pub kind: RunKind,
    pub mode: Mode,
    pub from: String,
    pub to: String,
    pub backend: String,
    pub outcome: RunOutcome,
    pub message: String,
    pub epoch: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
    pub steps: Vec<StepReport>,
    /// Run start → first successful real request served by the new primary. `None` if verify never
    /// succeeded.
    pub rto_ms: Option<u64>,
    /// The configured objective, for comparison.
    pub rto_objective_ms: u64,
    pub rpo: Rpo,
    pub readiness_before: Option<ReadinessSnapshot>,
    pub readiness_after: Option<ReadinessSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessSnapshot {
    pub readiness: Readiness,
    pub verdict: Option<Verdict>,
}

/// The recovery point: how much acknowledged data may have been lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rpo {
    /// 0 for a switchover (replication drained under a raised fence); for a failover the replication lag
    /// last seen before promotion (`None` when nothing was observable).
    pub estimated_loss_window_ms: Option<u64>,
    /// Where the number comes from.
    pub basis: String,
    pub objective_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    /// 1-based stage number; steps with the same stage ran in parallel.
    pub stage: usize,
    /// `succeeded`, `skipped`, `failed`, `refused`, `interrupted` (started, no end) or `not-run`.
    pub outcome: String,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
    pub duration_ms: Option<u64>,
    /// The step's detail line, or its error / skip reason.
    pub detail: String,
}

impl Report {
    /// Builds the report from a run's folded journal.
    pub fn from_state(state: &RunState, backend: &str) -> Report {
        let mut steps = Vec::new();
        for (index, stage) in state.stages.iter().enumerate() {
            for id in stage {
                let step = match state.finished.get(id) {
                    Some(f) => {
                        let detail = match &f.outcome {
                            StepOutcome::Succeeded { output } => output.detail.clone(),
                            StepOutcome::Skipped { error } | StepOutcome::Failed { error } => {
                                error.clone()
                            }
                            StepOutcome::Refused { reasons } => reasons.join("; "),
                        };
                        StepReport {
                            id: id.clone(),
                            stage: index + 1,
                            outcome: f.outcome.name().to_owned(),
                            attempts: f.attempts,
                            started_at: Some(f.started_at),
                            finished_at: Some(f.finished_at),
                            duration_ms: Some(f.duration_ms),
                            detail,
                        }
                    }
                    None => StepReport {
                        id: id.clone(),
                        stage: index + 1,
                        outcome: if state.in_flight.contains(id) {
                            "interrupted"
                        } else {
                            "not-run"
                        }
                        .to_owned(),
                        attempts: state.starts.get(id).copied().unwrap_or(0),
                        started_at: None,
                        finished_at: None,
                        duration_ms: None,
                        detail: String::new(),
                    },
                };
                steps.push(step);
            }
        }
        let succeeded_output = |id: &str| match state.finished.get(id).map(|f| &f.outcome) {
            Some(StepOutcome::Succeeded { output }) => Some(output.clone()),
            _ => None,
        };
        let rto_ms = succeeded_output("verify")
            .and_then(|o| o.first_success_at)
            .map(|at| duration_ms(state.started_at, at));
        let rpo = match state.kind {
            RunKind::Failover => {
                let from_promote = succeeded_output("promote").and_then(|o| o.replication_lag_ms);
                let from_readiness = state
                    .readiness_before
                    .as_ref()
                    .and_then(|(r, _)| r.region(&state.to))
                    .and_then(|r| r.database.replication_lag_ms);
                match (from_promote, from_readiness) {
                    (Some(lag), _) => Rpo {
                        estimated_loss_window_ms: Some(lag),
                        basis: format!(
                            "replication lag of {} last seen by the promote step",
                            state.to
                        ),
                        objective_ms: state.settings.rpo_seconds * 1000,
                    },
                    (None, Some(lag)) => Rpo {
                        estimated_loss_window_ms: Some(lag),
                        basis: format!("replication lag of {} seen at preflight", state.to),
                        objective_ms: state.settings.rpo_seconds * 1000,
                    },
                    (None, None) => Rpo {
                        estimated_loss_window_ms: None,
                        basis: "no replication lag could be observed: the loss window is unknown"
                            .into(),
                        objective_ms: state.settings.rpo_seconds * 1000,
                    },
                }
            }
            RunKind::Reprotect => Rpo {
                estimated_loss_window_ms: Some(0),
                basis:
                    "reprotect moves no role: the active region kept every write it acknowledged"
                        .into(),
                objective_ms: state.settings.rpo_seconds * 1000,
            },
            RunKind::Switchover | RunKind::Failback => Rpo {
                estimated_loss_window_ms: Some(0),
                basis: "planned: writes were fenced and replication drained before promotion"
                    .into(),
                objective_ms: state.settings.rpo_seconds * 1000,
            },
        };
        let (outcome, message, finished_at) = match &state.finished_outcome {
            Some((o, m, at)) => (*o, m.clone(), Some(*at)),
            None => (
                RunOutcome::Interrupted,
                "the run stopped before it finished".to_owned(),
                None,
            ),
        };
        let snapshot = |r: &Option<(Readiness, Option<Verdict>)>| {
            r.clone()
                .map(|(readiness, verdict)| ReadinessSnapshot { readiness, verdict })
        };
        Report {
            run_id: state.run_id.clone(),
            kind: state.kind,
            mode: state.mode,
            from: state.from.clone(),
            to: state.to.clone(),
            backend: backend.to_owned(),
            outcome,
            message,
            epoch: state.epoch,
            started_at: state.started_at,
            finished_at,
            steps,
            rto_ms,
            rto_objective_ms: state.settings.rto_seconds * 1000,
            rpo,
            readiness_before: snapshot(&state.readiness_before),
            readiness_after: snapshot(&state.readiness_after),
        }
    }

    /// The readable summary.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {} → {}: {} ({})",
            self.kind, self.from, self.to, self.outcome, self.message
        );
        let _ = writeln!(
            out,
            "run {}  backend {}  mode {}  epoch {}",
            self.run_id,
            self.backend,
            self.mode,
            self.epoch.map_or("-".to_owned(), |e| e.to_string())
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<5} {:<22} {:<12} {:>8} {:>10}  detail",
            "stage", "step", "outcome", "attempts", "duration"
        );
        for s in &self.steps {
            let duration = s
                .duration_ms
                .map_or("-".to_owned(), |ms| format!("{:.3}s", ms as f64 / 1000.0));
            let _ = writeln!(
                out,
                "{:<5} {:<22} {:<12} {:>8} {:>10}  {}",
                s.stage, s.id, s.outcome, s.attempts, duration, s.detail
            );
        }
        let _ = writeln!(out);
        match self.rto_ms {
            Some(ms) => {
                let verdict = if ms <= self.rto_objective_ms {
                    "within"
                } else {
                    "OVER"
                };
                let _ = writeln!(
                    out,
                    "RTO: {:.3}s (start → first successful request on {}), {verdict} the {}s objective",
                    ms as f64 / 1000.0,
                    self.to,
                    self.rto_objective_ms / 1000
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "RTO: not measured (no successful request on {} yet)",
                    self.to
                );
            }
        }
        match self.rpo.estimated_loss_window_ms {
            Some(ms) => {
                let _ = writeln!(
                    out,
                    "RPO: {:.3}s estimated data-loss window ({}), objective {}s",
                    ms as f64 / 1000.0,
                    self.rpo.basis,
                    self.rpo.objective_ms / 1000
                );
            }
            None => {
                let _ = writeln!(out, "RPO: unknown ({})", self.rpo.basis);
            }
        }
        for (label, snap) in [
            ("before", &self.readiness_before),
            ("after", &self.readiness_after),
        ] {
            if let Some(snap) = snap {
                let verdict = snap.verdict.as_ref().map_or(String::new(), |v| {
                    if v.reasons.is_empty() {
                        format!(": {}", v.label())
                    } else {
                        format!(": {} ({})", v.label(), v.reasons.join("; "))
                    }
                });
                let _ = writeln!(out, "\nreadiness {label}{verdict}");
                out.push_str(&snap.readiness.render_text());
            }
        }
        out
    }
}

/// Milliseconds from `a` to `b`, 0 if `b` is before `a` (clock steps).
pub fn duration_ms(a: time::OffsetDateTime, b: time::OffsetDateTime) -> u64 {
    let ms = (b - a).whole_milliseconds();
    u64::try_from(ms).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
#[error("storing the report of run {run} failed at {location}: {detail}")]
pub struct ReportError {
    pub run: RunId,
    pub location: String,
    pub detail: String,
}

/// See the module documentation for the contract.
pub trait ReportSink: Send + Sync {
    /// Stores the report; returns where it is (for the user).
    fn store<'a>(&'a self, report: &'a Report) -> BoxFuture<'a, Result<String, ReportError>>;
}

/// Writes `<dir>/<run id>/report.json` and `report.txt` (beside the file journal's events when both use the
/// same directory).
#[derive(Debug, Clone)]
pub struct FileReportSink {
    dir: PathBuf,
}

impl FileReportSink {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileReportSink { dir: dir.into() }
    }
}

impl ReportSink for FileReportSink {
    fn store<'a>(&'a self, report: &'a Report) -> BoxFuture<'a, Result<String, ReportError>> {
        Box::pin(async move {
            let run_dir = self.dir.join(report.run_id.as_str());
            let fail = |location: &std::path::Path, detail: String| ReportError {
                run: report.run_id.clone(),
                location: location.display().to_string(),
                detail,
            };
            std::fs::create_dir_all(&run_dir).map_err(|e| fail(&run_dir, e.to_string()))?;
            let json =
                serde_json::to_string_pretty(report).map_err(|e| fail(&run_dir, e.to_string()))?;
            let json_path = run_dir.join("report.json");
            crate::file_journal::write_atomically(&json_path, json.as_bytes())
                .map_err(|e| fail(&json_path, e.to_string()))?;
            let text_path = run_dir.join("report.txt");
            crate::file_journal::write_atomically(&text_path, report.render_text().as_bytes())
                .map_err(|e| fail(&text_path, e.to_string()))?;
            Ok(json_path.display().to_string())
        })
    }
}
