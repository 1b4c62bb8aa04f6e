//! Every scenario once at a modest load on a real local runtime, and the drill's error paths.

mod support;

use lifeboat_contract::exit;
use support::{TestRuntime, text};

const LOAD: &str = "40";
const DURATION: &str = "9";

fn assert_clean_verdict(scenario: &str) {
    let rt = TestRuntime::up();
    let (out, report, dir) = rt.drill(
        scenario,
        &[
            "--scenario",
            scenario,
            "--load",
            LOAD,
            "--duration",
            DURATION,
        ],
    );
    let report =
        report.unwrap_or_else(|| panic!("no report.json in {}:\n{}", dir.display(), text(&out)));
    assert_eq!(
        out.status.code(),
        Some(exit::OK),
        "{}\n{report:#}",
        text(&out)
    );
    assert_eq!(report["scenario"], scenario);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["lost"], 0, "{report:#}");
    assert_eq!(report["duplicates"], 0, "{report:#}");
    assert_eq!(report["writes_accepted_after_fence"], 0, "{report:#}");
    assert_eq!(report["lines_mismatched"], 0, "{report:#}");
    // 40/s for 9 s: a few hundred checkouts, nearly all acknowledged.
    let acknowledged = report["acknowledged"].as_u64().unwrap();
    assert!(
        acknowledged >= 200,
        "only {acknowledged} acknowledged:\n{report:#}"
    );
    assert_ne!(
        report["primary_after"], report["primary_before"],
        "the roles did not change:\n{report:#}"
    );
    assert!(report["epoch_after"].as_u64() > report["epoch_before"].as_u64());
    assert!(
        report["rto_s"].as_f64().is_some(),
        "service never came back:\n{report:#}"
    );
    let steps = report["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap().clone())
        .count();
    assert!(
        steps >= 5,
        "the report lists {steps} runbook steps:\n{report:#}"
    );
    if scenario != "planned" {
        assert!(
            report["detection_s"].as_f64().is_some(),
            "no detection:\n{report:#}"
        );
        assert_eq!(report["automatic_failover_allowed"], true);
    }
    if scenario == "partition" {
        assert!(
            report["acknowledged_inside_region"].as_u64().unwrap() > 0,
            "the inside client never wrote:\n{report:#}"
        );
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Runbook steps"),
        "report.html lacks its chart"
    );
    assert!(
        !html.contains("http://") || !html.contains("<script src"),
        "report.html must be self-contained"
    );
    rt.down_and_check_clean();
}

#[test]
fn planned_switchover_under_load_loses_nothing() {
    assert_clean_verdict("planned");
}

#[test]
fn database_crash_is_recovered_without_loss() {
    assert_clean_verdict("db-crash");
}

#[test]
fn region_outage_is_recovered_without_loss() {
    assert_clean_verdict("region-outage");
}

#[test]
fn partition_accepts_no_write_after_the_fence() {
    assert_clean_verdict("partition");
}

#[test]
fn bad_arguments_are_usage_errors_naming_the_flag() {
    let rt = TestRuntime::configured("");
    for (args, flag) in [
        (vec!["--scenario", "meteor"], "--scenario"),
        (vec!["--scenario", "planned", "--load", "0"], "--load"),
        (vec!["--scenario", "planned", "--load", "lots"], "--load"),
        (
            vec!["--scenario", "planned", "--duration", "1"],
            "--duration",
        ),
        (
            vec!["--scenario", "planned", "--replication", "sync"],
            "--replication",
        ),
        (vec![], "--scenario"),
    ] {
        let (out, report, _) = rt.drill("bad", &args);
        assert_eq!(
            out.status.code(),
            Some(exit::USAGE),
            "{args:?}\n{}",
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag),
            "{args:?}: the error does not name {flag}:\n{stderr}"
        );
        assert!(report.is_none(), "a usage error must not write a report");
    }
}

#[test]
fn a_runtime_that_is_not_up_is_unavailable() {
    let rt = TestRuntime::configured("");
    let (out, report, _) = rt.drill("not-up", &["--scenario", "db-crash"]);
    assert_eq!(out.status.code(), Some(exit::UNAVAILABLE), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not up") && stderr.contains("lifeboat local up"),
        "{stderr}"
    );
    assert!(report.is_none());
}

#[test]
fn local_down_after_a_failed_drill_leaves_nothing_running() {
    let rt = TestRuntime::up();
    let runtime = rt.runtime();
    // Break the standby first: the drill must refuse (nothing to fail over to) and the runtime must still
    // come down completely.
    let standby = runtime.standby_region().to_owned();
    runtime.kill_database(&standby).unwrap();
    let (out, _, _) = rt.drill(
        "failed",
        &["--scenario", "db-crash", "--load", LOAD, "--duration", "4"],
    );
    assert_ne!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&standby),
        "{}",
        text(&out)
    );
    rt.down_and_check_clean();
}

/// Checks what every cycle drill must show: the ledger clean, home again, both regions replicating, each
/// role change recovered, and the report saying so.
fn assert_cycle_report(
    out: &std::process::Output,
    report: &serde_json::Value,
    dir: &std::path::Path,
) {
    assert_eq!(
        out.status.code(),
        Some(exit::OK),
        "{}\n{report:#}",
        text(out)
    );
    assert_eq!(report["verdict"], "pass", "{report:#}");
    for key in [
        "lost",
        "duplicates",
        "writes_accepted_after_fence",
        "lines_mismatched",
    ] {
        assert_eq!(report[key], 0, "{key}:\n{report:#}");
    }
    assert_eq!(
        report["primary_after"], report["primary_before"],
        "the original primary is not active again:\n{report:#}"
    );
    assert_eq!(report["replicating_at_end"], true, "{report:#}");
    let transitions = report["transitions"].as_array().expect("transitions");
    for t in transitions {
        assert!(t["recovered_s"].as_f64().is_some(), "not recovered: {t:#}");
        if t["kind"] != "restart" {
            assert!(t["epoch"].as_u64().is_some(), "no epoch: {t:#}");
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h2>Cycles</h2>") && html.contains("<svg"));
}

#[test]
fn a_full_cycle_after_a_database_crash_returns_home_without_loss() {
    let rt = TestRuntime::up();
    let (out, report, dir) = rt.drill(
        "cycle",
        &[
            "--scenario",
            "cycle",
            "--fault",
            "db-crash",
            "--load",
            LOAD,
            "--duration",
            "6",
        ],
    );
    let report =
        report.unwrap_or_else(|| panic!("no report.json in {}:\n{}", dir.display(), text(&out)));
    assert_cycle_report(&out, &report, &dir);
    let kinds: Vec<&str> = report["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["failover", "failback"], "{report:#}");
    assert!(report["transitions"][0]["detected_s"].as_f64().is_some());
    // Both moves are in the one ledger: acknowledged by both regions.
    let by_region = report["acknowledged_by_region"].as_array().unwrap();
    assert_eq!(by_region.len(), 2, "{report:#}");
    // The last ledger check ran after the failback.
    assert!(report["transitions"][1]["ledger_check"]["acknowledged"].as_u64() > Some(100));
    rt.down_and_check_clean();
}

/// Seed 78's five cycles are five different moves: a database crash, a switchover killed with SIGKILL after one
/// of its steps and finished by `lifeboat resume`, a region outage, a storefront kill and a partition.
#[test]
fn a_short_seeded_soak_passes_every_cycle() {
    let rt = TestRuntime::up();
    let (out, report, dir) = rt.drill(
        "soak",
        &[
            "--scenario",
            "soak",
            "--cycles",
            "5",
            "--seed",
            "78",
            "--load",
            LOAD,
        ],
    );
    let report =
        report.unwrap_or_else(|| panic!("no report.json in {}:\n{}", dir.display(), text(&out)));
    assert_cycle_report(&out, &report, &dir);
    assert_eq!(report["soak"]["cycles_completed"], 5, "{report:#}");
    assert_eq!(report["soak"]["seed"], 78);
    let moves: Vec<(String, u64)> = report["soak"]["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_u64().unwrap()))
        .collect();
    let mut kinds: Vec<&str> = moves.iter().map(|(k, _)| k.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "db-crash",
            "partition",
            "region-outage",
            "runbook-kill",
            "storefront-kill"
        ],
        "{report:#}"
    );
    assert!(moves.iter().all(|(_, n)| *n == 1), "{moves:?}");
    rt.down_and_check_clean();
}

#[test]
fn cycle_flags_on_the_wrong_scenario_are_usage_errors() {
    let rt = TestRuntime::configured("");
    for (args, flag) in [
        (
            &["--scenario", "planned", "--fault", "db-crash"][..],
            "--fault",
        ),
        (
            &["--scenario", "cycle", "--fault", "planned"][..],
            "--fault",
        ),
        (&["--scenario", "cycle", "--cycles", "3"][..], "--cycles"),
    ] {
        let (out, report, _) = rt.drill("bad", args);
        assert_eq!(out.status.code(), Some(exit::USAGE), "{}", text(&out));
        assert!(text(&out).contains(flag), "{}", text(&out));
        assert!(report.is_none());
    }
}
