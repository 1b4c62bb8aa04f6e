//! The local DR backend: the runbook engine's [`DrBackend`] over the local runtime.
//!
//! - fence: the control server's fence (and epoch), plus, on the old primary when it answers, the
//!   database fencing row raised to the new epoch and `read_only = ON`;
//! - wait-lease: the old region's last lease renewal (as the control server saw it) plus `lease_ms`;
//! - promote: `MASTER_GTID_WAIT` for the old primary's position when it answers (else for everything the
//!   standby already received), `STOP SLAVE; RESET SLAVE ALL; read_only = OFF`, fencing row at the epoch;
//!   in a switchover the old primary then replicates from the new one;
//! - shift traffic: HAProxy's runtime API (`set server regions/<r> state ready|maint`);
//! - verify: a real checkout through the front door;
//! - reprotect: restart the old primary's database if needed and make it a replica of the current one.
//!
//! Every operation also appends step events to the runtime's event log, whoever runs the engine (CLI,
//! supervisor, drill), so drills can place each step on their timeline.

use std::time::Duration;

use lifeboat_runbook::backend::BackendResult;
use lifeboat_runbook::readiness::{DatabaseReadiness, DatabaseRole, Health, RegionRole};
use lifeboat_runbook::{
    BackendError, BoxFuture, DrBackend, Mode, Notification, Readiness, RegionReadiness,
    StepContext, StepOutput,
};

use crate::control::ControlUpdate;
use crate::error::LocalError;
use crate::events::{self, Event};
use crate::mariadb::{DbAdmin, gtid_covers};
use crate::runtime::Runtime;

/// Bound of one readiness request to a storefront's `/health/deep`.
const READINESS_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Extra wait beyond a lease, for the storefront's own clock and the answer's flight time.
const LEASE_MARGIN: Duration = Duration::from_millis(250);

pub struct LocalBackend {
    runtime: Runtime,
}

impl LocalBackend {
    pub fn new(runtime: Runtime) -> Self {
        LocalBackend { runtime }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(u64::from(self.runtime.settings().lease_ms))
    }

    /// Runs one operation with step events around it.
    async fn step<F>(&self, ctx: &StepContext, op: F) -> BackendResult<StepOutput>
    where
        F: std::future::Future<Output = BackendResult<StepOutput>>,
    {
        let log = self.runtime.events();
        let run = ctx.run_id.as_str();
        log.record(
            Event::now(events::KIND_STEP_STARTED)
                .step(run, &ctx.step)
                .region(&ctx.to)
                .detail(format!("{} attempt {}", ctx.kind, ctx.attempt)),
        );
        let result = op.await;
        match &result {
            Ok(out) => log.record(
                Event::now(events::KIND_STEP_FINISHED)
                    .step(run, &ctx.step)
                    .region(&ctx.to)
                    .detail(&out.detail),
            ),
            Err(e) => log.record(
                Event::now(events::KIND_STEP_FAILED)
                    .step(run, &ctx.step)
                    .region(&ctx.to)
                    .detail(&e.message),
            ),
        }
        result
    }

    async fn raise_fence_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        let epoch = ctx.require_epoch()?;
        let control = self.runtime.control();
        let current = control.state().await.map_err(unavailable)?;
        if current.epoch > epoch {
            return Err(BackendError::rejected(format!(
                "control server already holds epoch {} (this run's is {epoch}): a later run changed roles",
                current.epoch
            )));
        }
        control
            .update(&ControlUpdate {
                epoch: Some(epoch),
                fence_raised: Some(true),
                active_region: None,
            })
            .await
            .map_err(unavailable)?;
        // The database side: writers still holding the old epoch are refused by the fencing row, and
        // read_only stops everything else.
        let db = self.runtime.db(&ctx.from).map_err(rejected)?;
        let isolated = self.runtime.is_isolated(&ctx.from).unwrap_or(false);
        let db_fence = async {
            if isolated {
                return Err(LocalError::Unavailable(format!("{} is isolated", ctx.from)));
            }
            let status = db.status().await?;
            if !status.read_only {
                db.raise_fence_row(epoch).await?;
                db.set_read_only(true).await?;
            }
            Ok::<_, LocalError>(status.read_only)
        };
        match db_fence.await {
            Ok(was_read_only) => Ok(StepOutput::detail(format!(
                "control fence raised at epoch {epoch}; database of {} {}",
                ctx.from,
                if was_read_only {
                    "was already read-only"
                } else {
                    "fenced (row at epoch, read_only ON)"
                }
            ))),
            Err(e) if ctx.mode == Mode::Ungraceful => Ok(StepOutput::detail(format!(
                "control fence raised at epoch {epoch}; database of {} not reachable ({e}): its writers stop when \
                 their lease runs out",
                ctx.from
            ))),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn wait_drained_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        let old = self.runtime.db(&ctx.from).map_err(rejected)?;
        let new = self.runtime.db(&ctx.to).map_err(rejected)?;
        let pos = old.status().await.map_err(unavailable)?.gtid_binlog_pos;
        let started = std::time::Instant::now();
        if new
            .wait_for_gtid(&pos, Duration::from_secs(5))
            .await
            .map_err(unavailable)?
        {
            Ok(StepOutput::detail(format!(
                "{} applied everything {} committed (GTID {pos}) after {} ms",
                ctx.to,
                ctx.from,
                started.elapsed().as_millis()
            ))
            .with_lag_ms(0))
        } else {
            let lag = new
                .status()
                .await
                .ok()
                .and_then(|s| s.replica)
                .and_then(|r| r.seconds_behind_master);
            Err(BackendError::not_yet(format!(
                "{} has not yet applied GTID {pos} of {} ({} s behind)",
                ctx.to,
                ctx.from,
                lag.map_or("?".to_owned(), |l| l.to_string())
            )))
        }
    }

    async fn wait_lease_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        // On this machine a stopped database is a fact, not a guess: it restarts read-only, so nothing in
        // the old region can acknowledge a write whatever lease its storefront still holds.
        if self.runtime.database_pid(&ctx.from).is_none() {
            return Ok(StepOutput::detail(format!(
                "the database of {} is not running (it restarts read-only): no writer left to wait for",
                ctx.from
            )));
        }
        let view = self.runtime.control().view().await.map_err(unavailable)?;
        let lease = self.lease();
        let Some(last) = view.write_leases.get(&ctx.from).copied() else {
            return Ok(StepOutput::detail(format!(
                "{} never held a write lease: nothing to wait for",
                ctx.from
            )));
        };
        // No write lease is granted once the fence is raised, so the last grant bounds it.
        let until_ms = last + u64::try_from((lease + LEASE_MARGIN).as_millis()).unwrap_or(u64::MAX);
        let wait_ms = until_ms.saturating_sub(view.now_ms);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        Ok(StepOutput::detail(format!(
            "{}'s lease (last renewed {} ms before the check, lease {} ms) has run out; waited {wait_ms} ms",
            ctx.from,
            view.now_ms.saturating_sub(last),
            lease.as_millis()
        )))
    }

    async fn promote_impl(
        &self,
        ctx: &StepContext,
        allow_data_loss: bool,
    ) -> BackendResult<StepOutput> {
        let epoch = ctx.require_epoch()?;
        let old = self.runtime.db(&ctx.from).map_err(rejected)?;
        let new = self.runtime.db(&ctx.to).map_err(rejected)?;
        // Known to be out of reach on this machine (cut off, or its process gone): do not wait for timeouts.
        let old_gone = self.runtime.is_isolated(&ctx.from).unwrap_or(false)
            || self.runtime.database_pid(&ctx.from).is_none();
        let old_status = if allow_data_loss && old_gone {
            None
        } else if allow_data_loss {
            tokio::time::timeout(Duration::from_secs(2), old.status())
                .await
                .ok()
                .and_then(|r| r.ok())
        } else {
            Some(old.status().await.map_err(unavailable)?)
        };
        if let Some(s) = &old_status
            && !allow_data_loss
            && !s.read_only
        {
            return Err(BackendError::rejected(format!(
                "the database of {} still accepts writes: the fence must be raised before promoting {}",
                ctx.from, ctx.to
            )));
        }
        // Waiting for the old primary's position only makes sense once it no longer takes writes.
        let wait_for = old_status
            .as_ref()
            .filter(|s| s.read_only)
            .map(|s| s.gtid_binlog_pos.clone());
        let lag_before = new
            .status()
            .await
            .ok()
            .and_then(|s| s.replica)
            .and_then(|r| r.seconds_behind_master);
        let outcome = new
            .promote(wait_for.as_deref(), Duration::from_secs(30))
            .await
            .map_err(unavailable)?;
        new.raise_fence_row(epoch).await.map_err(unavailable)?;
        if old_status.is_none() {
            // No replica for now: commits must not stall for the semi-sync timeout waiting for one.
            new.execute(
                "SET GLOBAL rpl_semi_sync_master_wait_no_slave = OFF",
                Duration::from_secs(5),
            )
            .await
            .map_err(unavailable)?;
        }
        let mut detail = if outcome.already {
            format!("{} already is the writer", ctx.to)
        } else {
            format!(
                "{} promoted (applied up to {}), fencing row at epoch {epoch}",
                ctx.to,
                outcome
                    .waited_for
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .unwrap_or("what it had received")
            )
        };
        if !allow_data_loss {
            // A switchover keeps the old primary in the pair at once.
            old.replicate_from(&new, self.runtime.credentials())
                .await
                .map_err(unavailable)?;
            detail.push_str(&format!("; {} now replicates from {}", ctx.from, ctx.to));
        } else if old_status.is_none() {
            detail.push_str(&format!(
                "; {} not reachable (re-protect it with a failback)",
                ctx.from
            ));
        }
        let lag_ms = if wait_for.is_some() {
            0
        } else {
            lag_before.unwrap_or(0) * 1000
        };
        Ok(StepOutput::detail(detail).with_lag_ms(lag_ms))
    }

    async fn shift_traffic_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        let api = self.runtime.front_door_api();
        api.set_server_state(&ctx.to, true)
            .await
            .map_err(unavailable)?;
        api.set_server_state(&ctx.from, false)
            .await
            .map_err(unavailable)?;
        // The file too, so a restarted front door keeps sending traffic to the same region.
        self.runtime
            .write_haproxy_cfg(&ctx.to)
            .map_err(unavailable)?;
        Ok(StepOutput::detail(format!(
            "front door: {} ready, {} in maintenance",
            ctx.to, ctx.from
        )))
    }

    async fn lower_fence_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        let epoch = ctx.require_epoch()?;
        let control = self.runtime.control();
        let current = control.state().await.map_err(unavailable)?;
        if current.epoch > epoch {
            return Err(BackendError::rejected(format!(
                "control server already holds epoch {} (this run's is {epoch})",
                current.epoch
            )));
        }
        control
            .update(&ControlUpdate {
                active_region: Some(ctx.to.clone()),
                epoch: Some(epoch),
                fence_raised: Some(false),
            })
            .await
            .map_err(unavailable)?;
        Ok(StepOutput::detail(format!(
            "control: {} active at epoch {epoch}, fence lowered",
            ctx.to
        )))
    }

    async fn verify_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        let client = storefront::client::Client::new(&self.runtime.front_door_url())
            .map_err(|e| BackendError::other(format!("building an HTTP client: {e}")))?;
        let key = format!("verify-{}", ctx.run_id.as_str());
        // Until the engine's timeout drops us: the front door needs one health check to see the new region.
        loop {
            let last_error = match self.checkout_once(&client, &key).await {
                Ok((region, order)) if region.as_deref() == Some(ctx.to.as_str()) => {
                    let at = time::OffsetDateTime::now_utc();
                    return Ok(StepOutput::detail(format!(
                        "checkout through the front door {} served by {} (order {order})",
                        self.runtime.front_door_url(),
                        ctx.to
                    ))
                    .with_first_success_at(at));
                }
                Ok((region, _)) => format!("a checkout was served by {region:?}, not {}", ctx.to),
                Err(e) => e,
            };
            tracing::debug!("verify: {last_error}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn checkout_once(
        &self,
        client: &storefront::client::Client,
        key: &str,
    ) -> Result<(Option<String>, String), String> {
        let products = client.products().await.map_err(|e| e.to_string())?;
        let product = products.first().ok_or("the catalog is empty")?;
        let cart = client.create_cart().await.map_err(|e| e.to_string())?;
        client
            .add_item(&cart.value.id, product.id, 1)
            .await
            .map_err(|e| e.to_string())?;
        // A fresh key per attempt: a retried verify must prove a new write, not replay an old one.
        let key = format!("{key}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let done = client
            .checkout(&cart.value.id, &key)
            .await
            .map_err(|e| e.to_string())?;
        Ok((done.region, done.order.id))
    }

    async fn notify_impl(&self, ctx: &StepContext, n: &Notification) -> BackendResult<StepOutput> {
        let line = serde_json::json!({
            "at_ms": events::now_ms(),
            "run_id": ctx.run_id.as_str(),
            "subject": n.subject,
            "message": n.message,
        });
        let path = self.runtime.layout().notifications_log();
        let mut text = line.to_string();
        text.push('\n');
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| BackendError::other(format!("writing {}: {e}", path.display())))?;
        tracing::info!("notification: {}: {}", n.subject, n.message);
        Ok(StepOutput::detail(format!(
            "notification written to {}",
            path.display()
        )))
    }

    async fn record_active_region_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        let path = self.runtime.layout().root().join("active-region");
        crate::layout::write_atomic(&path, format!("{}\n", ctx.to).as_bytes())
            .map_err(|e| BackendError::other(e.to_string()))?;
        Ok(StepOutput::detail(format!(
            "{} recorded as the active region in {}",
            ctx.to,
            path.display()
        )))
    }

    async fn reprotect_impl(&self, ctx: &StepContext) -> BackendResult<StepOutput> {
        // ctx.from is the current primary; ctx.to the region being returned to.
        let primary = self.runtime.db(&ctx.from).map_err(rejected)?;
        let returning = self.runtime.db(&ctx.to).map_err(rejected)?;
        if self.runtime.is_isolated(&ctx.to).map_err(rejected)? {
            return Err(BackendError::unavailable(format!(
                "{} is still isolated: heal it first",
                ctx.to
            )));
        }
        let started = self.runtime.database_pid(&ctx.to).is_none();
        self.runtime
            .restore_region(&ctx.to)
            .await
            .map_err(unavailable)?;
        let rebuilt = self.rejoin(ctx, &primary, &returning).await?;
        // A region that was down gets its storefront back from the supervisor once its database runs; the
        // switchover after this step needs it answering.
        self.runtime
            .wait_storefront(&ctx.to, Duration::from_secs(30))
            .await
            .map_err(|e| BackendError::not_yet(e.to_string()))?;
        // Back to waiting for the replica's acknowledgement (a failover turned that off).
        primary
            .execute(
                "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON",
                Duration::from_secs(5),
            )
            .await
            .map_err(unavailable)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = returning.status().await.map_err(unavailable)?;
            let replica = status.replica.clone();
            if let Some(r) = &replica {
                let pos = if r.running() {
                    Some(primary.status().await.map_err(unavailable)?.gtid_binlog_pos)
                } else {
                    None
                };
                let caught_up = pos
                    .as_ref()
                    .is_some_and(|pos| gtid_covers(&status.gtid_slave_pos, pos));
                // Wait for the catch-up too (within the same bound): the failback's preflight right after
                // wants the lag under the switchover limit, and a restarted server replays what it missed.
                if let Some(pos) = pos
                    && (caught_up || tokio::time::Instant::now() >= deadline)
                {
                    return Ok(StepOutput::detail(format!(
                        "{}{}{} replicates from {} ({})",
                        if started { "database restarted; " } else { "" },
                        rebuilt
                            .as_deref()
                            .map(|r| format!("{r}; "))
                            .unwrap_or_default(),
                        ctx.to,
                        ctx.from,
                        if caught_up {
                            "caught up".to_owned()
                        } else {
                            format!("catching up to {pos}")
                        }
                    ))
                    .with_lag_ms(if caught_up {
                        0
                    } else {
                        r.seconds_behind_master.unwrap_or(0) * 1000
                    }));
                }
                if !r.last_io_error.is_empty() || !r.last_sql_error.is_empty() {
                    // A GTID error the binlog-state comparison did not foresee (a purged binary log, a
                    // server id reused): retrying cannot fix it, and guessing what to set aside could lose
                    // writes. Both servers keep their data; the operator decides.
                    if r.last_io_error.contains("GTID") || r.last_sql_error.contains("GTID") {
                        return Err(BackendError::rejected(format!(
                            "{} cannot replicate from {}: {} {} (both servers keep their data; compare \
                             `@@gtid_binlog_state` of each, see docs/orchestrator.md \"Reprotect\")",
                            ctx.to, ctx.from, r.last_io_error, r.last_sql_error
                        )));
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::not_yet(format!(
                    "{} does not replicate from {} yet: {:?}",
                    ctx.to, ctx.from, replica
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Makes the returning server a replica of the current primary. A history that is a prefix of the
    /// primary's is re-pointed; a diverged one has its own transactions set aside in the run's report
    /// directory, then is rebuilt from a copy of the primary. Returns what was done when it was a rebuild.
    async fn rejoin(
        &self,
        ctx: &StepContext,
        primary: &DbAdmin,
        returning: &DbAdmin,
    ) -> BackendResult<Option<String>> {
        let layout = self.runtime.layout();
        let credentials = self.runtime.credentials();
        let report_dir = layout.reports_dir().join(ctx.run_id.as_str());
        let rebuild_dir = layout.rebuild_dir(&ctx.to);
        // Written before the replica's binary log is reset, removed once it replicates: a retried or
        // resumed step that finds it rebuilds again instead of trusting a half-applied copy.
        let unfinished = rebuild_dir.join("unfinished");
        let set_aside = if unfinished.exists() {
            let summary = std::fs::read(report_dir.join(format!("set-aside-{}.json", ctx.to)))
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::rebuild::SetAside>(&b).ok());
            Some(summary)
        } else {
            let status = returning.status().await.map_err(unavailable)?;
            let already = status
                .replica
                .as_ref()
                .is_some_and(|r| r.master_host == primary.host && r.running());
            if already {
                None
            } else {
                let mine = returning.binlog_state().await.map_err(unavailable)?;
                let theirs = primary.binlog_state().await.map_err(unavailable)?;
                match crate::rebuild::divergence(&mine, &theirs) {
                    None => None,
                    Some(divergence) => {
                        let summary = crate::rebuild::set_aside(
                            &ctx.to,
                            &layout.mariadb_data(&ctx.to),
                            &divergence,
                            &report_dir,
                        )
                        .await
                        .map_err(unavailable)?;
                        tracing::warn!("reprotect: {}", summary.describe());
                        crate::layout::write_atomic(&unfinished, summary.sql_file.as_bytes())
                            .map_err(unavailable)?;
                        Some(Some(summary))
                    }
                }
            }
        };
        let Some(summary) = set_aside else {
            returning
                .replicate_from(primary, credentials)
                .await
                .map_err(unavailable)?;
            return Ok(None);
        };
        let position = crate::rebuild::rebuild_from(returning, primary, credentials, &rebuild_dir)
            .await
            .map_err(unavailable)?;
        let _ = std::fs::remove_file(&unfinished);
        self.runtime.events().record(
            Event::now(events::KIND_REPROTECT_REBUILT)
                .region(&ctx.to)
                .detail(format!(
                    "rebuilt from a copy of {} at {position}{}",
                    ctx.from,
                    summary
                        .as_ref()
                        .map(|s| format!("; {}", s.describe()))
                        .unwrap_or_default()
                )),
        );
        Ok(Some(format!(
            "history diverged from {}: {}; rebuilt from a copy of {} at GTID {position}",
            ctx.from,
            summary
                .as_ref()
                .map(|s| s.describe())
                .unwrap_or_else(|| "set-aside file written by an earlier attempt".into()),
            ctx.from
        )))
    }

    async fn region_readiness(
        &self,
        region: &str,
        control: Option<&crate::control::ControlView>,
    ) -> RegionReadiness {
        let rt = &self.runtime;
        // On this machine an isolated region is known to be cut off: no need to wait for timeouts.
        if rt.is_isolated(region).unwrap_or(false) {
            let mut r = RegionReadiness::unreachable(
                region,
                &format!("{region} is isolated (its link is down)"),
            );
            r.alarms_firing.push("region-isolated".to_owned());
            r.role = match control {
                Some(c) if c.state.active_region == region => RegionRole::Active,
                Some(_) => RegionRole::Passive,
                None => RegionRole::Unknown,
            };
            return r;
        }
        let isolated = rt.is_isolated(region).unwrap_or(false);
        let marked_out = rt.layout().outage_marker(region).exists();
        let mut notes = Vec::new();
        let mut alarms = Vec::new();
        if isolated {
            alarms.push("region-isolated".to_owned());
        }
        if marked_out {
            alarms.push("region-out".to_owned());
        }
        let role = match control {
            Some(c) if c.state.active_region == region => RegionRole::Active,
            Some(_) => RegionRole::Passive,
            None => RegionRole::Unknown,
        };
        // Readiness is not on the detection path (the supervisor probes on its own, faster): a storefront
        // busy with a full load gets time to answer rather than being called unhealthy, which would refuse
        // a planned switchover exactly when it is under load.
        let client = reqwest::Client::builder()
            .timeout(READINESS_PROBE_TIMEOUT)
            .build()
            .unwrap_or_default();
        let url = rt.storefront_url(region).unwrap_or_default();
        let expect = if role == RegionRole::Active {
            "active"
        } else {
            "standby"
        };
        // A storefront whose database process is gone cannot be healthy; asking it would only cost a
        // timeout while it tries the dead database.
        let database_running = rt.database_pid(region).is_some();
        let probe = async {
            if database_running {
                client
                    .get(format!("{url}/health/deep?expect={expect}"))
                    .send()
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        let storefront = match probe.await {
            Ok(None) => Health::Unhealthy(format!("the database of {region} is not running")),
            Ok(Some(r)) if r.status().is_success() => Health::Healthy,

            Ok(Some(r)) => Health::Unhealthy(format!(
                "{url}/health/deep?expect={expect} answered {}",
                r.status()
            )),
            Err(e) if e.is_timeout() => Health::Unhealthy(format!(
                "{url}/health/deep?expect={expect} did not answer within {READINESS_PROBE_TIMEOUT:?}"
            )),
            Err(e) => Health::Unhealthy(format!("{url} did not answer: {e}")),
        };
        let db_status = match rt.db(region) {
            Ok(db) => db.status().await,
            Err(e) => Err(e),
        };
        let (database, reachable) = match &db_status {
            Ok(s) => {
                let db_role = match (&s.replica, s.read_only) {
                    (Some(_), _) => DatabaseRole::Replica,
                    (None, false) => DatabaseRole::Writer,
                    (None, true) => DatabaseRole::Detached,
                };
                let replicating = s.replica.as_ref().map(|r| r.running());
                let lag = match (&s.replica, control) {
                    (Some(r), Some(c)) if r.running() => {
                        // Exact when the writer answers: lag 0 once its whole position is applied.
                        let writer_pos = match rt.db(&c.state.active_region) {
                            Ok(w) if c.state.active_region != region => {
                                w.status().await.ok().map(|w| w.gtid_binlog_pos)
                            }
                            _ => None,
                        };
                        match writer_pos {
                            Some(pos) if gtid_covers(&s.gtid_slave_pos, &pos) => Some(0),
                            _ => r.seconds_behind_master.map(|s| s * 1000),
                        }
                    }
                    _ => None,
                };
                if let Some(r) = &s.replica
                    && !(r.last_io_error.is_empty() && r.last_sql_error.is_empty())
                {
                    notes.push(format!(
                        "replication error: {} {}",
                        r.last_io_error, r.last_sql_error
                    ));
                    // A replica that cannot reach a dead primary is expected in a failover; an error
                    // applying events or a refused binlog position (diverged history) is not.
                    if !r.last_sql_error.is_empty() || r.last_io_error.contains("1236") {
                        alarms.push("replication-broken".to_owned());
                    }
                }
                (
                    DatabaseReadiness {
                        role: db_role,
                        replication_lag_ms: lag,
                        replicating,
                    },
                    true,
                )
            }
            Err(e) => {
                notes.push(format!("database: {e}"));
                if rt.database_pid(region).is_none() && !isolated {
                    alarms.push("database-down".to_owned());
                }
                (
                    DatabaseReadiness {
                        role: DatabaseRole::Unknown,
                        replication_lag_ms: None,
                        replicating: None,
                    },
                    false,
                )
            }
        };
        let reachable = reachable || storefront.is_healthy();
        // Carts live in the same database, so they replicate with it.
        let session_replica = match database.role {
            DatabaseRole::Writer => Health::Healthy,
            DatabaseRole::Replica if database.replicating == Some(true) => Health::Healthy,
            DatabaseRole::Unknown => Health::Unknown("database not observable".into()),
            _ => Health::Unhealthy("carts are in the database, which does not replicate".into()),
        };
        let asset_replication = match control {
            Some(c) if c.state.active_region != region => {
                match crate::assets::pending(
                    &rt.layout().assets_dir(&c.state.active_region),
                    &rt.layout().assets_dir(region),
                ) {
                    Ok(0) => Health::Healthy,
                    Ok(n) => Health::Unhealthy(format!(
                        "{n} files not yet copied from {}",
                        c.state.active_region
                    )),
                    Err(e) => Health::Unknown(e.to_string()),
                }
            }
            Some(_) => Health::Healthy,
            None => Health::Unknown("control server unreachable".into()),
        };
        let dns_target = match rt.front_door_api().servers().await {
            Ok(servers) => servers
                .iter()
                .find(|s| !s.status.starts_with("MAINT"))
                .map(|s| s.region.clone()),
            Err(e) => {
                notes.push(format!("front door: {e}"));
                None
            }
        };
        RegionReadiness {
            region: region.to_owned(),
            reachable: reachable && !isolated,
            role,
            storefront,
            database,
            session_replica,
            asset_replication,
            alarms_firing: alarms,
            active_region_parameter: control.map(|c| c.state.active_region.clone()),
            epoch: control.map(|c| c.state.epoch),
            fence_raised: control.map(|c| c.state.fence_raised),
            dns_target,
            notes,
            // Stopped processes on a region whose link is up: `reprotect` starts them (an isolated region
            // needs its link healed, which no runbook does).
            restartable: !isolated && (!database_running || marked_out),
        }
    }
}

fn unavailable(e: LocalError) -> BackendError {
    match e {
        LocalError::Usage(m) => BackendError::rejected(m),
        other => BackendError::unavailable(other.to_string()),
    }
}

fn rejected(e: LocalError) -> BackendError {
    BackendError::rejected(e.to_string())
}

impl DrBackend for LocalBackend {
    fn name(&self) -> &str {
        "local"
    }

    fn readiness(&self) -> BoxFuture<'_, BackendResult<Readiness>> {
        Box::pin(async move {
            let control = self.runtime.control().view().await.ok();
            // Both regions at once: a cut-off region costs its timeouts only once.
            let regions = futures::future::join_all(
                self.runtime
                    .regions()
                    .iter()
                    .map(|r| self.region_readiness(&r.name, control.as_ref())),
            )
            .await;
            Ok(Readiness {
                observed_at: time::OffsetDateTime::now_utc(),
                regions,
            })
        })
    }

    fn prescale<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, async move {
            Ok(StepOutput::detail(format!(
                "{} runs the same storefront and database as {}: nothing to scale locally",
                ctx.to, ctx.from
            )))
        }))
    }

    fn raise_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.raise_fence_impl(ctx)))
    }

    fn wait_drained<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.wait_drained_impl(ctx)))
    }

    fn wait_write_lease_expired<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.wait_lease_impl(ctx)))
    }

    fn promote<'a>(
        &'a self,
        ctx: &'a StepContext,
        allow_data_loss: bool,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.promote_impl(ctx, allow_data_loss)))
    }

    fn shift_traffic<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.shift_traffic_impl(ctx)))
    }

    fn lower_fence<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.lower_fence_impl(ctx)))
    }

    fn verify<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.verify_impl(ctx)))
    }

    fn notify<'a>(
        &'a self,
        ctx: &'a StepContext,
        notification: &'a Notification,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.notify_impl(ctx, notification)))
    }

    fn record_active_region<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.record_active_region_impl(ctx)))
    }

    fn reprotect<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, BackendResult<StepOutput>> {
        Box::pin(self.step(ctx, self.reprotect_impl(ctx)))
    }
}
