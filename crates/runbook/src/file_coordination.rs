//! Lock and epoch in files, safe between processes on one machine (the local runtime).
//!
//! Layout under the directory: `lock.json` (the current lease), `epoch.json` (the counter and the run that
//! got the latest value), `coordination.flock` (an empty file used only for an OS file lock).
//!
//! Every read-check-write runs while holding an exclusive OS lock on `coordination.flock`, so two
//! processes never interleave their check and write; the OS drops that lock when a process dies, so a
//! killed run cannot wedge it. State files are replaced with write-to-temporary + fsync + rename, so a
//! reader (or a crash) only ever sees a whole old or a whole new file.
//!
//! A lease held by a process that no longer exists on this host counts as expired: after `kill -9` of a
//! run, `lifeboat resume` takes over at once instead of waiting out the lease.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::coordination::{EpochStore, LockError, LockLease, LockOwner, RunLock, hostname};
use crate::file_journal::write_atomically;
use crate::model::RunId;

#[derive(Debug, Clone)]
pub struct FileCoordination {
    dir: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EpochFile {
    epoch: u64,
    last_run: Option<RunId>,
}

impl FileCoordination {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileCoordination { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn storage(path: &Path, e: impl std::fmt::Display) -> LockError {
        LockError::Storage {
            location: path.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// Runs `f` while holding the exclusive OS lock.
    fn exclusive<T>(&self, f: impl FnOnce() -> Result<T, LockError>) -> Result<T, LockError> {
        fs::create_dir_all(&self.dir).map_err(|e| Self::storage(&self.dir, e))?;
        let path = self.dir.join("coordination.flock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Self::storage(&path, e))?;
        file.lock().map_err(|e| Self::storage(&path, e))?;
        let result = f();
        // Dropping the file releases the lock too; unlocking explicitly reports nothing useful on failure.
        let _ = file.unlock();
        result
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock.json")
    }

    fn epoch_path(&self) -> PathBuf {
        self.dir.join("epoch.json")
    }

    fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, LockError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Self::storage(path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::storage(path, e)),
        }
    }

    fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), LockError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| Self::storage(path, e))?;
        write_atomically(path, &bytes).map_err(|e| Self::storage(path, e))
    }

    /// The current lease, if one is on file and still live.
    pub fn current_lease(&self) -> Result<Option<LockLease>, LockError> {
        let lease: Option<LockLease> = Self::read_json(&self.lock_path())?;
        Ok(lease.filter(is_live))
    }
}

/// Not expired, and (when held on this host) held by a process that still exists.
fn is_live(lease: &LockLease) -> bool {
    if lease.expires_at <= time::OffsetDateTime::now_utc() {
        return false;
    }
    if lease.owner.host == hostname() && lease.owner.pid != std::process::id() {
        return process_alive(lease.owner.pid);
    }
    true
}

/// Whether process `pid` exists on this host and is not a zombie. A process killed with `kill -9` stays
/// a zombie until its parent reaps it (in containers whose init does not reap, for a long time); it
/// holds nothing, so it counts as gone.
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        // No such process (or no /proc): only the lease expiry decides then.
        return !Path::new("/proc/self").exists();
    };
    // The state is the first field after the command name, which is in parentheses and may contain
    // spaces or parentheses itself: take what follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | Some("x"))
}

fn expiry(ttl: Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + ttl
}

impl RunLock for FileCoordination {
    fn acquire<'a>(
        &'a self,
        owner: &'a LockOwner,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>> {
        Box::pin(async move {
            self.exclusive(|| {
                let path = self.lock_path();
                let current: Option<LockLease> = Self::read_json(&path)?;
                if let Some(current) = current.filter(is_live)
                    && current.owner.token != owner.token
                {
                    return Err(LockError::Held {
                        holder: current.owner,
                        expires_at: current.expires_at,
                    });
                }
                let lease = LockLease {
                    owner: owner.clone(),
                    expires_at: expiry(ttl),
                };
                Self::write_json(&path, &lease)?;
                Ok(lease)
            })
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LockLease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>> {
        Box::pin(async move {
            self.exclusive(|| {
                let path = self.lock_path();
                let current: Option<LockLease> = Self::read_json(&path)?;
                match current {
                    Some(current) if current.owner.token == lease.owner.token => {
                        if current.expires_at <= time::OffsetDateTime::now_utc() {
                            return Err(LockError::Lost {
                                run: lease.owner.run_id.clone(),
                                detail: "the lease expired before it was renewed".into(),
                            });
                        }
                        let renewed = LockLease {
                            owner: lease.owner.clone(),
                            expires_at: expiry(ttl),
                        };
                        Self::write_json(&path, &renewed)?;
                        Ok(renewed)
                    }
                    Some(current) => Err(LockError::Lost {
                        run: lease.owner.run_id.clone(),
                        detail: format!("it is now held by {}", current.owner.describe()),
                    }),
                    None => Err(LockError::Lost {
                        run: lease.owner.run_id.clone(),
                        detail: format!("{} no longer exists", path.display()),
                    }),
                }
            })
        })
    }

    fn release<'a>(&'a self, lease: &'a LockLease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            self.exclusive(|| {
                let path = self.lock_path();
                let current: Option<LockLease> = Self::read_json(&path)?;
                if current.is_some_and(|c| c.owner.token == lease.owner.token) {
                    fs::remove_file(&path).map_err(|e| Self::storage(&path, e))?;
                }
                Ok(())
            })
        })
    }
}

impl EpochStore for FileCoordination {
    fn current(&self) -> BoxFuture<'_, Result<u64, LockError>> {
        Box::pin(async move {
            let file: Option<EpochFile> = Self::read_json(&self.epoch_path())?;
            Ok(file.map_or(0, |f| f.epoch))
        })
    }

    fn allocate<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<u64, LockError>> {
        Box::pin(async move {
            self.exclusive(|| {
                let path = self.epoch_path();
                let mut file: EpochFile = Self::read_json(&path)?.unwrap_or_default();
                if file.last_run.as_ref() == Some(run_id) {
                    return Ok(file.epoch);
                }
                file.epoch = file
                    .epoch
                    .checked_add(1)
                    .ok_or_else(|| Self::storage(&path, "epoch overflow"))?;
                file.last_run = Some(run_id.clone());
                Self::write_json(&path, &file)?;
                Ok(file.epoch)
            })
        })
    }
}
