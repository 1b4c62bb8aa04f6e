//! The DR commands end to end: plans, refusals and exit codes that need no running environment.

use std::path::Path;

use assert_cmd::Command;
use lifeboat_contract::exit;
use predicates::str::contains;

fn lifeboat(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("lifeboat").expect("the lifeboat binary is built");
    cmd.current_dir(dir)
        .env_remove("LIFEBOAT_CONFIG")
        .env_remove("LIFEBOAT_TARGET")
        .env_remove("AWS_ENDPOINT_URL")
        .env("NO_COLOR", "1");
    cmd
}

fn plan_json(dir: &Path, kind: &str) -> serde_json::Value {
    let out = lifeboat(dir)
        .args(["plan", kind, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("plan --json prints JSON")
}

fn ids(plan: &serde_json::Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plan_switchover_json_lists_the_steps_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_json(dir.path(), "switchover");
    assert_eq!(
        ids(&plan),
        [
            "preflight",
            "prescale-standby",
            "raise-fence",
            "wait-drained",
            "promote",
            "shift-traffic",
            "lower-fence",
            "verify",
            "notify",
            "record-active-region"
        ]
    );
    assert_eq!(
        (plan["from"].as_str(), plan["to"].as_str()),
        (Some("us-east-1"), Some("us-west-2"))
    );
    let stages: Vec<u64> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_u64().unwrap())
        .collect();
    assert!(
        stages.windows(2).all(|w| w[0] <= w[1]),
        "stages in order: {stages:?}"
    );
    let promote = &plan["steps"][4];
    assert_eq!(
        promote["timeout_ms"], 900_000,
        "promote is bounded by dr.switchover_timeout_seconds"
    );
}

#[test]
fn plans_follow_the_configured_regions_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[regions]\nprimary = \"eu-west-1\"\nstandby = \"eu-central-1\"\n\n[dr]\nswitchover_timeout_seconds = 120\n",
    )
    .unwrap();
    let failback = plan_json(dir.path(), "failback");
    assert_eq!(
        (failback["from"].as_str(), failback["to"].as_str()),
        (Some("eu-central-1"), Some("eu-west-1"))
    );
    assert_eq!(ids(&failback)[..2], ["preflight-failback", "reprotect"]);
    let failover = plan_json(dir.path(), "failover");
    let steps = failover["steps"].as_array().unwrap();
    let promote = steps.iter().find(|s| s["id"] == "promote").unwrap();
    assert_eq!(promote["timeout_ms"], 120_000);
    let fence = steps.iter().find(|s| s["id"] == "raise-fence").unwrap();
    assert_eq!(fence["skippable"], true);
    assert!(ids(&failover).contains(&"wait-lease".to_owned()));
    lifeboat(dir.path())
        .args(["plan", "switchover"])
        .assert()
        .success()
        .stdout(contains(
            "switchover eu-west-1 → eu-central-1 (graceful mode)",
        ))
        .stdout(contains("wait-drained"));
}

#[test]
fn an_unknown_runbook_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .args(["plan", "evacuate"])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("switchover"));
}

#[test]
fn a_failback_to_a_region_outside_the_pair_is_bad_input_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .args([
            "failback",
            "--to",
            "eu-west-1",
            "--yes",
            "--target",
            "local",
        ])
        .assert()
        .code(exit::USAGE)
        .stderr(contains(
            "--to eu-west-1: not one of the configured regions",
        ));
}

#[test]
fn failover_without_permission_refuses_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .args([
            "failover",
            "--to",
            "us-west-2",
            "--yes",
            "--target",
            "local",
        ])
        .assert()
        .code(exit::REFUSED)
        .stderr(contains("--allow-data-loss"));
    assert!(
        !dir.path().join(".lifeboat").exists(),
        "nothing was created"
    );
    lifeboat(dir.path())
        .args([
            "failover",
            "--to",
            "mars-north-1",
            "--allow-data-loss",
            "--yes",
        ])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("mars-north-1"));
}

#[test]
fn a_local_target_that_is_not_up_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["switchover", "--yes", "--target", "local"],
        vec!["failback", "--yes", "--target", "local"],
        vec!["runs", "--target", "local"],
        vec![
            "failover",
            "--to",
            "us-west-2",
            "--allow-data-loss",
            "--yes",
            "--target",
            "local",
        ],
    ] {
        lifeboat(dir.path())
            .args(&args)
            .assert()
            .code(exit::UNAVAILABLE)
            .stderr(contains("lifeboat local up"));
    }
    // The target can come from the environment too.
    lifeboat(dir.path())
        .env("LIFEBOAT_TARGET", "local")
        .args(["switchover", "--yes"])
        .assert()
        .code(exit::UNAVAILABLE)
        .stderr(contains("local target"));
}

#[test]
fn an_unreachable_aws_endpoint_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["runs", "--endpoint-url", "http://127.0.0.1:9"])
        .assert()
        .code(exit::UNAVAILABLE)
        .stderr(contains("journal"));
}

#[test]
fn a_malformed_run_id_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .args(["resume", "../../etc"])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("not valid"));
}
