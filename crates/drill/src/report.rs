//! `report.json`: the drill's verdict and every figure behind it. The shape is read by CI and by people's own
//! tooling, so fields are only ever added.

use crate::metrics::{Gap, Timeline};
use crate::scenario::{Replication, Scenario};
use crate::verify::Fence;
use serde::{Deserialize, Serialize};

/// How many keys of each failed check are listed in the report (the counts are always complete).
pub const LISTED_KEYS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: Scenario,
    /// `pass` when nothing acknowledged was lost or duplicated and no write was accepted after the fence.
    pub verdict: Verdict,
    pub replication: Replication,
    pub load: Load,
    /// Whether the DR automation was allowed to fail over on its own (drills of faults turn it on: running a
    /// drill is the explicit human decision automatic failover otherwise needs).
    pub automatic_failover_allowed: bool,
    /// Whether writes came back (the other region active, fence down, newer epoch) while the drill watched.
    pub recovered: bool,
    pub started_at: String,
    pub finished_at: String,
    pub primary_before: String,
    pub primary_after: Option<String>,
    pub epoch_before: u64,
    pub epoch_after: Option<u64>,

    pub acknowledged: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub lines_mismatched: usize,
    pub writes_accepted_after_fence: usize,
    /// Fault injected → DR automation detected it. `null` for the planned scenario (nothing to detect).
    pub detection_s: Option<f64>,
    /// Last front-door success before the disruption → first success after it. `null` if service did not
    /// come back while the load ran.
    pub rto_s: Option<f64>,
    /// Total time the front door acknowledged no write while load was offered (gaps over 250 ms).
    pub write_unavailable_s: f64,

    pub attempts_failed: usize,
    pub checkouts_abandoned: usize,
    pub acknowledged_by_region: Vec<(String, usize)>,
    pub acknowledged_inside_region: usize,
    /// When the fence was raised / the demoted region's lease ran out, and the epoch from then on.
    pub fence: Option<Fence>,
    pub fault: Marker,
    pub detection: Option<Marker>,
    pub runbooks: Vec<RunbookRun>,
    pub unavailable_gaps: Vec<Gap>,
    pub lost_keys: Vec<String>,
    pub duplicate_keys: Vec<String>,
    pub lines_mismatched_keys: Vec<String>,
    pub after_fence_keys: Vec<String>,
    pub targets: Vec<Target>,
    /// What the operator should know: expected losses under async replication, steps that failed, ...
    pub notes: Vec<String>,
    pub timeline: Timeline,
    pub ledger_file: String,

    /// `cycle` and `soak`: every role change (or restart) in order, each with its own figures. The
    /// single-transition fields above then hold the first fault and the worst detection and RTO.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// Transactions reprotect found only on a returning old primary and set aside before rebuilding it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<SetAsideFile>,
    /// `cycle` and `soak`: whether the standby replicated from the original primary, active again, at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicating_at_end: Option<bool>,
    /// `soak`: what was asked and how far it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakFigures>,
}

/// One move of a cycle: the fault (or planned switchover) and what the platform did about it, or the
/// failback to the original primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// 1-based cycle number.
    pub cycle: u32,
    /// `failover`, `switchover`, `resumed-switchover`, `restart` or `failback`.
    pub kind: String,
    /// What started it (the fault, or `return of <region>`).
    pub cause: String,
    pub from: String,
    pub to: String,
    /// Seconds from the drill's start.
    pub started_s: f64,
    pub detected_s: Option<f64>,
    /// When writes were back under the new epoch (`null`: never, while the drill watched).
    pub recovered_s: Option<f64>,
    pub epoch: Option<u64>,
    /// Longest gap between front-door acknowledgements that ended in this transition's window.
    pub rto_s: Option<f64>,
    /// The ledger check after this transition's cycle: `None` until the cycle ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_check: Option<LedgerCheck>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The ledger against the current primary at one point of a soak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCheck {
    pub acknowledged: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub writes_accepted_after_fence: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetAsideFile {
    pub region: String,
    pub run_id: String,
    pub sql_file: String,
    pub transactions: usize,
    pub rows: u64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakFigures {
    pub cycles_requested: u32,
    pub cycles_completed: u32,
    pub seed: u64,
    /// RTOs of every role change, in seconds: min, median, 90th percentile, max.
    pub rto_min_s: Option<f64>,
    pub rto_p50_s: Option<f64>,
    pub rto_p90_s: Option<f64>,
    pub rto_max_s: Option<f64>,
    /// Count of each move in the sequence.
    pub moves: Vec<(String, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub checkouts_started: usize,
    /// For the partition scenario: the rate of the client writing from inside the cut-off region.
    pub inside_rate_per_s: Option<f64>,
    /// The front-door client's highest counts of checkouts in progress and of open HTTP exchanges: a run
    /// that reached its client's bounds shed load, and says so here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_peaks: Option<crate::load::ClientPeaks>,
}

/// A point on the timeline: the fault, the detection, a runbook step's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub label: String,
    /// Seconds from the drill's start.
    pub at_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookRun {
    pub runbook: String,
    pub run_id: String,
    pub outcome: String,
    pub started_s: f64,
    pub ended_s: Option<f64>,
    pub steps: Vec<StepTiming>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub name: String,
    pub started_s: f64,
    pub ended_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub outcome: String,
}

/// A target from the issue, checked against this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub limit: String,
    pub measured: String,
    pub met: bool,
}

impl Report {
    /// The few lines printed at the end of a drill.
    pub fn summary(&self) -> String {
        let secs = |v: Option<f64>| v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "-".into());
        let mut out = format!(
            "drill {scenario}: {verdict}\n  replication {repl}, load {rate}/s for {dur} s, automatic failover {auto}\n  \
             primary {before} -> {after}, epoch {eb} -> {ea}\n  \
             acknowledged {ack}, lost {lost}, duplicates {dup}, lines mismatched {lines}, accepted after fence {fence}\n  \
             detection {det}, rto {rto}, write unavailable {wu:.2} s, failed attempts {failed}, abandoned {ab}\n{peaks}",
            scenario = self.scenario,
            verdict = match self.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
            },
            repl = self.replication,
            rate = self.load.rate_per_s,
            dur = self.load.duration_s,
            auto = if self.automatic_failover_allowed {
                "allowed"
            } else {
                "not allowed"
            },
            before = self.primary_before,
            after = self.primary_after.as_deref().unwrap_or("?"),
            eb = self.epoch_before,
            ea = self
                .epoch_after
                .map(|e| e.to_string())
                .unwrap_or_else(|| "?".into()),
            ack = self.acknowledged,
            lost = self.lost,
            dup = self.duplicates,
            lines = self.lines_mismatched,
            fence = self.writes_accepted_after_fence,
            det = secs(self.detection_s),
            rto = secs(self.rto_s),
            wu = self.write_unavailable_s,
            failed = self.attempts_failed,
            ab = self.checkouts_abandoned,
            peaks = self
                .load
                .client_peaks
                .map(|p| format!(
                    "  client at most {} checkouts and {} requests in flight\n",
                    p.checkouts_in_flight, p.requests_in_flight
                ))
                .unwrap_or_default(),
        );
        for t in &self.transitions {
            out.push_str(&format!(
                "  cycle {} {}: {} -> {} ({}), recovered {}, rto {}{}\n",
                t.cycle,
                t.kind,
                t.from,
                t.to,
                t.cause,
                secs(t.recovered_s),
                secs(t.rto_s),
                t.ledger_check
                    .as_ref()
                    .map(|c| format!(
                        ", ledger {} acknowledged, lost {}, duplicates {}, after fence {}",
                        c.acknowledged, c.lost, c.duplicates, c.writes_accepted_after_fence
                    ))
                    .unwrap_or_default()
            ));
        }
        for f in &self.set_aside {
            out.push_str(&format!("  set aside: {}\n", f.summary));
        }
        if let Some(s) = &self.soak {
            out.push_str(&format!(
                "  soak: {}/{} cycles, seed {}, rto min {} p50 {} p90 {} max {}\n",
                s.cycles_completed,
                s.cycles_requested,
                s.seed,
                secs(s.rto_min_s),
                secs(s.rto_p50_s),
                secs(s.rto_p90_s),
                secs(s.rto_max_s)
            ));
        }
        if let Some(r) = self.replicating_at_end {
            out.push_str(&format!(
                "  both regions replicating at the end: {}\n",
                if r { "yes" } else { "NO" }
            ));
        }
        for t in &self.targets {
            out.push_str(&format!(
                "  target {}: {} (limit {}, measured {})\n",
                t.name,
                if t.met { "met" } else { "MISSED" },
                t.limit,
                t.measured
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        out
    }
}
