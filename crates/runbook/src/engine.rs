//! The engine: runs a plan's stages against a backend, journaling every step before and after it runs,
//! holding the environment's lock for the whole run, and ending every run with a report.
//!
//! - Stages run in order; the steps of one stage run concurrently and the next stage starts when all ended.
//! - Each attempt is bounded by the step's timeout; failed attempts are retried per the step's policy when
//!   the error is retryable. In ungraceful mode a step that needs the lost region gets a short bound and is
//!   skipped (journaled with its error) when it fails.
//! - A failed step ends the run as `failed` (paused): `resume` continues it. Finished steps are never run
//!   again; a step that started and has no end event is.
//! - The fencing epoch is allocated once per run, before the first step that acts under it, and journaled;
//!   resume reuses it.
//! - The lock lease is renewed every third of its TTL while the run is active; losing it stops the run.
//! - Durable execution (the DR automation's state machine): [`Engine::begin`] creates a run without running
//!   a step and [`Engine::advance`] runs one stage per call, so every call fits inside one bounded
//!   invocation. The caller carries the lock owner from call to call; a call that is killed midway leaves its
//!   steps started without an end, and the next call with the same owner runs them again. A call on a
//!   finished run acts on nothing and returns the same result, so a retried call cannot finish a run twice.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;

use crate::backend::{
    BackendError, BackendErrorKind, DrBackend, Notification, StepContext, StepOutput,
};
use crate::coordination::{EpochStore, LockError, LockLease, LockOwner, RunLock};
use crate::journal::{Journal, JournalError, JournalEvent, RunState, StepOutcome};
use crate::model::{Mode, RunId, RunKind, RunOutcome};
use crate::plan::{Plan, StepAction, StepSpec};
use crate::readiness::{Readiness, Verdict, assess};
use crate::report::{Report, ReportSink};
use crate::settings::DrSettings;

/// How long the readiness observation at the end of a run may take.
const READINESS_AFTER_BOUND: Duration = Duration::from_secs(60);

/// Called with every event right after it was durably journaled (progress lines in the CLI).
pub type ProgressFn<'a> = &'a (dyn Fn(&JournalEvent) + Send + Sync);

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Lease of the run lock; renewed every third of it.
    pub lock_ttl: Duration,
    /// Bound of the whole run (the DR automation bounds its switchover attempt); `None`: only step bounds.
    /// In durable execution it counts from the run's start across calls.
    pub run_timeout: Option<Duration>,
    /// Lease left on the lock when an [`Engine::advance`] call ends with stages left, so no other run takes
    /// the environment between two calls (the orchestrator's transition and retry delays fit well inside).
    pub handover_ttl: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lock_ttl: Duration::from_secs(30),
            run_timeout: None,
            handover_ttl: Duration::from_secs(300),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub kind: RunKind,
    /// The region losing the active role.
    pub from: String,
    /// The region gaining it.
    pub to: String,
    pub settings: DrSettings,
    /// The operator's `--allow-data-loss`; a failover needs it or `settings.allow_data_loss`.
    pub allow_data_loss: bool,
}

/// The end of a run as the caller sees it.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub report: Report,
    /// Where the report was stored, or why it could not be.
    pub report_location: Result<String, String>,
}

impl RunResult {
    pub fn outcome(&self) -> RunOutcome {
        self.report.outcome
    }
}

/// What one [`Engine::advance`] call did.
#[derive(Debug, Clone)]
pub enum Slice {
    /// A stage ended (or the call's budget ran out) and stages remain: call again with the same owner.
    Continue {
        lease: LockLease,
        /// The steps the next call starts with.
        next: Vec<String>,
    },
    /// The run has ended (in this call or before it).
    Finished(Box<RunResult>),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A safety rule declined before anything was changed (no journal entry is written).
    #[error("{0}")]
    Refused(String),
    /// Bad input: unknown region, same source and target.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Locked(LockError),
    #[error(transparent)]
    Lock(LockError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("run {run} has already {outcome}; there is nothing to resume")]
    NothingToResume { run: RunId, outcome: RunOutcome },
    #[error("run {run} cannot be resumed: {detail}")]
    CannotResume { run: RunId, detail: String },
}

pub struct Engine<'a> {
    backend: &'a dyn DrBackend,
    journal: &'a dyn Journal,
    lock: &'a dyn RunLock,
    epochs: &'a dyn EpochStore,
    reports: &'a dyn ReportSink,
    progress: Option<ProgressFn<'a>>,
    options: EngineOptions,
}

/// Where the stage loop stopped.
enum StagesEnd {
    Ended(RunOutcome, String),
    /// The stage limit was reached with stages left.
    MoreToDo,
}

/// How one step ended, for the stage loop.
enum StepEnd {
    Done,
    Failed(String),
    Refused(Vec<String>),
}

/// Failure of one attempt.
enum AttemptError {
    Backend(BackendError),
    Refused(Vec<String>),
}

/// What the steps of a run share while it executes.
struct Execution {
    run_id: RunId,
    kind: RunKind,
    mode: Mode,
    from: String,
    to: String,
    settings: DrSettings,
    epoch: Mutex<Option<u64>>,
    before_recorded: Mutex<bool>,
}

impl Execution {
    fn starting(run_id: &RunId, request: &RunRequest, plan: &Plan) -> Self {
        Execution {
            run_id: run_id.clone(),
            kind: request.kind,
            mode: plan.mode,
            from: request.from.clone(),
            to: request.to.clone(),
            settings: request.settings.clone(),
            epoch: Mutex::new(None),
            before_recorded: Mutex::new(false),
        }
    }

    fn resuming(state: &RunState) -> Self {
        Execution {
            run_id: state.run_id.clone(),
            kind: state.kind,
            mode: state.mode,
            from: state.from.clone(),
            to: state.to.clone(),
            settings: state.settings.clone(),
            epoch: Mutex::new(state.epoch),
            before_recorded: Mutex::new(state.readiness_before.is_some()),
        }
    }
}

impl<'a> Engine<'a> {
    pub fn new(
        backend: &'a dyn DrBackend,
        journal: &'a dyn Journal,
        lock: &'a dyn RunLock,
        epochs: &'a dyn EpochStore,
        reports: &'a dyn ReportSink,
    ) -> Self {
        Engine {
            backend,
            journal,
            lock,
            epochs,
            reports,
            progress: None,
            options: EngineOptions::default(),
        }
    }

    pub fn with_progress(mut self, progress: ProgressFn<'a>) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks a request against the safety rules that need no backend.
    pub fn validate(request: &RunRequest) -> Result<(), EngineError> {
        let s = &request.settings;
        for region in [&request.from, &request.to] {
            if !s.is_known_region(region) {
                return Err(EngineError::Invalid(format!(
                    "region {region} is not one of the configured pair ({} and {})",
                    s.primary_region, s.standby_region
                )));
            }
        }
        if request.from == request.to {
            return Err(EngineError::Invalid(format!(
                "{} is already the active region",
                request.to
            )));
        }
        if request.kind == RunKind::Failover && !request.allow_data_loss && !s.allow_data_loss {
            return Err(EngineError::Refused(
                "a failover promotes the standby without waiting for the lost region, so writes not yet \
                 replicated are lost; pass --allow-data-loss (or set dr.allow_data_loss = true) to accept that, \
                 or use a switchover while both regions are up"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Starts a new run.
    pub async fn start(&self, request: &RunRequest) -> Result<RunResult, EngineError> {
        self.start_bounded(request, self.options.run_timeout).await
    }

    /// Starts a new run whose stages must finish within `run_timeout` (else the run ends `failed`,
    /// resumable), overriding [`EngineOptions::run_timeout`].
    pub async fn start_bounded(
        &self,
        request: &RunRequest,
        run_timeout: Option<Duration>,
    ) -> Result<RunResult, EngineError> {
        let run_id = RunId::new(time::OffsetDateTime::now_utc());
        let owner = LockOwner::for_this_process(&run_id);
        let (plan, first, lease) = self.create_run(request, &run_id, &owner, false).await?;
        let exec = Execution::starting(&run_id, request, &plan);
        let state = RunState::from_events(std::slice::from_ref(&first)).map_err(|detail| {
            EngineError::CannotResume {
                run: run_id.clone(),
                detail,
            }
        })?;
        self.execute(&plan, &exec, &state, lease, run_timeout).await
    }

    /// Validates, takes the lock for `owner` and journals the run's first event. With `retried`, a run that
    /// already exists under this id for the same request is taken as this call's own earlier attempt.
    async fn create_run(
        &self,
        request: &RunRequest,
        run_id: &RunId,
        owner: &LockOwner,
        retried: bool,
    ) -> Result<(Plan, JournalEvent, LockLease), EngineError> {
        Self::validate(request)?;
        let plan = Plan::build(request.kind, &request.from, &request.to, &request.settings);
        let lease = match self.lock.acquire(owner, self.options.lock_ttl).await {
            Ok(lease) => lease,
            Err(e @ LockError::Held { .. }) => return Err(EngineError::Locked(e)),
            Err(e) => return Err(EngineError::Lock(e)),
        };
        let first = JournalEvent::RunStarted {
            run_id: run_id.clone(),
            kind: request.kind,
            mode: plan.mode,
            from: request.from.clone(),
            to: request.to.clone(),
            stages: plan.stage_ids(),
            settings: request.settings.clone(),
            owner: owner.describe(),
            backend: self.backend.name().to_owned(),
            at: time::OffsetDateTime::now_utc(),
        };
        match self.journal.create(run_id, &first).await {
            Ok(()) => {
                self.emit(&first);
                Ok((plan, first, lease))
            }
            Err(JournalError::AlreadyExists(_)) if retried => {
                let existing = self.journal.read(run_id).await?;
                match existing.first() {
                    Some(started @ JournalEvent::RunStarted { kind, from, to, .. })
                        if *kind == request.kind && *from == request.from && *to == request.to =>
                    {
                        Ok((plan, started.clone(), lease))
                    }
                    _ => {
                        let _ = self.lock.release(&lease).await;
                        Err(EngineError::Invalid(format!(
                            "run {run_id} already exists for another request; a run id names one run"
                        )))
                    }
                }
            }
            Err(e) => {
                let _ = self.lock.release(&lease).await;
                Err(e.into())
            }
        }
    }

    /// The first call of a durable execution: validates `request`, takes the lock for `owner` and journals
    /// run `run_id`, running no step. The lease is left for [`Self::advance`] with the same owner. Called
    /// again with the same id, owner and request (a retried call whose answer was lost), it returns the run
    /// the first call created.
    pub async fn begin(
        &self,
        request: &RunRequest,
        run_id: &RunId,
        owner: &LockOwner,
    ) -> Result<LockLease, EngineError> {
        let (_, _, lease) = self.create_run(request, run_id, owner, true).await?;
        match self.lock.renew(&lease, self.options.handover_ttl).await {
            Ok(lease) => Ok(lease),
            Err(e) => Err(EngineError::Lock(e)),
        }
    }

    /// One call of a durable execution: runs the next stage of run `run_id` whose steps have not all
    /// ended, within `budget` (the time left to the caller's own invocation, minus a margin). Stages left
    /// → [`Slice::Continue`] with the lease handed over to the next call; the run ended → its result, the
    /// same result for every later call. When the budget runs out mid-stage the stage's steps are left
    /// started, and the next call runs them again (every backend operation is idempotent).
    pub async fn advance(
        &self,
        run_id: &RunId,
        owner: &LockOwner,
        budget: Duration,
    ) -> Result<Slice, EngineError> {
        let state = self.read_state(run_id).await?;
        if state.finished_outcome.is_some() {
            return Ok(Slice::Finished(Box::new(self.result_of(&state).await)));
        }
        let plan = planned(&state)?;
        let lease = self.acquire_for_resume(owner).await?;
        if !state.in_flight.is_empty() {
            // The call that started these steps did not end them: it was killed or ran out of time.
            let resumed = JournalEvent::RunResumed {
                owner: format!(
                    "{} after an interrupted call ({} started without an end)",
                    owner.describe(),
                    state.in_flight.join(", ")
                ),
                at: time::OffsetDateTime::now_utc(),
            };
            self.journal_resumed(run_id, &lease, resumed).await?;
        }
        let exec = Execution::resuming(&state);
        let run_left = self.options.run_timeout.map(|limit| {
            let elapsed = time::OffsetDateTime::now_utc() - state.started_at;
            (
                limit,
                limit.saturating_sub(Duration::try_from(elapsed).unwrap_or(Duration::ZERO)),
            )
        });
        let (bound, run_bound_binds) = match run_left {
            Some((_, left)) if left <= budget => (left, true),
            _ => (budget, false),
        };
        let stage = self.with_lease_renewed(&lease, async {
            match tokio::time::timeout(bound, self.run_stages(&plan, &exec, &state, Some(1))).await
            {
                Ok(result) => result.map(Some),
                Err(_) => Ok(None),
            }
        });
        let (outcome, message) = match stage.await {
            Err(e) => {
                let _ = self.lock.release(&lease).await;
                return Err(e);
            }
            Ok(Ok(Some(StagesEnd::Ended(outcome, message)))) => (outcome, message),
            Ok(Ok(Some(StagesEnd::MoreToDo))) => {
                return self.hand_over(&plan, run_id, &lease).await;
            }
            Ok(Ok(None)) if !run_bound_binds => {
                return self.hand_over(&plan, run_id, &lease).await;
            }
            Ok(Ok(None)) => {
                let limit = run_left.map_or(bound, |(limit, _)| limit);
                (
                    RunOutcome::Failed,
                    format!("the run did not finish within {}s", limit.as_secs()),
                )
            }
            Ok(Err(lost)) => (RunOutcome::Failed, format!("stopped: {lost}")),
        };
        self.finish(&exec, outcome, message, &lease)
            .await
            .map(|result| Slice::Finished(Box::new(result)))
    }

    /// Leaves the lock to the next call of the same owner and says where it starts.
    async fn hand_over(
        &self,
        plan: &Plan,
        run_id: &RunId,
        lease: &LockLease,
    ) -> Result<Slice, EngineError> {
        let state = self.read_state(run_id).await?;
        let next = plan
            .stages
            .iter()
            .map(|stage| {
                stage
                    .steps
                    .iter()
                    .map(|s| s.id().to_owned())
                    .filter(|id| !state.is_done(id))
                    .collect::<Vec<_>>()
            })
            .find(|pending| !pending.is_empty())
            .unwrap_or_default();
        match self.lock.renew(lease, self.options.handover_ttl).await {
            Ok(lease) => Ok(Slice::Continue { lease, next }),
            Err(e) => Err(EngineError::Lock(e)),
        }
    }

    /// The result of a run that has already ended, rebuilt from its journal (its report stored again under
    /// the same name).
    async fn result_of(&self, state: &RunState) -> RunResult {
        let report = Report::from_state(state, self.backend.name());
        let report_location = self.reports.store(&report).await.map_err(|e| e.to_string());
        RunResult {
            report,
            report_location,
        }
    }

    /// Run `run_id`'s journal folded into its state.
    async fn read_state(&self, run_id: &RunId) -> Result<RunState, EngineError> {
        let events = self.journal.read(run_id).await?;
        RunState::from_events(&events).map_err(|detail| EngineError::CannotResume {
            run: run_id.clone(),
            detail,
        })
    }

    /// Journals that a new process (or call) took run `run_id` over; on failure gives the lock back.
    async fn journal_resumed(
        &self,
        run_id: &RunId,
        lease: &LockLease,
        resumed: JournalEvent,
    ) -> Result<(), EngineError> {
        if let Err(e) = self.journal.append(run_id, &resumed).await {
            let _ = self.lock.release(lease).await;
            return Err(e.into());
        }
        self.emit(&resumed);
        Ok(())
    }

    /// Continues run `run_id` from its journal: finished steps are not run again.
    pub async fn resume(&self, run_id: &RunId) -> Result<RunResult, EngineError> {
        let state = self.read_state(run_id).await?;
        if state.outcome() == RunOutcome::Succeeded {
            return Err(EngineError::NothingToResume {
                run: run_id.clone(),
                outcome: RunOutcome::Succeeded,
            });
        }
        let plan = planned(&state)?;
        let owner = LockOwner::for_this_process(run_id);
        let lease = self.acquire_for_resume(&owner).await?;
        let resumed = JournalEvent::RunResumed {
            owner: owner.describe(),
            at: time::OffsetDateTime::now_utc(),
        };
        self.journal_resumed(run_id, &lease, resumed).await?;
        let exec = Execution::resuming(&state);
        self.execute(&plan, &exec, &state, lease, self.options.run_timeout)
            .await
    }

    /// The lock for a resumed run. A lease still held by an earlier process of the same run (one that was
    /// killed) is waited out; a lease of another run means another run is active.
    async fn acquire_for_resume(&self, owner: &LockOwner) -> Result<LockLease, EngineError> {
        let max_wait = self.options.lock_ttl + Duration::from_secs(5);
        let mut waited = Duration::ZERO;
        loop {
            match self.lock.acquire(owner, self.options.lock_ttl).await {
                Ok(lease) => return Ok(lease),
                Err(LockError::Held { holder, expires_at })
                    if holder.run_id == owner.run_id && waited < max_wait =>
                {
                    let remaining = expires_at - time::OffsetDateTime::now_utc();
                    let wait = Duration::try_from(remaining)
                        .unwrap_or(Duration::ZERO)
                        .max(Duration::from_millis(50));
                    let wait = wait.min(max_wait - waited) + Duration::from_millis(10);
                    tracing::info!(run = %owner.run_id, ?wait, "waiting out the lease of the interrupted process");
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                Err(e @ LockError::Held { .. }) => return Err(EngineError::Locked(e)),
                Err(e) => return Err(EngineError::Lock(e)),
            }
        }
    }

    async fn execute(
        &self,
        plan: &Plan,
        exec: &Execution,
        state: &RunState,
        lease: LockLease,
        run_timeout: Option<Duration>,
    ) -> Result<RunResult, EngineError> {
        let stages = async {
            let stages = self.run_stages(plan, exec, state, None);
            let ended = match run_timeout {
                Some(limit) => match tokio::time::timeout(limit, stages).await {
                    Ok(result) => result?,
                    Err(_) => StagesEnd::Ended(
                        RunOutcome::Failed,
                        format!("the run did not finish within {}s", limit.as_secs()),
                    ),
                },
                None => stages.await?,
            };
            Ok(match ended {
                StagesEnd::Ended(outcome, message) => (outcome, message),
                // Without a stage limit the loop only ends with an outcome.
                StagesEnd::MoreToDo => (
                    RunOutcome::Failed,
                    "the run stopped with stages left".to_owned(),
                ),
            })
        };
        let (outcome, message) = match self.with_lease_renewed(&lease, stages).await {
            Ok(Ok(done)) => done,
            Ok(Err(lost)) => (RunOutcome::Failed, format!("stopped: {lost}")),
            Err(e) => {
                // The journal could not be written: nothing more can be recorded safely, so stop acting.
                let _ = self.lock.release(&lease).await;
                return Err(e);
            }
        };
        self.finish(exec, outcome, message, &lease).await
    }

    /// Runs `work` while renewing `lease` every third of the lock TTL: `Ok(Err(lost))` when the lease was
    /// lost first (the work is dropped).
    async fn with_lease_renewed<T>(
        &self,
        lease: &LockLease,
        work: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<Result<T, LockError>, EngineError> {
        let mut current = lease.clone();
        let renewing = async {
            let every = (self.options.lock_ttl / 3).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(every).await;
                match self.lock.renew(&current, self.options.lock_ttl).await {
                    Ok(renewed) => current = renewed,
                    Err(e) => return e,
                }
            }
        };
        tokio::select! {
            result = work => result.map(Ok),
            lost = renewing => Ok(Err(lost)),
        }
    }

    /// Ends the run: readiness after it, the final journal event, the lock released, the report stored.
    async fn finish(
        &self,
        exec: &Execution,
        outcome: RunOutcome,
        message: String,
        lease: &LockLease,
    ) -> Result<RunResult, EngineError> {
        // A refused run changed nothing: what preflight saw is the state.
        if outcome != RunOutcome::Refused
            && let Err(e) = self
                .observe_after(exec, outcome == RunOutcome::Succeeded)
                .await
        {
            let _ = self.lock.release(lease).await;
            return Err(e);
        }
        let end = JournalEvent::RunFinished {
            outcome,
            message,
            at: time::OffsetDateTime::now_utc(),
        };
        let appended = self.append(&exec.run_id, &end).await;
        let _ = self.lock.release(lease).await;
        appended?;
        let state = self.read_state(&exec.run_id).await?;
        Ok(self.result_of(&state).await)
    }

    /// Journals the readiness after the run. After a successful move "ready" means ready to move back
    /// (the environment is protected again); after a failed one, whether the same move could be retried.
    /// Bounded, so a backend that hangs cannot keep the run from ending.
    async fn observe_after(&self, exec: &Execution, succeeded: bool) -> Result<(), EngineError> {
        let observed = tokio::time::timeout(READINESS_AFTER_BOUND, self.backend.readiness()).await;
        match observed {
            Ok(Ok(readiness)) => {
                let verdict = if succeeded && !exec.kind.moves_active_role() {
                    // Protected again: could the active role move to the region just rejoined?
                    assess(
                        RunKind::Switchover,
                        &readiness,
                        &exec.from,
                        &exec.to,
                        &exec.settings,
                    )
                } else if succeeded {
                    assess(
                        RunKind::Switchover,
                        &readiness,
                        &exec.to,
                        &exec.from,
                        &exec.settings,
                    )
                } else {
                    assess(exec.kind, &readiness, &exec.from, &exec.to, &exec.settings)
                };
                let event = JournalEvent::ReadinessObserved {
                    phase: "after".into(),
                    readiness,
                    verdict: Some(verdict),
                };
                self.append(&exec.run_id, &event).await?;
            }
            Ok(Err(e)) => {
                tracing::warn!(run = %exec.run_id, error = %e, "readiness after the run could not be observed")
            }
            Err(_) => tracing::warn!(run = %exec.run_id, "readiness after the run timed out"),
        }
        Ok(())
    }

    /// Runs the stages whose steps have not all ended, in order; with `max_stages`, at most that many.
    async fn run_stages(
        &self,
        plan: &Plan,
        exec: &Execution,
        state: &RunState,
        max_stages: Option<usize>,
    ) -> Result<StagesEnd, EngineError> {
        let mut ran = 0;
        for stage in &plan.stages {
            let pending: Vec<&StepSpec> = stage
                .steps
                .iter()
                .filter(|s| !state.is_done(s.id()))
                .collect();
            if pending.is_empty() {
                continue;
            }
            if max_stages.is_some_and(|max| ran >= max) {
                return Ok(StagesEnd::MoreToDo);
            }
            ran += 1;
            if pending.iter().any(|s| s.action.needs_epoch(exec.kind)) {
                self.ensure_epoch(exec).await?;
            }
            let ends = join_all(pending.iter().map(|spec| self.run_step(spec, exec))).await;
            let mut failures = Vec::new();
            let mut refusals = Vec::new();
            for (spec, end) in pending.iter().zip(ends) {
                match end? {
                    StepEnd::Done => {}
                    StepEnd::Failed(error) => failures.push(format!("{}: {error}", spec.id())),
                    StepEnd::Refused(reasons) => {
                        refusals.push(format!("{}: {}", spec.id(), reasons.join("; ")))
                    }
                }
            }
            if !refusals.is_empty() {
                return Ok(StagesEnd::Ended(
                    RunOutcome::Refused,
                    format!("not ready, nothing was changed: {}", refusals.join("; ")),
                ));
            }
            if !failures.is_empty() {
                return Ok(StagesEnd::Ended(
                    RunOutcome::Failed,
                    format!(
                        "step failed, run paused (lifeboat resume {}): {}",
                        exec.run_id,
                        failures.join("; ")
                    ),
                ));
            }
        }
        Ok(StagesEnd::Ended(
            RunOutcome::Succeeded,
            format!("{} is now active", exec.to),
        ))
    }

    async fn ensure_epoch(&self, exec: &Execution) -> Result<u64, EngineError> {
        if let Some(epoch) = *lock_ignoring_poison(&exec.epoch) {
            return Ok(epoch);
        }
        let epoch = self
            .epochs
            .allocate(&exec.run_id)
            .await
            .map_err(EngineError::Lock)?;
        self.append(&exec.run_id, &JournalEvent::EpochAllocated { epoch })
            .await?;
        *lock_ignoring_poison(&exec.epoch) = Some(epoch);
        Ok(epoch)
    }

    async fn run_step(&self, spec: &StepSpec, exec: &Execution) -> Result<StepEnd, EngineError> {
        let (bound, retry) = spec.effective(exec.mode);
        let step = spec.id();
        let first_wall = time::OffsetDateTime::now_utc();
        let first_instant = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = StepContext {
                run_id: exec.run_id.clone(),
                kind: exec.kind,
                mode: exec.mode,
                step: step.to_owned(),
                attempt,
                from: exec.from.clone(),
                to: exec.to.clone(),
                epoch: if spec.action.needs_epoch(exec.kind) {
                    *lock_ignoring_poison(&exec.epoch)
                } else {
                    None
                },
            };
            let started = JournalEvent::StepStarted {
                step: step.into(),
                attempt,
                at: time::OffsetDateTime::now_utc(),
            };
            self.append(&exec.run_id, &started).await?;
            let result =
                match tokio::time::timeout(bound, self.perform(spec.action, &ctx, exec)).await {
                    Ok(result) => result,
                    Err(_) => Err(AttemptError::Backend(BackendError::new(
                        BackendErrorKind::Unavailable,
                        format!("timed out after {}s", bound.as_secs_f64()),
                    ))),
                };
            let finish = |outcome: StepOutcome| JournalEvent::StepFinished {
                step: step.into(),
                attempts: attempt,
                outcome,
                started_at: first_wall,
                at: time::OffsetDateTime::now_utc(),
                duration_ms: u64::try_from(first_instant.elapsed().as_millis()).unwrap_or(u64::MAX),
            };
            match result {
                Ok(output) => {
                    self.append(&exec.run_id, &finish(StepOutcome::Succeeded { output }))
                        .await?;
                    return Ok(StepEnd::Done);
                }
                Err(AttemptError::Refused(reasons)) => {
                    self.append(
                        &exec.run_id,
                        &finish(StepOutcome::Refused {
                            reasons: reasons.clone(),
                        }),
                    )
                    .await?;
                    return Ok(StepEnd::Refused(reasons));
                }
                Err(AttemptError::Backend(error)) => {
                    if attempt < retry.attempts && error.is_retryable() {
                        let wait = retry.backoff_before(attempt + 1);
                        let failed = JournalEvent::StepAttemptFailed {
                            step: step.into(),
                            attempt,
                            error: error.message.clone(),
                            retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            at: time::OffsetDateTime::now_utc(),
                        };
                        self.append(&exec.run_id, &failed).await?;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let message = format!(
                        "{} (attempt {attempt} of {})",
                        error.message, retry.attempts
                    );
                    if exec.mode == Mode::Ungraceful && spec.needs_source_region {
                        self.append(
                            &exec.run_id,
                            &finish(StepOutcome::Skipped { error: message }),
                        )
                        .await?;
                        return Ok(StepEnd::Done);
                    }
                    self.append(
                        &exec.run_id,
                        &finish(StepOutcome::Failed {
                            error: message.clone(),
                        }),
                    )
                    .await?;
                    return Ok(StepEnd::Failed(message));
                }
            }
        }
    }

    async fn perform(
        &self,
        action: StepAction,
        ctx: &StepContext,
        exec: &Execution,
    ) -> Result<StepOutput, AttemptError> {
        let b = self.backend;
        let out = match action {
            // Reprotect's preflight is the failback's: the returning region may be stopped (reprotect
            // restarts it) but the active one must be reachable.
            StepAction::PreflightFailback => return self.preflight(RunKind::Failback, exec).await,
            StepAction::Preflight => {
                let kind = if exec.kind == RunKind::Failback {
                    RunKind::Switchover
                } else {
                    exec.kind
                };
                return self.preflight(kind, exec).await;
            }
            StepAction::Reprotect => b.reprotect(ctx).await,
            StepAction::PrescaleStandby => b.prescale(ctx).await,
            StepAction::RaiseFence => b.raise_fence(ctx).await,
            StepAction::WaitDrained => b.wait_drained(ctx).await,
            StepAction::WaitLease => b.wait_write_lease_expired(ctx).await,
            StepAction::Promote => b.promote(ctx, exec.kind == RunKind::Failover).await,
            StepAction::ShiftTraffic => b.shift_traffic(ctx).await,
            StepAction::LowerFence => b.lower_fence(ctx).await,
            StepAction::Verify => match b.verify(ctx).await {
                Ok(out) if out.first_success_at.is_none() => Err(BackendError::other(
                    "verify reported success without the instant of the first successful request",
                )),
                other => other,
            },
            StepAction::Notify if !exec.kind.moves_active_role() => {
                let notification = Notification {
                    subject: format!("lifeboat {}: {} is protected again", exec.kind, exec.to),
                    message: format!(
                        "Run {} ({}) made {} a replica of the active region {} again; the active role did \
                         not move. Details: lifeboat runs; the run's report (it names any transactions set \
                         aside).",
                        exec.run_id, exec.kind, exec.to, exec.from
                    ),
                };
                b.notify(ctx, &notification).await
            }
            StepAction::Notify => {
                let notification = Notification {
                    subject: format!("lifeboat {}: {} is now active", exec.kind, exec.to),
                    message: format!(
                        "Run {} ({}) moved the active region from {} to {} under epoch {}. \
                         Details: lifeboat runs; the run's report.",
                        exec.run_id,
                        exec.kind,
                        exec.from,
                        exec.to,
                        ctx.epoch.map_or("-".to_owned(), |e| e.to_string())
                    ),
                };
                b.notify(ctx, &notification).await
            }
            StepAction::RecordActiveRegion => b.record_active_region(ctx).await,
        };
        out.map_err(AttemptError::Backend)
    }

    async fn preflight(&self, kind: RunKind, exec: &Execution) -> Result<StepOutput, AttemptError> {
        let readiness = self
            .backend
            .readiness()
            .await
            .map_err(AttemptError::Backend)?;
        let verdict = assess(kind, &readiness, &exec.from, &exec.to, &exec.settings);
        self.record_before(exec, &readiness, &verdict)
            .await
            .map_err(|e| {
                AttemptError::Backend(BackendError::unavailable(format!(
                    "journaling readiness failed: {e}"
                )))
            })?;
        if !verdict.ready {
            return Err(AttemptError::Refused(verdict.reasons));
        }
        let mut detail = format!("{} for {kind} {} → {}", verdict.label(), exec.from, exec.to);
        if !verdict.warnings.is_empty() {
            detail.push_str(&format!(" ({})", verdict.warnings.join("; ")));
        }
        let mut out = StepOutput::detail(detail);
        out.replication_lag_ms = readiness
            .region(&exec.to)
            .and_then(|r| r.database.replication_lag_ms);
        Ok(out)
    }

    async fn record_before(
        &self,
        exec: &Execution,
        readiness: &Readiness,
        verdict: &Verdict,
    ) -> Result<(), EngineError> {
        if std::mem::replace(&mut *lock_ignoring_poison(&exec.before_recorded), true) {
            return Ok(());
        }
        let event = JournalEvent::ReadinessObserved {
            phase: "before".into(),
            readiness: readiness.clone(),
            verdict: Some(verdict.clone()),
        };
        self.append(&exec.run_id, &event).await
    }

    async fn append(&self, run_id: &RunId, event: &JournalEvent) -> Result<(), EngineError> {
        self.journal.append(run_id, event).await?;
        self.emit(event);
        Ok(())
    }

    fn emit(&self, event: &JournalEvent) {
        if let Some(progress) = self.progress {
            progress(event);
        }
    }
}

/// The plan of a journaled run, as this version of lifeboat builds it; refused when the journal lists other
/// steps (a run started by another version).
fn planned(state: &RunState) -> Result<Plan, EngineError> {
    let plan = Plan::build(state.kind, &state.from, &state.to, &state.settings);
    if plan.stage_ids() != state.stages {
        return Err(EngineError::CannotResume {
            run: state.run_id.clone(),
            detail: format!(
                "its journal lists the steps {:?} but this version of lifeboat plans {:?}",
                state.stages,
                plan.stage_ids()
            ),
        });
    }
    Ok(plan)
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update under these mutexes is a single assignment, so a poisoned one holds a whole value.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One progress line for an event (what the CLI prints as a run goes).
pub fn progress_line(event: &JournalEvent) -> Option<String> {
    match event {
        JournalEvent::RunStarted {
            run_id,
            kind,
            from,
            to,
            ..
        } => Some(format!("run {run_id}: {kind} {from} → {to}")),
        JournalEvent::RunResumed { owner, .. } => Some(format!("resumed by {owner}")),
        JournalEvent::EpochAllocated { epoch } => Some(format!("  epoch {epoch}")),
        JournalEvent::StepStarted { step, attempt, .. } => Some(if *attempt == 1 {
            format!("  {step} …")
        } else {
            format!("  {step} … (attempt {attempt})")
        }),
        JournalEvent::StepAttemptFailed {
            step,
            attempt,
            error,
            retry_in_ms,
            ..
        } => Some(format!(
            "  {step} attempt {attempt} failed: {error}; retrying in {retry_in_ms} ms"
        )),
        JournalEvent::StepFinished {
            step,
            outcome,
            duration_ms,
            ..
        } => {
            let detail = match outcome {
                StepOutcome::Succeeded { output } => output.detail.clone(),
                StepOutcome::Skipped { error } | StepOutcome::Failed { error } => error.clone(),
                StepOutcome::Refused { reasons } => reasons.join("; "),
            };
            Some(format!(
                "  {step} {} in {:.3}s: {detail}",
                outcome.name(),
                *duration_ms as f64 / 1000.0
            ))
        }
        JournalEvent::RunFinished {
            outcome, message, ..
        } => Some(format!("run {outcome}: {message}")),
        JournalEvent::ReadinessObserved { .. } => None,
    }
}
