//! `lifeboat synth` refuses plain HTTP outside `dev`: exit 2 naming `certificates`, nothing written.

use std::path::Path;

use assert_cmd::Command;
use lifeboat_contract::exit;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn lifeboat(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("lifeboat").expect("the lifeboat binary is built");
    cmd.current_dir(dir)
        .env_remove("LIFEBOAT_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn synth_of_prod_without_certificates_exits_2_naming_certificates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[project]\nenvironment = \"prod\"\n",
    )
    .unwrap();
    lifeboat(dir.path())
        .arg("synth")
        .assert()
        .code(exit::USAGE)
        .stderr(contains("certificates").and(contains("allow_insecure_http")));
    assert!(!dir.path().join("lifeboat.out").exists());

    // The explicit opt-out is accepted.
    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "[project]\nenvironment = \"prod\"\n[certificates]\nallow_insecure_http = true\n",
    )
    .unwrap();
    lifeboat(dir.path()).arg("synth").assert().success();
}
