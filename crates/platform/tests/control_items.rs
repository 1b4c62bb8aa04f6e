//! The storefront reads the DR control state from the control items of the journal table in its own
//! region's replica and the other region's (docs/aws-dr.md): the function is told where, and its role may
//! read exactly that partition in both regions and nothing else of the journal.

use lifeboat_config::{Config, Role};
use serde_json::{Value, json};

fn storefront(config: &Config, role: Role) -> (Value, Vec<Value>) {
    let synthesis = lifeboat_platform::synthesize(config).unwrap();
    let t = synthesis
        .template(&format!("compute-{role}"))
        .unwrap()
        .to_json();
    let variables =
        t["Resources"]["StorefrontFunction"]["Properties"]["Environment"]["Variables"].clone();
    let statements = t["Resources"]["StorefrontRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"]
        .as_array()
        .unwrap()
        .clone();
    (variables, statements)
}

#[test]
fn each_storefront_reads_the_control_partition_of_both_replicas_and_nothing_else_of_the_journal() {
    let config = Config::default();
    let names = config.names();
    for role in Role::BOTH {
        let (variables, statements) = storefront(&config, role);
        assert_eq!(variables["CONTROL_TABLE"], names.journal_table().as_str());
        assert_eq!(
            variables["LIFEBOAT_PEER_REGION"],
            config.region(role.other()),
            "{role}"
        );
        let journal: Vec<&Value> = statements
            .iter()
            .filter(|s| {
                s.to_string()
                    .contains(&format!("table/{}", names.journal_table()))
            })
            .collect();
        assert_eq!(journal.len(), 1, "{role}: one statement names the journal");
        let st = journal[0];
        assert_eq!(st["Action"], json!(["dynamodb:Query"]), "{role}: read only");
        let resources = st["Resource"].to_string();
        for region in [&config.regions.primary, &config.regions.standby] {
            assert!(
                resources.contains(&format!(":dynamodb:{region}:")),
                "{role}: the replica in {region}: {resources}"
            );
        }
        assert_eq!(
            st["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"],
            json!([lifeboat_contract::control::item::PARTITION]),
            "{role}: only the control partition"
        );
    }
}
