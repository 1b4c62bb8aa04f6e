//! A CloudFormation template: parameters, conditions, resources and outputs, in the order they were added.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::expr::{Expr, PSEUDO_PARAMETERS};
use crate::tags::{TagStyle, tag_style};

/// The properties of one resource type. Implemented by the typed structs in [`crate::resources`].
pub trait ResourceProperties: Serialize {
    /// The CloudFormation type name, e.g. `AWS::EC2::VPC`.
    const TYPE: &'static str;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterType {
    String,
    Number,
    CommaDelimitedList,
}

impl ParameterType {
    fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::Number => "Number",
            ParameterType::CommaDelimitedList => "CommaDelimitedList",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub kind: ParameterType,
    pub description: String,
    pub default: Option<String>,
    pub allowed_pattern: Option<String>,
}

impl Parameter {
    pub fn string(description: impl Into<String>) -> Self {
        Self {
            kind: ParameterType::String,
            description: description.into(),
            default: None,
            allowed_pattern: None,
        }
    }

    pub fn list(description: impl Into<String>) -> Self {
        Self {
            kind: ParameterType::CommaDelimitedList,
            ..Self::string(description)
        }
    }

    pub fn with_default(mut self, default: impl Into<String>) -> Self {
        self.default = Some(default.into());
        self
    }

    pub fn with_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.allowed_pattern = Some(pattern.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("Type".into(), json!(self.kind.as_str()));
        m.insert("Description".into(), json!(self.description));
        if let Some(d) = &self.default {
            m.insert("Default".into(), json!(d));
        }
        if let Some(p) = &self.allowed_pattern {
            m.insert("AllowedPattern".into(), json!(p));
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionPolicy {
    Delete,
    Retain,
    Snapshot,
    /// Retain, except when the stack operation that created the resource rolls back: then it is deleted, so
    /// a failed first create leaves nothing behind and can be retried
    /// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html).
    /// A DeletionPolicy only; as an UpdateReplacePolicy it is written as `Retain`, the only values there being
    /// Delete, Retain and Snapshot
    /// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatereplacepolicy.html).
    RetainExceptOnCreate,
}

impl DeletionPolicy {
    fn as_str(self) -> &'static str {
        match self {
            DeletionPolicy::Delete => "Delete",
            DeletionPolicy::Retain => "Retain",
            DeletionPolicy::Snapshot => "Snapshot",
            DeletionPolicy::RetainExceptOnCreate => "RetainExceptOnCreate",
        }
    }

    /// The policy as an UpdateReplacePolicy (which has no RetainExceptOnCreate).
    fn on_replace(self) -> DeletionPolicy {
        match self {
            DeletionPolicy::RetainExceptOnCreate => DeletionPolicy::Retain,
            other => other,
        }
    }
}

/// One resource: its type, rendered properties and resource attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: &'static str,
    pub properties: Value,
    pub depends_on: Vec<String>,
    pub condition: Option<String>,
    pub deletion_policy: Option<DeletionPolicy>,
    pub update_replace_policy: Option<DeletionPolicy>,
    /// cfn-lint rules ignored on this resource only, each with the reason.
    pub lint_ignores: Vec<(&'static str, &'static str)>,
    /// Holds data: replacing or deleting it needs confirmation at deploy time.
    pub stateful: bool,
}

impl Resource {
    pub fn depends_on(&mut self, logical_id: impl Into<String>) -> &mut Self {
        self.depends_on.push(logical_id.into());
        self
    }

    pub fn condition(&mut self, name: impl Into<String>) -> &mut Self {
        self.condition = Some(name.into());
        self
    }

    /// Marks the resource as holding data and sets what happens to it on deletion and replacement.
    pub fn stateful(&mut self, policy: DeletionPolicy) -> &mut Self {
        self.stateful = true;
        self.deletion_policy = Some(policy);
        self.update_replace_policy = Some(policy.on_replace());
        self
    }

    pub fn deletion_policy(&mut self, policy: DeletionPolicy) -> &mut Self {
        self.deletion_policy = Some(policy);
        self.update_replace_policy = Some(policy.on_replace());
        self
    }

    /// Ignores one cfn-lint rule on this resource; `reason` says why the finding does not apply.
    pub fn lint_ignore(&mut self, rule: &'static str, reason: &'static str) -> &mut Self {
        self.lint_ignores.push((rule, reason));
        self
    }

    /// A property's rendered value, if set.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("Type".into(), json!(self.kind));
        if let Some(c) = &self.condition {
            m.insert("Condition".into(), json!(c));
        }
        if !self.depends_on.is_empty() {
            m.insert("DependsOn".into(), json!(self.depends_on));
        }
        if let Some(p) = self.deletion_policy {
            m.insert("DeletionPolicy".into(), json!(p.as_str()));
        }
        if let Some(p) = self.update_replace_policy {
            m.insert("UpdateReplacePolicy".into(), json!(p.as_str()));
        }
        if !self.lint_ignores.is_empty() {
            let rules: Vec<&str> = self.lint_ignores.iter().map(|(rule, _)| *rule).collect();
            let reasons: Map<String, Value> = self
                .lint_ignores
                .iter()
                .map(|(rule, why)| ((*rule).to_string(), json!(why)))
                .collect();
            m.insert("Metadata".into(), json!({ "cfn-lint": { "config": { "ignore_checks": rules } }, "lifeboat": { "lint-ignore-reasons": reasons } }));
        }
        if self.properties.as_object().is_some_and(|p| !p.is_empty()) {
            m.insert("Properties".into(), self.properties.clone());
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub value: Expr,
    pub description: String,
    pub condition: Option<String>,
}

/// Something in a template that cannot be deployed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{template}: resource `{resource}`: its properties do not serialize: {message}")]
    Properties {
        template: String,
        resource: String,
        message: String,
    },
    #[error("{template}: logical id `{id}` is used twice")]
    DuplicateId { template: String, id: String },
    #[error("{template}: logical id `{id}` must be alphanumeric")]
    BadId { template: String, id: String },
    #[error(
        "{template}: `{at}` refers to `{target}`, which is not a parameter, resource or pseudo parameter"
    )]
    DanglingReference {
        template: String,
        at: String,
        target: String,
    },
    #[error("{template}: `{at}` uses condition `{condition}`, which is not defined")]
    UnknownCondition {
        template: String,
        at: String,
        condition: String,
    },
    #[error("{template}: has {count} resources; CloudFormation allows at most 500")]
    TooManyResources { template: String, count: usize },
}

/// A template under construction. Keys render in insertion order, so the same building steps always give
/// byte-identical JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    /// Used in error messages (usually the stack id).
    pub name: String,
    pub description: String,
    pub parameters: IndexMap<String, Parameter>,
    pub conditions: IndexMap<String, Expr>,
    pub resources: IndexMap<String, Resource>,
    pub outputs: IndexMap<String, Output>,
    errors: Vec<TemplateError>,
}

impl Template {
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            ..Self::default()
        }
    }

    fn check_id(&mut self, id: &str) {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) || id.is_empty() {
            self.errors.push(TemplateError::BadId {
                template: self.name.clone(),
                id: id.to_string(),
            });
        }
        if self.parameters.contains_key(id) || self.resources.contains_key(id) {
            self.errors.push(TemplateError::DuplicateId {
                template: self.name.clone(),
                id: id.to_string(),
            });
        }
    }

    /// Adds a parameter and returns a `Ref` to it.
    pub fn parameter(&mut self, id: &str, parameter: Parameter) -> Expr {
        self.check_id(id);
        self.parameters.insert(id.to_string(), parameter);
        Expr::Ref(id.to_string())
    }

    pub fn condition(&mut self, name: &str, expr: Expr) {
        self.conditions.insert(name.to_string(), expr);
    }

    /// Adds a resource; the returned handle sets resource attributes (`DependsOn`, policies, ...).
    pub fn add<P: ResourceProperties>(&mut self, id: &str, properties: P) -> &mut Resource {
        self.check_id(id);
        let properties = match serde_json::to_value(&properties) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(TemplateError::Properties {
                    template: self.name.clone(),
                    resource: id.to_string(),
                    message: e.to_string(),
                });
                Value::Object(Map::new())
            }
        };
        let resource = Resource {
            kind: P::TYPE,
            properties,
            depends_on: Vec::new(),
            condition: None,
            deletion_policy: None,
            update_replace_policy: None,
            lint_ignores: Vec::new(),
            stateful: false,
        };
        // Replaces a resource of the same id, as `insert` did; the entry hands back the stored one.
        match self.resources.entry(id.to_string()) {
            indexmap::map::Entry::Occupied(mut slot) => {
                slot.insert(resource);
                slot.into_mut()
            }
            indexmap::map::Entry::Vacant(slot) => slot.insert(resource),
        }
    }

    pub fn output(&mut self, id: &str, value: Expr, description: impl Into<String>) {
        self.outputs.insert(
            id.to_string(),
            Output {
                value,
                description: description.into(),
                condition: None,
            },
        );
    }

    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.get(id)
    }

    /// Logical ids of the resources marked stateful, in template order.
    pub fn stateful_resources(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter(|(_, r)| r.stateful)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Tags every taggable resource, in the shape its type expects. Tags a resource sets itself win.
    pub fn apply_tags(&mut self, tags: &BTreeMap<String, String>) {
        for resource in self.resources.values_mut() {
            let Some(props) = resource.properties.as_object_mut() else {
                continue;
            };
            match tag_style(resource.kind) {
                TagStyle::List(key) => {
                    let mut list: Vec<Value> = props
                        .get(key)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let own: BTreeSet<String> = list
                        .iter()
                        .filter_map(|t| t.get("Key").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect();
                    list.extend(
                        tags.iter()
                            .filter(|(k, _)| !own.contains(*k))
                            .map(|(k, v)| json!({"Key": k, "Value": v})),
                    );
                    props.insert(key.to_string(), Value::Array(list));
                }
                TagStyle::Map(key) => {
                    let mut map = props
                        .get(key)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    for (k, v) in tags {
                        map.entry(k.clone()).or_insert_with(|| json!(v));
                    }
                    props.insert(key.to_string(), Value::Object(map));
                }
                TagStyle::NotTaggable => {}
            }
        }
    }

    /// Checks what CloudFormation would reject at deploy time: dangling references, unknown conditions,
    /// duplicate ids, the resource limit.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        if self.resources.len() > 500 {
            return Err(TemplateError::TooManyResources {
                template: self.name.clone(),
                count: self.resources.len(),
            });
        }
        let known = |name: &str| {
            self.parameters.contains_key(name)
                || self.resources.contains_key(name)
                || PSEUDO_PARAMETERS.contains(&name)
        };
        let mut problems = Vec::new();
        for (id, resource) in &self.resources {
            collect_references(
                &resource.properties,
                &format!("Resources.{id}"),
                &mut problems,
            );
            for dep in &resource.depends_on {
                if !self.resources.contains_key(dep) {
                    problems.push(Reference::Target {
                        at: format!("Resources.{id}.DependsOn"),
                        target: dep.clone(),
                    });
                }
            }
            if let Some(c) = &resource.condition {
                problems.push(Reference::Condition {
                    at: format!("Resources.{id}.Condition"),
                    condition: c.clone(),
                });
            }
        }
        for (id, output) in &self.outputs {
            collect_references(
                &output.value.to_json(),
                &format!("Outputs.{id}"),
                &mut problems,
            );
        }
        for (name, expr) in &self.conditions {
            collect_references(
                &expr.to_json(),
                &format!("Conditions.{name}"),
                &mut problems,
            );
        }
        for problem in problems {
            match problem {
                Reference::Target { at, target } if !known(&target) => {
                    return Err(TemplateError::DanglingReference {
                        template: self.name.clone(),
                        at,
                        target,
                    });
                }
                Reference::Condition { at, condition }
                    if !self.conditions.contains_key(&condition) =>
                {
                    return Err(TemplateError::UnknownCondition {
                        template: self.name.clone(),
                        at,
                        condition,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        m.insert("Description".into(), json!(self.description));
        if !self.parameters.is_empty() {
            m.insert(
                "Parameters".into(),
                Value::Object(
                    self.parameters
                        .iter()
                        .map(|(k, p)| (k.clone(), p.to_json()))
                        .collect(),
                ),
            );
        }
        if !self.conditions.is_empty() {
            m.insert(
                "Conditions".into(),
                Value::Object(
                    self.conditions
                        .iter()
                        .map(|(k, c)| (k.clone(), c.to_json()))
                        .collect(),
                ),
            );
        }
        m.insert(
            "Resources".into(),
            Value::Object(
                self.resources
                    .iter()
                    .map(|(k, r)| (k.clone(), r.to_json()))
                    .collect(),
            ),
        );
        if !self.outputs.is_empty() {
            let outputs = self
                .outputs
                .iter()
                .map(|(k, o)| {
                    let mut out = Map::new();
                    out.insert("Description".into(), json!(o.description));
                    if let Some(c) = &o.condition {
                        out.insert("Condition".into(), json!(c));
                    }
                    out.insert("Value".into(), o.value.to_json());
                    (k.clone(), Value::Object(out))
                })
                .collect();
            m.insert("Outputs".into(), Value::Object(outputs));
        }
        Value::Object(m)
    }

    /// The template as pretty JSON with a trailing newline: stable, diffable, byte-identical across runs.
    pub fn render(&self) -> Result<String, TemplateError> {
        self.validate()?;
        let mut text = serde_json::to_string_pretty(&self.to_json()).map_err(|e| {
            TemplateError::Properties {
                template: self.name.clone(),
                resource: "(template)".into(),
                message: e.to_string(),
            }
        })?;
        text.push('\n');
        Ok(text)
    }
}

enum Reference {
    Target { at: String, target: String },
    Condition { at: String, condition: String },
}

/// Finds every `Ref`, `Fn::GetAtt`, `Fn::Sub` placeholder and `Fn::If` condition inside `value`.
fn collect_references(value: &Value, at: &str, out: &mut Vec<Reference>) {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let Some((key, arg)) = map.iter().next() else {
                return;
            };
            match (key.as_str(), arg) {
                ("Ref", Value::String(target)) => out.push(Reference::Target {
                    at: at.to_string(),
                    target: target.clone(),
                }),
                ("Fn::GetAtt", Value::Array(parts)) => {
                    if let Some(Value::String(target)) = parts.first() {
                        out.push(Reference::Target {
                            at: at.to_string(),
                            target: target.clone(),
                        });
                    }
                }
                ("Fn::Sub", Value::String(text)) => sub_references(text, &[], at, out),
                ("Fn::Sub", Value::Array(parts)) => {
                    let vars: Vec<String> = parts
                        .get(1)
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    if let Some(Value::String(text)) = parts.first() {
                        sub_references(text, &vars, at, out);
                    }
                    if let Some(v) = parts.get(1) {
                        collect_references(v, at, out);
                    }
                }
                ("Fn::If", Value::Array(parts)) => {
                    if let Some(Value::String(c)) = parts.first() {
                        out.push(Reference::Condition {
                            at: at.to_string(),
                            condition: c.clone(),
                        });
                    }
                    for p in parts.iter().skip(1) {
                        collect_references(p, at, out);
                    }
                }
                _ => collect_references(arg, &format!("{at}.{key}"), out),
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect_references(v, &format!("{at}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_references(v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn sub_references(text: &str, vars: &[String], at: &str, out: &mut Vec<Reference>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        // `${!Literal}` is an escaped literal; `${Res.Attr}` refers to `Res`.
        if !name.starts_with('!') {
            let target = name.split('.').next().unwrap_or(name);
            if !vars.iter().any(|v| v == name) {
                out.push(Reference::Target {
                    at: at.to_string(),
                    target: target.to_string(),
                });
            }
        }
        rest = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{get_att, r, sub};
    use crate::resources::ec2::{Subnet, Vpc};

    fn sample() -> Template {
        let mut t = Template::new("networking-primary", "test");
        let cidr = t.parameter(
            "VpcCidr",
            Parameter::string("range").with_default("10.0.0.0/16"),
        );
        t.add(
            "Vpc",
            Vpc {
                cidr_block: cidr,
                enable_dns_hostnames: Some(true.into()),
                ..Default::default()
            },
        );
        t.add(
            "SubnetA",
            Subnet {
                vpc_id: r("Vpc"),
                cidr_block: "10.0.0.0/24".into(),
                ..Default::default()
            },
        );
        t.output("VpcId", r("Vpc"), "the VPC");
        t
    }

    #[test]
    fn renders_in_insertion_order_and_identically_twice() {
        let t = sample();
        let a = t.render().unwrap();
        assert_eq!(a, t.render().unwrap());
        let vpc = a.find("\"Vpc\"").unwrap();
        let subnet = a.find("\"SubnetA\"").unwrap();
        assert!(vpc < subnet);
        assert!(a.ends_with("}\n"));
        let v: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(
            v["Resources"]["SubnetA"]["Properties"]["VpcId"],
            json!({"Ref": "Vpc"})
        );
        assert!(
            v["Resources"]["Vpc"]["Properties"]
                .get("InstanceTenancy")
                .is_none(),
            "unset options are omitted"
        );
    }

    #[test]
    fn dangling_references_are_errors() {
        let mut t = sample();
        t.output("Bad", get_att("Nope", "Arn"), "x");
        assert!(
            matches!(t.validate(), Err(TemplateError::DanglingReference { target, .. }) if target == "Nope")
        );

        let mut t = sample();
        t.output(
            "Bad",
            sub("${AWS::Region}-${Vpc}-${Missing.Arn}-${!Literal}"),
            "x",
        );
        assert!(
            matches!(t.validate(), Err(TemplateError::DanglingReference { target, .. }) if target == "Missing")
        );
    }

    #[test]
    fn duplicate_ids_and_unknown_conditions_are_errors() {
        let mut t = sample();
        t.add("Vpc", Vpc::default());
        assert!(matches!(
            t.validate(),
            Err(TemplateError::DuplicateId { .. })
        ));

        let mut t = sample();
        t.add("Other", Vpc::default()).condition("HasCert");
        assert!(matches!(
            t.validate(),
            Err(TemplateError::UnknownCondition { .. })
        ));
    }

    #[test]
    fn tags_go_where_each_type_expects_them() {
        let mut t = sample();
        t.apply_tags(&BTreeMap::from([("Project".to_string(), "X".to_string())]));
        let v = t.to_json();
        assert_eq!(
            v["Resources"]["Vpc"]["Properties"]["Tags"],
            json!([{"Key": "Project", "Value": "X"}])
        );
    }
}
