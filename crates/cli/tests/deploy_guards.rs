//! What `lifeboat deploy` refuses before it talks to AWS: a reserved `dns.domain` (Route 53 refuses hosted
//! zones for RFC 2606/6761 names) and function stacks without their Lambda packages.

use std::path::Path;

use assert_cmd::Command;
use lifeboat_contract::exit;
use predicates::str::contains;

fn lifeboat(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("lifeboat").expect("the lifeboat binary is built");
    cmd.current_dir(dir)
        .env_remove("LIFEBOAT_CONFIG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        // Nothing here may reach AWS: a refusal happens before any client is used.
        .env("AWS_ACCESS_KEY_ID", "refused-before-use")
        .env("AWS_SECRET_ACCESS_KEY", "refused-before-use")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn deploy_with_the_default_config_exits_2_naming_dns_domain_and_synth_still_works() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path()).arg("synth").assert().success();
    assert!(dir.path().join("lifeboat.out/manifest.json").is_file());

    for args in [
        &["deploy", "--yes"][..],
        &["diff"][..],
        &["deploy", "--yes", "--out", "lifeboat.out"][..],
    ] {
        lifeboat(dir.path())
            .args(args)
            .assert()
            .code(exit::USAGE)
            .stderr(contains("dns.domain"))
            .stderr(contains("shop.example.com"))
            .stderr(contains("domain = \"shop.your-company.com\""));
    }
    // The same refusal names the config file the domain came from.
    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[dns]\ndomain = \"shop.test\"\n",
    )
    .unwrap();
    lifeboat(dir.path())
        .args(["deploy", "--yes"])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("lifeboat.toml: `dns.domain` = \"shop.test\""));
}

#[test]
fn a_local_emulator_endpoint_may_use_the_reserved_default_domain() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of the loopback: the run gets past the domain check and then fails on the
    // endpoint, not on dns.domain.
    let out = lifeboat(dir.path())
        .args([
            "deploy",
            "--yes",
            "--timeout",
            "1",
            "--stacks",
            "networking-primary",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(exit::USAGE), "{stderr}");
    assert_ne!(out.status.code(), Some(exit::OK), "{stderr}");
    assert!(!stderr.contains("dns.domain"), "{stderr}");
}

#[test]
fn deploy_without_the_lambda_packages_refuses_unless_placeholders_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[dns]\ndomain = \"shop.lifeboat-tests.net\"\n",
    )
    .unwrap();
    let dist = dir.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    lifeboat(dir.path())
        .args(["deploy", "--yes"])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("storefront.zip"))
        .stderr(contains("dr-automation.zip"))
        .stderr(contains("--placeholder-code"))
        .stderr(contains("nothing was deployed"));
    // One package present: only the other one is named.
    std::fs::write(dist.join("storefront.zip"), b"PK").unwrap();
    let out = lifeboat(dir.path())
        .args(["deploy", "--yes", "--artifacts", "dist"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::USAGE), "{stderr}");
    assert!(
        stderr.contains("dr-automation.zip") && !stderr.contains("storefront.zip"),
        "{stderr}"
    );
    // Stacks that need no package deploy without any (here they get as far as the unreachable endpoint).
    let out = lifeboat(dir.path())
        .args([
            "deploy",
            "--yes",
            "--timeout",
            "1",
            "--stacks",
            "networking-primary",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(exit::USAGE), "{stderr}");
    assert!(!stderr.contains("packages"), "{stderr}");
}
