//! The durable run journal: an append-only list of events per run.
//!
//! # Contract
//!
//! Implemented by [`crate::FileJournal`] (one directory per run, JSON lines, fsync after each event; the
//! local runtime), the AWS backend (the DynamoDB journal table) and [`crate::memory::MemoryJournal`].
//!
//! - `append` returns only once the event is durable (fsync'd, or acknowledged by the database): the
//!   engine appends `StepStarted` **before** calling the backend and `StepFinished` **after**, and resume
//!   trusts exactly what `read` returns.
//! - Events of one run are returned in the order they were appended. Appends to one run come from one
//!   process at a time (the run lock guarantees it).
//! - `create` fails with [`JournalError::AlreadyExists`] if the run id is taken; `read` of an unknown run
//!   fails with [`JournalError::UnknownRun`].
//! - A journal never rewrites or drops events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::backend::StepOutput;
use crate::model::{Mode, RunId, RunKind, RunOutcome};
use crate::readiness::{Readiness, Verdict};

/// One journal line. Serialized as JSON with an `event` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JournalEvent {
    /// Always the first event of a run: what it is and the plan it follows (so resume needs no config).
    RunStarted {
        run_id: RunId,
        kind: RunKind,
        mode: Mode,
        from: String,
        to: String,
        /// The plan's stages as step ids (resume re-derives the plan from kind/from/to/settings and checks
        /// it matches these ids).
        stages: Vec<Vec<String>>,
        settings: crate::settings::DrSettings,
        owner: String,
        backend: String,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
    },
    /// A later process took the run over (`lifeboat resume`).
    RunResumed {
        owner: String,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
    },
    /// Readiness observed during the run: `phase` is `before` (at preflight) or `after` (at the end).
    ReadinessObserved {
        phase: String,
        readiness: Readiness,
        verdict: Option<Verdict>,
    },
    /// The run's fencing epoch; allocated once, reused by every later step and by resume.
    EpochAllocated { epoch: u64 },
    /// Written before the backend is called for this attempt.
    StepStarted {
        step: String,
        attempt: u32,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
    },
    /// One attempt failed and the step will be retried after `retry_in_ms`.
    StepAttemptFailed {
        step: String,
        attempt: u32,
        error: String,
        retry_in_ms: u64,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
    },
    /// Written after the step ended, whatever the outcome.
    StepFinished {
        step: String,
        attempts: u32,
        outcome: StepOutcome,
        #[serde(with = "time::serde::rfc3339")]
        started_at: time::OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
        duration_ms: u64,
    },
    /// The run stopped: succeeded, refused (preflight), or failed (paused, resumable).
    RunFinished {
        outcome: RunOutcome,
        message: String,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
    },
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepOutcome {
    Succeeded {
        output: StepOutput,
    },
    /// Ungraceful mode: the step needed the lost region, failed within its short bound, and was skipped.
    Skipped {
        error: String,
    },
    /// The step failed (all attempts used, timed out, or refused); the run is paused.
    Failed {
        error: String,
    },
    /// Preflight found the environment not ready; nothing was changed.
    Refused {
        reasons: Vec<String>,
    },
}

impl StepOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            StepOutcome::Succeeded { .. } => "succeeded",
            StepOutcome::Skipped { .. } => "skipped",
            StepOutcome::Failed { .. } => "failed",
            StepOutcome::Refused { .. } => "refused",
        }
    }

    /// Whether resume may treat the step as done.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            StepOutcome::Succeeded { .. } | StepOutcome::Skipped { .. }
        )
    }
}

/// One line of `lifeboat runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub kind: RunKind,
    pub from: String,
    pub to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    /// `interrupted` when the run has no `RunFinished` event after its last start/resume.
    pub outcome: RunOutcome,
    pub steps_done: usize,
    pub steps_total: usize,
    pub epoch: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("run {0} already exists in the journal")]
    AlreadyExists(RunId),
    #[error("no run {0} in the journal (see `lifeboat runs`)")]
    UnknownRun(RunId),
    #[error("journal of run {run} is damaged: {detail}")]
    Corrupt { run: RunId, detail: String },
    #[error("journal storage failed at {location}: {detail}")]
    Storage { location: String, detail: String },
}

/// See the module documentation for the contract.
pub trait Journal: Send + Sync {
    /// Creates the run and durably appends its first event (`RunStarted`).
    fn create<'a>(
        &'a self,
        run_id: &'a RunId,
        first: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Durably appends one event to an existing run.
    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        event: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Every event of the run, in append order.
    fn read<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalEvent>, JournalError>>;
    /// Every run id, oldest first.
    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunId>, JournalError>>;
}

/// What a run's events say about where it stands: folded from the journal, used by resume, `runs` and the
/// report.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub run_id: RunId,
    pub kind: RunKind,
    pub mode: Mode,
    pub from: String,
    pub to: String,
    pub stages: Vec<Vec<String>>,
    pub settings: crate::settings::DrSettings,
    pub started_at: time::OffsetDateTime,
    pub epoch: Option<u64>,
    /// The last end event of each step that ended (a re-run after resume replaces the earlier one).
    pub finished: BTreeMap<String, FinishedStep>,
    /// Start events without a matching end: the process stopped during these steps.
    pub in_flight: Vec<String>,
    /// How many times each step was started (all attempts, all processes).
    pub starts: BTreeMap<String, u32>,
    pub readiness_before: Option<(Readiness, Option<Verdict>)>,
    pub readiness_after: Option<(Readiness, Option<Verdict>)>,
    /// The last `RunFinished`, unless a resume came after it.
    pub finished_outcome: Option<(RunOutcome, String, time::OffsetDateTime)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FinishedStep {
    pub attempts: u32,
    pub outcome: StepOutcome,
    pub started_at: time::OffsetDateTime,
    pub finished_at: time::OffsetDateTime,
    pub duration_ms: u64,
}

impl RunState {
    /// Folds a run's events. Fails when the first event is not `RunStarted`.
    pub fn from_events(events: &[JournalEvent]) -> Result<RunState, String> {
        let Some(JournalEvent::RunStarted {
            run_id,
            kind,
            mode,
            from,
            to,
            stages,
            settings,
            at,
            ..
        }) = events.first()
        else {
            return Err("the first event is not run-started".into());
        };
        let mut state = RunState {
            run_id: run_id.clone(),
            kind: *kind,
            mode: *mode,
            from: from.clone(),
            to: to.clone(),
            stages: stages.clone(),
            settings: settings.clone(),
            started_at: *at,
            epoch: None,
            finished: BTreeMap::new(),
            in_flight: Vec::new(),
            starts: BTreeMap::new(),
            readiness_before: None,
            readiness_after: None,
            finished_outcome: None,
        };
        for event in &events[1..] {
            match event {
                JournalEvent::RunStarted { .. } => return Err("a second run-started event".into()),
                JournalEvent::RunResumed { .. } => state.finished_outcome = None,
                JournalEvent::ReadinessObserved {
                    phase,
                    readiness,
                    verdict,
                } => {
                    let slot = if phase == "after" {
                        &mut state.readiness_after
                    } else {
                        &mut state.readiness_before
                    };
                    *slot = Some((readiness.clone(), verdict.clone()));
                }
                JournalEvent::EpochAllocated { epoch } => {
                    if state.epoch.is_some_and(|e| e != *epoch) {
                        return Err(format!("a second epoch {epoch} was allocated for the run"));
                    }
                    state.epoch = Some(*epoch);
                }
                JournalEvent::StepStarted { step, .. } => {
                    *state.starts.entry(step.clone()).or_default() += 1;
                    if !state.in_flight.contains(step) {
                        state.in_flight.push(step.clone());
                    }
                }
                JournalEvent::StepAttemptFailed { .. } => {}
                JournalEvent::StepFinished {
                    step,
                    attempts,
                    outcome,
                    started_at,
                    at,
                    duration_ms,
                } => {
                    state.in_flight.retain(|s| s != step);
                    state.finished.insert(
                        step.clone(),
                        FinishedStep {
                            attempts: *attempts,
                            outcome: outcome.clone(),
                            started_at: *started_at,
                            finished_at: *at,
                            duration_ms: *duration_ms,
                        },
                    );
                }
                JournalEvent::RunFinished {
                    outcome,
                    message,
                    at,
                } => {
                    state.finished_outcome = Some((*outcome, message.clone(), *at));
                }
            }
        }
        Ok(state)
    }

    /// Whether `step` has a final end event (succeeded or skipped): resume does not run it again.
    pub fn is_done(&self, step: &str) -> bool {
        self.finished
            .get(step)
            .is_some_and(|f| f.outcome.is_final())
    }

    pub fn outcome(&self) -> RunOutcome {
        self.finished_outcome
            .as_ref()
            .map_or(RunOutcome::Interrupted, |(o, _, _)| *o)
    }

    pub fn summary(&self) -> RunSummary {
        let total: usize = self.stages.iter().map(Vec::len).sum();
        let done = self
            .stages
            .iter()
            .flatten()
            .filter(|s| self.is_done(s))
            .count();
        RunSummary {
            run_id: self.run_id.clone(),
            kind: self.kind,
            from: self.from.clone(),
            to: self.to.clone(),
            started_at: self.started_at,
            outcome: self.outcome(),
            steps_done: done,
            steps_total: total,
            epoch: self.epoch,
        }
    }
}

/// Summaries of every run in `journal`, oldest first (what `lifeboat runs` prints).
pub async fn list_runs(journal: &dyn Journal) -> Result<Vec<RunSummary>, JournalError> {
    let mut out = Vec::new();
    for id in journal.list().await? {
        let events = journal.read(&id).await?;
        let state = RunState::from_events(&events).map_err(|detail| JournalError::Corrupt {
            run: id.clone(),
            detail,
        })?;
        out.push(state.summary());
    }
    Ok(out)
}
