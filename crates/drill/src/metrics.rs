//! Figures computed from the client ledger alone: recovery time, write unavailability and the timeline.
//!
//! Only the front-door client's acknowledgements count here: that is what customers see. The client inside
//! a cut-off region only serves the fencing check.

use crate::ledger::{Client, Ledger, UnixMs};
use serde::{Deserialize, Serialize};

/// A gap between two acknowledgements longer than this counts as writes being unavailable. At the loads
/// drills run (tens to hundreds of checkouts per second) normal gaps are a few tens of milliseconds; a
/// quarter second without any acknowledgement is an interruption a customer would notice.
pub const UNAVAILABLE_GAP_MS: i64 = 250;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub from_ms: UnixMs,
    pub to_ms: UnixMs,
}

impl Gap {
    pub fn seconds(&self) -> f64 {
        (self.to_ms - self.from_ms) as f64 / 1000.0
    }
}

fn front_door_ack_times(ledger: &Ledger) -> Vec<UnixMs> {
    let mut t: Vec<UnixMs> = ledger
        .acks
        .iter()
        .filter(|a| a.client == Client::FrontDoor)
        .map(|a| a.acked_ms)
        .collect();
    t.sort_unstable();
    t
}

/// The recovery gap: from the last front-door success before the disruption to the first success after
/// it, i.e. the longest gap between consecutive acknowledgements that ends after `fault_ms`. `None` when
/// nothing was acknowledged after the fault (the service did not come back while the load ran), or nothing
/// before it.
pub fn recovery_gap(ledger: &Ledger, fault_ms: UnixMs) -> Option<Gap> {
    let times = front_door_ack_times(ledger);
    times
        .windows(2)
        .filter(|w| w[1] > fault_ms)
        .map(|w| Gap {
            from_ms: w[0],
            to_ms: w[1],
        })
        .max_by_key(|g| g.to_ms - g.from_ms)
        .filter(|_| times.first().is_some_and(|&t| t <= fault_ms))
}

/// Like [`recovery_gap`] for one transition of several: the longest gap that ends after `from_ms` and no
/// later than `until_ms`.
pub fn recovery_gap_between(ledger: &Ledger, from_ms: UnixMs, until_ms: UnixMs) -> Option<Gap> {
    let times = front_door_ack_times(ledger);
    times
        .windows(2)
        .filter(|w| w[1] > from_ms && w[1] <= until_ms)
        .map(|w| Gap {
            from_ms: w[0],
            to_ms: w[1],
        })
        .max_by_key(|g| g.to_ms - g.from_ms)
        .filter(|_| times.first().is_some_and(|&t| t <= from_ms))
}

/// Total time writes were unavailable through the front door while load was offered: every gap between
/// acknowledgements longer than [`UNAVAILABLE_GAP_MS`], plus the tail when the load ended without the
/// service coming back. Returns the total in seconds and the gaps.
pub fn write_unavailability(
    ledger: &Ledger,
    load_start_ms: UnixMs,
    load_end_ms: UnixMs,
) -> (f64, Vec<Gap>) {
    let times = front_door_ack_times(ledger);
    let mut gaps = Vec::new();
    let mut previous = load_start_ms;
    for &t in &times {
        if t - previous > UNAVAILABLE_GAP_MS {
            gaps.push(Gap {
                from_ms: previous,
                to_ms: t,
            });
        }
        previous = previous.max(t);
    }
    if load_end_ms - previous > UNAVAILABLE_GAP_MS {
        gaps.push(Gap {
            from_ms: previous,
            to_ms: load_end_ms,
        });
    }
    let total = gaps.iter().map(Gap::seconds).sum();
    (total, gaps)
}

/// Successes and failed attempts per interval, for the timeline chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub start_ms: UnixMs,
    pub interval_ms: i64,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the interval, seconds from the drill's start.
    pub t_s: f64,
    pub successes: u32,
    pub failures: u32,
    /// Acknowledgements to the client inside a region (partition scenario), counted apart.
    pub inside_successes: u32,
}

/// Picks an interval that gives the chart about 100 bars: 100 ms for a 10 s drill, 1 s for a long one.
pub fn timeline_interval_ms(span_ms: i64) -> i64 {
    const NICE: [i64; 8] = [50, 100, 200, 250, 500, 1000, 2000, 5000];
    let wanted = span_ms / 100;
    NICE.iter()
        .copied()
        .find(|&n| n >= wanted)
        .unwrap_or(10_000)
}

pub fn timeline(ledger: &Ledger, start_ms: UnixMs, end_ms: UnixMs) -> Timeline {
    let span = (end_ms - start_ms).max(1);
    let interval_ms = timeline_interval_ms(span);
    let count = (span + interval_ms - 1) / interval_ms;
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            t_s: (i * interval_ms) as f64 / 1000.0,
            ..Bucket::default()
        })
        .collect();
    let index = |t: UnixMs| -> Option<usize> {
        if t < start_ms {
            return None;
        }
        let i = ((t - start_ms) / interval_ms) as usize;
        // Entries landing exactly on the end belong to the last bar.
        Some(i.min(buckets_len(count) - 1))
    };
    for ack in &ledger.acks {
        if let Some(i) = index(ack.acked_ms) {
            match ack.client {
                Client::FrontDoor => buckets[i].successes += 1,
                Client::InsideRegion(_) => buckets[i].inside_successes += 1,
            }
        }
    }
    for failure in &ledger.failures {
        if let Some(i) = index(failure.at_ms) {
            buckets[i].failures += 1;
        }
    }
    Timeline {
        start_ms,
        interval_ms,
        buckets,
    }
}

fn buckets_len(count: i64) -> usize {
    count.max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ack, FailedAttempt};

    fn ledger_with_acks(times: &[UnixMs]) -> Ledger {
        Ledger {
            acks: times
                .iter()
                .enumerate()
                .map(|(i, &t)| Ack {
                    idempotency_key: format!("k{i}"),
                    order_id: format!("o{i}"),
                    started_ms: t - 5,
                    last_attempt_ms: t - 5,
                    acked_ms: t,
                    region: "r".into(),
                    epoch: 1,
                    lines: vec![],
                    attempts: 1,
                    client: Client::FrontDoor,
                    replayed: false,
                    written_ms: None,
                })
                .collect(),
            ..Ledger::default()
        }
    }

    #[test]
    fn recovery_gap_spans_the_fault() {
        let l = ledger_with_acks(&[0, 100, 200, 300, 2300, 2400, 2500]);
        let g = recovery_gap(&l, 350).unwrap();
        assert_eq!((g.from_ms, g.to_ms), (300, 2300));
        assert_eq!(g.seconds(), 2.0);
    }

    #[test]
    fn recovery_gap_found_when_the_disruption_starts_after_the_fault_instant() {
        // A planned switchover keeps acknowledging until its fence goes up.
        let l = ledger_with_acks(&[0, 100, 200, 300, 400, 900, 1000]);
        let g = recovery_gap(&l, 150).unwrap();
        assert_eq!((g.from_ms, g.to_ms), (400, 900));
    }

    #[test]
    fn no_recovery_means_no_gap() {
        let l = ledger_with_acks(&[0, 100, 200]);
        assert_eq!(recovery_gap(&l, 250), None);
        assert_eq!(
            recovery_gap(&ledger_with_acks(&[300, 400]), 250),
            None,
            "nothing before the fault"
        );
    }

    #[test]
    fn unavailability_sums_long_gaps_and_an_unrecovered_tail() {
        let l = ledger_with_acks(&[100, 200, 1200, 1300]);
        let (total, gaps) = write_unavailability(&l, 0, 1400);
        assert_eq!(gaps.len(), 1);
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let (total, gaps) = write_unavailability(&l, 0, 3300);
        assert_eq!(gaps.len(), 2);
        assert!((total - 3.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn timeline_counts_successes_and_failures_per_interval() {
        let mut l = ledger_with_acks(&[10, 20, 150, 999, 1000]);
        l.failures.push(FailedAttempt {
            idempotency_key: "x".into(),
            at_ms: 160,
            reason: "503".into(),
            client: Client::FrontDoor,
        });
        let t = timeline(&l, 0, 1000);
        assert_eq!(t.interval_ms, 50);
        assert_eq!(t.buckets.len(), 20);
        assert_eq!(t.buckets[0].successes, 2);
        assert_eq!(t.buckets[3].successes, 1);
        assert_eq!(t.buckets[3].failures, 1);
        assert_eq!(
            t.buckets[19].successes, 2,
            "the last instant falls into the last bar"
        );
        let total: u32 = t.buckets.iter().map(|b| b.successes).sum();
        assert_eq!(total, 5);
    }
}
