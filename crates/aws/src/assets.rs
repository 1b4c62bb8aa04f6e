//! The per-region assets bucket (the bootstrap stack) and what goes into it: Lambda code packages keyed by
//! their content hash, and templates too large to send inline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lifeboat_contract::manifest::{Manifest, ParameterSource, StackEntry};
use sha2::{Digest, Sha256};

use crate::api::RegionApi;
use crate::engine::{ArtifactLocation, ArtifactLocations, Engine, EngineOptions, RunReport};
use crate::error::EngineError;
use crate::graph;
use crate::progress::{Observer, Progress};
use crate::synth_output::SynthOutput;

/// CloudFormation's limit for an inline template body; larger ones must be read from S3.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

/// Output of the bootstrap stack that names the bucket.
pub const BUCKET_OUTPUT: &str = "AssetsBucketName";

/// The bootstrap template: a KMS key and a versioned, KMS-encrypted bucket with all public access blocked.
/// Old versions expire after 30 days: packages are keyed by hash, so a new build never overwrites an old one.
pub const BOOTSTRAP_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "lifeboat bootstrap: the assets bucket that deploys upload Lambda packages and large templates to",
  "Resources": {
    "AssetsKey": {
      "Type": "AWS::KMS::Key",
      "Properties": {
        "Description": "Encrypts the lifeboat assets bucket",
        "EnableKeyRotation": true,
        "KeyPolicy": {
          "Version": "2012-10-17",
          "Statement": [
            {
              "Sid": "AccountAdministers",
              "Effect": "Allow",
              "Principal": { "AWS": { "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root" } },
              "Action": "kms:*",
              "Resource": "*"
            }
          ]
        }
      }
    },
    "AssetsBucket": {
      "Type": "AWS::S3::Bucket",
      "Properties": {
        "BucketEncryption": {
          "ServerSideEncryptionConfiguration": [
            {
              "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": { "Fn::GetAtt": ["AssetsKey", "Arn"] }
              },
              "BucketKeyEnabled": true
            }
          ]
        },
        "VersioningConfiguration": { "Status": "Enabled" },
        "PublicAccessBlockConfiguration": {
          "BlockPublicAcls": true,
          "BlockPublicPolicy": true,
          "IgnorePublicAcls": true,
          "RestrictPublicBuckets": true
        },
        "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
        "LifecycleConfiguration": {
          "Rules": [
            { "Id": "ExpireOldVersions", "Status": "Enabled", "NoncurrentVersionExpiration": { "NoncurrentDays": 30 } }
          ]
        }
      }
    }
  },
  "Outputs": {
    "AssetsBucketName": { "Value": { "Ref": "AssetsBucket" } },
    "AssetsKeyArn": { "Value": { "Fn::GetAtt": ["AssetsKey", "Arn"] } }
  }
}
"#;

/// Name of the bootstrap stack of an environment (the same in each region).
pub fn bootstrap_stack_name(project: &str, environment: &str) -> String {
    format!("{project}-{environment}-bootstrap")
}

/// Id of the bootstrap stack of a region inside the bootstrap output.
pub fn bootstrap_stack_id(region: &str) -> String {
    format!("bootstrap-{region}")
}

/// A synth output holding only the bootstrap stacks of the given regions, deployed by the same engine.
pub fn bootstrap_output(
    manifest: &Manifest,
    regions: &BTreeSet<String>,
) -> Result<SynthOutput, EngineError> {
    let name = bootstrap_stack_name(&manifest.project, &manifest.environment);
    let mut stacks = Vec::new();
    let mut templates = BTreeMap::new();
    for region in regions {
        let id = bootstrap_stack_id(region);
        stacks.push(StackEntry {
            id: id.clone(),
            name: name.clone(),
            component: "bootstrap".into(),
            region: region.clone(),
            template: "bootstrap.template.json".into(),
            depends_on: vec![],
            parameters: vec![],
            outputs: vec![BUCKET_OUTPUT.into(), "AssetsKeyArn".into()],
            resource_count: 2,
            stateful_resources: vec!["AssetsKey".into(), "AssetsBucket".into()],
        });
        templates.insert(id, BOOTSTRAP_TEMPLATE.to_string());
    }
    let bootstrap = Manifest {
        stacks,
        ..manifest.clone()
    };
    SynthOutput::from_parts(PathBuf::new(), bootstrap, templates)
}

/// Both regions of a manifest.
pub fn manifest_regions(manifest: &Manifest) -> BTreeSet<String> {
    [
        manifest.primary_region.clone(),
        manifest.standby_region.clone(),
    ]
    .into_iter()
    .chain(manifest.stacks.iter().map(|s| s.region.clone()))
    .collect()
}

/// A code package ready to upload.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Where it came from, or `None` for the built-in placeholder.
    pub source: Option<PathBuf>,
}

impl Artifact {
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }

    /// The content-addressed key: the same bytes always land on the same key, so re-deploys upload nothing.
    pub fn key(&self) -> String {
        format!("lambda/{}/{}.zip", self.name, self.sha256())
    }
}

/// Reads `<dir>/<name>.zip`, or builds a placeholder package when there is no such file.
pub fn load_artifact(dir: Option<&Path>, name: &str) -> Result<Artifact, EngineError> {
    if let Some(dir) = dir {
        let path = dir.join(format!("{name}.zip"));
        if path.exists() {
            let bytes = std::fs::read(&path).map_err(|e| {
                EngineError::Input(format!("cannot read artifact {}: {e}", path.display()))
            })?;
            return Ok(Artifact {
                name: name.to_string(),
                bytes,
                source: Some(path),
            });
        }
    }
    Ok(Artifact {
        name: name.to_string(),
        bytes: placeholder_zip(name),
        source: None,
    })
}

/// A Lambda package (custom runtime) whose `bootstrap` only reports that the real package was not deployed.
/// It lets the infrastructure come up before the code exists; it is never mistaken for the real code because
/// every deploy that uses it prints a warning.
pub fn placeholder_zip(artifact: &str) -> Vec<u8> {
    let script = format!(
        "#!/bin/sh\n# lifeboat placeholder for the {artifact} package.\necho \"lifeboat: {artifact} is a placeholder; \
         build the package (lifeboat package) and deploy with --artifacts DIR\" >&2\nexit 1\n"
    );
    stored_zip(&[("bootstrap", script.as_bytes(), 0o755)])
}

/// A ZIP archive with uncompressed ("stored") entries: name, content, unix mode. Enough for small packages
/// without a compression dependency.
pub fn stored_zip(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, mode) in entries {
        let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let crc = crc32(data);
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01, fixed so the hash is stable
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Central directory entry; "made by" Unix (3) so the mode in the external attributes counts.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&((0o100_000 | mode) << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
    let cd_size = u32::try_from(central.len()).unwrap_or(u32::MAX);
    let count = u16::try_from(entries.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE), as ZIP requires.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// What the selected stacks need from the assets buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetNeeds {
    /// (region, artifact name).
    pub artifacts: BTreeSet<(String, String)>,
    /// Stack ids whose template exceeds the inline limit.
    pub large_templates: BTreeSet<String>,
}

impl AssetNeeds {
    pub fn regions(&self, synth: &SynthOutput) -> BTreeSet<String> {
        self.artifacts
            .iter()
            .map(|(r, _)| r.clone())
            .chain(
                self.large_templates
                    .iter()
                    .filter_map(|id| synth.stack(id).map(|s| s.region.clone())),
            )
            .collect()
    }
}

pub fn asset_needs(synth: &SynthOutput, ids: &[String]) -> AssetNeeds {
    let mut needs = AssetNeeds::default();
    for id in ids {
        let Some(entry) = synth.stack(id) else {
            continue;
        };
        for p in &entry.parameters {
            if let ParameterSource::Artifact { artifact, .. } = &p.source {
                needs
                    .artifacts
                    .insert((entry.region.clone(), artifact.clone()));
            }
        }
        if synth.template(id).len() > INLINE_TEMPLATE_LIMIT {
            needs.large_templates.insert(id.clone());
        }
    }
    needs
}

/// The code packages the selected stacks need that `artifacts_dir` does not hold, each with the stacks that
/// need it. A deploy refuses these unless placeholders are asked for: a placeholder `bootstrap` exits 1, so
/// both load balancers would answer 502 and the health alarms fire minutes after a deploy that looked fine.
pub fn missing_artifacts(
    synth: &SynthOutput,
    ids: &[String],
    artifacts_dir: Option<&Path>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in ids {
        let Some(entry) = synth.stack(id) else {
            continue;
        };
        for p in &entry.parameters {
            if let ParameterSource::Artifact { artifact, .. } = &p.source {
                let present =
                    artifacts_dir.is_some_and(|dir| dir.join(format!("{artifact}.zip")).is_file());
                if !present {
                    missing
                        .entry(artifact.clone())
                        .or_default()
                        .insert(id.clone());
                }
            }
        }
    }
    missing
}

/// Where the packages and large templates of a run are (or would be).
#[derive(Debug, Clone, Default)]
pub struct PreparedAssets {
    pub artifacts: ArtifactLocations,
    pub template_urls: BTreeMap<String, String>,
    /// The bootstrap stacks' deploy, when the run made sure of them.
    pub bootstrap: Option<RunReport>,
}

/// Makes sure the assets buckets exist (deploying the bootstrap stacks if `upload`), then uploads the
/// packages and large templates the selected stacks need. With `upload` false (previews) nothing is created:
/// locations are computed from an existing bucket, or left out.
pub async fn prepare_assets<A: RegionApi>(
    synth: &SynthOutput,
    apis: &BTreeMap<String, A>,
    ids: &[String],
    artifacts_dir: Option<&Path>,
    options: &EngineOptions,
    upload: bool,
    observer: &dyn Observer,
) -> Result<PreparedAssets, EngineError> {
    let needs = asset_needs(synth, ids);
    let regions = needs.regions(synth);
    let mut prepared = PreparedAssets::default();
    if regions.is_empty() {
        return Ok(prepared);
    }
    let boot = bootstrap_output(&synth.manifest, &regions)?;
    let engine = Engine::new(&boot, apis, options.clone());
    if upload {
        let selection = graph::select(&boot.manifest.stacks, None)?;
        let report = engine
            .deploy(&selection, &BTreeMap::new(), &BTreeMap::new(), observer)
            .await?;
        if let Some(failed) = report.stacks.iter().find(|s| !s.outcome.is_success()) {
            return Err(EngineError::Aws(format!(
                "bootstrap stack {} in {} did not deploy: {}",
                failed.name,
                failed.region,
                failed.outcome.detail().unwrap_or_default()
            )));
        }
        prepared.bootstrap = Some(report);
    }
    let ids: Vec<String> = regions.iter().map(|r| bootstrap_stack_id(r)).collect();
    let (outputs, _missing) = engine
        .current_outputs(ids.iter().map(String::as_str))
        .await?;
    let bucket_of = |region: &str| -> Option<String> {
        outputs
            .get(&bootstrap_stack_id(region))
            .and_then(|o| o.get(BUCKET_OUTPUT))
            .cloned()
    };

    let mut loaded: BTreeMap<String, Artifact> = BTreeMap::new();
    for (region, name) in &needs.artifacts {
        if !loaded.contains_key(name) {
            let artifact = load_artifact(artifacts_dir, name)?;
            if artifact.source.is_none() && upload {
                observer.event(Progress::Warning {
                    message: format!(
                        "no {name}.zip in {}: deploying a PLACEHOLDER package for {name} that only fails when invoked; \
                         build the real one with `lifeboat package` and pass --artifacts DIR",
                        artifacts_dir.map(|d| d.display().to_string()).unwrap_or_else(|| "--artifacts (not given)".into())
                    ),
                });
            }
            loaded.insert(name.clone(), artifact);
        }
        let artifact = &loaded[name];
        let Some(bucket) = bucket_of(region) else {
            // A preview may run before any bootstrap. A deploy must not go on without the package: the stack
            // would fail later with "artifact was not uploaded", far from the cause.
            if upload {
                return Err(EngineError::Aws(format!(
                    "the bootstrap stack {} in {region} is not usable (no {BUCKET_OUTPUT} output), so {name} \
                     cannot be uploaded; see `lifeboat status`",
                    bootstrap_stack_name(&synth.manifest.project, &synth.manifest.environment)
                )));
            }
            continue;
        };
        if upload {
            let api = apis
                .get(region)
                .ok_or_else(|| EngineError::Input(format!("no AWS client for region {region}")))?;
            api.put_object_if_absent(&bucket, &artifact.key(), artifact.bytes.clone())
                .await
                .map_err(|e| {
                    EngineError::Aws(format!("uploading {name} to {bucket} in {region}: {e}"))
                })?;
        }
        prepared.artifacts.insert(
            (region.clone(), name.clone()),
            ArtifactLocation {
                bucket,
                key: artifact.key(),
            },
        );
    }

    for id in &needs.large_templates {
        let Some(entry) = synth.stack(id) else {
            continue;
        };
        let Some(bucket) = bucket_of(&entry.region) else {
            if upload {
                return Err(EngineError::Aws(format!(
                    "the bootstrap stack in {} is not usable (no {BUCKET_OUTPUT} output), so the template of {id} \
                     cannot be uploaded; see `lifeboat status`",
                    entry.region
                )));
            }
            continue;
        };
        let body = synth.template(id);
        let key = format!(
            "templates/{id}/{}.json",
            hex::encode(Sha256::digest(body.as_bytes()))
        );
        let api = apis.get(&entry.region).ok_or_else(|| {
            EngineError::Input(format!("no AWS client for region {}", entry.region))
        })?;
        if upload {
            api.put_object_if_absent(&bucket, &key, body.as_bytes().to_vec())
                .await
                .map_err(|e| {
                    EngineError::Aws(format!("uploading the template of {id} to {bucket}: {e}"))
                })?;
            prepared
                .template_urls
                .insert(id.clone(), api.object_url(&bucket, &key));
        }
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_placeholder_is_a_stable_zip_with_an_executable_bootstrap() {
        let a = placeholder_zip("storefront");
        assert_eq!(
            a,
            placeholder_zip("storefront"),
            "same input, same bytes, same key"
        );
        assert_ne!(a, placeholder_zip("dr-automation"));
        assert_eq!(&a[..4], b"PK\x03\x04");
        let end = &a[a.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 1, "one entry");
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("bootstrap") && text.contains("placeholder"));
    }

    #[test]
    fn artifacts_are_keyed_by_content_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("storefront.zip"), b"real package").unwrap();
        let real = load_artifact(Some(dir.path()), "storefront").unwrap();
        assert_eq!(
            real.source.as_deref(),
            Some(dir.path().join("storefront.zip").as_path())
        );
        assert_eq!(
            real.key(),
            format!(
                "lambda/storefront/{}.zip",
                hex::encode(Sha256::digest(b"real package"))
            )
        );
        let placeholder = load_artifact(Some(dir.path()), "dr-automation").unwrap();
        assert!(placeholder.source.is_none());
        assert!(placeholder.key().starts_with("lambda/dr-automation/"));
    }

    #[test]
    fn missing_artifacts_name_each_package_and_the_stacks_that_need_it() {
        use lifeboat_contract::manifest::{ArtifactPart, StackParameter};
        let stack = |id: &str, artifact: &str| StackEntry {
            id: id.into(),
            name: format!("shop-dev-{id}"),
            component: "compute".into(),
            region: "us-east-1".into(),
            template: format!("{id}.template.json"),
            depends_on: vec![],
            parameters: vec![StackParameter {
                name: "CodeKey".into(),
                source: ParameterSource::Artifact {
                    artifact: artifact.into(),
                    part: ArtifactPart::Key,
                },
            }],
            outputs: vec![],
            resource_count: 1,
            stateful_resources: vec![],
        };
        let manifest = Manifest {
            format_version: lifeboat_contract::MANIFEST_FORMAT_VERSION,
            project: "shop".into(),
            environment: "dev".into(),
            primary_region: "us-east-1".into(),
            standby_region: "us-west-2".into(),
            stacks: vec![
                stack("compute-primary", "storefront"),
                stack("dr-primary", "dr-automation"),
            ],
        };
        let templates = manifest
            .stacks
            .iter()
            .map(|s| (s.id.clone(), "{}".to_string()))
            .collect();
        let synth = SynthOutput::from_parts(PathBuf::new(), manifest, templates).unwrap();
        let ids = vec!["compute-primary".to_string(), "dr-primary".to_string()];
        let none = missing_artifacts(&synth, &ids, None);
        assert_eq!(
            none.keys().collect::<Vec<_>>(),
            ["dr-automation", "storefront"]
        );
        assert!(none["storefront"].contains("compute-primary"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("storefront.zip"), b"zip").unwrap();
        let some = missing_artifacts(&synth, &ids, Some(dir.path()));
        assert_eq!(some.keys().collect::<Vec<_>>(), ["dr-automation"]);
        assert!(missing_artifacts(&synth, &ids[..1], Some(dir.path())).is_empty());
    }

    #[test]
    fn the_bootstrap_template_is_valid_json_with_a_hardened_bucket() {
        let doc: serde_json::Value = serde_json::from_str(BOOTSTRAP_TEMPLATE).unwrap();
        let bucket = &doc["Resources"]["AssetsBucket"]["Properties"];
        assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
        assert_eq!(
            bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                ["SSEAlgorithm"],
            "aws:kms"
        );
        for flag in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(
                bucket["PublicAccessBlockConfiguration"][flag], true,
                "{flag}"
            );
        }
        assert!(doc["Outputs"][BUCKET_OUTPUT].is_object());
    }
}
