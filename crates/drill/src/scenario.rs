//! What a drill is asked to do: the scenario, the load and where the report goes, validated before anything
//! runs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A planned switchover through the runbooks while the load runs.
    Planned,
    /// `kill -9` of the primary region's database server.
    DbCrash,
    /// Every process of the primary region killed at once.
    RegionOutage,
    /// The primary region cut off from the front door, the control server and the standby, while a client
    /// inside it keeps writing to its storefront directly.
    Partition,
    /// The whole DR cycle: a fault (`--fault`), the automated failover, the failed region's return,
    /// reprotect and failback to it, under one load with one ledger.
    Cycle,
    /// `--cycles` cycles in a seeded random order (`--seed`): planned switchovers, database crashes, region
    /// outages, partitions, storefront kills and `kill -9` of a running runbook finished by `lifeboat
    /// resume`, each followed by the return to the original primary.
    Soak,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Planned,
        Scenario::DbCrash,
        Scenario::RegionOutage,
        Scenario::Partition,
        Scenario::Cycle,
        Scenario::Soak,
    ];
    /// The faults a `cycle` drill can start with.
    pub const CYCLE_FAULTS: [Scenario; 3] = [
        Scenario::DbCrash,
        Scenario::RegionOutage,
        Scenario::Partition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Planned => "planned",
            Scenario::DbCrash => "db-crash",
            Scenario::RegionOutage => "region-outage",
            Scenario::Partition => "partition",
            Scenario::Cycle => "cycle",
            Scenario::Soak => "soak",
        }
    }

    /// Whether the drill runs whole cycles (there and back) rather than one transition.
    pub fn is_cycle(self) -> bool {
        matches!(self, Scenario::Cycle | Scenario::Soak)
    }

    /// Faults are recovered by the DR automation on its own; a planned drill runs the switchover itself.
    pub fn is_fault(self) -> bool {
        self != Scenario::Planned
    }

    pub fn fault_label(self) -> &'static str {
        match self {
            Scenario::Planned => "switchover started",
            Scenario::DbCrash => "primary database killed (kill -9)",
            Scenario::RegionOutage => "primary region killed",
            Scenario::Partition => "primary region isolated",
            Scenario::Cycle => "DR cycle started",
            Scenario::Soak => "soak started",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s).ok_or_else(|| {
            format!(
                "unknown scenario {s:?}: expected one of planned, db-crash, region-outage, partition, cycle, soak"
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replication {
    SemiSync,
    Async,
}

impl Replication {
    pub fn name(self) -> &'static str {
        match self {
            Replication::SemiSync => "semi-sync",
            Replication::Async => "async",
        }
    }
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Replication {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "semi-sync" => Ok(Replication::SemiSync),
            "async" => Ok(Replication::Async),
            other => Err(format!(
                "unknown replication mode {other:?}: expected semi-sync or async"
            )),
        }
    }
}

/// Bounds that keep a mistyped flag from turning a drill into a load test of the machine.
pub const MAX_RATE: f64 = 2000.0;
pub const MAX_DURATION_S: f64 = 600.0;
/// A fault needs load on both sides of it: the fault is injected a third of the way in, and the DR
/// automation needs seconds to act.
pub const MIN_DURATION_S: f64 = 3.0;

#[derive(Debug, Clone, PartialEq)]
pub struct DrillOptions {
    pub scenario: Scenario,
    /// Checkouts per second offered through the front door (open loop).
    pub rate: f64,
    pub duration_s: f64,
    pub report_dir: PathBuf,
    /// `None`: keep the mode the runtime runs with.
    pub replication: Option<Replication>,
    /// `cycle`: the fault the cycle starts with.
    pub fault: Scenario,
    /// `soak`: how many cycles.
    pub cycles: u32,
    /// `soak`: the seed of the random sequence (the same seed gives the same sequence of faults and delays).
    pub seed: u64,
}

impl DrillOptions {
    pub const DEFAULT_RATE: f64 = 40.0;
    pub const DEFAULT_DURATION_S: f64 = 10.0;
    pub const DEFAULT_CYCLES: u32 = 5;
    pub const MAX_CYCLES: u32 = 500;

    /// Validates raw flag values; the error names the flag and what is accepted.
    pub fn new(
        scenario: &str,
        rate: Option<f64>,
        duration_s: Option<f64>,
        report_dir: PathBuf,
        replication: Option<&str>,
    ) -> Result<DrillOptions, String> {
        let scenario: Scenario = scenario.parse().map_err(|e| format!("--scenario: {e}"))?;
        let rate = rate.unwrap_or(Self::DEFAULT_RATE);
        if !rate.is_finite() || rate <= 0.0 || rate > MAX_RATE {
            return Err(format!(
                "--load: {rate} is not a rate between 0 (exclusive) and {MAX_RATE} checkouts/s"
            ));
        }
        let duration_s = duration_s.unwrap_or(Self::DEFAULT_DURATION_S);
        if !duration_s.is_finite() || !(MIN_DURATION_S..=MAX_DURATION_S).contains(&duration_s) {
            return Err(format!(
                "--duration: {duration_s} s is outside {MIN_DURATION_S}..={MAX_DURATION_S} s"
            ));
        }
        let replication = replication
            .map(|r| r.parse().map_err(|e| format!("--replication: {e}")))
            .transpose()?;
        Ok(DrillOptions {
            scenario,
            rate,
            duration_s,
            report_dir,
            replication,
            fault: Scenario::DbCrash,
            cycles: Self::DEFAULT_CYCLES,
            seed: 1,
        })
    }

    /// The cycle flags: `--fault` (cycle only), `--cycles` and `--seed` (soak only). A flag given to a
    /// scenario that does not read it is a usage error rather than silently ignored.
    pub fn with_cycle_flags(
        mut self,
        fault: Option<&str>,
        cycles: Option<u32>,
        seed: Option<u64>,
    ) -> Result<DrillOptions, String> {
        if let Some(fault) = fault {
            if self.scenario != Scenario::Cycle {
                return Err(format!(
                    "--fault: only the cycle scenario takes a fault, not {}",
                    self.scenario
                ));
            }
            let parsed: Scenario = fault.parse().map_err(|e| format!("--fault: {e}"))?;
            if !Scenario::CYCLE_FAULTS.contains(&parsed) {
                return Err(format!(
                    "--fault: {fault:?} is not a fault a cycle starts with: expected db-crash, region-outage or partition"
                ));
            }
            self.fault = parsed;
        }
        if (cycles.is_some() || seed.is_some()) && self.scenario != Scenario::Soak {
            return Err(format!(
                "--{}: only the soak scenario runs several cycles, not {}",
                if cycles.is_some() { "cycles" } else { "seed" },
                self.scenario
            ));
        }
        if let Some(cycles) = cycles {
            if !(1..=Self::MAX_CYCLES).contains(&cycles) {
                return Err(format!(
                    "--cycles: {cycles} is outside 1..={}",
                    Self::MAX_CYCLES
                ));
            }
            self.cycles = cycles;
        }
        if let Some(seed) = seed {
            self.seed = seed;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_round_trip_through_their_names() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }

    #[test]
    fn defaults_apply_and_bad_values_name_their_flag() {
        let o = DrillOptions::new("db-crash", None, None, "r".into(), None).unwrap();
        assert_eq!((o.rate, o.duration_s, o.replication), (40.0, 10.0, None));

        type Case<'a> = (&'a str, Option<f64>, Option<f64>, Option<&'a str>, &'a str);
        let cases: [Case; 6] = [
            ("meteor", None, None, None, "--scenario"),
            ("planned", Some(0.0), None, None, "--load"),
            ("planned", Some(f64::NAN), None, None, "--load"),
            ("planned", Some(5000.0), None, None, "--load"),
            ("planned", None, Some(1.0), None, "--duration"),
            ("planned", None, None, Some("sync"), "--replication"),
        ];
        for (scenario, rate, duration, repl, flag) in cases {
            let err = DrillOptions::new(scenario, rate, duration, "r".into(), repl).unwrap_err();
            assert!(err.starts_with(flag), "{err}");
        }
        let o = DrillOptions::new(
            "partition",
            Some(200.0),
            Some(20.0),
            "r".into(),
            Some("async"),
        )
        .unwrap();
        assert_eq!(o.replication, Some(Replication::Async));
    }

    #[test]
    fn cycle_flags_belong_to_their_scenarios() {
        let cycle = || DrillOptions::new("cycle", None, None, "r".into(), None).unwrap();
        let soak = || DrillOptions::new("soak", None, None, "r".into(), None).unwrap();
        assert_eq!(
            cycle().with_cycle_flags(None, None, None).unwrap().fault,
            Scenario::DbCrash
        );
        assert_eq!(
            cycle()
                .with_cycle_flags(Some("partition"), None, None)
                .unwrap()
                .fault,
            Scenario::Partition
        );
        let o = soak().with_cycle_flags(None, Some(20), Some(7)).unwrap();
        assert_eq!((o.cycles, o.seed), (20, 7));
        for (o, fault, cycles, seed, flag) in [
            (cycle(), Some("planned"), None, None, "--fault"),
            (cycle(), Some("meteor"), None, None, "--fault"),
            (soak(), Some("db-crash"), None, None, "--fault"),
            (cycle(), None, Some(3), None, "--cycles"),
            (cycle(), None, None, Some(3), "--seed"),
            (soak(), None, Some(0), None, "--cycles"),
        ] {
            let err = o.with_cycle_flags(fault, cycles, seed).unwrap_err();
            assert!(err.starts_with(flag), "{err}");
        }
    }
}
