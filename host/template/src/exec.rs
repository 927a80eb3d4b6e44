//! Executes a parse tree like Go's text/template/exec.go, including its
//! argument type checks and error texts.

use std::collections::BTreeMap;
use std::rc::Rc;

use regex::Regex;

use crate::funcs::{self, Func};
use crate::gofmt::{go_quote, sample_value, sprint, sprintf, sprintln};
use crate::humanize;
use crate::parser::{Arg, ArgKind, Cmd, Control, Node, Pipe, Span};
use crate::value::{ROOT_TYPE, Value};
use crate::{QueryFn, QuerySample};

/// Bounds on work and output: templates come from rule files, but a runaway
/// `range` or recursive `template` must end in an error, not a hang.
pub(crate) const MAX_STEPS: u64 = 10_000_000;
pub(crate) const MAX_OUTPUT: usize = 32 << 20;
/// Nested `{{template}}` calls.
const MAX_TEMPLATE_DEPTH: usize = 100;
/// Recursion of the executor itself (lists and pipelines, across template
/// calls): parse-time limits bound one template, this bounds recursive ones
/// so a 2 MiB thread stack is never exhausted.
const MAX_NESTING: usize = 200;

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) span: Span,
    pub(crate) msg: String,
    /// Name of the (possibly `define`d) template that was executing.
    pub(crate) tmpl: String,
}

type R<T> = Result<T, ExecError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'a> {
    pub(crate) text: &'a str,
    pub(crate) defs: &'a BTreeMap<String, Vec<Node>>,
    pub(crate) query: &'a dyn QueryFn,
    pub(crate) external_url: &'a str,
    pub(crate) vars: Vec<(String, Value)>,
    pub(crate) out: String,
    pub(crate) name: String,
    steps: u64,
    depth: usize,
    nesting: usize,
}

enum Items {
    Samples(Rc<Vec<Rc<QuerySample>>>),
    Labels(Rc<BTreeMap<String, String>>),
    Map(Rc<BTreeMap<String, Value>>),
    Int(i64),
    Empty,
}

impl<'a> State<'a> {
    pub(crate) fn new(
        text: &'a str,
        defs: &'a BTreeMap<String, Vec<Node>>,
        query: &'a dyn QueryFn,
        external_url: &'a str,
        name: String,
    ) -> Self {
        State {
            text,
            defs,
            query,
            external_url,
            vars: Vec::new(),
            out: String::new(),
            name,
            steps: 0,
            depth: 0,
            nesting: 0,
        }
    }

    fn err(&self, span: Span, msg: impl Into<String>) -> ExecError {
        ExecError { span, msg: msg.into(), tmpl: self.name.clone() }
    }

    fn src(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    fn tick(&mut self, span: Span) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err(span, format!("template execution exceeded {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn write(&mut self, s: &str, span: Span) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.err(span, format!("template output exceeds {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn enter(&mut self, span: Span) -> R<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(span, format!("exceeded maximum execution nesting ({MAX_NESTING})")));
        }
        Ok(())
    }

    pub(crate) fn walk(&mut self, dot: &Value, list: &'a [Node]) -> R<Flow> {
        let span = match list.first() {
            Some(Node::Text { pos, .. }) => Span { start: *pos, end: *pos },
            Some(Node::Action(p)) => p.span,
            Some(Node::If(c) | Node::With(c) | Node::Range(c)) => c.pipe.span,
            Some(Node::Template { span, .. }) => *span,
            _ => Span { start: 0, end: 0 },
        };
        self.enter(span)?;
        let r = self.walk_list(dot, list);
        self.nesting -= 1;
        r
    }

    fn walk_list(&mut self, dot: &Value, list: &'a [Node]) -> R<Flow> {
        for node in list {
            match node {
                Node::Text { pos, text } => {
                    let span = Span { start: *pos, end: *pos };
                    self.tick(span)?;
                    self.write(text, span)?;
                }
                Node::Action(pipe) => {
                    self.tick(pipe.span)?;
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        let s = print_value(&v);
                        self.write(&s, pipe.span)?;
                    }
                }
                Node::If(c) | Node::With(c) => {
                    self.tick(c.pipe.span)?;
                    let with = matches!(node, Node::With(_));
                    let mark = self.vars.len();
                    let val = self.eval_pipeline(dot, &c.pipe)?;
                    let flow = if val.is_true() {
                        if with { self.walk(&val, &c.list)? } else { self.walk(dot, &c.list)? }
                    } else if let Some(e) = &c.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if flow != Flow::Normal {
                        return Ok(flow);
                    }
                }
                Node::Range(c) => {
                    self.tick(c.pipe.span)?;
                    let flow = self.walk_range(dot, c)?;
                    if flow != Flow::Normal {
                        return Ok(flow);
                    }
                }
                Node::Template { span, name, pipe } => {
                    self.tick(*span)?;
                    self.walk_template(dot, *span, name, pipe.as_ref())?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_template(&mut self, dot: &Value, span: Span, name: &str, pipe: Option<&Pipe>) -> R<()> {
        let defs = self.defs;
        let Some(body) = defs.get(name) else {
            return Err(self.err(span, format!("template {} not defined", go_quote(name, false))));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.err(span, format!("exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Missing,
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, name.to_string());
        self.depth += 1;
        let r = self.walk(&new_dot, body);
        self.depth -= 1;
        self.vars = saved_vars;
        self.name = saved_name;
        r.map(|_| ())
    }

    fn walk_range(&mut self, dot: &Value, c: &'a Control) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let mark2 = self.vars.len();
        let span = c.pipe.span;
        let items = match &val {
            Value::Samples(v) => Items::Samples(v.clone()),
            Value::Labels(m) => Items::Labels(m.clone()),
            Value::Map(m) => Items::Map(m.clone()),
            Value::Int(n) => {
                if c.pipe.decl.len() > 1 {
                    return Err(self.err(span, format!("can't use {n} to iterate over more than one variable")));
                }
                Items::Int(*n)
            }
            // An invalid value is a nil map or similar: not an error in Go.
            Value::Missing | Value::Nil => Items::Empty,
            other => {
                return Err(self.err(span, format!("range can't iterate over {}", sprint(std::slice::from_ref(other)))));
            }
        };
        let mut ran = false;
        macro_rules! iterate {
            ($index:expr, $elem:expr) => {{
                ran = true;
                match self.range_once(c, mark2, $index, $elem)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                }
            }};
        }
        match items {
            Items::Samples(v) => {
                for (i, s) in v.iter().enumerate() {
                    iterate!(Value::Int(i as i64), Value::Sample(Some(s.clone())));
                }
            }
            Items::Labels(m) => {
                for (k, v) in m.iter() {
                    iterate!(Value::Str(k.clone()), Value::Str(v.clone()));
                }
            }
            Items::Map(m) => {
                for (k, v) in m.iter() {
                    iterate!(Value::Str(k.clone()), v.clone());
                }
            }
            Items::Int(n) => {
                for i in 0..n.max(0) {
                    iterate!(Value::Int(i), Value::Int(i));
                }
            }
            Items::Empty => {}
        }
        let mut flow = Flow::Normal;
        if !ran && let Some(e) = &c.else_list {
            flow = self.walk(dot, e)?;
        }
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range_once(&mut self, c: &'a Control, mark: usize, index: Value, elem: Value) -> R<Flow> {
        let span = c.pipe.span;
        self.tick(span)?;
        let decl = &c.pipe.decl;
        if !decl.is_empty() {
            if c.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0], index, span)?;
                    self.set_var(&decl[1], elem.clone(), span)?;
                } else {
                    self.set_var(&decl[0], elem.clone(), span)?;
                }
            } else {
                // The pipeline pushed the declared variables; the last is the element.
                let n = self.vars.len();
                if let Some(slot) = n.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
                    slot.1 = elem.clone();
                }
                if decl.len() > 1
                    && let Some(slot) = n.checked_sub(2).and_then(|i| self.vars.get_mut(i))
                {
                    slot.1 = index;
                }
            }
        }
        let flow = self.walk(&elem, &c.list)?;
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn set_var(&mut self, name: &str, v: Value, span: Span) -> R<()> {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
            return Ok(());
        }
        Err(self.err(span, format!("undefined variable: {name}")))
    }

    fn var_value(&self, name: &str, span: Span) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.err(span, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        self.enter(pipe.span)?;
        let r = self.eval_pipeline_inner(dot, pipe);
        self.nesting -= 1;
        r
    }

    fn eval_pipeline_inner(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.eval_command(dot, cmd, val)?);
        }
        let v = val.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, v.clone(), pipe.span)?;
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn not_a_function(&self, cmd: &Cmd, fin: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            let first = cmd.args.first().map_or(cmd.span, |a| a.span);
            return Err(self.err(first, format!("can't give argument to non-function {}", self.src(first))));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Err(self.err(cmd.span, "empty command"));
        };
        let has_args = cmd.args.len() > 1 || fin.is_some();
        match &first.kind {
            ArgKind::Field(ids) => self.eval_field_chain(dot.clone(), first.span, ids, has_args),
            ArgKind::Chain(base, ids) => self.eval_chain(dot, first.span, base, ids, has_args),
            ArgKind::Func(f) => self.eval_function(dot, *f, cmd.span, &cmd.args[1..], fin),
            ArgKind::Pipe(p) => {
                self.not_a_function(cmd, &fin)?;
                self.eval_pipeline(dot, p)
            }
            ArgKind::Var(name, ids) => {
                let v = self.var_value(name, first.span)?;
                if ids.is_empty() {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(v, first.span, ids, has_args)
            }
            ArgKind::Bool(b) => {
                self.not_a_function(cmd, &fin)?;
                Ok(Value::Bool(*b))
            }
            ArgKind::Dot => {
                self.not_a_function(cmd, &fin)?;
                Ok(dot.clone())
            }
            ArgKind::Nil => {
                self.not_a_function(cmd, &fin)?;
                Err(self.err(first.span, "nil is not a command"))
            }
            ArgKind::Num(n) => {
                self.not_a_function(cmd, &fin)?;
                n.ideal().map_err(|m| self.err(first.span, m))
            }
            ArgKind::Str(s) => {
                self.not_a_function(cmd, &fin)?;
                Ok(Value::Str(s.clone()))
            }
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Field(ids) => self.eval_field_chain(dot.clone(), arg.span, ids, false),
            ArgKind::Var(name, ids) => {
                let v = self.var_value(name, arg.span)?;
                if ids.is_empty() { Ok(v) } else { self.eval_field_chain(v, arg.span, ids, false) }
            }
            ArgKind::Pipe(p) => self.eval_pipeline(dot, p),
            ArgKind::Func(f) => self.eval_function(dot, *f, arg.span, &[], None),
            ArgKind::Chain(base, ids) => self.eval_chain(dot, arg.span, base, ids, false),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Str(s) => Ok(Value::Str(s.clone())),
            ArgKind::Num(n) => n.ideal().map_err(|m| self.err(arg.span, m)),
        }
    }

    fn eval_chain(&mut self, dot: &Value, span: Span, base: &Arg, ids: &[String], has_args: bool) -> R<Value> {
        if matches!(base.kind, ArgKind::Nil) {
            return Err(self.err(span, format!("indirection through explicit nil in {}", self.src(span))));
        }
        let v = self.eval_arg(dot, base)?;
        self.eval_field_chain(v, span, ids, has_args)
    }

    fn eval_field_chain(&mut self, recv: Value, span: Span, ids: &[String], has_args: bool) -> R<Value> {
        let mut r = recv;
        let n = ids.len();
        for (i, id) in ids.iter().enumerate() {
            r = self.eval_field(id, span, has_args && i + 1 == n, r)?;
        }
        Ok(r)
    }

    fn eval_field(&self, name: &str, span: Span, has_args: bool, recv: Value) -> R<Value> {
        let struct_args = || format!("{name} has arguments but cannot be invoked as function");
        let map_args = || format!("{name} is not a method but has arguments");
        let cant = |t: &str| format!("can't evaluate field {name} in type {t}");
        match recv {
            Value::Root(r) => {
                let v = match name {
                    "Labels" => Value::Labels(r.labels.clone()),
                    "ExternalLabels" => Value::Labels(r.external_labels.clone()),
                    "ExternalURL" => Value::Str(r.external_url.clone()),
                    "Value" => Value::Float(r.value),
                    _ => return Err(self.err(span, cant(ROOT_TYPE))),
                };
                if has_args {
                    return Err(self.err(span, struct_args()));
                }
                Ok(v)
            }
            Value::Labels(m) => {
                if has_args {
                    return Err(self.err(span, map_args()));
                }
                // missingkey=zero: a missing label is "".
                Ok(Value::Str(m.get(name).cloned().unwrap_or_default()))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.err(span, map_args()));
                }
                // The zero value of interface{} prints as <no value>.
                Ok(m.get(name).cloned().unwrap_or(Value::Missing))
            }
            Value::Sample(s) => {
                let Some(s) = s else {
                    if matches!(name, "Labels" | "Value") {
                        return Err(self.err(span, format!("nil pointer evaluating *template.sample.{name}")));
                    }
                    return Err(self.err(span, cant("*template.sample")));
                };
                let v = match name {
                    "Labels" => Value::Labels(Rc::new(s.labels.clone())),
                    "Value" => Value::Float(s.value),
                    _ => return Err(self.err(span, cant("*template.sample"))),
                };
                if has_args {
                    return Err(self.err(span, struct_args()));
                }
                Ok(v)
            }
            Value::Time(t) => {
                // The few zero-argument time.Time methods templates use.
                let v = match name {
                    "Unix" => Value::Int(t.div_euclid(1_000_000_000)),
                    "UnixMilli" => Value::Int(t.div_euclid(1_000_000)),
                    "UnixNano" => Value::Int(t),
                    "UTC" => Value::Time(t),
                    "String" => Value::Str(humanize::time_string(t)),
                    _ => return Err(self.err(span, cant("*time.Time"))),
                };
                if has_args {
                    return Err(self.err(span, format!("wrong number of args for {name}: want 0 got 1")));
                }
                Ok(v)
            }
            Value::Missing => Ok(Value::Missing),
            Value::Nil => Err(self.err(span, format!("nil pointer evaluating interface {{}}.{name}"))),
            other => Err(self.err(span, cant(other.type_name()))),
        }
    }

    fn eval_function(&mut self, dot: &Value, f: Func, span: Span, args: &[Arg], fin: Option<Value>) -> R<Value> {
        let name = funcs::name(f);
        let (n, variadic) = funcs::arity(f);
        let num_in = args.len() + usize::from(fin.is_some());
        if variadic {
            if num_in < n {
                return Err(
                    self.err(span, format!("wrong number of args for {name}: want at least {n} got {}", args.len()))
                );
            }
        } else if num_in != n {
            return Err(self.err(span, format!("wrong number of args for {name}: want {n} got {num_in}")));
        }
        if matches!(f, Func::And | Func::Or) {
            // Go short-circuits and/or: later arguments are not evaluated.
            let want = f == Func::Or;
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, a)?.into_arg();
                if v.is_true() == want {
                    return Ok(v);
                }
            }
            if let Some(x) = fin {
                v = x.into_arg();
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(num_in);
        for a in args {
            vals.push((self.eval_arg(dot, a)?, a.span));
        }
        if let Some(v) = fin {
            vals.push((v, span));
        }
        self.call(f, name, span, &vals, args)
    }

    fn want_str(&self, a: Option<&(Value, Span)>, span: Span) -> R<String> {
        match a {
            Some((Value::Str(s), _)) => Ok(s.clone()),
            Some((Value::Missing | Value::Nil, sp)) => Err(self.err(*sp, "invalid value; expected string")),
            Some((other, sp)) => {
                Err(self.err(*sp, format!("wrong type for value; expected string; got {}", other.type_name())))
            }
            None => Err(self.err(span, "missing argument")),
        }
    }

    fn want_sample(&self, a: Option<&(Value, Span)>, span: Span) -> R<Option<Rc<QuerySample>>> {
        match a {
            Some((Value::Sample(s), _)) => Ok(s.clone()),
            Some((Value::Missing | Value::Nil, _)) => Ok(None),
            Some((other, sp)) => {
                Err(self
                    .err(*sp, format!("wrong type for value; expected *template.sample; got {}", other.type_name())))
            }
            None => Err(self.err(span, "missing argument")),
        }
    }

    fn want_samples(&self, a: Option<&(Value, Span)>, span: Span) -> R<Rc<Vec<Rc<QuerySample>>>> {
        match a {
            Some((Value::Samples(s), _)) => Ok(s.clone()),
            Some((Value::Missing | Value::Nil, _)) => Ok(Rc::new(Vec::new())),
            Some((other, sp)) => Err(self
                .err(*sp, format!("wrong type for value; expected template.queryResult; got {}", other.type_name()))),
            None => Err(self.err(span, "missing argument")),
        }
    }

    fn call(&mut self, f: Func, name: &str, span: Span, a: &[(Value, Span)], nodes: &[Arg]) -> R<Value> {
        let fail = |st: &Self, msg: String| st.err(span, format!("error calling {name}: {msg}"));
        let any = |i: usize| a.get(i).map_or(Value::Nil, |x| x.0.clone().into_arg());
        let all = || a.iter().map(|x| x.0.clone().into_arg()).collect::<Vec<_>>();
        let float = |st: &Self| humanize::convert_to_float(&any(0)).map_err(|m| fail(st, m));
        let v = match f {
            Func::And | Func::Or => any(0),
            Func::Not => Value::Bool(!any(0).is_true()),
            Func::Len => match any(0) {
                Value::Str(s) | Value::Html(s) => Value::Int(s.len() as i64),
                Value::Labels(m) => Value::Int(m.len() as i64),
                Value::Map(m) => Value::Int(m.len() as i64),
                Value::Samples(v) => Value::Int(v.len() as i64),
                Value::Sample(None) => return Err(fail(self, "len of nil pointer".into())),
                Value::Nil | Value::Missing => return Err(fail(self, "len of untyped nil".into())),
                other => return Err(fail(self, format!("len of type {}", other.type_name()))),
            },
            Func::Index => index(any(0), &a[1.min(a.len())..]).map_err(|m| fail(self, m))?,
            Func::Slice => slice(any(0), &a[1.min(a.len())..]).map_err(|m| fail(self, m))?,
            Func::Print => Value::Str(sprint(&all())),
            Func::Println => Value::Str(sprintln(&all())),
            Func::Printf => {
                let format = self.want_str(a.first(), span)?;
                let rest: Vec<Value> = a.iter().skip(1).map(|x| x.0.clone().into_arg()).collect();
                Value::Str(sprintf(&format, &rest))
            }
            Func::Html => Value::Str(funcs::html_escape(&eval_args(a))),
            Func::Js => Value::Str(funcs::js_escape(&eval_args(a))),
            Func::Urlquery => Value::Str(funcs::query_escape(&eval_args(a))),
            Func::Eq => {
                let first = any(0);
                if a.len() < 2 {
                    return Err(fail(self, "missing argument for comparison".into()));
                }
                let mut truth = false;
                for x in &a[1..] {
                    if eq(&first, &x.0.clone().into_arg()).map_err(|m| fail(self, m))? {
                        truth = true;
                        break;
                    }
                }
                Value::Bool(truth)
            }
            Func::Ne => Value::Bool(!eq(&any(0), &any(1)).map_err(|m| fail(self, m))?),
            Func::Lt => Value::Bool(lt(&any(0), &any(1)).map_err(|m| fail(self, m))?),
            Func::Le => Value::Bool(le(&any(0), &any(1)).map_err(|m| fail(self, m))?),
            Func::Gt => Value::Bool(!le(&any(0), &any(1)).map_err(|m| fail(self, m))?),
            Func::Ge => Value::Bool(!lt(&any(0), &any(1)).map_err(|m| fail(self, m))?),
            Func::Call => {
                let what = nodes.first().map_or("", |n| self.src(n.span));
                return Err(match any(0) {
                    Value::Nil => fail(self, "call of nil".into()),
                    other => fail(self, format!("non-function {what} of type {}", other.type_name())),
                });
            }
            Func::Query => {
                let q = self.want_str(a.first(), span)?;
                match self.query.query(&q) {
                    Ok(list) => Value::Samples(Rc::new(list.into_iter().map(Rc::new).collect())),
                    Err(e) => return Err(fail(self, e)),
                }
            }
            Func::First => {
                let v = self.want_samples(a.first(), span)?;
                match v.first() {
                    Some(s) => Value::Sample(Some(s.clone())),
                    None => return Err(fail(self, "first() called on vector with no elements".into())),
                }
            }
            Func::Label => {
                let l = self.want_str(a.first(), span)?;
                let s = self.want_sample(a.get(1), span)?.ok_or_else(|| fail(self, NIL_DEREF.into()))?;
                Value::Str(s.labels.get(&l).cloned().unwrap_or_default())
            }
            Func::Value => {
                let s = self.want_sample(a.first(), span)?.ok_or_else(|| fail(self, NIL_DEREF.into()))?;
                Value::Float(s.value)
            }
            Func::Strvalue => {
                let s = self.want_sample(a.first(), span)?.ok_or_else(|| fail(self, NIL_DEREF.into()))?;
                Value::Str(s.labels.get("__value__").cloned().unwrap_or_default())
            }
            Func::Args => {
                let m: BTreeMap<String, Value> =
                    a.iter().enumerate().map(|(i, x)| (format!("arg{i}"), x.0.clone().into_arg())).collect();
                Value::Map(Rc::new(m))
            }
            Func::ReReplaceAll => {
                let pat = self.want_str(a.first(), span)?;
                let repl = self.want_str(a.get(1), span)?;
                let text = self.want_str(a.get(2), span)?;
                let re = Regex::new(&pat).map_err(|e| {
                    fail(self, format!("regexp: Compile({}): {}", go_quote(&pat, false), regex_error(&e, &pat)))
                })?;
                Value::Str(re.replace_all(&text, repl.as_str()).into_owned())
            }
            Func::Match => {
                let pat = self.want_str(a.first(), span)?;
                let text = self.want_str(a.get(1), span)?;
                let re = Regex::new(&pat).map_err(|e| fail(self, regex_error(&e, &pat)))?;
                Value::Bool(re.is_match(&text))
            }
            Func::SafeHtml => Value::Html(self.want_str(a.first(), span)?),
            Func::Title => Value::Str(funcs::title(&self.want_str(a.first(), span)?)),
            Func::ToUpper => Value::Str(funcs::map_case(&self.want_str(a.first(), span)?, true)),
            Func::ToLower => Value::Str(funcs::map_case(&self.want_str(a.first(), span)?, false)),
            Func::StripPort => Value::Str(funcs::strip_port(&self.want_str(a.first(), span)?)),
            Func::StripDomain => Value::Str(funcs::strip_domain(&self.want_str(a.first(), span)?)),
            Func::GraphLink => {
                Value::Str(format!("/graph?g0.expr={}&g0.tab=0", funcs::query_escape(&self.want_str(a.first(), span)?)))
            }
            Func::TableLink => {
                Value::Str(format!("/graph?g0.expr={}&g0.tab=1", funcs::query_escape(&self.want_str(a.first(), span)?)))
            }
            Func::SortByLabel => {
                let l = self.want_str(a.first(), span)?;
                let mut v: Vec<Rc<QuerySample>> = self.want_samples(a.get(1), span)?.as_ref().clone();
                v.sort_by(|x, y| {
                    let kx = x.labels.get(&l).map_or("", String::as_str);
                    let ky = y.labels.get(&l).map_or("", String::as_str);
                    kx.cmp(ky)
                });
                Value::Samples(Rc::new(v))
            }
            Func::Humanize => Value::Str(humanize::humanize(float(self)?)),
            Func::Humanize1024 => Value::Str(humanize::humanize1024(float(self)?)),
            Func::HumanizeDuration => Value::Str(humanize::humanize_duration(float(self)?)),
            Func::HumanizePercentage => Value::Str(humanize::humanize_percentage(float(self)?)),
            Func::HumanizeTimestamp => {
                Value::Str(humanize::humanize_timestamp(float(self)?).map_err(|m| fail(self, m))?)
            }
            Func::ToTime => Value::Time(humanize::float_to_time(float(self)?).map_err(|m| fail(self, m))?),
            Func::ParseDuration => {
                let s = self.want_str(a.first(), span)?;
                Value::Float(humanize::parse_duration(&s).map_err(|m| fail(self, m))?)
            }
            Func::PathPrefix => Value::Str(funcs::url_path(self.external_url)),
            Func::ExternalUrl => Value::Str(self.external_url.to_string()),
        };
        Ok(v)
    }
}

/// Rust's regex errors are multi-line; keep the line that says what is wrong.
fn regex_error(e: &regex::Error, pat: &str) -> String {
    let s = e.to_string();
    let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid pattern");
    let line = line.trim().strip_prefix("error: ").unwrap_or(line.trim());
    format!("error parsing regexp: {line}: `{pat}`")
}

/// How an action prints its value (Go's printValue/printableValue).
fn print_value(v: &Value) -> String {
    match v {
        Value::Missing | Value::Nil => "<no value>".into(),
        Value::Sample(None) => "<nil>".into(),
        Value::Sample(Some(s)) => sample_value(s),
        other => sprint(std::slice::from_ref(other)),
    }
}

/// evalArgs of the html/js/urlquery builtins.
fn eval_args(a: &[(Value, Span)]) -> String {
    if let [(Value::Str(s), _)] = a {
        return s.clone();
    }
    let vals: Vec<Value> = a
        .iter()
        .map(|(v, _)| match v {
            Value::Missing | Value::Nil => Value::Str("<no value>".into()),
            Value::Sample(Some(s)) => Value::Str(sample_value(s)),
            other => other.clone(),
        })
        .collect();
    sprint(&vals)
}

fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    match v {
        Value::Int(x) => {
            if *x < 0 || *x as u64 > cap as u64 {
                return Err(format!("index out of range: {x}"));
            }
            Ok(*x as usize)
        }
        Value::Nil | Value::Missing => Err("cannot index slice/array with nil".into()),
        other => Err(format!("cannot index slice/array with type {}", other.type_name())),
    }
}

fn map_key(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Nil | Value::Missing => Err("value is nil; should be of type string".into()),
        other => Err(format!("value has type {}; should be string", other.type_name())),
    }
}

fn index(mut item: Value, idx: &[(Value, Span)]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".into());
    }
    for (i, _) in idx {
        let i = i.clone().into_arg();
        item = match item {
            Value::Sample(None) => return Err("index of nil pointer".into()),
            Value::Str(s) | Value::Html(s) => {
                let x = index_arg(&i, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Samples(v) => {
                let x = index_arg(&i, v.len())?;
                match v.get(x) {
                    Some(s) => Value::Sample(Some(s.clone())),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Labels(m) => Value::Str(m.get(&map_key(&i)?).cloned().unwrap_or_default()),
            Value::Map(m) => m.get(&map_key(&i)?).cloned().unwrap_or(Value::Nil),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: Value, idx: &[(Value, Span)]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("slice of untyped nil".into());
    }
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match &item {
        Value::Str(s) | Value::Html(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::Samples(v) => v.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut bounds = [0, len, len];
    for (k, (v, _)) in idx.iter().enumerate() {
        bounds[k] = index_arg(&v.clone().into_arg(), len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!("invalid slice index: {} > {}", bounds[0], bounds[1]));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return Err(format!("invalid slice index: {} > {}", bounds[1], bounds[2]));
    }
    let (i, j) = (bounds[0], bounds[1]);
    Ok(match item {
        Value::Str(s) => Value::Str(String::from_utf8_lossy(s.as_bytes().get(i..j).unwrap_or(&[])).into_owned()),
        Value::Html(s) => Value::Html(String::from_utf8_lossy(s.as_bytes().get(i..j).unwrap_or(&[])).into_owned()),
        Value::Samples(v) => Value::Samples(Rc::new(v.get(i..j).unwrap_or(&[]).to_vec())),
        other => other,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BasicKind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn basic_kind(v: &Value) -> BasicKind {
    match v {
        Value::Missing | Value::Nil => BasicKind::Invalid,
        Value::Bool(_) => BasicKind::Bool,
        Value::Int(_) => BasicKind::Int,
        Value::Float(_) => BasicKind::Float,
        Value::Str(_) | Value::Html(_) => BasicKind::Str,
        _ => BasicKind::Other,
    }
}

fn str_of(v: &Value) -> &str {
    match v {
        Value::Str(s) | Value::Html(s) => s,
        _ => "",
    }
}

/// Go's eq for one pair: no implicit int/float conversion, which is why
/// `eq $value 1` fails with "incompatible types for comparison".
fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    use BasicKind as K;
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    let non_basic = |k: K| matches!(k, K::Invalid | K::Other);
    if non_basic(k1) && non_basic(k2) {
        return other_eq(a, b);
    }
    if k1 != k2 {
        if k1 != K::Invalid && k2 != K::Invalid {
            return Err("incompatible types for comparison".into());
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ => str_of(a) == str_of(b),
    })
}

fn other_eq(a: &Value, b: &Value) -> Result<bool, String> {
    let nil = |v: &Value| matches!(v, Value::Nil | Value::Missing);
    match (a, b) {
        (x, y) if nil(x) && nil(y) => Ok(true),
        (x, Value::Sample(s)) | (Value::Sample(s), x) if nil(x) => Ok(s.is_none()),
        (x, _) | (_, x) if nil(x) => Ok(false),
        (Value::Sample(x), Value::Sample(y)) => Ok(match (x, y) {
            (Some(x), Some(y)) => Rc::ptr_eq(x, y),
            (None, None) => true,
            _ => false,
        }),
        (Value::Time(x), Value::Time(y)) => Ok(x == y),
        (x, y) if std::mem::discriminant(x) == std::mem::discriminant(y) => {
            Err(format!("non-comparable type {}: {}", sprint(std::slice::from_ref(x)), x.type_name()))
        }
        (x, y) => Err(format!(
            "non-comparable types {}: {}, {}: {}",
            sprint(std::slice::from_ref(x)),
            x.type_name(),
            y.type_name(),
            sprint(std::slice::from_ref(y))
        )),
    }
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    use BasicKind as K;
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if matches!(k1, K::Invalid | K::Other) || matches!(k2, K::Invalid | K::Other) {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".into());
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Bool(_), _) => Err("invalid type for comparison".into()),
        _ => Ok(str_of(a) < str_of(b)),
    }
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, b)
}
