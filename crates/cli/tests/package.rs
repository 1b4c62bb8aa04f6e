//! `lifeboat package` without its build tools: it must say how to install them and exit `unavailable`.
//! (The cross build itself is too slow for the test suite; the zip layout is tested in lifeboat-aws-dr.)

use assert_cmd::Command;
use lifeboat_contract::exit;

#[test]
fn without_cargo_lambda_it_explains_the_install_and_exits_unavailable() {
    let empty_venv = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("lifeboat").expect("the lifeboat binary is built");
    let assert = cmd
        .args(["package", "--out"])
        .arg(out.path())
        .env("LIFEBOAT_TOOLS_VENV", empty_venv.path())
        .env("PATH", "/nonexistent")
        .assert()
        .code(exit::UNAVAILABLE);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("cargo-lambda is not installed"), "{stderr}");
    assert!(
        stderr.contains("pip install cargo-lambda ziglang"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing may be written"
    );
}
