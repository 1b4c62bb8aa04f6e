//! `lifeboat switchover`, then `lifeboat failback`, through the command line's own entry point
//! ([`lifeboat_cli::run_with`]) against a two-region environment in the local AWS emulator (moto).
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT` (set by `scripts/test`). The environment is the fixture the runbook
//! engine is tested against (`crates/aws-dr/tests/support/fixture.rs`): the emulator has no Aurora
//! SwitchoverGlobalCluster, so the fixture's RDS clients answer that call with an SDK-level mock. A
//! separate `lifeboat` process cannot carry those clients; [`lifeboat_cli::Overrides`] hands them to the
//! command line, and everything else (config file, confirmation flag, readiness, journal and lock in the
//! DynamoDB journal table, report to S3, exit codes) is the command line's own path. Read-only commands
//! that need no mock (`runs --json`, `plan --json`) also run as the real binary, to read their output.

#[path = "../../aws-dr/tests/support/fixture.rs"]
mod fixture;

use std::path::Path;
use std::process::Command;

use fixture::{Fixture, PRIMARY, STANDBY};
use lifeboat_cli::{Overrides, run_with};
use lifeboat_contract::exit;

/// `lifeboat --config CONFIG --no-color ARGS...` through the library entry point.
fn lifeboat(config: &Path, args: &[&str], overrides: &Overrides) -> i32 {
    let mut argv = vec![
        "lifeboat".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--no-color".to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    run_with(argv, overrides.clone())
}

/// `lifeboat --config CONFIG --json ARGS...` as the real binary, reaching the emulator through
/// `AWS_ENDPOINT_URL` like an operator would; returns its stdout as JSON.
fn lifeboat_binary_json(config: &Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(args)
        .env("AWS_ENDPOINT_URL", fixture::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("LIFEBOAT_CONFIG")
        .env_remove("LIFEBOAT_TARGET")
        .env("NO_COLOR", "1")
        .output()
        .expect("the lifeboat binary runs");
    assert!(
        output.status.success(),
        "lifeboat {args:?} exited with {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "lifeboat {args:?} --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The JSON reports in the reports location (`dr-reports/` in the standby region's assets bucket: the
/// command line coordinates from the standby region), oldest run first.
/// Every run report in S3: a run stores its report in the region it moved to (its assets bucket, the
/// command line's report place), so both regions' buckets are read.
async fn stored_reports(f: &Fixture) -> Vec<serde_json::Value> {
    let mut reports: Vec<serde_json::Value> = Vec::new();
    for region in [PRIMARY, STANDBY] {
        let s3 = &f.direct[region].s3();
        let bucket = &f.topology.assets_buckets[region];
        let listing = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&f.topology.reports_prefix)
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot list s3://{bucket}: {e:?}"));
        let mut keys: Vec<String> = listing
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|k| k.ends_with("/report.json"))
            .map(str::to_owned)
            .collect();
        keys.sort();
        for key in keys {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot read s3://{bucket}/{key}: {e:?}"));
            let bytes = object.body.collect().await.unwrap().into_bytes();
            reports.push(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("s3://{bucket}/{key} is not a JSON report: {e}");
            }));
        }
    }
    reports.sort_by_key(|r| r["started_at"].as_str().unwrap_or_default().to_owned());
    reports
}

fn epoch(f: &Fixture, rt: &tokio::runtime::Runtime) -> u64 {
    let text = rt.block_on(f.param(STANDBY, &f.topology.ssm_epoch()));
    text.parse()
        .unwrap_or_else(|_| panic!("the epoch parameter holds {text:?}, not a number"))
}

fn assert_active(f: &Fixture, rt: &tokio::runtime::Runtime, region: &str) {
    for reader in [PRIMARY, STANDBY] {
        assert_eq!(
            rt.block_on(f.param(reader, &f.topology.ssm_active_region())),
            region,
            "active-region parameter in {reader}"
        );
        assert_eq!(
            rt.block_on(f.param(reader, &f.topology.ssm_fence())),
            "lowered",
            "the fence is lowered again in {reader}"
        );
    }
}

// A plain test, not a tokio one: `run_with` blocks on the command line's own runtime, which cannot start
// inside another. The fixture's runtime keeps running beside it (its region links carry the command line's
// calls) and serves the test's own reads.
#[test]
fn cli_switchover_then_failback_moves_everything_and_back() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the fixture");
    let f = rt.block_on(Fixture::create());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lifeboat.toml");
    std::fs::write(
        &config,
        toml::to_string(&f.config).expect("the fixture's config serializes"),
    )
    .unwrap();
    let overrides = Overrides {
        aws_clients: Some(f.clients.clone()),
        aws_poll_interval: Some(f.topology.bounds.poll_interval),
        aws_promote_timeout: Some(f.topology.bounds.promote_timeout),
        aws_write_lease: Some(f.topology.bounds.write_lease),
    };

    // The plan, through the same entry point (exit code) and the binary (content).
    assert_eq!(
        lifeboat(&config, &["plan", "switchover", "--json"], &overrides),
        exit::OK
    );
    let plan = lifeboat_binary_json(&config, &["plan", "switchover"]);
    assert_eq!(plan["kind"], "switchover");
    assert_eq!(plan["from"], PRIMARY);
    assert_eq!(plan["to"], STANDBY);
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .expect("the plan lists steps")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        steps.contains(&"promote") && steps.contains(&"shift-traffic"),
        "{steps:?}"
    );
    assert!(
        stored_reports_empty(&f, &rt),
        "planning must not run anything"
    );

    // Switchover.
    let epoch_before = epoch(&f, &rt);
    assert_active(&f, &rt, PRIMARY);
    assert_eq!(rt.block_on(f.dns_answer()), PRIMARY);
    let started = std::time::Instant::now();
    assert_eq!(
        lifeboat(
            &config,
            &["switchover", "--yes", "--target", "aws"],
            &overrides
        ),
        exit::OK,
        "lifeboat switchover --yes"
    );
    eprintln!("switchover through the CLI: {:?}", started.elapsed());
    assert_active(&f, &rt, STANDBY);
    let epoch_after_switchover = epoch(&f, &rt);
    assert!(
        epoch_after_switchover > epoch_before,
        "epoch {epoch_after_switchover} must exceed {epoch_before}"
    );
    assert_eq!(
        rt.block_on(f.dns_answer()),
        STANDBY,
        "Route 53 answers the failover record with the standby"
    );
    assert_eq!(
        f.model.state().aurora.switchovers.len(),
        1,
        "one SwitchoverGlobalCluster"
    );
    let reports = rt.block_on(stored_reports(&f));
    assert_eq!(reports.len(), 1, "one report in S3 after the switchover");
    let switchover = &reports[0];
    assert_eq!(switchover["kind"], "switchover");
    assert_eq!(switchover["outcome"], "succeeded");
    assert_eq!(switchover["from"], PRIMARY);
    assert_eq!(switchover["to"], STANDBY);
    assert_eq!(switchover["epoch"], epoch_after_switchover);
    let switchover_id = switchover["run_id"].as_str().unwrap().to_owned();

    let runs = lifeboat_binary_json(&config, &["runs"]);
    let runs = runs.as_array().expect("runs --json is a list");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["run_id"], switchover_id.as_str());
    assert_eq!(runs[0]["kind"], "switchover");
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[0]["steps_done"], runs[0]["steps_total"]);

    // Failback.
    let started = std::time::Instant::now();
    assert_eq!(
        lifeboat(
            &config,
            &["failback", "--yes", "--target", "aws"],
            &overrides
        ),
        exit::OK,
        "lifeboat failback --yes"
    );
    eprintln!("failback through the CLI: {:?}", started.elapsed());
    assert_active(&f, &rt, PRIMARY);
    let epoch_after_failback = epoch(&f, &rt);
    assert!(
        epoch_after_failback > epoch_after_switchover,
        "epoch {epoch_after_failback} must exceed {epoch_after_switchover}"
    );
    assert_eq!(
        rt.block_on(f.dns_answer()),
        PRIMARY,
        "Route 53 answers the primary again"
    );
    assert_eq!(f.model.state().aurora.switchovers.len(), 2);
    let reports = rt.block_on(stored_reports(&f));
    assert_eq!(reports.len(), 2, "a second report in S3 after the failback");
    let failback = reports
        .iter()
        .find(|r| r["run_id"] != switchover_id.as_str())
        .expect("the failback's report");
    assert_eq!(failback["kind"], "failback");
    assert_eq!(failback["outcome"], "succeeded");
    assert_eq!(failback["from"], STANDBY);
    assert_eq!(failback["to"], PRIMARY);
    assert_eq!(failback["epoch"], epoch_after_failback);

    let runs = lifeboat_binary_json(&config, &["runs"]);
    let runs = runs.as_array().expect("runs --json is a list");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["outcome"] == "succeeded"), "{runs:?}");
    assert!(
        runs.iter()
            .any(|r| r["kind"] == "failback" && r["run_id"] == failback["run_id"]),
        "{runs:?}"
    );

    // Nothing left to fail back: refused, and nothing moved.
    assert_eq!(
        lifeboat(
            &config,
            &["failback", "--yes", "--target", "aws"],
            &overrides
        ),
        exit::REFUSED
    );
    assert_eq!(epoch(&f, &rt), epoch_after_failback);
    assert_eq!(rt.block_on(stored_reports(&f)).len(), 2);
}

fn stored_reports_empty(f: &Fixture, rt: &tokio::runtime::Runtime) -> bool {
    rt.block_on(stored_reports(f)).is_empty()
}
