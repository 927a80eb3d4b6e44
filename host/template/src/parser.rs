//! Parse tree of Go's `text/template` (text/template/parse/parse.go). The
//! structure, the order of checks and the error texts follow Go so that a
//! template Prometheus rejects is rejected here with the same message.

use std::collections::BTreeMap;

use crate::funcs::{self, Func};
use crate::gofmt::go_quote;
use crate::lexer::{Kind, Kw, Token, lex};

/// Nesting deeper than this is refused: every level costs native stack in the
/// recursive parser and executor, and no real alert template comes close.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text { pos: usize, text: String },
    Action(Pipe),
    If(Box<Control>),
    Range(Box<Control>),
    With(Box<Control>),
    Template { span: Span, name: String, pipe: Option<Pipe> },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) span: Span,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) span: Span,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) span: Span,
    pub(crate) kind: ArgKind,
}

#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    /// `.A.B`: field chain on dot.
    Field(Vec<String>),
    Dot,
    /// `$x.A.B`.
    Var(String, Vec<String>),
    Func(Func),
    /// `(pipe).A.B` or `func.A`.
    Chain(Box<Arg>, Vec<String>),
    Pipe(Box<Pipe>),
    Str(String),
    Num(Number),
    Bool(bool),
    Nil,
}

/// A numeric constant with Go's ideal-constant flags.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) int: Option<i64>,
    pub(crate) uint: Option<u64>,
    pub(crate) float: Option<f64>,
    pub(crate) is_char: bool,
}

impl Number {
    /// Go's idealConstant: how a constant becomes a value of its own.
    pub(crate) fn ideal(&self) -> Result<crate::value::Value, String> {
        use crate::value::Value;
        let t = &self.text;
        let hex_int =
            t.len() > 2 && t.starts_with('0') && matches!(t.as_bytes()[1], b'x' | b'X') && !t.contains(['p', 'P']);
        if let Some(f) = self.float
            && !hex_int
            && !self.is_char
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        if let Some(i) = self.int {
            return Ok(Value::Int(i));
        }
        if self.uint.is_some() {
            return Err(format!("{t} overflows int"));
        }
        Ok(Value::Float(self.float.unwrap_or(0.0)))
    }
}

#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) pos: usize,
    pub(crate) msg: String,
}

type PResult<T> = Result<T, ParseError>;

fn perr<T>(pos: usize, msg: impl Into<String>) -> PResult<T> {
    Err(ParseError { pos, msg: msg.into() })
}

pub(crate) struct Parsed {
    pub(crate) root: Vec<Node>,
    pub(crate) defs: BTreeMap<String, Vec<Node>>,
}

enum Item {
    Node(Node),
    End(usize),
    Else(usize),
}

struct Parser {
    src: String,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defs: BTreeMap<String, Vec<Node>>,
}

/// Parses `text`; `predeclared` variables (besides `$`) are in scope in the
/// main template only, as Prometheus' preamble puts them there.
pub(crate) fn parse(text: &str, predeclared: &[&str]) -> PResult<Parsed> {
    let toks = lex(text);
    let mut vars = vec!["$".to_string()];
    vars.extend(predeclared.iter().map(|s| s.to_string()));
    let mut p = Parser { src: text.to_string(), toks, i: 0, vars, range_depth: 0, depth: 0, defs: BTreeMap::new() };
    let root = p.parse_top()?;
    Ok(Parsed { root, defs: p.defs })
}

/// Go's IsEmptyTree: a definition that is only whitespace does not count.
fn is_empty(list: &[Node]) -> bool {
    list.iter().all(|n| matches!(n, Node::Text { text, .. } if text.trim().is_empty()))
}

fn tok_str(t: &Token) -> String {
    match &t.kind {
        Kind::Eof => "EOF".into(),
        Kind::Error(m) => m.clone(),
        Kind::Keyword(_) | Kind::Dot | Kind::Nil => format!("<{}>", t.val),
        _ if t.val.chars().count() > 10 => {
            let short: String = t.val.chars().take(10).collect();
            format!("{}...", go_quote(&short, false))
        }
        _ => go_quote(&t.val, false),
    }
}

fn unexpected<T>(t: &Token, context: &str) -> PResult<T> {
    if let Kind::Error(m) = &t.kind {
        return perr(t.pos, m.clone());
    }
    perr(t.pos, format!("unexpected {} in {}", tok_str(t), context))
}

impl Parser {
    fn tok(&self, i: usize) -> &Token {
        let last = self.toks.len().saturating_sub(1);
        // The lexer always ends with Eof or Error; stay on it.
        &self.toks[i.min(last)]
    }

    fn next(&mut self) -> Token {
        let t = self.tok(self.i).clone();
        self.i += 1;
        t
    }

    fn backup(&mut self) {
        self.i = self.i.saturating_sub(1);
    }

    fn peek(&self) -> &Token {
        self.tok(self.i)
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Kind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn expect(&mut self, want: &Kind, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if &t.kind != want {
            return unexpected(&t, context);
        }
        Ok(t)
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return perr(pos, format!("exceeded maximum nesting depth ({MAX_DEPTH})"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().kind == Kind::Keyword(Kw::Define) {
                    self.parse_definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Item::Node(n) => root.push(n),
                Item::End(p) => return perr(p, "unexpected {{end}}"),
                Item::Else(p) => return perr(p, "unexpected {{else}}"),
            }
        }
        Ok(root)
    }

    fn template_name(&mut self, t: &Token, context: &str) -> PResult<String> {
        match t.kind {
            Kind::Str | Kind::RawStr => unquote(&t.val).map_err(|m| ParseError { pos: t.pos, msg: m }),
            _ => unexpected(t, context),
        }
    }

    /// Parses a body with a fresh variable scope, as Go gives each template.
    fn sub_template(&mut self, context: &str) -> PResult<Vec<Node>> {
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let Item::Else(p) = end {
            return perr(p, format!("unexpected {{{{else}}}} in {context}"));
        }
        Ok(list)
    }

    fn add_def(&mut self, pos: usize, name: String, list: Vec<Node>) -> PResult<()> {
        match self.defs.get(&name) {
            Some(old) if !is_empty(old) && !is_empty(&list) => {
                perr(pos, format!("template: multiple definition of template {}", go_quote(&name, false)))
            }
            Some(old) if !is_empty(old) => Ok(()),
            _ => {
                self.defs.insert(name, list);
                Ok(())
            }
        }
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, CONTEXT)?;
        self.expect(&Kind::RightDelim, CONTEXT)?;
        let list = self.sub_template(CONTEXT)?;
        self.add_def(t.pos, name, list)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Item)> {
        let mut list = Vec::new();
        loop {
            let t = self.peek_non_space();
            if t.kind == Kind::Eof {
                return perr(t.pos, "unexpected EOF");
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Text(text) => Ok(Item::Node(Node::Text { pos: t.pos, text })),
            Kind::LeftDelim => self.action(),
            _ => unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Keyword(Kw::Block) => return self.block_control().map(Item::Node),
            Kind::Keyword(Kw::Break) | Kind::Keyword(Kw::Continue) => {
                let is_break = t.kind == Kind::Keyword(Kw::Break);
                let word = if is_break { "{{break}}" } else { "{{continue}}" };
                let n = self.next_non_space();
                if n.kind != Kind::RightDelim {
                    return unexpected(&n, word);
                }
                if self.range_depth == 0 {
                    return perr(t.pos, format!("{word} outside {{{{range}}}}"));
                }
                return Ok(Item::Node(if is_break { Node::Break } else { Node::Continue }));
            }
            Kind::Keyword(Kw::Else) => {
                let p = self.peek_non_space();
                if matches!(p.kind, Kind::Keyword(Kw::If) | Kind::Keyword(Kw::With)) {
                    return Ok(Item::Else(p.pos));
                }
                let r = self.expect(&Kind::RightDelim, "else")?;
                return Ok(Item::Else(r.pos));
            }
            Kind::Keyword(Kw::End) => {
                let r = self.expect(&Kind::RightDelim, "end")?;
                return Ok(Item::End(r.pos));
            }
            Kind::Keyword(Kw::If) => return self.control("if").map(|c| Item::Node(Node::If(Box::new(c)))),
            Kind::Keyword(Kw::Range) => return self.control("range").map(|c| Item::Node(Node::Range(Box::new(c)))),
            Kind::Keyword(Kw::With) => return self.control("with").map(|c| Item::Node(Node::With(Box::new(c)))),
            Kind::Keyword(Kw::Template) => return self.template_control().map(Item::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", &Kind::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn control(&mut self, context: &str) -> PResult<Control> {
        let nvars = self.vars.len();
        let pos = self.peek().pos;
        self.enter(pos)?;
        let pipe = self.pipeline(context, &Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth = self.range_depth.saturating_sub(1);
        }
        let else_list = match next {
            Item::Else(_) => {
                // `{{else if}}`/`{{else with}}` nest a new control in the else branch.
                let pk = self.peek().kind.clone();
                if context == "if" && pk == Kind::Keyword(Kw::If) {
                    self.next();
                    Some(vec![Node::If(Box::new(self.control("if")?))])
                } else if context == "with" && pk == Kind::Keyword(Kw::With) {
                    self.next();
                    Some(vec![Node::With(Box::new(self.control("with")?))])
                } else {
                    let (l, n) = self.item_list()?;
                    if let Item::Else(p) = n {
                        return perr(p, "expected end; found {{else}}");
                    }
                    Some(l)
                }
            }
            _ => None,
        };
        self.vars.truncate(nvars);
        self.leave();
        Ok(Control { pipe, list, else_list })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, &Kind::RightDelim)?);
        }
        Ok(Node::Template { span: Span { start: t.pos, end: t.end() }, name, pipe })
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, &Kind::RightDelim)?;
        self.enter(t.pos)?;
        let list = self.sub_template(CONTEXT)?;
        self.leave();
        self.add_def(t.pos, name.clone(), list)?;
        Ok(Node::Template { span: Span { start: t.pos, end: t.end() }, name, pipe: Some(pipe) })
    }

    fn pipeline(&mut self, context: &str, end: &Kind) -> PResult<Pipe> {
        let start = self.peek_non_space().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        loop {
            if self.peek_non_space().kind != Kind::Variable {
                break;
            }
            let save = self.i;
            let v = self.next();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    self.next_non_space();
                    is_assign = next.kind == Kind::Assign;
                    decl.push(v.val.clone());
                    self.vars.push(v.val);
                    break;
                }
                Kind::Char(',') => {
                    self.next_non_space();
                    decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && decl.len() < 2 {
                        let p = self.peek_non_space();
                        if matches!(p.kind, Kind::Variable | Kind::RightDelim | Kind::RightParen) {
                            continue;
                        }
                        return perr(p.pos, "range can only initialize variables");
                    }
                    return perr(next.pos, format!("too many declarations in {context}"));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.next_non_space();
            if &t.kind == end {
                if cmds.is_empty() {
                    return perr(t.pos, format!("missing value for {context}"));
                }
                for (i, c) in cmds.iter().enumerate().skip(1) {
                    let c: &Cmd = c;
                    if let Some(a) = c.args.first()
                        && matches!(
                            a.kind,
                            ArgKind::Bool(_) | ArgKind::Dot | ArgKind::Nil | ArgKind::Num(_) | ArgKind::Str(_)
                        )
                    {
                        return perr(c.span.start, format!("non executable command in pipeline stage {}", i + 1));
                    }
                }
                let span_end = cmds.last().map_or(t.pos, |c: &Cmd| c.span.end);
                return Ok(Pipe { span: Span { start, end: span_end.max(start) }, is_assign, decl, cmds });
            }
            match t.kind {
                Kind::Bool
                | Kind::CharConst
                | Kind::Dot
                | Kind::Field
                | Kind::Ident
                | Kind::Number
                | Kind::Nil
                | Kind::RawStr
                | Kind::Str
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    cmds.push(self.command()?);
                }
                _ => return unexpected(&t, context),
            }
        }
    }

    fn command(&mut self) -> PResult<Cmd> {
        let start = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let t = self.next();
            match t.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return unexpected(&t, "operand"),
            }
            break;
        }
        let Some(last) = args.last() else {
            return perr(start, "empty command");
        };
        let end = last.span.end;
        Ok(Cmd { span: Span { start, end }, args })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let mut idents = Vec::new();
        let mut end = node.span.end;
        while self.peek().kind == Kind::Field {
            let f = self.next();
            end = f.end();
            idents.push(f.val.get(1..).unwrap_or("").to_string());
        }
        let span = Span { start: node.span.start, end };
        let kind = match node.kind {
            ArgKind::Field(mut f) => {
                f.extend(idents);
                ArgKind::Field(f)
            }
            ArgKind::Var(name, mut f) => {
                f.extend(idents);
                ArgKind::Var(name, f)
            }
            ArgKind::Bool(_) | ArgKind::Str(_) | ArgKind::Num(_) | ArgKind::Nil | ArgKind::Dot => {
                let src = self.src.get(node.span.start..node.span.end).unwrap_or("");
                return perr(node.span.start, format!("unexpected . after term {}", go_quote(src, false)));
            }
            other => ArgKind::Chain(Box::new(Arg { span: node.span, kind: other }), idents),
        };
        Ok(Some(Arg { span, kind }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        let span = Span { start: t.pos, end: t.end() };
        let kind = match t.kind {
            Kind::Ident => match funcs::lookup(&t.val) {
                Some(f) => ArgKind::Func(f),
                None => return perr(t.pos, format!("function {} not defined", go_quote(&t.val, false))),
            },
            Kind::Dot => ArgKind::Dot,
            Kind::Nil => ArgKind::Nil,
            Kind::Variable => {
                if !self.vars.iter().any(|v| v == &t.val) {
                    return perr(t.pos, format!("undefined variable {}", go_quote(&t.val, false)));
                }
                ArgKind::Var(t.val.clone(), Vec::new())
            }
            Kind::Field => ArgKind::Field(vec![t.val.get(1..).unwrap_or("").to_string()]),
            Kind::Bool => ArgKind::Bool(t.val == "true"),
            Kind::CharConst | Kind::Number => ArgKind::Num(
                parse_number(&t.val, t.kind == Kind::CharConst).map_err(|m| ParseError { pos: t.pos, msg: m })?,
            ),
            Kind::LeftParen => {
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", &Kind::RightParen)?;
                self.leave();
                // The pipeline consumed the closing paren.
                let end = self.tok(self.i.saturating_sub(1)).end();
                return Ok(Some(Arg { span: Span { start: t.pos, end }, kind: ArgKind::Pipe(Box::new(pipe)) }));
            }
            Kind::Str | Kind::RawStr => ArgKind::Str(unquote(&t.val).map_err(|m| ParseError { pos: t.pos, msg: m })?),
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg { span, kind }))
    }
}

// ---- literals -------------------------------------------------------------

/// Go's strconv.Unquote for "..." and `...` literals. Bytes from `\x`/octal
/// escapes that are not UTF-8 become U+FFFD: Rust strings must be UTF-8.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    const SYNTAX: &str = "invalid syntax";
    if let Some(raw) = s.strip_prefix('`') {
        let raw = raw.strip_suffix('`').ok_or(SYNTAX)?;
        return Ok(raw.replace('\r', ""));
    }
    let inner = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).ok_or(SYNTAX)?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while !rest.is_empty() {
        let (v, tail) = unquote_char(rest, '"').ok_or(SYNTAX)?;
        match v {
            Unq::Byte(b) => out.push(b),
            Unq::Char(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        rest = tail;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

enum Unq {
    Byte(u8),
    Char(char),
}

/// Go's strconv.UnquoteChar: one (possibly escaped) character of a literal.
fn unquote_char(s: &str, quote: char) -> Option<(Unq, &str)> {
    let mut it = s.chars();
    let c = it.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((Unq::Char(c), it.as_str()));
    }
    let e = it.next()?;
    let rest = it.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Some((Unq::Char(c), rest));
    }
    match e {
        'x' | 'u' | 'U' => {
            let n = match e {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let digits = rest.get(..n)?;
            let v = u32::from_str_radix(digits, 16).ok()?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let tail = &rest[n..];
            if e == 'x' {
                // In a character constant \xNN is the rune NN; in a string, a byte.
                if quote == '\'' {
                    return Some((Unq::Char(char::from_u32(v)?), tail));
                }
                return Some((Unq::Byte(v as u8), tail));
            }
            Some((Unq::Char(char::from_u32(v)?), tail))
        }
        '0'..='7' => {
            let digits = s.get(1..4)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            let v = u32::from_str_radix(digits, 8).ok()?;
            if v > 255 {
                return None;
            }
            let tail = &s[4..];
            if quote == '\'' {
                return Some((Unq::Char(char::from_u32(v)?), tail));
            }
            Some((Unq::Byte(v as u8), tail))
        }
        _ => None,
    }
}

/// Go's underscoreOK: `_` only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if !b.is_empty() && (b[0] == b'+' || b[0] == b'-') {
        i = 1;
    }
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= i + 2 && b[i] == b'0' && matches!(b[i + 1] | 0x20, b'b' | b'o' | b'x') {
        hex = (b[i + 1] | 0x20) == b'x';
        i += 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// strconv.ParseUint(s, 0, 64).
fn parse_uint0(s: &str) -> Option<u64> {
    if s.is_empty() || !underscore_ok(s) {
        return None;
    }
    let clean = s.replace('_', "");
    let (radix, digits) = if let Some(r) = clean.strip_prefix("0x").or_else(|| clean.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = clean.strip_prefix("0b").or_else(|| clean.strip_prefix("0B")) {
        (2, r)
    } else if let Some(r) = clean.strip_prefix("0o").or_else(|| clean.strip_prefix("0O")) {
        (8, r)
    } else if clean.len() > 1 && clean.starts_with('0') {
        (8, &clean[1..])
    } else if clean == "0" {
        return Some(0);
    } else {
        (10, clean.as_str())
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// strconv.ParseInt(s, 0, 64).
fn parse_int0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint0(body)?;
    if neg { if u <= 1u64 << 63 { Some((u as i64).wrapping_neg()) } else { None } } else { i64::try_from(u).ok() }
}

/// Go's parse.newNumber.
fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    if is_char {
        let inner = text.get(1..).unwrap_or("");
        let bad = || format!("malformed character constant: {text}");
        let (v, tail) = unquote_char(inner, '\'').ok_or_else(bad)?;
        if tail != "'" {
            return Err(bad());
        }
        let r = match v {
            Unq::Char(c) => c as i64,
            Unq::Byte(b) => b as i64,
        };
        return Ok(Number {
            text: text.into(),
            int: Some(r),
            uint: Some(r as u64),
            float: Some(r as f64),
            is_char: true,
        });
    }
    if text.ends_with('i') {
        return Err(format!("complex number {} is not supported", go_quote(text, false)));
    }
    let uint = parse_uint0(text);
    let int = parse_int0(text);
    let mut n = Number { text: text.into(), int, uint, float: None, is_char: false };
    if let Some(i) = int {
        n.float = Some(i as f64);
    } else if let Some(u) = uint {
        n.float = Some(u as f64);
    } else if let Ok(f) = crate::humanize::parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", go_quote(text, false)));
        }
        n.float = Some(f);
        if f.fract() == 0.0 && (-crate::humanize::TWO_63..crate::humanize::TWO_63).contains(&f) {
            n.int = Some(f as i64);
        }
        if f.fract() == 0.0 && (0.0..2.0 * crate::humanize::TWO_63).contains(&f) {
            n.uint = Some(f as u64);
        }
    }
    if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
        return Err(format!("illegal number syntax: {}", go_quote(text, false)));
    }
    Ok(n)
}
