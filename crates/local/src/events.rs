//! The runtime's event log: one JSON object per line in `<state>/local/events.jsonl`, appended by every
//! process of the runtime (supervisor, DR backend, drills). Drills read it for the detection instant and
//! the timing of each runbook step.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};

/// One event. `kind` is one of the `KIND_*` constants (drills may add their own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock instant, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The runbook run this belongs to, for step events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The runbook step (`raise-fence`, `promote`, ...), for step events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The runtime is up (after `local up`).
pub const KIND_RUNTIME_UP: &str = "runtime-up";
/// A probe of the active region failed (one per failed probe).
pub const KIND_PROBE_FAILED: &str = "probe-failed";
/// The active region failed `failure_threshold` probes in a row: the detection instant.
pub const KIND_REGION_DOWN: &str = "region-down-detected";
/// The supervisor's automation starts a runbook (`detail`: which and why).
pub const KIND_AUTOMATION_STARTED: &str = "automation-started";
/// The automation decided not to act (`detail`: why).
pub const KIND_AUTOMATION_DECLINED: &str = "automation-declined";
pub const KIND_AUTOMATION_FINISHED: &str = "automation-finished";
/// A runbook step (run through the local backend) started / ended.
pub const KIND_STEP_STARTED: &str = "step-started";
pub const KIND_STEP_FINISHED: &str = "step-finished";
pub const KIND_STEP_FAILED: &str = "step-failed";
/// Fault injection through the runtime API.
pub const KIND_DATABASE_KILLED: &str = "database-killed";
pub const KIND_REGION_KILLED: &str = "region-killed";
pub const KIND_STOREFRONT_KILLED: &str = "storefront-killed";
pub const KIND_REGION_ISOLATED: &str = "region-isolated";
pub const KIND_REGION_HEALED: &str = "region-healed";
pub const KIND_REGION_RESTORED: &str = "region-restored";
pub const KIND_STOREFRONT_RESTARTED: &str = "storefront-restarted";
pub const KIND_DATABASE_STARTED: &str = "database-started";
/// Reprotect rebuilt a diverged old primary from a copy of the current one (`detail`: the copy's position
/// and what was set aside).
pub const KIND_REPROTECT_REBUILT: &str = "reprotect-rebuilt";

impl Event {
    pub fn now(kind: &str) -> Self {
        Event {
            at_ms: now_ms(),
            kind: kind.to_owned(),
            region: None,
            run_id: None,
            step: None,
            detail: String::new(),
        }
    }
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }
    pub fn step(mut self, run_id: &str, step: &str) -> Self {
        self.run_id = Some(run_id.to_owned());
        self.step = Some(step.to_owned());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
    pub fn at(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.at_ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

pub fn now_ms() -> u64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    u64::try_from(now).unwrap_or(0)
}

/// Appends to and reads the event log.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    pub fn new(path: &Path) -> Self {
        EventLog {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event as one line (a single `write` on an `O_APPEND` file: lines from several
    /// processes never interleave).
    pub fn append(&self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| LocalError::Failed(format!("encoding an event: {e}")))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| LocalError::io("opening the event log", &self.path, e))?;
        file.write_all(&line)
            .map_err(|e| LocalError::io("appending to the event log", &self.path, e))
    }

    /// Appends, logging instead of failing: an event that cannot be written must not stop a recovery.
    pub fn record(&self, event: Event) {
        if let Err(e) = self.append(&event) {
            tracing::warn!("could not record event {}: {e}", event.kind);
        }
    }

    /// Every event so far (an absent log is empty; an unreadable line is skipped).
    pub fn read_all(&self) -> Result<Vec<Event>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(LocalError::io("reading the event log", &self.path, e)),
        }
    }

    /// Events at or after `since_ms`.
    pub fn read_since(&self, since_ms: u64) -> Result<Vec<Event>> {
        Ok(self
            .read_all()?
            .into_iter()
            .filter(|e| e.at_ms >= since_ms)
            .collect())
    }
}
