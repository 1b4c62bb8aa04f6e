//! What a failed first deploy leaves behind is decided by the DeletionPolicy of each resource: nothing that
//! would make the retry fail ("already exists") or pile up (orphan hosted zones and keys).
//! RetainExceptOnCreate keeps a resource when its stack is deleted but deletes it when the operation that
//! created it rolls back
//! (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html);
//! UpdateReplacePolicy has no such value, only Delete, Retain and Snapshot
//! (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatereplacepolicy.html).

use lifeboat_config::Config;
use serde_json::Value;

fn templates(environment: &str) -> Vec<(String, Value)> {
    let config = Config::from_toml_str(
        &format!(
            "[project]\nenvironment = \"{environment}\"\n[certificates]\nallow_insecure_http = true\n"
        ),
        "test.toml",
    )
    .unwrap();
    let synthesis = lifeboat_platform::synthesize(&config).unwrap();
    synthesis
        .stacks
        .iter()
        .map(|(entry, template)| (entry.id.clone(), template.to_json()))
        .collect()
}

fn resources(t: &Value) -> impl Iterator<Item = (&String, &Value)> {
    t["Resources"].as_object().into_iter().flatten()
}

#[test]
fn no_resource_is_plainly_retained_so_a_failed_first_create_leaves_nothing_behind() {
    for environment in ["dev", "prod"] {
        for (stack, t) in templates(environment) {
            for (id, r) in resources(&t) {
                let deletion = r["DeletionPolicy"].as_str().unwrap_or("Delete");
                assert_ne!(
                    deletion, "Retain",
                    "{environment} {stack}/{id}: Retain survives a create rollback; a retry then fails on it"
                );
                let replace = r["UpdateReplacePolicy"].as_str().unwrap_or("Delete");
                assert!(
                    matches!(replace, "Delete" | "Retain" | "Snapshot"),
                    "{environment} {stack}/{id}: UpdateReplacePolicy {replace} is not a valid value"
                );
                if deletion == "RetainExceptOnCreate" {
                    assert_eq!(replace, "Retain", "{environment} {stack}/{id}");
                }
            }
        }
    }
}

#[test]
fn outside_dev_data_is_kept_on_delete_but_not_after_a_failed_create() {
    let prod = templates("prod");
    let policy = |stack: &str, id: &str| -> String {
        let (_, t) = prod.iter().find(|(s, _)| s == stack).unwrap();
        t["Resources"][id]["DeletionPolicy"]
            .as_str()
            .unwrap_or("Delete")
            .to_string()
    };
    for (stack, id) in [
        ("database-primary", "GlobalCluster"),
        ("database-primary", "DatabaseSecret"),
        ("database-primary", "DatabaseKey"),
        ("storage-primary", "AssetsBucket"),
        ("storage-primary", "SessionsTable"),
        ("storage-standby", "AssetsBucket"),
        ("networking-primary", "HostedZone"),
    ] {
        assert_eq!(policy(stack, id), "RetainExceptOnCreate", "{stack}/{id}");
    }
    // The cluster keeps a final snapshot instead (its identifier is freed, the snapshot name is generated).
    assert_eq!(policy("database-primary", "Cluster"), "Snapshot");

    let dev = templates("dev");
    let (_, networking) = dev.iter().find(|(s, _)| s == "networking-primary").unwrap();
    assert_eq!(
        networking["Resources"]["HostedZone"]["DeletionPolicy"], "RetainExceptOnCreate",
        "the zone's name servers are delegated: kept in every environment, except after a failed create"
    );
    let (_, database) = dev.iter().find(|(s, _)| s == "database-primary").unwrap();
    assert_eq!(
        database["Resources"]["DatabaseSecret"]["DeletionPolicy"],
        "Delete"
    );
}
