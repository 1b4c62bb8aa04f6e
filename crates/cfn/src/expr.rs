//! Values of template properties: literals and CloudFormation intrinsic functions.

use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

/// A property value: a literal, a structure, or an intrinsic function evaluated by CloudFormation.
///
/// Serializes to the JSON CloudFormation expects, so it can also be embedded in `serde_json::json!`
/// structures for nested property types.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    List(Vec<Expr>),
    Map(IndexMap<String, Expr>),
    /// A literal JSON structure (which may itself contain serialized intrinsics).
    Json(Value),
    /// `Ref` to a parameter, a resource or a pseudo parameter (`AWS::Region`, ...).
    Ref(String),
    /// `Fn::GetAtt` of a resource attribute.
    GetAtt(String, String),
    /// `Fn::Sub` with `${...}` placeholders resolved against parameters, resources and pseudo parameters.
    Sub(String),
    /// `Fn::Sub` with extra named values.
    SubWith(String, Vec<(String, Expr)>),
    Join(String, Vec<Expr>),
    Select(u32, Box<Expr>),
    /// `Fn::Split` of a string into a list.
    Split(String, Box<Expr>),
    /// `Fn::GetAZs` of the stack's own region.
    GetAzs,
    /// `Fn::If` on a named condition.
    If(String, Box<Expr>, Box<Expr>),
    /// `Fn::Equals`, for conditions.
    Equals(Box<Expr>, Box<Expr>),
    /// `Fn::Not`, for conditions.
    Not(Box<Expr>),
}

impl Expr {
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Str(s.into())
    }

    pub fn list<T: Into<Expr>>(items: impl IntoIterator<Item = T>) -> Expr {
        Expr::List(items.into_iter().map(Into::into).collect())
    }

    pub fn json(value: Value) -> Expr {
        Expr::Json(value)
    }

    pub fn is_intrinsic(&self) -> bool {
        !matches!(
            self,
            Expr::Str(_)
                | Expr::Int(_)
                | Expr::Num(_)
                | Expr::Bool(_)
                | Expr::List(_)
                | Expr::Map(_)
                | Expr::Json(_)
        )
    }

    /// The JSON CloudFormation reads.
    pub fn to_json(&self) -> Value {
        match self {
            Expr::Str(s) => Value::String(s.clone()),
            Expr::Int(i) => json!(i),
            Expr::Num(n) => json!(n),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::List(items) => Value::Array(items.iter().map(Expr::to_json).collect()),
            Expr::Map(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Expr::Json(v) => v.clone(),
            Expr::Ref(name) => json!({ "Ref": name }),
            Expr::GetAtt(resource, attribute) => json!({ "Fn::GetAtt": [resource, attribute] }),
            Expr::Sub(text) => json!({ "Fn::Sub": text }),
            Expr::SubWith(text, vars) => {
                let vars: serde_json::Map<String, Value> =
                    vars.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                json!({ "Fn::Sub": [text, vars] })
            }
            Expr::Join(sep, items) => {
                json!({ "Fn::Join": [sep, items.iter().map(Expr::to_json).collect::<Vec<_>>()] })
            }
            Expr::Select(index, list) => json!({ "Fn::Select": [index, list.to_json()] }),
            Expr::Split(sep, text) => json!({ "Fn::Split": [sep, text.to_json()] }),
            Expr::GetAzs => json!({ "Fn::GetAZs": "" }),
            Expr::If(cond, then, otherwise) => {
                json!({ "Fn::If": [cond, then.to_json(), otherwise.to_json()] })
            }
            Expr::Equals(a, b) => json!({ "Fn::Equals": [a.to_json(), b.to_json()] }),
            Expr::Not(a) => json!({ "Fn::Not": [a.to_json()] }),
        }
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// `Ref` to a parameter or resource.
pub fn r(name: impl Into<String>) -> Expr {
    Expr::Ref(name.into())
}

/// `Fn::GetAtt`.
pub fn get_att(resource: impl Into<String>, attribute: impl Into<String>) -> Expr {
    Expr::GetAtt(resource.into(), attribute.into())
}

/// `Fn::Sub`.
pub fn sub(text: impl Into<String>) -> Expr {
    Expr::Sub(text.into())
}

/// `Fn::Join`.
pub fn join<T: Into<Expr>>(
    separator: impl Into<String>,
    items: impl IntoIterator<Item = T>,
) -> Expr {
    Expr::Join(
        separator.into(),
        items.into_iter().map(Into::into).collect(),
    )
}

/// `Fn::Select` of an index of a list.
pub fn select(index: u32, list: Expr) -> Expr {
    Expr::Select(index, Box::new(list))
}

/// `Fn::Split`.
pub fn split(separator: impl Into<String>, text: Expr) -> Expr {
    Expr::Split(separator.into(), Box::new(text))
}

/// `Fn::If`.
pub fn if_(
    condition: impl Into<String>,
    then: impl Into<Expr>,
    otherwise: impl Into<Expr>,
) -> Expr {
    Expr::If(
        condition.into(),
        Box::new(then.into()),
        Box::new(otherwise.into()),
    )
}

/// `AWS::NoValue`: removes the property it is the value of (mostly inside `Fn::If`).
pub fn no_value() -> Expr {
    r("AWS::NoValue")
}

pub fn region() -> Expr {
    r("AWS::Region")
}

pub fn account_id() -> Expr {
    r("AWS::AccountId")
}

pub fn partition() -> Expr {
    r("AWS::Partition")
}

pub fn stack_name() -> Expr {
    r("AWS::StackName")
}

/// The pseudo parameters CloudFormation defines in every template.
pub const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

impl From<&str> for Expr {
    fn from(s: &str) -> Self {
        Expr::Str(s.to_string())
    }
}

impl From<String> for Expr {
    fn from(s: String) -> Self {
        Expr::Str(s)
    }
}

impl From<&String> for Expr {
    fn from(s: &String) -> Self {
        Expr::Str(s.clone())
    }
}

impl From<bool> for Expr {
    fn from(b: bool) -> Self {
        Expr::Bool(b)
    }
}

impl From<i64> for Expr {
    fn from(i: i64) -> Self {
        Expr::Int(i)
    }
}

impl From<u32> for Expr {
    fn from(i: u32) -> Self {
        Expr::Int(i64::from(i))
    }
}

impl From<i32> for Expr {
    fn from(i: i32) -> Self {
        Expr::Int(i64::from(i))
    }
}

impl From<u16> for Expr {
    fn from(i: u16) -> Self {
        Expr::Int(i64::from(i))
    }
}

impl From<f64> for Expr {
    fn from(n: f64) -> Self {
        Expr::Num(n)
    }
}

impl From<Value> for Expr {
    fn from(v: Value) -> Self {
        Expr::Json(v)
    }
}

impl<T: Into<Expr>> From<Vec<T>> for Expr {
    fn from(items: Vec<T>) -> Self {
        Expr::List(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intrinsics_render_as_cloudformation_expects() {
        assert_eq!(r("Vpc").to_json(), json!({"Ref": "Vpc"}));
        assert_eq!(
            get_att("Alb", "DNSName").to_json(),
            json!({"Fn::GetAtt": ["Alb", "DNSName"]})
        );
        assert_eq!(
            select(1, Expr::GetAzs).to_json(),
            json!({"Fn::Select": [1, {"Fn::GetAZs": ""}]})
        );
        assert_eq!(
            if_("HasCert", "HTTPS", no_value()).to_json(),
            json!({"Fn::If": ["HasCert", "HTTPS", {"Ref": "AWS::NoValue"}]})
        );
        assert_eq!(
            Expr::SubWith("${A}-x".into(), vec![("A".into(), r("B"))]).to_json(),
            json!({"Fn::Sub": ["${A}-x", {"A": {"Ref": "B"}}]})
        );
    }

    #[test]
    fn exprs_embed_in_json_structures() {
        let v = json!({ "Bucket": r("Assets"), "Enabled": true });
        assert_eq!(v, json!({"Bucket": {"Ref": "Assets"}, "Enabled": true}));
    }
}
