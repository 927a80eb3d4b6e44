//! Runtime values: the handful of Go types Prometheus templates ever see.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::QuerySample;

/// The data struct Prometheus passes as dot (`AlertTemplateData`).
#[derive(Debug)]
pub(crate) struct RootData {
    pub(crate) labels: Rc<BTreeMap<String, String>>,
    pub(crate) external_labels: Rc<BTreeMap<String, String>>,
    pub(crate) external_url: String,
    pub(crate) value: f64,
}

pub(crate) const ROOT_TYPE: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }";

#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Go's invalid reflect.Value: a missing key of a `map[string]interface{}`.
    Missing,
    /// An untyped nil interface.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `template.HTML` from safeHtml: a string kind, but a distinct type.
    Html(String),
    /// `map[string]string` (label sets).
    Labels(Rc<BTreeMap<String, String>>),
    /// `map[string]interface{}` (from `args`).
    Map(Rc<BTreeMap<String, Value>>),
    /// `*template.sample`; None is a nil pointer.
    Sample(Option<Rc<QuerySample>>),
    /// `template.queryResult`.
    Samples(Rc<Vec<Rc<QuerySample>>>),
    /// `*time.Time` as Unix nanoseconds (always UTC).
    Time(i64),
    Root(Rc<RootData>),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::Labels(_) => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::Sample(_) => "*template.sample",
            Value::Samples(_) => "template.queryResult",
            Value::Time(_) => "*time.Time",
            Value::Root(_) => ROOT_TYPE,
        }
    }

    /// Go's isTrue: the truth of `if`, `with`, `and`, `or`, `not`.
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Missing | Value::Nil | Value::Sample(None) => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::Labels(m) => !m.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Samples(v) => !v.is_empty(),
            Value::Sample(Some(_)) | Value::Time(_) | Value::Root(_) => true,
        }
    }

    /// What an invalid value becomes when passed as an `interface{}` argument.
    pub(crate) fn into_arg(self) -> Value {
        match self {
            Value::Missing => Value::Nil,
            v => v,
        }
    }
}
