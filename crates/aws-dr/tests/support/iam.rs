//! What the DR automation's role must allow, checked against what its code really calls.
//!
//! moto does not enforce IAM in these tests, so every AWS call the code under test sends is recorded (an
//! SDK interceptor on its clients, [`Recorder`]) with the IAM action and resource it needs, and evaluated
//! here against the synthesized role's policies the way IAM evaluates an identity policy: an action is
//! allowed when a statement with `Effect: Allow` matches the action and the resource (`*` and `?`
//! wildcards) and its conditions hold; there are no Deny statements to consider
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>).
//! Action names follow the service authorization reference: the API operation's name, except where
//! noted in [`action_of`].

#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

pub const ACCOUNT: &str = "123456789012";

/// One request the code sent.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub region: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Records every request of the client it is added to.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub log: CallLog,
    pub region: String,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "iam-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let request = context.request();
        let uri = request.uri().to_owned();
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (uri.clone(), String::new()),
        };
        // Path only, without scheme and host.
        let path = match path.find("://") {
            Some(i) => path[i + 3..]
                .find('/')
                .map_or("/".to_owned(), |j| path[i + 3 + j..].to_owned()),
            None => path,
        };
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        self.log.0.lock().unwrap().push(Call {
            service: metadata.service().to_owned(),
            operation: metadata.name().to_owned(),
            region: self.region.clone(),
            path,
            query,
            body,
        });
        Ok(())
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A form-encoded body's fields (the Query protocol of RDS, SNS and CloudWatch).
fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

/// The IAM action a call needs (`None`: the call needs no permission).
pub fn action_of(call: &Call) -> Option<String> {
    let prefix = match call.service.as_str() {
        "DynamoDB" => "dynamodb",
        "SSM" => "ssm",
        "SNS" => "sns",
        "RDS" => "rds",
        "Lambda" => "lambda",
        "S3" => "s3",
        "CloudWatch" => "cloudwatch",
        "Route 53" | "Route53" => "route53",
        // "No permissions are required to perform this operation"
        // (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
        "STS" if call.operation == "GetCallerIdentity" => return None,
        other => panic!("service {other} ({}) is not mapped to IAM", call.operation),
    };
    let action = match (prefix, call.operation.as_str()) {
        // The service authorization reference names these actions differently from their operations.
        ("s3", "GetBucketReplication") => "GetReplicationConfiguration",
        ("lambda", "Invoke") => "InvokeFunction",
        (_, op) => op,
    };
    Some(format!("{prefix}:{action}"))
}

/// The resources a call acts on, as ARNs (`*` for actions that take none).
pub fn resources_of(call: &Call) -> Vec<String> {
    let r = &call.region;
    let json: Value = serde_json::from_str(&call.body).unwrap_or(Value::Null);
    let form = form(&call.body);
    let segments: Vec<String> = call
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    match (call.service.as_str(), call.operation.as_str()) {
        ("DynamoDB", _) => vec![format!(
            "arn:aws:dynamodb:{r}:{ACCOUNT}:table/{}",
            json["TableName"]
                .as_str()
                .expect("a DynamoDB call names its table")
        )],
        ("SSM", "GetParameters") => json["Names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| format!("arn:aws:ssm:{r}:{ACCOUNT}:parameter{}", n.as_str().unwrap()))
            .collect(),
        ("SSM", _) => vec![format!(
            "arn:aws:ssm:{r}:{ACCOUNT}:parameter{}",
            json["Name"]
                .as_str()
                .expect("an SSM call names its parameter")
        )],
        ("SNS", "Publish") => vec![form["TopicArn"].clone()],
        ("RDS", "SwitchoverGlobalCluster" | "FailoverGlobalCluster") => {
            let global = &form["GlobalClusterIdentifier"];
            let target = &form["TargetDbClusterIdentifier"];
            let target = if target.starts_with("arn:") {
                target.clone()
            } else {
                format!("arn:aws:rds:{r}:{ACCOUNT}:cluster:{target}")
            };
            vec![
                format!("arn:aws:rds::{ACCOUNT}:global-cluster:{global}"),
                target,
            ]
        }
        ("RDS", "ModifyDBCluster") => vec![format!(
            "arn:aws:rds:{r}:{ACCOUNT}:cluster:{}",
            form["DBClusterIdentifier"]
        )],
        ("Lambda", _) => {
            // /2015-03-31/functions/<name>/invocations, /2019-09-30/functions/<name>/concurrency
            let name = segments
                .iter()
                .position(|s| s == "functions")
                .and_then(|i| segments.get(i + 1))
                .expect("a Lambda call names its function");
            let name = name.rsplit(':').next().unwrap();
            vec![format!("arn:aws:lambda:{r}:{ACCOUNT}:function:{name}")]
        }
        ("S3", "GetBucketReplication") => vec![format!("arn:aws:s3:::{}", segments[0])],
        ("S3", _) => vec![format!("arn:aws:s3:::{}", segments.join("/"))],
        ("Route 53" | "Route53", "ListResourceRecordSets") => {
            vec![format!("arn:aws:route53:::hostedzone/{}", segments[2])]
        }
        ("Route 53" | "Route53", _) if segments.get(1).is_some_and(|s| s == "healthcheck") => {
            vec![format!("arn:aws:route53:::healthcheck/{}", segments[2])]
        }
        _ => vec!["*".to_owned()],
    }
}

/// The condition values IAM would see for a call (only the keys the role's statements use).
fn condition_values(call: &Call) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if call.service == "CloudWatch" && call.operation == "PutMetricData" {
        values.insert(
            "cloudwatch:namespace".into(),
            form(&call.body)["Namespace"].clone(),
        );
    }
    values
}

/// `*` and `?` wildcards, as IAM matches actions and resources.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// Whether `statement` (resolved: plain strings) allows `action` on `resource` for `call`.
pub fn allows(statement: &Value, action: &str, resource: &str, call: &Call) -> bool {
    if statement["Effect"] != "Allow" {
        return false;
    }
    if !strings(&statement["Action"])
        .iter()
        .any(|a| wildcard(a, action))
    {
        return false;
    }
    if !strings(&statement["Resource"])
        .iter()
        .any(|p| wildcard(p, resource))
    {
        return false;
    }
    match statement.get("Condition") {
        None => true,
        Some(conditions) => {
            let values = condition_values(call);
            conditions
                .as_object()
                .unwrap()
                .iter()
                .all(|(operator, keys)| {
                    keys.as_object().unwrap().iter().all(|(key, expected)| {
                        let Some(actual) = values.get(key) else {
                            // A key the request does not carry: the condition does not hold
                            // (kms:ViaService is only present when a service calls KMS on the caller's behalf).
                            return false;
                        };
                        assert_eq!(operator, "StringEquals", "condition operator not modelled");
                        strings(expected).iter().any(|e| e == actual)
                    })
                })
        }
    }
}

/// Resolves the CloudFormation intrinsics of a synthesized policy to strings: `Fn::Sub` with the pseudo
/// parameters, `Fn::Join`, and `Ref`/`Fn::GetAtt` from `values` (unknown ones stay as `<name>`, which
/// matches no real ARN).
pub fn resolve(v: &Value, region: &str, values: &BTreeMap<String, String>) -> Value {
    match v {
        Value::Object(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next().unwrap();
            match key.as_str() {
                "Fn::Sub" => {
                    let text = arg.as_str().expect("Fn::Sub with a plain string");
                    let mut out = text
                        .replace("${AWS::Partition}", "aws")
                        .replace("${AWS::AccountId}", ACCOUNT)
                        .replace("${AWS::Region}", region)
                        .replace("${AWS::URLSuffix}", "amazonaws.com");
                    for (name, value) in values {
                        out = out.replace(&format!("${{{name}}}"), value);
                    }
                    Value::String(out)
                }
                "Fn::Join" => {
                    let parts = arg.as_array().unwrap();
                    let sep = parts[0].as_str().unwrap();
                    let items: Vec<String> = parts[1]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            resolve(p, region, values)
                                .as_str()
                                .unwrap_or("<?>")
                                .to_owned()
                        })
                        .collect();
                    Value::String(items.join(sep))
                }
                "Ref" => {
                    let name = arg.as_str().unwrap();
                    Value::String(
                        values
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| format!("<{name}>")),
                    )
                }
                "Fn::GetAtt" => {
                    let parts = strings(arg);
                    let name = parts.join(".");
                    Value::String(
                        values
                            .get(&name)
                            .cloned()
                            .unwrap_or_else(|| format!("<{name}>")),
                    )
                }
                _ => Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), resolve(v, region, values)))
                        .collect(),
                ),
            }
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, region, values)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| resolve(i, region, values)).collect())
        }
        other => other.clone(),
    }
}

/// Every policy statement attached to role `role_id` in `template`: its inline policies and the
/// `AWS::IAM::RolePolicy` resources naming it.
pub fn role_statements(template: &Value, role_id: &str) -> Vec<Value> {
    let resources = template["Resources"].as_object().unwrap();
    let mut out = Vec::new();
    for policy in resources[role_id]["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.extend(
            policy["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    for resource in resources.values() {
        if resource["Type"] == "AWS::IAM::RolePolicy"
            && resource["Properties"]["RoleName"] == serde_json::json!({ "Ref": role_id })
        {
            out.extend(
                resource["Properties"]["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned(),
            );
        }
    }
    out
}

/// What a set of calls needs of a role's statements.
#[derive(Debug)]
pub struct Verdict {
    /// Calls no statement allows: `(action, resource)`.
    pub denied: Vec<(String, String)>,
    /// For each statement (by index), the `(action, resource)` pairs it is the only statement to allow.
    pub needed: BTreeMap<usize, Vec<(String, String)>>,
    /// Statements some call uses (alone or with another statement).
    pub used: Vec<usize>,
}

pub fn evaluate(statements: &[Value], calls: &[Call]) -> Verdict {
    let mut denied = Vec::new();
    let mut needed: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
    let mut used = Vec::new();
    for call in calls {
        let Some(action) = action_of(call) else {
            continue;
        };
        for resource in resources_of(call) {
            let allowing: Vec<usize> = statements
                .iter()
                .enumerate()
                .filter(|(_, s)| allows(s, &action, &resource, call))
                .map(|(i, _)| i)
                .collect();
            match allowing.as_slice() {
                [] => denied.push((action.clone(), resource.clone())),
                [only] => needed
                    .entry(*only)
                    .or_default()
                    .push((action.clone(), resource.clone())),
                _ => {}
            }
            used.extend(allowing);
        }
    }
    used.sort_unstable();
    used.dedup();
    denied.sort();
    denied.dedup();
    Verdict {
        denied,
        needed,
        used,
    }
}
