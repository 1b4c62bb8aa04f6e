//! Small shared vocabulary: run ids, run kinds, modes and outcomes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of one run: `YYYYMMDDTHHMMSSZ-<8 hex>`, sortable by start time and unique across processes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A new id for a run starting at `now`.
    pub fn new(now: time::OffsetDateTime) -> Self {
        let now = now.to_offset(time::UtcOffset::UTC);
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        RunId(format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            &suffix[..8]
        ))
    }

    /// The id of the run created for `seed` (a state machine execution) that started at `at`: the same
    /// inputs always give the same id, so a retried creation names the run the first attempt created.
    pub fn derived(at: time::OffsetDateTime, seed: &str) -> Self {
        // FNV-1a: stable across versions and platforms (std's hasher is neither).
        let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let base = RunId::new(at).0;
        let stamp = &base[..base.len() - 8];
        RunId(format!("{stamp}{:08x}", hash & 0xffff_ffff))
    }

    /// Parses a run id given by a user (`lifeboat resume RUN`). Only characters that are safe as a file
    /// name and a DynamoDB key are accepted, so an id can never escape the journal directory.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(RunId(text.to_owned()))
        } else {
            Err(format!(
                "run id {text:?} is not valid: expected 1 to 64 characters of letters, digits, '-' or '_' \
                 (as listed by `lifeboat runs`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which runbook a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Planned move of the active role, zero data loss.
    Switchover,
    /// Unplanned move after the active region is lost; may lose the writes not yet replicated.
    Failover,
    /// Back to the configured primary region after a failover or switchover.
    Failback,
    /// Make the passive region a replica of the active one again (after it returns from a failure),
    /// without moving the active role: the first half of a failback, on its own.
    Reprotect,
}

impl RunKind {
    pub const ALL: [RunKind; 4] = [
        RunKind::Switchover,
        RunKind::Failover,
        RunKind::Failback,
        RunKind::Reprotect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Switchover => "switchover",
            RunKind::Failover => "failover",
            RunKind::Failback => "failback",
            RunKind::Reprotect => "reprotect",
        }
    }

    /// Whether a successful run leaves another region active (every runbook but reprotect).
    pub fn moves_active_role(self) -> bool {
        self != RunKind::Reprotect
    }

    /// The mode a runbook of this kind runs in.
    pub fn mode(self) -> Mode {
        match self {
            RunKind::Failover => Mode::Ungraceful,
            RunKind::Switchover | RunKind::Failback | RunKind::Reprotect => Mode::Graceful,
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown runbook {s:?}: expected switchover, failover, failback or reprotect"
                )
            })
    }
}

/// How failures are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every step must succeed; a failed step pauses the run (resumable).
    Graceful,
    /// Steps that need the lost region get short bounds and are skipped (journaled with the error) when
    /// they fail; the other steps still must succeed.
    Ungraceful,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Graceful => "graceful",
            Mode::Ungraceful => "ungraceful",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended (or where it stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Every step succeeded or was skipped as allowed.
    Succeeded,
    /// Preflight declined before anything was changed.
    Refused,
    /// A step failed; the run is paused and `lifeboat resume` continues it.
    Failed,
    /// Started and not finished (the process stopped); `lifeboat resume` continues it.
    Interrupted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Refused => "refused",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_reject_path_tricks() {
        let a = RunId::new(time::macros::datetime!(2026-01-02 03:04:05 UTC));
        let b = RunId::new(time::macros::datetime!(2026-01-02 03:04:06 UTC));
        assert!(a < b);
        assert!(a.as_str().starts_with("20260102T030405Z-"));
        assert_eq!(RunId::parse(a.as_str()).unwrap(), a);
        assert!(RunId::parse("../etc").is_err());
        assert!(RunId::parse("").is_err());
    }

    #[test]
    fn kinds_parse_and_pick_their_mode() {
        assert_eq!(
            "failover".parse::<RunKind>().unwrap().mode(),
            Mode::Ungraceful
        );
        assert_eq!(
            "switchover".parse::<RunKind>().unwrap().mode(),
            Mode::Graceful
        );
        assert!("fail".parse::<RunKind>().is_err());
    }
}
