//! Building blocks shared by the components: a stack under construction (template plus its manifest
//! entry), IAM documents, KMS keys and log groups with secure defaults.

use lifeboat_cfn::resources::{kms, logs};
use lifeboat_cfn::{DeletionPolicy, Expr, Parameter, Template, get_att, r, sub};
use lifeboat_config::{Config, Names, Role};
use lifeboat_contract::manifest::{ArtifactPart, ParameterSource, StackParameter};
use serde_json::{Value, json};

/// Log retention of every log group lifeboat creates.
pub const LOG_RETENTION_DAYS: u32 = 30;

/// One stack being built: its template and what the manifest needs to know about it.
#[derive(Debug, Clone)]
pub struct Stack {
    pub id: String,
    pub name: String,
    pub component: &'static str,
    pub role: Role,
    pub region: String,
    pub template: Template,
    pub depends_on: Vec<String>,
    pub parameters: Vec<StackParameter>,
}

impl Stack {
    pub fn new(config: &Config, component: &'static str, role: Role, description: &str) -> Stack {
        let id = Names::stack_id(component, role);
        let region = config.region(role).to_string();
        let description = format!(
            "lifeboat {}-{}: {description} ({role} region {region})",
            config.project.name, config.project.environment
        );
        Stack {
            name: config.names().stack_name(component, role),
            template: Template::new(id.clone(), description),
            id,
            component,
            role,
            region,
            depends_on: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Deploy `stack_id` before this stack (without taking any value from it).
    pub fn needs(&mut self, stack_id: &str) {
        if !self.depends_on.iter().any(|d| d == stack_id) {
            self.depends_on.push(stack_id.to_string());
        }
    }

    /// A string parameter the deploy engine feeds from `output` of stack `from`; returns a `Ref` to it.
    pub fn input(&mut self, name: &str, from: &str, output: &str) -> Expr {
        self.input_with(
            name,
            from,
            output,
            Parameter::string(format!("Output {output} of stack {from}")),
        )
    }

    /// A comma-delimited list parameter fed from another stack's output (a comma-joined string).
    pub fn input_list(&mut self, name: &str, from: &str, output: &str) -> Expr {
        self.input_with(
            name,
            from,
            output,
            Parameter::list(format!("Output {output} of stack {from}")),
        )
    }

    fn input_with(&mut self, name: &str, from: &str, output: &str, parameter: Parameter) -> Expr {
        self.needs(from);
        self.parameters.push(StackParameter {
            name: name.to_string(),
            source: ParameterSource::StackOutput {
                stack: from.to_string(),
                output: output.to_string(),
            },
        });
        self.template.parameter(name, parameter)
    }

    /// A `true`/`false` parameter saying whether stack `other` is deployed (see
    /// [`ParameterSource::StackDeployed`]); `false` is the template's default.
    pub fn stack_deployed(&mut self, name: &str, other: &str, description: &str) -> Expr {
        self.parameters.push(StackParameter {
            name: name.to_string(),
            source: ParameterSource::StackDeployed {
                stack: other.to_string(),
            },
        });
        self.template.parameter(
            name,
            Parameter::string(description)
                .with_default("false")
                .with_pattern("^(true|false)$"),
        )
    }

    /// A parameter taking the S3 bucket or key of an uploaded code package.
    pub fn artifact(&mut self, name: &str, artifact: &str, part: ArtifactPart) -> Expr {
        let what = match part {
            ArtifactPart::Bucket => "bucket",
            ArtifactPart::Key => "key",
        };
        self.parameters.push(StackParameter {
            name: name.to_string(),
            source: ParameterSource::Artifact {
                artifact: artifact.to_string(),
                part,
            },
        });
        self.template.parameter(
            name,
            Parameter::string(format!(
                "S3 {what} of the {artifact} code package (set by lifeboat deploy)"
            )),
        )
    }

    pub fn output(&mut self, name: &str, value: Expr, description: &str) {
        self.template.output(name, value, description);
    }
}

/// An IAM policy statement.
pub fn allow(actions: &[&str], resources: Vec<Expr>) -> Value {
    json!({ "Effect": "Allow", "Action": actions, "Resource": resources })
}

/// An IAM policy document.
pub fn policy_document(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// An inline policy of a role.
pub fn inline_policy(name: &str, statements: Vec<Value>) -> Value {
    json!({ "PolicyName": name, "PolicyDocument": policy_document(statements) })
}

/// Trust policy letting an AWS service assume a role, limited to this account.
pub fn assume_role(service: &str) -> Expr {
    Expr::json(policy_document(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole",
        "Condition": { "StringEquals": { "aws:SourceAccount": r("AWS::AccountId") } }
    })]))
}

/// A customer-managed KMS key (rotation on) whose policy lets the account administer it and the listed
/// services use it. Marked stateful: deleting it makes everything encrypted with it unreadable.
pub fn kms_key(
    stack: &mut Stack,
    id: &str,
    alias: &str,
    description: &str,
    services: &[&str],
) -> Expr {
    let mut statements = vec![json!({
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": { "AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root") },
        "Action": "kms:*",
        "Resource": "*"
    })];
    if !services.is_empty() {
        statements.push(json!({
            "Sid": "ServicesUse",
            "Effect": "Allow",
            "Principal": { "Service": services },
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey"],
            "Resource": "*"
        }));
    }
    stack
        .template
        .add(
            id,
            kms::Key {
                description: Some(description.into()),
                enable_key_rotation: Some(true.into()),
                pending_window_in_days: Some(30.into()),
                key_policy: Some(Expr::json(policy_document(statements))),
            },
        )
        // Kept when the stack goes (the data it encrypts may outlive it), but deleted when the create that made
        // it rolls back: a key made by a failed attempt encrypts nothing, and each retry would orphan another.
        .stateful(DeletionPolicy::RetainExceptOnCreate);
    stack.template.add(
        &format!("{id}Alias"),
        kms::Alias {
            alias_name: alias.into(),
            target_key_id: r(id),
        },
    );
    get_att(id, "Arn")
}

/// Logical id of the customer-managed key that encrypts the log groups of a stack.
pub const LOGS_KEY: &str = "LogsKey";

/// A log group with the standard retention, encrypted with the stack's logs key (created with the first log
/// group of the stack). The key policy lets CloudWatch Logs of this region use the key only for the log
/// groups of this stack, named in the `kms:EncryptionContext:aws:logs:arn` condition, as described in
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html>.
pub fn log_group(stack: &mut Stack, id: &str, name: &str) -> Expr {
    let group_arn = arn("logs", &format!("log-group:{name}"));
    let key_arn = logs_key(stack, group_arn);
    stack.template.add(
        id,
        logs::LogGroup {
            log_group_name: Some(name.into()),
            retention_in_days: Some(LOG_RETENTION_DAYS.into()),
            kms_key_id: Some(key_arn),
        },
    );
    get_att(id, "Arn")
}

/// The stack's logs key, allowing CloudWatch Logs to use it for `group_arn` (added to the allowed groups).
fn logs_key(stack: &mut Stack, group_arn: Expr) -> Expr {
    if !stack.template.resources.contains_key(LOGS_KEY) {
        let alias = format!("alias/{}-logs", stack.name);
        kms_key(
            stack,
            LOGS_KEY,
            &alias,
            "Encrypts the CloudWatch Logs log groups of this stack",
            &[],
        );
        let statement = json!({
            "Sid": "CloudWatchLogsUse",
            "Effect": "Allow",
            "Principal": { "Service": sub("logs.${AWS::Region}.amazonaws.com") },
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": { "ArnEquals": { "kms:EncryptionContext:aws:logs:arn": [] } }
        });
        if let Some(policy) = stack
            .template
            .resources
            .get_mut(LOGS_KEY)
            .and_then(|key| key.properties.get_mut("KeyPolicy"))
            .and_then(|policy| policy.get_mut("Statement"))
            .and_then(Value::as_array_mut)
        {
            policy.push(statement);
        }
    }
    let groups = stack
        .template
        .resources
        .get_mut(LOGS_KEY)
        .and_then(|key| key.properties.get_mut("KeyPolicy"))
        .and_then(|policy| policy.get_mut("Statement"))
        .and_then(Value::as_array_mut)
        .and_then(|statements| {
            statements
                .iter_mut()
                .find(|st| st["Sid"] == "CloudWatchLogsUse")
        })
        .and_then(|st| st.pointer_mut("/Condition/ArnEquals/kms:EncryptionContext:aws:logs:arn"))
        .and_then(Value::as_array_mut);
    if let Some(groups) = groups {
        groups.push(json!(group_arn));
    }
    get_att(LOGS_KEY, "Arn")
}

/// Sets (or replaces) properties of a resource already in the stack: for hardening a component adds to
/// resources another builds. A missing resource is a bug the platform tests catch (they assert the result).
pub fn set_properties(stack: &mut Stack, id: &str, properties: Value) {
    let Some(target) = stack
        .template
        .resources
        .get_mut(id)
        .and_then(|resource| resource.properties.as_object_mut())
    else {
        return;
    };
    if let Value::Object(new) = properties {
        for (name, value) in new {
            target.insert(name, value);
        }
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<rest>` for this stack's region.
pub fn arn(service: &str, rest: &str) -> Expr {
    sub(format!(
        "arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}"
    ))
}

/// `statement` with `condition` as its `Condition` block.
pub fn with_condition(mut statement: Value, condition: Value) -> Value {
    if let Some(map) = statement.as_object_mut() {
        map.insert("Condition".into(), condition);
    }
    statement
}

/// `arn:<partition>:<service>:<region>:<account>:<rest>` for a named region.
pub fn arn_in(service: &str, region: &str, rest: &str) -> Expr {
    sub(format!(
        "arn:${{AWS::Partition}}:{service}:{region}:${{AWS::AccountId}}:{rest}"
    ))
}

/// Logical-id friendly suffix for an AZ index: A, B, C.
pub fn az_letter(index: usize) -> char {
    char::from(b'A' + u8::try_from(index).unwrap_or(0))
}

/// Joins a list of values into one comma-separated string output.
pub fn join_list(items: Vec<Expr>) -> Expr {
    lifeboat_cfn::join(",", items)
}

/// Manifest id of a component's stack in a role.
pub fn stack_id(component: &str, role: Role) -> String {
    Names::stack_id(component, role)
}

/// A bucket policy statement denying any request not made over TLS.
pub fn deny_insecure_transport(bucket_arn: &Expr) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, lifeboat_cfn::join("", vec![bucket_arn.clone(), "/*".into()])],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// All four S3 public access blocks on.
pub fn block_public_access() -> Expr {
    Expr::json(json!({
        "BlockPublicAcls": true,
        "BlockPublicPolicy": true,
        "IgnorePublicAcls": true,
        "RestrictPublicBuckets": true
    }))
}

/// The ARN of a bucket known by name (avoids a dependency cycle between a bucket and its own role).
pub fn bucket_arn(name: &str) -> Expr {
    sub(format!("arn:${{AWS::Partition}}:s3:::{name}"))
}

/// Tags in the `[{Key, Value}]` shape, for places the generic tagging pass cannot see (table replicas).
pub fn tag_list(config: &Config) -> Value {
    Value::Array(
        config
            .tags()
            .into_iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}
