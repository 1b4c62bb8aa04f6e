//! Change-set contents: what a change means for data. CloudFormation says whether a change replaces a
//! resource; we decide whether that loses data.

use serde::Serialize;

/// Resource types that hold data (or guard it, like the keys that encrypt it). Replacing or deleting one of
/// these loses or strands data, so it needs confirmation, whatever the manifest says.
pub const STATEFUL_TYPES: &[&str] = &[
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::RDS::GlobalCluster",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::EFS::FileSystem",
    "AWS::Logs::LogGroup",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    Add,
    Modify,
    Remove,
    Import,
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Replacement {
    True,
    Conditional,
    False,
}

/// One resource change in a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub action: Action,
    /// Only for `Modify`: whether CloudFormation replaces the resource (a new physical resource).
    pub replacement: Option<Replacement>,
}

impl ResourceChange {
    /// True when the change may destroy the current physical resource.
    pub fn destroys_current(&self) -> bool {
        match self.action {
            Action::Remove => true,
            Action::Modify => matches!(
                self.replacement,
                Some(Replacement::True | Replacement::Conditional)
            ),
            _ => false,
        }
    }
}

/// A change that replaces or removes a resource holding data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatefulRisk {
    pub logical_id: String,
    pub resource_type: String,
    /// `remove`, `replace` or `may replace`.
    pub what: &'static str,
}

impl std::fmt::Display for StatefulRisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.what, self.logical_id, self.resource_type
        )
    }
}

/// The changes that would replace or remove data: a resource listed as stateful in the manifest, or of a
/// stateful type.
pub fn stateful_risks(
    changes: &[ResourceChange],
    manifest_stateful: &[String],
) -> Vec<StatefulRisk> {
    changes
        .iter()
        .filter(|c| c.destroys_current())
        .filter(|c| {
            manifest_stateful.contains(&c.logical_id)
                || STATEFUL_TYPES.contains(&c.resource_type.as_str())
        })
        .map(|c| StatefulRisk {
            logical_id: c.logical_id.clone(),
            resource_type: c.resource_type.clone(),
            what: match (c.action, c.replacement) {
                (Action::Remove, _) => "remove",
                (_, Some(Replacement::True)) => "replace",
                _ => "may replace",
            },
        })
        .collect()
}

/// Counts of changes by action, for one-line summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChangeCounts {
    pub add: usize,
    pub modify: usize,
    pub remove: usize,
    pub replace: usize,
}

pub fn count(changes: &[ResourceChange]) -> ChangeCounts {
    let mut c = ChangeCounts::default();
    for ch in changes {
        match ch.action {
            Action::Add | Action::Import => c.add += 1,
            Action::Modify | Action::Dynamic => c.modify += 1,
            Action::Remove => c.remove += 1,
        }
        if ch.action == Action::Modify && ch.destroys_current() {
            c.replace += 1;
        }
    }
    c
}

/// Whether a FAILED change set failed only because there was nothing to change. Real CloudFormation marks such
/// change sets FAILED with one of these reasons instead of returning an empty change set.
pub fn is_no_change_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("didn't contain changes")
        || r.contains("did not contain changes")
        || r.contains("no updates are to be performed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        id: &str,
        ty: &str,
        action: Action,
        replacement: Option<Replacement>,
    ) -> ResourceChange {
        ResourceChange {
            logical_id: id.into(),
            physical_id: None,
            resource_type: ty.into(),
            action,
            replacement,
        }
    }

    #[test]
    fn replacing_or_removing_data_is_a_risk_and_in_place_changes_are_not() {
        let changes = vec![
            change(
                "Db",
                "AWS::RDS::DBCluster",
                Action::Modify,
                Some(Replacement::True),
            ),
            change("Sessions", "AWS::DynamoDB::Table", Action::Remove, None),
            change(
                "Assets",
                "AWS::S3::Bucket",
                Action::Modify,
                Some(Replacement::False),
            ),
            change(
                "Key",
                "AWS::KMS::Key",
                Action::Modify,
                Some(Replacement::Conditional),
            ),
            change(
                "Sg",
                "AWS::EC2::SecurityGroup",
                Action::Modify,
                Some(Replacement::True),
            ),
            change("NewBucket", "AWS::S3::Bucket", Action::Add, None),
        ];
        let risks = stateful_risks(&changes, &[]);
        let ids: Vec<(&str, &str)> = risks
            .iter()
            .map(|r| (r.logical_id.as_str(), r.what))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("Db", "replace"),
                ("Sessions", "remove"),
                ("Key", "may replace")
            ]
        );
    }

    #[test]
    fn the_manifest_can_mark_any_resource_stateful() {
        let changes = vec![change("Journal", "Custom::Journal", Action::Remove, None)];
        assert!(stateful_risks(&changes, &[]).is_empty());
        assert_eq!(stateful_risks(&changes, &["Journal".into()]).len(), 1);
    }

    #[test]
    fn counts_split_by_action_and_replacements() {
        let changes = vec![
            change("A", "T", Action::Add, None),
            change("B", "T", Action::Modify, Some(Replacement::True)),
            change("C", "T", Action::Modify, Some(Replacement::False)),
            change("D", "T", Action::Remove, None),
        ];
        assert_eq!(
            count(&changes),
            ChangeCounts {
                add: 1,
                modify: 2,
                remove: 1,
                replace: 1
            }
        );
    }

    #[test]
    fn both_no_change_messages_of_cloudformation_are_recognised() {
        assert!(is_no_change_reason(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(is_no_change_reason("No updates are to be performed."));
        assert!(!is_no_change_reason(
            "Parameter VpcId must be of type AWS::EC2::VPC::Id"
        ));
    }
}
