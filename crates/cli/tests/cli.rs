//! The `lifeboat` binary end to end: exit codes, files written, messages.

use std::path::Path;

use assert_cmd::Command;
use lifeboat_contract::exit;
use predicates::str::contains;

fn lifeboat(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("lifeboat").expect("the lifeboat binary is built");
    cmd.current_dir(dir)
        .env_remove("LIFEBOAT_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn init_writes_the_default_file_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .arg("init")
        .assert()
        .success()
        .stdout(contains("lifeboat.toml"));
    let written = std::fs::read_to_string(dir.path().join("lifeboat.toml")).unwrap();
    assert_eq!(written, lifeboat_config::DEFAULT_CONFIG_TOML);

    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[project]\nname = \"mine\"\n",
    )
    .unwrap();
    lifeboat(dir.path())
        .arg("init")
        .assert()
        .code(exit::REFUSED)
        .stderr(contains(
            "error: lifeboat.toml already exists; pass --force",
        ));
    assert!(
        std::fs::read_to_string(dir.path().join("lifeboat.toml"))
            .unwrap()
            .contains("mine")
    );

    lifeboat(dir.path())
        .args(["init", "--force"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lifeboat.toml")).unwrap(),
        lifeboat_config::DEFAULT_CONFIG_TOML
    );
}

#[test]
fn synth_writes_templates_and_manifest_and_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path()).arg("synth").assert().success().stdout(
        contains("stack")
            .and(contains("lifeboat-dev-networking-primary"))
            .and(contains("total")),
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("lifeboat.out/manifest.json")).unwrap(),
    )
    .unwrap();
    let stacks = manifest["stacks"].as_array().unwrap();
    assert!(!stacks.is_empty());
    for stack in stacks {
        let file = dir
            .path()
            .join("lifeboat.out")
            .join(stack["template"].as_str().unwrap());
        assert!(file.is_file(), "{} missing", file.display());
    }
    // No staging or backup directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn synth_check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .args(["synth", "--check"])
        .assert()
        .success()
        .stdout(contains("nothing written"));
    assert!(!dir.path().join("lifeboat.out").exists());
}

#[test]
fn a_bad_config_exits_2_naming_key_value_and_allowed_values_and_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path()).arg("synth").assert().success();
    let before = std::fs::read_to_string(dir.path().join("lifeboat.out/manifest.json")).unwrap();

    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[network]\naz_count = 5\n",
    )
    .unwrap();
    lifeboat(dir.path())
        .arg("synth")
        .assert()
        .code(exit::USAGE)
        .stderr(
            contains("network.az_count")
                .and(contains("5"))
                .and(contains("2 or 3")),
        );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lifeboat.out/manifest.json")).unwrap(),
        before
    );

    std::fs::write(dir.path().join("lifeboat.toml"), "[network]\nazs = 2\n").unwrap();
    lifeboat(dir.path())
        .args(["synth", "--check"])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("unknown key `network.azs`"));
}

#[test]
fn an_explicit_config_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .args(["--config", "missing.toml", "synth", "--check"])
        .assert()
        .code(exit::USAGE)
        .stderr(contains("missing.toml"));
}

#[test]
fn synth_refuses_to_replace_a_directory_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").unwrap();
    lifeboat(dir.path())
        .args(["synth", "--out", "src"])
        .assert()
        .code(exit::REFUSED);
    assert!(dir.path().join("src/main.rs").is_file());
}

#[test]
fn synth_json_reports_stacks_and_total() {
    let dir = tempfile::tempdir().unwrap();
    let out = lifeboat(dir.path())
        .args(["--json", "synth", "--check"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let sum: u64 = v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["resources"].as_u64().unwrap())
        .sum();
    assert_eq!(v["total_resources"].as_u64().unwrap(), sum);
    assert_eq!(v["checked"], true);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    lifeboat(dir.path())
        .arg("no-such-command")
        .assert()
        .code(exit::USAGE);
    lifeboat(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Examples:"));
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    // `lifeboat synth --check --json | head -c1`: the pipe closes before lifeboat writes its JSON.
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lifeboat"))
        .current_dir(dir.path())
        .env_remove("LIFEBOAT_CONFIG")
        .args(["synth", "--check", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(exit::OK), "{stderr}");
}
