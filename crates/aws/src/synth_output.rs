//! A synthesized output directory (`manifest.json` plus one template per stack), loaded and checked before
//! anything talks to AWS: a broken manifest must fail here, not halfway through a two-region deploy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lifeboat_contract::manifest::{MANIFEST_FORMAT_VERSION, Manifest, ParameterSource, StackEntry};
use serde_json::Value;

use crate::error::EngineError;

/// The manifest and every template it names, read into memory.
#[derive(Debug, Clone)]
pub struct SynthOutput {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Template body per stack id, exactly as written by synth (sent to CloudFormation byte for byte).
    pub templates: BTreeMap<String, String>,
}

impl SynthOutput {
    /// The templates as a local emulator can take them: moto 5.2.5 fails ExecuteChangeSet with an internal
    /// error (KeyError 'TagKey') for an `AWS::KMS::Key` with `Tags`, because it hands CloudFormation's
    /// `Key`/`Value` tags to KMS's tagger, which expects `TagKey`/`TagValue` (moto/kms/models.py,
    /// `create_from_cloudformation_json`). Only those tags are dropped; AWS gets every template byte for byte.
    pub fn for_emulator(mut self) -> Self {
        for body in self.templates.values_mut() {
            let Ok(mut template) = serde_json::from_str::<serde_json::Value>(body) else {
                continue;
            };
            let mut changed = false;
            if let Some(resources) = template
                .get_mut("Resources")
                .and_then(serde_json::Value::as_object_mut)
            {
                for resource in resources.values_mut() {
                    if resource["Type"] == "AWS::KMS::Key"
                        && let Some(properties) = resource
                            .get_mut("Properties")
                            .and_then(serde_json::Value::as_object_mut)
                    {
                        changed |= properties.remove("Tags").is_some();
                    }
                }
            }
            if changed && let Ok(text) = serde_json::to_string_pretty(&template) {
                *body = text;
            }
        }
        self
    }

    /// Reads `dir/manifest.json` and the templates it lists, and validates the stack graph.
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            EngineError::Input(format!("cannot read {}: {e}", manifest_path.display()))
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            EngineError::Input(format!(
                "{} is not a valid manifest: {e}",
                manifest_path.display()
            ))
        })?;
        let mut templates = BTreeMap::new();
        for stack in &manifest.stacks {
            let path = dir.join(&stack.template);
            let body = std::fs::read_to_string(&path).map_err(|e| {
                EngineError::Input(format!(
                    "stack {}: cannot read template {}: {e}",
                    stack.id,
                    path.display()
                ))
            })?;
            templates.insert(stack.id.clone(), body);
        }
        Self::from_parts(dir.to_path_buf(), manifest, templates)
    }

    /// Builds an output from values already in memory (tests, and the bootstrap stack), with the same checks.
    pub fn from_parts(
        dir: PathBuf,
        manifest: Manifest,
        templates: BTreeMap<String, String>,
    ) -> Result<Self, EngineError> {
        validate(&manifest, &templates)?;
        // CloudFormation gets the templates without the indentation of the files: that indentation is for
        // people, and it would push the larger templates past the 51,200-byte limit of an inline body.
        let templates = templates
            .into_iter()
            .map(|(id, body)| {
                let compact = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| serde_json::to_string(&v).ok())
                    .unwrap_or(body);
                (id, compact)
            })
            .collect();
        Ok(Self {
            dir,
            manifest,
            templates,
        })
    }

    pub fn stack(&self, id: &str) -> Option<&StackEntry> {
        self.manifest.stack(id)
    }

    pub fn template(&self, id: &str) -> &str {
        // validate() guarantees a template for every stack id.
        self.templates.get(id).map(String::as_str).unwrap_or("")
    }

    /// Logical id and type of every resource the template declares.
    pub fn template_resources(&self, id: &str) -> Result<Vec<(String, String)>, EngineError> {
        template_resources(self.template(id))
            .map_err(|e| EngineError::Input(format!("stack {id}: {e}")))
    }

    /// The value of a resource property in the template, if written literally there.
    pub fn resource_property(&self, id: &str, logical_id: &str, property: &str) -> Option<Value> {
        let doc: Value = serde_json::from_str(self.template(id)).ok()?;
        doc.get("Resources")?
            .get(logical_id)?
            .get("Properties")?
            .get(property)
            .cloned()
    }
}

/// Logical id and type of each resource in a template body.
pub fn template_resources(body: &str) -> Result<Vec<(String, String)>, String> {
    let doc: Value =
        serde_json::from_str(body).map_err(|e| format!("template is not JSON: {e}"))?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or_else(|| "template has no Resources object".to_string())?;
    Ok(resources
        .iter()
        .map(|(id, r)| {
            (
                id.clone(),
                r.get("Type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect())
}

fn validate(manifest: &Manifest, templates: &BTreeMap<String, String>) -> Result<(), EngineError> {
    if manifest.format_version != MANIFEST_FORMAT_VERSION {
        return Err(EngineError::Input(format!(
            "manifest format_version is {}, this lifeboat reads {MANIFEST_FORMAT_VERSION}; synthesize again",
            manifest.format_version
        )));
    }
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for s in &manifest.stacks {
        if !ids.insert(s.id.as_str()) {
            return Err(EngineError::Input(format!(
                "manifest lists stack id {} twice",
                s.id
            )));
        }
        if !names.insert((s.region.as_str(), s.name.as_str())) {
            return Err(EngineError::Input(format!(
                "manifest lists stack name {} twice in {}",
                s.name, s.region
            )));
        }
        if !templates.contains_key(&s.id) {
            return Err(EngineError::Input(format!("stack {}: no template", s.id)));
        }
    }
    for s in &manifest.stacks {
        for d in &s.depends_on {
            if !ids.contains(d.as_str()) {
                return Err(EngineError::Input(format!(
                    "stack {} depends on unknown stack {d}",
                    s.id
                )));
            }
        }
        for p in &s.parameters {
            if let ParameterSource::StackOutput { stack, output } = &p.source {
                if !s.depends_on.contains(stack) {
                    return Err(EngineError::Input(format!(
                        "stack {}: parameter {} takes output {output} of {stack}, which is not in its depends_on",
                        s.id, p.name
                    )));
                }
                let producer = manifest
                    .stack(stack)
                    .map(|e| e.outputs.contains(output))
                    .unwrap_or(false);
                if !producer {
                    return Err(EngineError::Input(format!(
                        "stack {}: parameter {} takes output {output} of {stack}, which declares no such output",
                        s.id, p.name
                    )));
                }
            }
        }
    }
    crate::graph::check_acyclic(&manifest.stacks)?;
    Ok(())
}
