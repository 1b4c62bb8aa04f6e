//! The run lock (one run acts on an environment at a time) and the fencing epoch.
//!
//! # Contract
//!
//! Implemented by [`MemoryCoordination`] (tests, one process), [`crate::FileCoordination`] (the local
//! runtime: safe between processes on one machine) and the AWS backend (conditional writes on the
//! DynamoDB journal table).
//!
//! **Lock.** A lease with an owner and an expiry. `acquire` succeeds when the lock is free, when the
//! current lease has expired, or when it is already held with the same owner token; otherwise it fails with
//! [`LockError::Held`] naming the holder. The check and the write are one atomic step: of two concurrent
//! `acquire` calls exactly one succeeds. `renew` extends a lease the caller still holds and fails with
//! [`LockError::Lost`] otherwise (it expired and someone else took it). `release` gives it up; releasing a
//! lease no longer held is a no-op. The engine renews every `ttl / 3` while a run is active.
//!
//! **Epoch.** A counter that only grows. `allocate(run)` atomically returns a value strictly greater than
//! every value returned before, and records which run got it; called again by the same run as the latest
//! allocation, it returns that same value (so a crash between allocation and journaling does not burn an
//! epoch). The engine allocates once per run and journals it; storefronts get it through the backend's
//! fence operations.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::model::RunId;

/// Who holds (or wants) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub run_id: RunId,
    /// Unique per process acquisition: a resumed run gets a new token.
    pub token: String,
    pub host: String,
    pub pid: u32,
}

impl LockOwner {
    /// An owner for `run_id` in this process.
    pub fn for_this_process(run_id: &RunId) -> Self {
        LockOwner {
            run_id: run_id.clone(),
            token: uuid::Uuid::new_v4().to_string(),
            host: hostname(),
            pid: std::process::id(),
        }
    }

    pub fn describe(&self) -> String {
        format!("run {} (pid {} on {})", self.run_id, self.pid, self.host)
    }
}

/// The host name, for lock owners (read from the kernel; "unknown-host" when unreadable).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockLease {
    pub owner: LockOwner,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    #[error("the environment is locked by {} until {}", holder.describe(), fmt_time(*expires_at))]
    Held {
        holder: LockOwner,
        expires_at: time::OffsetDateTime,
    },
    #[error("the lock of run {run} was lost: {detail}")]
    Lost { run: RunId, detail: String },
    #[error("lock/epoch storage failed at {location}: {detail}")]
    Storage { location: String, detail: String },
}

fn fmt_time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// See the module documentation for the contract.
pub trait RunLock: Send + Sync {
    fn acquire<'a>(
        &'a self,
        owner: &'a LockOwner,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>>;
    fn renew<'a>(
        &'a self,
        lease: &'a LockLease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>>;
    fn release<'a>(&'a self, lease: &'a LockLease) -> BoxFuture<'a, Result<(), LockError>>;
}

/// See the module documentation for the contract.
pub trait EpochStore: Send + Sync {
    /// The latest allocated epoch (0 when none was ever allocated).
    fn current(&self) -> BoxFuture<'_, Result<u64, LockError>>;
    /// A new epoch for `run_id` (or the one it was last given). See the module documentation.
    fn allocate<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<u64, LockError>>;
}

/// Lock and epoch in memory, for tests and single-process use. Lease expiry follows tokio's clock, so tests
/// with paused time see leases expire as virtual time advances.
#[derive(Debug, Default)]
pub struct MemoryCoordination {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    lock: Option<(LockOwner, tokio::time::Instant)>,
    epoch: u64,
    last_allocation: Option<RunId>,
}

impl MemoryCoordination {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the epoch counter at `epoch` (as if earlier runs had allocated up to it).
    pub fn with_epoch(epoch: u64) -> Self {
        MemoryCoordination {
            state: Mutex::new(MemoryState {
                epoch,
                ..Default::default()
            }),
        }
    }

    /// The current holder, if its lease has not expired.
    pub fn holder(&self) -> Option<LockOwner> {
        let state = self.lock_state();
        state
            .lock
            .as_ref()
            .filter(|(_, until)| *until > tokio::time::Instant::now())
            .map(|(o, _)| o.clone())
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding this mutex cannot leave the state half-written (every update is one
        // assignment), so a poisoned lock is still safe to use.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn wall_expiry(ttl: Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + ttl
}

impl RunLock for MemoryCoordination {
    fn acquire<'a>(
        &'a self,
        owner: &'a LockOwner,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>> {
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let mut state = self.lock_state();
            if let Some((holder, until)) = &state.lock
                && *until > now
                && holder.token != owner.token
            {
                let remaining = *until - now;
                return Err(LockError::Held {
                    holder: holder.clone(),
                    expires_at: wall_expiry(remaining),
                });
            }
            state.lock = Some((owner.clone(), now + ttl));
            Ok(LockLease {
                owner: owner.clone(),
                expires_at: wall_expiry(ttl),
            })
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LockLease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>> {
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let mut state = self.lock_state();
            match &state.lock {
                Some((holder, until)) if holder.token == lease.owner.token && *until > now => {
                    state.lock = Some((holder.clone(), now + ttl));
                    Ok(LockLease {
                        owner: lease.owner.clone(),
                        expires_at: wall_expiry(ttl),
                    })
                }
                Some((holder, _)) if holder.token == lease.owner.token => Err(LockError::Lost {
                    run: lease.owner.run_id.clone(),
                    detail: "the lease expired before it was renewed".into(),
                }),
                Some((holder, _)) => Err(LockError::Lost {
                    run: lease.owner.run_id.clone(),
                    detail: format!("it is now held by {}", holder.describe()),
                }),
                None => Err(LockError::Lost {
                    run: lease.owner.run_id.clone(),
                    detail: "the lock is no longer held by anyone".into(),
                }),
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a LockLease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let mut state = self.lock_state();
            if state
                .lock
                .as_ref()
                .is_some_and(|(holder, _)| holder.token == lease.owner.token)
            {
                state.lock = None;
            }
            Ok(())
        })
    }
}

impl EpochStore for MemoryCoordination {
    fn current(&self) -> BoxFuture<'_, Result<u64, LockError>> {
        Box::pin(async move { Ok(self.lock_state().epoch) })
    }

    fn allocate<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<u64, LockError>> {
        Box::pin(async move {
            let mut state = self.lock_state();
            if state.last_allocation.as_ref() == Some(run_id) {
                return Ok(state.epoch);
            }
            state.epoch += 1;
            state.last_allocation = Some(run_id.clone());
            Ok(state.epoch)
        })
    }
}
