//! The platform: wires the seven components into stacks for both regions, in deployment order, tags every
//! resource and describes the result in a [`Manifest`].

use lifeboat_cfn::{Template, TemplateError};
use lifeboat_config::{Config, ConfigErrorKind, Role};
use lifeboat_contract::manifest::{MANIFEST_FORMAT_VERSION, Manifest, ParameterSource, StackEntry};

use crate::util::Stack;

/// Everything `lifeboat synth` produces, in memory.
#[derive(Debug, Clone)]
pub struct Synthesis {
    /// Stacks in deployment order, each with its manifest entry.
    pub stacks: Vec<(StackEntry, Template)>,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigErrorKind),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("stack {stack}: {message}")]
    Wiring { stack: String, message: String },
    #[error("could not render {what}: {message}")]
    Render { what: String, message: String },
}

/// The manifest's file name inside the output directory.
pub const MANIFEST_FILE: &str = "manifest.json";

impl Synthesis {
    pub fn total_resources(&self) -> usize {
        self.stacks
            .iter()
            .map(|(entry, _)| entry.resource_count)
            .sum()
    }

    pub fn template(&self, stack_id: &str) -> Option<&Template> {
        self.stacks
            .iter()
            .find(|(e, _)| e.id == stack_id)
            .map(|(_, t)| t)
    }

    /// Every file of the output directory as (file name, content): one template per stack, then the manifest.
    pub fn render(&self) -> Result<Vec<(String, String)>, PlatformError> {
        let mut files = Vec::with_capacity(self.stacks.len() + 1);
        for (entry, template) in &self.stacks {
            files.push((entry.template.clone(), template.render()?));
        }
        let mut manifest =
            serde_json::to_string_pretty(&self.manifest).map_err(|e| PlatformError::Render {
                what: MANIFEST_FILE.into(),
                message: e.to_string(),
            })?;
        manifest.push('\n');
        files.push((MANIFEST_FILE.to_string(), manifest));
        Ok(files)
    }
}

/// Builds every stack of both regions from `config`.
pub fn synthesize(config: &Config) -> Result<Synthesis, PlatformError> {
    config.validate()?;
    use crate::{compute, database, detection, dr_automation, monitoring, networking, storage};
    // Deployment order. The traps it avoids: the replication destination bucket (standby storage) before the
    // primary bucket's replication rule; the global and primary clusters before the secondary cluster; both
    // load balancers before the health checks; the health checks before the failover records.
    let stacks: Vec<Stack> = vec![
        networking::build(config, Role::Primary),
        networking::build(config, Role::Standby),
        database::build(config, Role::Primary),
        database::build(config, Role::Standby),
        storage::build(config, Role::Standby),
        storage::build(config, Role::Primary),
        compute::build(config, Role::Primary),
        compute::build(config, Role::Standby),
        monitoring::build(config, Role::Primary),
        monitoring::build(config, Role::Standby),
        // In us-east-1 whatever the regions: Route 53 publishes its health-check metrics only there.
        detection::build(config),
        dr_automation::build(config, Role::Primary),
        dr_automation::build(config, Role::Standby),
    ];
    assemble(config, stacks)
}

fn assemble(config: &Config, stacks: Vec<Stack>) -> Result<Synthesis, PlatformError> {
    let tags = config.tags();
    let mut entries: Vec<(StackEntry, Template)> = Vec::with_capacity(stacks.len());
    for mut stack in stacks {
        stack.template.apply_tags(&tags);
        stack.template.validate()?;
        for dep in &stack.depends_on {
            if !entries.iter().any(|(e, _)| &e.id == dep) {
                return Err(PlatformError::Wiring {
                    stack: stack.id.clone(),
                    message: format!("depends on `{dep}`, which does not come before it"),
                });
            }
        }
        for parameter in &stack.parameters {
            if let ParameterSource::StackOutput {
                stack: from,
                output,
            } = &parameter.source
            {
                let declared = entries
                    .iter()
                    .any(|(e, _)| &e.id == from && e.outputs.iter().any(|o| o == output));
                if !declared {
                    return Err(PlatformError::Wiring {
                        stack: stack.id.clone(),
                        message: format!(
                            "parameter `{}` takes output `{output}` of `{from}`, which that stack does not declare",
                            parameter.name
                        ),
                    });
                }
            }
        }
        let entry = StackEntry {
            id: stack.id.clone(),
            name: stack.name.clone(),
            component: stack.component.to_string(),
            region: stack.region.clone(),
            template: format!("{}.template.json", stack.id),
            depends_on: stack.depends_on.clone(),
            parameters: stack.parameters.clone(),
            outputs: stack.template.outputs.keys().cloned().collect(),
            resource_count: stack.template.resources.len(),
            stateful_resources: stack.template.stateful_resources(),
        };
        entries.push((entry, stack.template));
    }
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        project: config.project.name.clone(),
        environment: config.project.environment.clone(),
        primary_region: config.regions.primary.clone(),
        standby_region: config.regions.standby.clone(),
        stacks: entries.iter().map(|(e, _)| e.clone()).collect(),
    };
    Ok(Synthesis {
        stacks: entries,
        manifest,
    })
}
