//! Deterministic in-memory implementations for tests: a backend that models two regions, a journal and a
//! report sink. Failures, delays and "the process dies here" are injectable.
//!
//! [`MemoryBackend`] keeps a small world (control state, database writer, replication, traffic, recorded
//! active region) and applies each operation idempotently, recording every *effect* (a state change) and
//! every *call*, so tests can assert that each step's effect happened exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::BoxFuture;
use crate::backend::{
    BackendError, BackendResult, DrBackend, Notification, StepContext, StepOutput,
};
use crate::journal::{Journal, JournalError, JournalEvent};
use crate::model::RunId;
use crate::readiness::{
    DatabaseReadiness, DatabaseRole, Health, Readiness, RegionReadiness, RegionRole,
};
use crate::report::{Report, ReportError, ReportSink};

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Updates under these test mutexes are whole-value writes; a poisoned one is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The modelled environment.
#[derive(Debug, Clone)]
pub struct World {
    pub regions: [String; 2],
    /// Control state the storefronts read.
    pub active: String,
    pub epoch: u64,
    pub fence_raised: bool,
    /// The region whose database accepts writes.
    pub writer: String,
    /// Whether the non-writer region's database replicates from the writer.
    pub replica_ok: bool,
    pub replication_lag_ms: u64,
    /// Where client traffic goes.
    pub traffic: String,
    /// The durable record of the active region.
    pub recorded_active: String,
    pub prescaled: HashSet<String>,
    pub notifications: Vec<Notification>,
    /// Regions that cannot be reached (every operation touching them fails).
    pub unreachable: HashSet<String>,
    pub alarms: HashMap<String, Vec<String>>,
}

/// A scripted failure: the next `times` calls of `step` fail with `error` (after `delay`, if any).
#[derive(Debug, Clone)]
struct Fault {
    times: u32,
    error: Option<BackendError>,
    delay: Duration,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<(String, u32)>,
    effects: Vec<String>,
}

pub struct MemoryBackend {
    world: Mutex<World>,
    faults: Mutex<HashMap<String, Fault>>,
    delays: Mutex<HashMap<String, Duration>>,
    log: Mutex<Log>,
    write_lease: Duration,
}

impl MemoryBackend {
    /// Two healthy regions, `primary` active and writing, `standby` replicating with no lag, at `epoch`.
    pub fn new(primary: &str, standby: &str) -> Self {
        MemoryBackend {
            world: Mutex::new(World {
                regions: [primary.to_owned(), standby.to_owned()],
                active: primary.to_owned(),
                epoch: 0,
                fence_raised: false,
                writer: primary.to_owned(),
                replica_ok: true,
                replication_lag_ms: 0,
                traffic: primary.to_owned(),
                recorded_active: primary.to_owned(),
                prescaled: HashSet::new(),
                notifications: Vec::new(),
                unreachable: HashSet::new(),
                alarms: HashMap::new(),
            }),
            faults: Mutex::new(HashMap::new()),
            delays: Mutex::new(HashMap::new()),
            log: Mutex::new(Log::default()),
            write_lease: Duration::from_millis(1000),
        }
    }

    pub fn world(&self) -> World {
        guard(&self.world).clone()
    }

    pub fn update_world(&self, f: impl FnOnce(&mut World)) {
        f(&mut guard(&self.world));
    }

    /// The next `times` calls of `step` fail with `error`.
    pub fn fail(&self, step: &str, times: u32, error: BackendError) {
        guard(&self.faults).insert(
            step.to_owned(),
            Fault {
                times,
                error: Some(error),
                delay: Duration::ZERO,
            },
        );
    }

    /// The next `times` calls of `step` take `delay` before doing anything (to exceed a timeout).
    pub fn hang(&self, step: &str, times: u32, delay: Duration) {
        guard(&self.faults).insert(
            step.to_owned(),
            Fault {
                times,
                error: None,
                delay,
            },
        );
    }

    /// Every call of `step` takes `delay` and then succeeds (to observe concurrency).
    pub fn delay(&self, step: &str, delay: Duration) {
        guard(&self.delays).insert(step.to_owned(), delay);
    }

    /// `(step, attempt)` of every call, in order.
    pub fn calls(&self) -> Vec<(String, u32)> {
        guard(&self.log).calls.clone()
    }

    /// Number of calls per step.
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (step, _) in &guard(&self.log).calls {
            *counts.entry(step.clone()).or_default() += 1;
        }
        counts
    }

    /// Every state change, in order (e.g. `promote us-west-2`).
    pub fn effects(&self) -> Vec<String> {
        guard(&self.log).effects.clone()
    }

    /// How long `wait-lease` waits (default 1 s).
    pub fn with_write_lease(mut self, lease: Duration) -> Self {
        self.write_lease = lease;
        self
    }

    /// Common entry of every operation: log, injected delay/fault, then `apply` under the world lock.
    fn op<'a>(
        &'a self,
        ctx: &'a StepContext,
        needs: Vec<String>,
        apply: impl FnOnce(&mut World, &mut Vec<String>) -> BackendResult<StepOutput> + Send + 'a,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            guard(&self.log).calls.push((ctx.step.clone(), ctx.attempt));
            let fault = {
                let mut faults = guard(&self.faults);
                match faults.get_mut(&ctx.step) {
                    Some(f) if f.times > 0 => {
                        f.times -= 1;
                        Some(f.clone())
                    }
                    _ => None,
                }
            };
            let delay = guard(&self.delays).get(&ctx.step).copied();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            if let Some(fault) = fault {
                tokio::time::sleep(fault.delay).await;
                if let Some(error) = fault.error {
                    return Err(error);
                }
            }
            let mut world = guard(&self.world);
            for region in &needs {
                if world.unreachable.contains(region) {
                    return Err(BackendError::unavailable(format!(
                        "region {region} is unreachable"
                    )));
                }
            }
            let mut effects = Vec::new();
            let result = apply(&mut world, &mut effects);
            drop(world);
            guard(&self.log).effects.extend(effects);
            result
        })
    }
}

impl DrBackend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn readiness(&self) -> BoxFuture<'_, BackendResult<Readiness>> {
        Box::pin(async move {
            let w = guard(&self.world);
            let regions = w
                .regions
                .iter()
                .map(|region| {
                    if w.unreachable.contains(region) {
                        return RegionReadiness::unreachable(
                            region,
                            &format!("region {region} is unreachable"),
                        );
                    }
                    let is_writer = w.writer == *region;
                    RegionReadiness {
                        region: region.clone(),
                        reachable: true,
                        role: if w.active == *region {
                            RegionRole::Active
                        } else {
                            RegionRole::Passive
                        },
                        storefront: Health::Healthy,
                        database: DatabaseReadiness {
                            role: if is_writer {
                                DatabaseRole::Writer
                            } else if w.replica_ok {
                                DatabaseRole::Replica
                            } else {
                                DatabaseRole::Detached
                            },
                            replication_lag_ms: (!is_writer && w.replica_ok)
                                .then_some(w.replication_lag_ms),
                            replicating: (!is_writer).then_some(w.replica_ok),
                        },
                        session_replica: Health::Healthy,
                        asset_replication: Health::Healthy,
                        alarms_firing: w.alarms.get(region).cloned().unwrap_or_default(),
                        active_region_parameter: Some(w.recorded_active.clone()),
                        epoch: Some(w.epoch),
                        fence_raised: Some(w.fence_raised),
                        dns_target: Some(w.traffic.clone()),
                        notes: Vec::new(),
                        restartable: false,
                    }
                })
                .collect();
            Ok(Readiness {
                observed_at: time::OffsetDateTime::now_utc(),
                regions,
            })
        })
    }

    fn prescale<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.to.clone()], move |w, fx| {
            if w.prescaled.insert(ctx.to.clone()) {
                fx.push(format!("prescale {}", ctx.to));
            }
            Ok(StepOutput::detail(format!("{} scaled up", ctx.to)))
        })
    }

    fn raise_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.from.clone()], move |w, fx| {
            let epoch = ctx.require_epoch()?;
            if w.epoch > epoch {
                return Err(BackendError::rejected(format!(
                    "control store holds epoch {}, newer than {epoch}",
                    w.epoch
                )));
            }
            if !(w.fence_raised && w.epoch == epoch) {
                w.fence_raised = true;
                w.epoch = epoch;
                fx.push(format!("raise-fence {} epoch {epoch}", ctx.from));
            }
            Ok(StepOutput::detail(format!(
                "fence raised in {} at epoch {epoch}",
                ctx.from
            )))
        })
    }

    fn wait_drained<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.from.clone(), ctx.to.clone()], move |w, _| {
            if !w.fence_raised {
                return Err(BackendError::rejected(
                    "replication cannot drain while writes are not fenced",
                ));
            }
            // With writes fenced the replica catches up; the model drains at once.
            let seen = w.replication_lag_ms;
            w.replication_lag_ms = 0;
            Ok(
                StepOutput::detail(format!("{} caught up with {}", ctx.to, ctx.from))
                    .with_lag_ms(seen),
            )
        })
    }

    fn wait_write_lease_expired<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(async move {
            let lease = self.write_lease;
            let out = self
                .op(ctx, Vec::new(), move |_, _| {
                    Ok(StepOutput::detail(format!(
                        "waited {} ms",
                        lease.as_millis()
                    )))
                })
                .await?;
            tokio::time::sleep(lease).await;
            Ok(out)
        })
    }

    fn promote<'a>(
        &'a self,
        ctx: &'a StepContext,
        allow_data_loss: bool,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        let needs = if allow_data_loss {
            vec![ctx.to.clone()]
        } else {
            vec![ctx.from.clone(), ctx.to.clone()]
        };
        self.op(ctx, needs, move |w, fx| {
            let lag = w.replication_lag_ms;
            if w.writer != ctx.to {
                w.writer = ctx.to.clone();
                // A switchover keeps the old writer as a replica; a failover leaves it detached.
                w.replica_ok = !allow_data_loss;
                w.replication_lag_ms = 0;
                fx.push(format!("promote {}", ctx.to));
            }
            Ok(StepOutput::detail(format!("{} is the writer", ctx.to)).with_lag_ms(lag))
        })
    }

    fn shift_traffic<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.to.clone()], move |w, fx| {
            if w.traffic != ctx.to {
                w.traffic = ctx.to.clone();
                fx.push(format!("shift-traffic {}", ctx.to));
            }
            Ok(StepOutput::detail(format!("traffic goes to {}", ctx.to)))
        })
    }

    fn lower_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.to.clone()], move |w, fx| {
            let epoch = ctx.require_epoch()?;
            if w.epoch > epoch {
                return Err(BackendError::rejected(format!(
                    "control store holds epoch {}, newer than {epoch}",
                    w.epoch
                )));
            }
            if w.active != ctx.to || w.fence_raised || w.epoch != epoch {
                w.active = ctx.to.clone();
                w.fence_raised = false;
                w.epoch = epoch;
                fx.push(format!("lower-fence {} epoch {epoch}", ctx.to));
            }
            Ok(StepOutput::detail(format!(
                "{} active at epoch {epoch}",
                ctx.to
            )))
        })
    }

    fn verify<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.to.clone()], move |w, _| {
            if w.traffic == ctx.to && w.writer == ctx.to && w.active == ctx.to && !w.fence_raised {
                Ok(
                    StepOutput::detail(format!("order placed through {}", ctx.to))
                        .with_first_success_at(time::OffsetDateTime::now_utc()),
                )
            } else {
                Err(BackendError::not_yet(format!(
                    "{} does not serve writes yet",
                    ctx.to
                )))
            }
        })
    }

    fn notify<'a>(
        &'a self,
        ctx: &'a StepContext,
        notification: &'a Notification,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, Vec::new(), move |w, fx| {
            // Notifications carry the run id; the model de-duplicates like a subscriber keyed on it would.
            if !w.notifications.contains(notification) {
                w.notifications.push(notification.clone());
                fx.push("notify".to_owned());
            }
            Ok(StepOutput::detail("notified"))
        })
    }

    fn record_active_region<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, Vec::new(), move |w, fx| {
            if w.recorded_active != ctx.to {
                w.recorded_active = ctx.to.clone();
                fx.push(format!("record-active-region {}", ctx.to));
            }
            Ok(StepOutput::detail(format!(
                "active region recorded as {}",
                ctx.to
            )))
        })
    }

    fn reprotect<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        self.op(ctx, vec![ctx.from.clone(), ctx.to.clone()], move |w, fx| {
            if w.writer != ctx.from {
                return Err(BackendError::rejected(format!(
                    "{} is not the writer",
                    ctx.from
                )));
            }
            if !w.replica_ok {
                w.replica_ok = true;
                w.replication_lag_ms = 0;
                fx.push(format!("reprotect {}", ctx.to));
            }
            Ok(StepOutput::detail(format!(
                "{} replicates from {}",
                ctx.to, ctx.from
            )))
        })
    }
}

/// A journal in memory. [`MemoryJournal::crash_after`] makes it stop the "process" right after the n-th
/// successful append: the append never returns and [`MemoryJournal::crashed`] resolves, so a test can drop
/// the engine exactly there, as `kill -9` would.
#[derive(Default)]
pub struct MemoryJournal {
    runs: Mutex<BTreeMap<RunId, Vec<JournalEvent>>>,
    crash: Mutex<Option<usize>>,
    appended: Mutex<usize>,
    crashed: Arc<Notify>,
}

impl MemoryJournal {
    pub fn new() -> Self {
        Self::default()
    }

    /// After `n` more successful writes (create or append), the next write... never happens: the writer
    /// hangs forever and `crashed` is signalled.
    pub fn crash_after(&self, n: usize) {
        *guard(&self.appended) = 0;
        *guard(&self.crash) = Some(n);
    }

    /// Resolves once a crash set with `crash_after` happened.
    pub async fn crashed(&self) {
        self.crashed.notified().await;
    }

    pub fn events(&self, run: &RunId) -> Vec<JournalEvent> {
        guard(&self.runs).get(run).cloned().unwrap_or_default()
    }

    /// Waits forever if the crash point was reached (the caller is dropped by the test).
    async fn gate(&self) {
        let hit = {
            let crash = *guard(&self.crash);
            let mut appended = guard(&self.appended);
            match crash {
                Some(n) if *appended >= n => true,
                _ => {
                    *appended += 1;
                    false
                }
            }
        };
        if hit {
            *guard(&self.crash) = None;
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

impl Journal for MemoryJournal {
    fn create<'a>(
        &'a self,
        run_id: &'a RunId,
        first: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.gate().await;
            let mut runs = guard(&self.runs);
            if runs.contains_key(run_id) {
                return Err(JournalError::AlreadyExists(run_id.clone()));
            }
            runs.insert(run_id.clone(), vec![first.clone()]);
            Ok(())
        })
    }

    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        event: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.gate().await;
            match guard(&self.runs).get_mut(run_id) {
                Some(events) => {
                    events.push(event.clone());
                    Ok(())
                }
                None => Err(JournalError::UnknownRun(run_id.clone())),
            }
        })
    }

    fn read<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalEvent>, JournalError>> {
        Box::pin(async move {
            guard(&self.runs)
                .get(run_id)
                .cloned()
                .ok_or_else(|| JournalError::UnknownRun(run_id.clone()))
        })
    }

    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunId>, JournalError>> {
        Box::pin(async move { Ok(guard(&self.runs).keys().cloned().collect()) })
    }
}

/// Keeps every stored report.
#[derive(Default)]
pub struct MemoryReportSink {
    reports: Mutex<Vec<Report>>,
}

impl MemoryReportSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reports(&self) -> Vec<Report> {
        guard(&self.reports).clone()
    }
}

impl ReportSink for MemoryReportSink {
    fn store<'a>(&'a self, report: &'a Report) -> BoxFuture<'a, Result<String, ReportError>> {
        Box::pin(async move {
            guard(&self.reports).push(report.clone());
            Ok(format!("memory:{}", report.run_id))
        })
    }
}
