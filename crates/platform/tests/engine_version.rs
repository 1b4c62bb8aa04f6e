//! The engine version and its minor upgrades follow AWS's advice for the line it is on: no automatic minor
//! version upgrades on the long-term support lines (3.04, 3.10), which an upgrade campaign could leave
//! (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Update.SpecialVersions.html).

use lifeboat_config::Config;

fn instances_auto_upgrade(engine_version: &str) -> Vec<serde_json::Value> {
    let config = Config::from_toml_str(
        &format!("[database]\nengine_version = \"{engine_version}\"\n"),
        "test.toml",
    )
    .unwrap();
    let synthesis = lifeboat_platform::synthesize(&config).unwrap();
    let mut found = Vec::new();
    for stack in ["database-primary", "database-standby"] {
        let t = synthesis.template(stack).unwrap().to_json();
        for (_, r) in t["Resources"].as_object().unwrap() {
            if r["Type"] == "AWS::RDS::DBInstance" {
                found.push(r["Properties"]["AutoMinorVersionUpgrade"].clone());
            }
        }
    }
    found
}

#[test]
fn the_default_is_on_the_3_10_lts_line_without_automatic_minor_upgrades() {
    assert!(
        Config::default()
            .database
            .engine_version
            .starts_with("8.0.mysql_aurora.3.10.")
    );
    let default = instances_auto_upgrade(&Config::default().database.engine_version);
    assert_eq!(
        default.len(),
        4,
        "writer + reader in each region (the standby is sized like the primary)"
    );
    assert!(default.iter().all(|v| v == false), "{default:?}");
    let lts_304 = instances_auto_upgrade("8.0.mysql_aurora.3.04.4");
    assert!(lts_304.iter().all(|v| v == false), "{lts_304:?}");
    let not_lts = instances_auto_upgrade("8.0.mysql_aurora.3.09.0");
    assert!(not_lts.iter().all(|v| v == true), "{not_lts:?}");
}
