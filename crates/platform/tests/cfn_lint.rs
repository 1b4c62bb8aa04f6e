//! Every synthesized template passes the official CloudFormation linter with zero errors and zero warnings
//! in its own region, for the default config and for a config that switches every optional part on.
//!
//! Needs `LIFEBOAT_CFN_LINT` (the path of cfn-lint; `scripts/test` sets it).

use std::path::PathBuf;
use std::process::Command;

use lifeboat_config::Config;

fn cfn_lint() -> PathBuf {
    let path = std::env::var_os("LIFEBOAT_CFN_LINT").unwrap_or_else(|| {
        panic!("LIFEBOAT_CFN_LINT is not set: point it at cfn-lint (scripts/test installs it and sets it)")
    });
    PathBuf::from(path)
}

fn full_config() -> Config {
    let text = r#"
[project]
environment = "prod"
[tags]
CostCenter = "1234"
[certificates]
primary = "arn:aws:acm:us-east-1:123456789012:certificate/0f3c6b7e-1111-2222-3333-444455556666"
standby = "arn:aws:acm:us-west-2:123456789012:certificate/0f3c6b7e-1111-2222-3333-777788889999"
[alerts]
emails = ["ops@example.com", "oncall@example.com"]
[network]
az_count = 3
nat_gateways = "per-az"
"#;
    Config::from_toml_str(text, "full.toml").unwrap()
}

#[test]
fn every_template_is_lint_clean_in_its_region() {
    let lint = cfn_lint();
    let dir = tempfile::tempdir().unwrap();
    // Region → template paths, over both configs, so cfn-lint starts once per region (it is slow to start).
    let mut by_region: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for (label, config) in [("default", Config::default()), ("full", full_config())] {
        let synthesis = lifeboat_platform::synthesize(&config).unwrap();
        let files = synthesis.render().unwrap();
        let out = dir.path().join(label);
        std::fs::create_dir_all(&out).unwrap();
        for (name, content) in &files {
            std::fs::write(out.join(name), content).unwrap();
        }
        for entry in &synthesis.manifest.stacks {
            by_region
                .entry(entry.region.clone())
                .or_default()
                .push(out.join(&entry.template));
        }
    }
    assert_eq!(by_region.values().map(Vec::len).sum::<usize>(), 26);
    for (region, templates) in by_region {
        let output = Command::new(&lint)
            .args(["--format", "parseable", "--regions", &region, "--"])
            .args(&templates)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", lint.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.trim().is_empty(),
            "cfn-lint found problems in {region} (exit {:?}):\n{stdout}\n{stderr}",
            output.status.code()
        );
    }
}
