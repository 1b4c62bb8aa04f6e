//! The write gate: decides whether this instance may acknowledge a write right now.
//!
//! A write is accepted only when (1) this region is the active one, (2) the write fence is down, (3) the control
//! state was refreshed successfully less than `min(lease_ms, 1000)` ms ago on the monotonic clock (an instance cut
//! off from its control source stops acknowledging writes by itself), and (4) inside the write's own database
//! transaction the fencing row `lifeboat_fence` holds no newer epoch than the instance does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_contract::ControlState;
use sqlx::{MySql, MySqlPool, Transaction};

use crate::control::{ControlSource, FETCH_TIMEOUT};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// After a failed fetch, writers refuse without fetching again for this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// Why a write was refused. The names are the `error` codes of the 503 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RegionPassive,
    WriteFenced,
    StaleEpoch,
    ControlUnreachable,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Self::RegionPassive,
        Self::WriteFenced,
        Self::StaleEpoch,
        Self::ControlUnreachable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::RegionPassive => "region_passive",
            Self::WriteFenced => "write_fenced",
            Self::StaleEpoch => "stale_epoch",
            Self::ControlUnreachable => "control_unreachable",
        }
    }
}

/// The last control state fetched successfully, and when it was asked for (monotonic).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: ControlState,
    pub fetched_at: Instant,
}

impl Snapshot {
    /// How long this state may be acted on: the lease, but never more than 1 s.
    pub fn validity(&self) -> Duration {
        Duration::from_millis(self.state.lease_ms.min(1000))
    }
    pub fn age(&self) -> Duration {
        self.fetched_at.elapsed()
    }
    pub fn is_fresh(&self) -> bool {
        self.age() < self.validity()
    }
}

pub struct WriteGate {
    region: String,
    source: Arc<dyn ControlSource>,
    pool: MySqlPool,
    metrics: Arc<Metrics>,
    snapshot: Mutex<Option<Snapshot>>,
    last_error: Mutex<Option<String>>,
    /// When the last fetch failed: writers arriving just after a failure refuse at once instead of queueing up
    /// for fetches of their own while the control source is down.
    last_failure: Mutex<Option<Instant>>,
    /// One fetch at a time: concurrent writers that find the state stale wait for the same fetch.
    refreshing: tokio::sync::Mutex<()>,
}

/// Permission to write under one epoch. The write still has to pass [`WritePermit::begin`].
#[derive(Clone)]
pub struct WritePermit {
    pub region: String,
    pub epoch: u64,
    pub active_region: String,
    gate: Arc<WriteGate>,
}

impl WriteGate {
    pub fn new(
        region: &str,
        source: Arc<dyn ControlSource>,
        pool: MySqlPool,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            region: region.to_owned(),
            source,
            pool,
            metrics,
            snapshot: Mutex::new(None),
            last_error: Mutex::new(None),
            last_failure: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn source_description(&self) -> String {
        self.source.describe()
    }

    pub fn snapshot(&self) -> Option<Snapshot> {
        lock(&self.snapshot).clone()
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Fetch the control state now. A failure keeps the previous snapshot, which then ages out.
    pub async fn refresh(&self) -> Result<ControlState, String> {
        // The state is as old as the request that asked for it: a slow answer must not extend its validity
        // (the gate promises to act on nothing older than the lease, at most 1 s).
        let asked_at = Instant::now();
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch()).await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "control source {}: no answer within {FETCH_TIMEOUT:?}",
                self.source.describe()
            )),
        };
        match fetched {
            Ok(state) => {
                let previous = lock(&self.snapshot).replace(Snapshot {
                    state: state.clone(),
                    fetched_at: asked_at,
                });
                self.metrics.control_refresh(true);
                if lock(&self.last_error).take().is_some() {
                    tracing::info!(source = %self.source.describe(), "control source reachable again");
                }
                if previous.as_ref().map(|p| &p.state) != Some(&state) {
                    tracing::info!(
                        active_region = %state.active_region,
                        epoch = state.epoch,
                        fence_raised = state.fence_raised,
                        lease_ms = state.lease_ms,
                        "control state changed"
                    );
                }
                Ok(state)
            }
            Err(message) => {
                self.metrics.control_refresh(false);
                *lock(&self.last_failure) = Some(Instant::now());
                let mut last = lock(&self.last_error);
                if last.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "control refresh failed");
                }
                *last = Some(message.clone());
                Err(message)
            }
        }
    }

    /// Keep the snapshot fresh in the background, several times per validity period.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let gate = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let _ = gate.refresh_once_shared().await;
                let validity = gate
                    .snapshot()
                    .map_or(Duration::from_millis(1000), |s| s.validity());
                let pause =
                    (validity / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
                tokio::time::sleep(pause).await;
            }
        })
    }

    async fn refresh_once_shared(&self) -> Option<Snapshot> {
        let _turn = self.refreshing.lock().await;
        let _ = self.refresh().await;
        self.snapshot()
    }

    /// A fresh snapshot, fetching one if the cached one has aged out (shared with concurrent callers).
    pub async fn fresh_snapshot(&self) -> Option<Snapshot> {
        if let Some(s) = self.snapshot().filter(Snapshot::is_fresh) {
            return Some(s);
        }
        let _turn = self.refreshing.lock().await;
        // Someone else may have refreshed while we waited for our turn.
        if let Some(s) = self.snapshot().filter(Snapshot::is_fresh) {
            return Some(s);
        }
        if lock(&self.last_failure).is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE) {
            return None;
        }
        let _ = self.refresh().await;
        self.snapshot().filter(Snapshot::is_fresh)
    }

    /// Checks (1)–(3): region, fence, freshness. Check (4) happens in the write's transaction.
    pub async fn permit(self: &Arc<Self>) -> Result<WritePermit, ApiError> {
        let Some(snapshot) = self.fresh_snapshot().await else {
            let last = self.snapshot().map(|s| s.state.active_region);
            return Err(self.refuse(
                Refusal::ControlUnreachable,
                format!(
                    "region {} cannot confirm it is active: {}",
                    self.region,
                    self.last_error()
                        .unwrap_or_else(|| "no control state yet".into())
                ),
                last,
                None,
            ));
        };
        let state = snapshot.state;
        if state.fence_raised {
            return Err(self.refuse(
                Refusal::WriteFenced,
                format!(
                    "the write fence is raised (epoch {}); writes resume after the switchover",
                    state.epoch
                ),
                Some(state.active_region),
                Some(state.epoch),
            ));
        }
        if state.active_region != self.region {
            return Err(self.refuse(
                Refusal::RegionPassive,
                format!(
                    "region {} is passive; writes go to {}",
                    self.region, state.active_region
                ),
                Some(state.active_region),
                Some(state.epoch),
            ));
        }
        Ok(WritePermit {
            region: self.region.clone(),
            epoch: state.epoch,
            active_region: state.active_region,
            gate: Arc::clone(self),
        })
    }

    fn refuse(
        &self,
        why: Refusal,
        message: String,
        active_region: Option<String>,
        epoch: Option<u64>,
    ) -> ApiError {
        self.metrics.gate_refusal(why);
        tracing::debug!(reason = why.code(), %message, "write refused");
        ApiError::unavailable(why.code(), message, active_region)
            .with_write_context(&self.region, epoch)
    }

    /// Writes fail over to whatever epoch the fencing row holds; this instance raises it to its own epoch when
    /// it is behind (a freshly promoted database still holds the old one). Never lowers it.
    async fn advance_fence(&self, epoch: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE lifeboat_fence SET epoch = ? WHERE id = 1 AND epoch < ?")
            .bind(epoch)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        tracing::info!(epoch, "fencing row advanced");
        Ok(())
    }

    /// The epoch the fencing row holds now (no lock), for health reports.
    pub async fn database_epoch(&self) -> Result<Option<u64>, sqlx::Error> {
        sqlx::query_scalar("SELECT epoch FROM lifeboat_fence WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
    }
}

impl WritePermit {
    /// Begin the write's transaction with check (4) done: the fencing row, read under a shared lock that is held
    /// until commit, agrees with this permit's epoch. A demoted primary whose row was raised answers
    /// `stale_epoch` and nothing is written; the orchestrator's raise waits for writers already past this point.
    pub async fn begin(&self) -> Result<Transaction<'static, MySql>, ApiError> {
        let gate = &self.gate;
        for _ in 0..3 {
            let mut tx = gate.pool.begin().await?;
            let row: Option<u64> = sqlx::query_scalar(
                "SELECT epoch FROM lifeboat_fence WHERE id = 1 LOCK IN SHARE MODE",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some(db_epoch) = row else {
                tx.rollback().await?;
                return Err(ApiError::internal(
                    "the fencing row lifeboat_fence id=1 is missing; run `storefront migrate`",
                ));
            };
            match db_epoch.cmp(&self.epoch) {
                std::cmp::Ordering::Equal => return Ok(tx),
                std::cmp::Ordering::Greater => {
                    tx.rollback().await?;
                    return Err(gate.refuse(
                        Refusal::StaleEpoch,
                        format!(
                            "this instance holds epoch {} but the database is fenced at epoch {db_epoch}",
                            self.epoch
                        ),
                        Some(self.active_region.clone()),
                        Some(self.epoch),
                    ));
                }
                std::cmp::Ordering::Less => {
                    // Release our shared lock first: the advance needs an exclusive one.
                    tx.rollback().await?;
                    gate.advance_fence(self.epoch).await?;
                }
            }
        }
        Err(ApiError::unavailable(
            "write_fenced",
            "the fencing row kept changing; retry",
            Some(self.active_region.clone()),
        )
        .with_write_context(&self.region, Some(self.epoch)))
    }

    /// After a commit and before acknowledging it: does this permit still hold? A commit can outlast the lease:
    /// with semi-synchronous replication MariaDB waits up to its timeout for the standby's acknowledgement and
    /// then commits anyway, asynchronously. A region that was cut off during that wait must not acknowledge a
    /// write the standby may never have received, or the failover that follows loses it. So the write is
    /// acknowledged only while the control state is still fresh and still grants this permit's region and epoch;
    /// `local.semi_sync_timeout_ms` is kept at least twice the lease so a commit that fell back to asynchronous
    /// replication always finds its lease run out here. Otherwise: 503 `commit_unconfirmed` — the write may exist
    /// on this database, and a retry with the same Idempotency-Key finds out where it stands.
    pub async fn confirm_commit(&self) -> Result<(), ApiError> {
        let gate = &self.gate;
        let current = gate.fresh_snapshot().await.map(|s| s.state);
        let still_granted = current.as_ref().is_some_and(|state| {
            !state.fence_raised && state.active_region == self.region && state.epoch == self.epoch
        });
        if still_granted {
            return Ok(());
        }
        gate.metrics.commit_unconfirmed();
        tracing::warn!(
            region = %self.region,
            epoch = self.epoch,
            "committed write not acknowledged: the write permit lapsed during the commit"
        );
        Err(ApiError::unavailable(
            "commit_unconfirmed",
            "the write was committed here but this region lost its write permit before it could be confirmed; \
             retry with the same Idempotency-Key",
            current.map(|s| s.active_region),
        )
        .with_write_context(&self.region, Some(self.epoch)))
    }

    /// For stores outside the database (DynamoDB carts): the same check in a transaction of its own. Weaker than
    /// [`Self::begin`]: a raise between this check and the store's write is not seen.
    pub async fn check_fence(&self) -> Result<(), ApiError> {
        let tx = self.begin().await?;
        tx.rollback().await?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Values behind these locks are replaced whole, so a panic elsewhere cannot leave them half-written.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlError;
    use futures::future::BoxFuture;

    /// Answers after a delay, like a control source behind a slow network.
    struct SlowControl(Duration);

    impl ControlSource for SlowControl {
        fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                Ok(ControlState {
                    active_region: "us-east-1".into(),
                    epoch: 1,
                    fence_raised: false,
                    lease_ms: 1000,
                })
            })
        }
        fn describe(&self) -> String {
            "slow".into()
        }
    }

    #[tokio::test]
    async fn a_slow_answer_does_not_extend_the_lease() {
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .connect_lazy("mysql://nobody@127.0.0.1:1/none")
            .unwrap();
        let delay = Duration::from_millis(300);
        let gate = WriteGate::new(
            "us-east-1",
            Arc::new(SlowControl(delay)),
            pool,
            Arc::new(Metrics::new()),
        );
        gate.refresh().await.unwrap();
        let snapshot = gate.snapshot().unwrap();
        assert!(
            snapshot.age() >= delay,
            "the state counts as {:?} old although it was asked for {delay:?} ago",
            snapshot.age()
        );
    }
}
