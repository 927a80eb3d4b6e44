//! Prometheus' alert and console templates: the subset of Go's
//! `text/template` that rule files use, with Prometheus' functions
//! (`humanize*`, `printf`, `query`, `first`, `value`, `label`, ...).
//!
//! Behaviour follows Go and Prometheus (template/template.go) so that rule
//! files render the same text here as in Prometheus:
//! - Prometheus executes with `Option("missingkey=zero")`: a missing label of
//!   `$labels`/`.Labels` (a `map[string]string`) renders as "", while a missing
//!   key of an `args` map (`map[string]interface{}`) still renders `<no value>`.
//! - Function names are checked while parsing, so an unknown function is a
//!   parse error, as `promtool check rules` reports it.
//! - No implicit numeric conversion in comparisons: `gt $value 80` fails with
//!   "incompatible types for comparison" exactly like Go; write `80.0`.
//! - Numbers print with Go's `fmt` (`%v` of a float64 is strconv's shortest
//!   'g': `1e+06`, `0.1`, `+Inf`).
//!
//! Deliberate differences: error columns are 1-based and counted in
//! characters (Go's are 0-based bytes); nested sample pointers print as
//! `&{...}` instead of an address; strings are UTF-8, so `\xff` escapes and
//! byte slicing that split a character yield U+FFFD; execution is bounded
//! (steps, output size, nesting) so a runaway template ends in an error.

use std::collections::BTreeMap;
use std::rc::Rc;

mod exec;
mod funcs;
mod gofmt;
mod humanize;
mod lexer;
mod parser;
mod value;

use value::{RootData, Value};

/// Why a template did not parse or render; `line`/`column` are 1-based
/// positions in the template text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}:{column}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One sample a `query` call returns: labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Runs the PromQL of `{{ query "..." }}` at the evaluation time.
pub trait QueryFn {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

/// What a rule's template sees: `$labels`/`.Labels`, `$value`/`.Value`,
/// `$externalLabels`, `$externalURL`.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    text: String,
    root: Vec<parser::Node>,
    defs: BTreeMap<String, Vec<parser::Node>>,
}

/// Variables Prometheus' preamble defines before the rule's text:
/// `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}`
/// `{{$externalURL := .ExternalURL}}{{$value := .Value}}`.
const PREAMBLE_VARS: &[&str] = &["$labels", "$externalLabels", "$externalURL", "$value"];

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = 1 + before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn error_at(name: &str, text: &str, pos: usize, message: String) -> TemplateError {
    let (line, column) = line_col(text, pos);
    TemplateError { name: name.to_string(), line, column, message }
}

impl Template {
    /// Parse `text`; `name` appears in errors (e.g. `alert HighLoad annotation summary`).
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let parsed = parser::parse(text, PREAMBLE_VARS).map_err(|e| error_at(name, text, e.pos, e.msg))?;
        Ok(Template { name: name.to_string(), text: text.to_string(), root: parsed.root, defs: parsed.defs })
    }

    /// Render with Prometheus' preamble (`$labels`, `$value`, ... defined).
    pub fn render(&self, ctx: &Context, query: &dyn QueryFn) -> Result<String, TemplateError> {
        let labels = Rc::new(ctx.labels.clone());
        let external_labels = Rc::new(ctx.external_labels.clone());
        let root = Rc::new(RootData {
            labels: labels.clone(),
            external_labels: external_labels.clone(),
            external_url: ctx.external_url.clone(),
            value: ctx.value,
        });
        let dot = Value::Root(root);
        let mut st = exec::State::new(&self.text, &self.defs, query, &ctx.external_url, self.name.clone());
        st.vars = vec![
            ("$".to_string(), dot.clone()),
            ("$labels".to_string(), Value::Labels(labels)),
            ("$externalLabels".to_string(), Value::Labels(external_labels)),
            ("$externalURL".to_string(), Value::Str(ctx.external_url.clone())),
            ("$value".to_string(), Value::Float(ctx.value)),
        ];
        match st.walk(&dot, &self.root) {
            Ok(_) => Ok(st.out),
            Err(e) => {
                let context = self.text.get(e.span.start..e.span.end).unwrap_or("");
                // Go shortens the context to 20 characters.
                let context = if context.len() > 20 {
                    format!("{}...", context.chars().take(20).collect::<String>())
                } else {
                    context.to_string()
                };
                let message = format!("executing {} at <{}>: {}", gofmt::go_quote(&e.tmpl, false), context, e.msg);
                Err(error_at(&self.name, &self.text, e.span.start, message))
            }
        }
    }
}

#[cfg(test)]
mod tests;
