//! `manifest.json`: what `lifeboat synth` writes beside the templates and `lifeboat deploy` reads.
//!
//! Stacks never use CloudFormation exports. A parameter that needs another stack's output names that stack
//! and output here, and the deploy engine feeds it, across regions too.

use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change to the shapes below.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    /// Project name from the config (`project.name`).
    pub project: String,
    /// Environment suffix (`project.environment`), part of every physical name.
    pub environment: String,
    pub primary_region: String,
    pub standby_region: String,
    /// Stacks in a valid deployment order (every stack after the ones it depends on).
    pub stacks: Vec<StackEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackEntry {
    /// Stable id inside the manifest, e.g. `networking-primary`. Used in `depends_on` and parameter sources.
    pub id: String,
    /// The CloudFormation stack name, e.g. `lifeboat-dev-networking-primary`.
    pub name: String,
    /// Which of the seven components this stack belongs to (`networking`, `database`, ...).
    pub component: String,
    pub region: String,
    /// Template file name, relative to the manifest's directory.
    pub template: String,
    /// Ids of the stacks that must be deployed first (including ones in the other region).
    pub depends_on: Vec<String>,
    /// Template parameters that are fed at deploy time, with where each value comes from.
    /// Parameters not listed here keep their template default.
    pub parameters: Vec<StackParameter>,
    /// Output names the template declares.
    pub outputs: Vec<String>,
    /// Number of resources in the template.
    pub resource_count: usize,
    /// Logical ids of resources that hold data (databases, buckets, tables, keys, ...): replacing or
    /// deleting one of them needs confirmation.
    pub stateful_resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackParameter {
    pub name: String,
    pub source: ParameterSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParameterSource {
    /// The output `output` of the stack with id `stack` (which is in `depends_on`).
    StackOutput { stack: String, output: String },
    /// Where the deploy engine uploaded a code package: `artifact` names it (`storefront`, `dr-automation`),
    /// `part` says which half of its S3 location the parameter takes.
    Artifact {
        artifact: String,
        part: ArtifactPart,
    },
    /// `true` when the stack with id `stack` is deployed, else `false`. It is not a dependency (the two
    /// stacks may each need the other to exist, like two buckets replicating to each other): when `stack`
    /// gets deployed later in the same `lifeboat deploy`, the stack holding this parameter is applied once
    /// more with `true`.
    StackDeployed { stack: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactPart {
    Bucket,
    Key,
}

impl Manifest {
    pub fn stack(&self, id: &str) -> Option<&StackEntry> {
        self.stacks.iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_source_round_trips_with_a_kind_tag() {
        let p = StackParameter {
            name: "VpcId".into(),
            source: ParameterSource::StackOutput {
                stack: "networking-primary".into(),
                output: "VpcId".into(),
            },
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"name":"VpcId","source":{"kind":"stack_output","stack":"networking-primary","output":"VpcId"}}"#
        );
        assert_eq!(serde_json::from_str::<StackParameter>(&json).unwrap(), p);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<StackParameter>(
            r#"{"name":"A","source":{"kind":"artifact","artifact":"x","part":"key"},"extra":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
