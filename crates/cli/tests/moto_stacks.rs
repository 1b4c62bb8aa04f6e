//! `lifeboat deploy / diff / status / destroy`, the binary, against a moto server in us-east-1 and us-west-2
//! (`LIFEBOAT_TEST_AWS_ENDPOINT`, started by `scripts/test`): the real networking stacks of both regions are
//! created, found unchanged on a second run, shown by `status --json` and `diff --json`, and destroyed.
//!
//! Every run uses its own environment name, so the server can be shared with other tests. What each step did
//! is checked through the EC2 and CloudFormation APIs, not only through lifeboat's own output.

use std::path::Path;

use assert_cmd::Command;
use lifeboat_contract::exit;
use serde_json::Value;

#[path = "../../aws/tests/support/ec2.rs"]
mod ec2_api;
use ec2_api::{ec2, remove_what_moto_cannot_delete, vpc_exists, xml_values};

const PRIMARY: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

fn endpoint() -> String {
    std::env::var("LIFEBOAT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LIFEBOAT_TEST_AWS_ENDPOINT is not set: these tests need a moto server. Run them through scripts/test, \
             or start one (source scripts/lib.sh; start_moto DIR) and export the variable"
        )
    })
}

/// `lifeboat --config <dir>/lifeboat.toml ... --endpoint-url <moto>` with throwaway credentials.
fn lifeboat(dir: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("lifeboat").expect("the lifeboat binary is built");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .args(["--config", "lifeboat.toml"])
        .args(args)
        .args(["--endpoint-url", endpoint]);
    cmd
}

/// Runs `lifeboat ARGS --endpoint-url <moto>`, asserts exit 0 and returns its JSON output.
fn ok_json(dir: &Path, endpoint: &str, args: &[&str]) -> Value {
    let output = lifeboat(dir, endpoint, args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(exit::OK),
        "lifeboat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_of(&output)
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `(stack id, field)` for every stack of a `{"stacks": [...]}` document.
fn per_stack(doc: &Value, field: &str) -> Vec<(String, String)> {
    doc["stacks"]
        .as_array()
        .expect("a stacks array")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s[field].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The VPCs of one environment in `region`, found by the Environment tag every resource carries.
async fn vpcs_of(endpoint: &str, region: &str, environment: &str) -> Vec<String> {
    let xml = ec2(
        endpoint,
        region,
        &[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "tag:Environment"),
            ("Filter.1.Value.1", environment),
        ],
    )
    .await;
    xml_values(&xml, "vpcId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_twice_diff_status_and_destroy_the_networking_stacks_of_both_regions() {
    let endpoint = endpoint();
    let dir = tempfile::tempdir().unwrap();
    // A name of its own (at most 10 characters) keeps this run apart from every other user of the server.
    let environment = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    std::fs::write(
        dir.path().join("lifeboat.toml"),
        // Moto has no ACM certificates; outside `dev` plain HTTP must be allowed explicitly.
        format!(
            "[project]\nname = \"shop\"\nenvironment = \"{environment}\"\n[certificates]\nallow_insecure_http = true\n"
        ),
    )
    .unwrap();
    let networking = ["--out", "synth", "--stacks", "networking-*"];

    Command::cargo_bin("lifeboat")
        .unwrap()
        .current_dir(dir.path())
        .args(["--config", "lifeboat.toml", "synth", "--out", "synth"])
        .assert()
        .success();

    // 1. The first deploy creates both stacks, and with them a VPC in each region.
    let first = ok_json(
        dir.path(),
        &endpoint,
        &[&["deploy", "--yes", "--json"][..], &networking].concat(),
    );
    assert_eq!(
        per_stack(&first, "outcome"),
        vec![
            ("networking-primary".to_owned(), "created".to_owned()),
            ("networking-standby".to_owned(), "created".to_owned()),
        ]
    );
    let primary_vpcs = vpcs_of(&endpoint, PRIMARY, &environment).await;
    let standby_vpcs = vpcs_of(&endpoint, STANDBY, &environment).await;
    assert_eq!(primary_vpcs.len(), 1, "one VPC in {PRIMARY}");
    assert_eq!(standby_vpcs.len(), 1, "one VPC in {STANDBY}");

    // 2. A second deploy changes nothing and says so for every stack.
    let second = ok_json(
        dir.path(),
        &endpoint,
        &[&["deploy", "--yes", "--json"][..], &networking].concat(),
    );
    assert!(
        per_stack(&second, "outcome")
            .iter()
            .all(|(_, outcome)| outcome == "unchanged"),
        "{:?}",
        second
    );
    assert_eq!(
        vpcs_of(&endpoint, PRIMARY, &environment).await,
        primary_vpcs
    );

    // 3. diff: both stacks exist and nothing would change; no change set is left behind.
    let diff = ok_json(
        dir.path(),
        &endpoint,
        &[&["diff", "--json"][..], &networking].concat(),
    );
    assert_eq!(
        per_stack(&diff, "diff"),
        vec![
            ("networking-primary".to_owned(), "no_changes".to_owned()),
            ("networking-standby".to_owned(), "no_changes".to_owned()),
        ]
    );
    assert!(
        diff["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["exists"] == true)
    );

    // 4. status --json: each selected stack with its region and a completed state.
    let status = lifeboat(
        dir.path(),
        &endpoint,
        &[&["status", "--json"][..], &networking].concat(),
    )
    .output()
    .unwrap();
    let status_doc = json_of(&status);
    let states: Vec<(String, String)> = per_stack(&status_doc, "status")
        .into_iter()
        .filter(|(id, _)| id.starts_with("networking-"))
        .collect();
    assert_eq!(states.len(), 2, "{status_doc}");
    for (id, state) in &states {
        assert!(state.ends_with("_COMPLETE"), "{id} is {state}");
    }
    let regions: Vec<&str> = status_doc["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("networking-"))
        })
        .map(|s| s["region"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(regions, vec![PRIMARY, STANDBY]);

    // 5. destroy. moto's CloudFormation cannot delete NAT gateways, VPC endpoints, internet gateways and
    //    route tables (CloudFormation on AWS does); they are removed through EC2 first, as the deploy
    //    engine's own moto test does. Everything else, the VPCs included, is lifeboat's to delete.
    remove_what_moto_cannot_delete(&endpoint, PRIMARY, &primary_vpcs[0]).await;
    remove_what_moto_cannot_delete(&endpoint, STANDBY, &standby_vpcs[0]).await;
    let destroy = ok_json(
        dir.path(),
        &endpoint,
        &[&["destroy", "--yes", "--json"][..], &networking].concat(),
    );
    let mut outcomes = per_stack(&destroy, "outcome");
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![
            ("networking-primary".to_owned(), "deleted".to_owned()),
            ("networking-standby".to_owned(), "deleted".to_owned()),
        ]
    );
    assert!(!vpc_exists(&endpoint, PRIMARY, &primary_vpcs[0]).await);
    assert!(!vpc_exists(&endpoint, STANDBY, &standby_vpcs[0]).await);
    let after = lifeboat(
        dir.path(),
        &endpoint,
        &[&["status", "--json"][..], &networking].concat(),
    )
    .output()
    .unwrap();
    let after = json_of(&after);
    for (id, state) in per_stack(&after, "status") {
        if id.starts_with("networking-") {
            assert_eq!(state, "NOT_DEPLOYED", "{id}");
        }
    }

    // 6. Nothing left to delete is not an error.
    lifeboat(
        dir.path(),
        &endpoint,
        &[&["destroy", "--yes"][..], &networking].concat(),
    )
    .assert()
    .code(exit::OK)
    .stderr(predicates::str::contains("nothing to delete"));
}
