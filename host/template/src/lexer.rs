//! Tokens of Go's `text/template` (text/template/parse/lex.go). Positions are
//! byte offsets into the template text; the lexer runs to completion and ends
//! with `Eof` or `Error`, so the parser reports whichever problem comes first
//! in the text, as Go's concurrent lexer/parser pair does.

use crate::gofmt::fmt_unicode_sharp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Assign,
    Declare,
    Pipe,
    LeftParen,
    RightParen,
    Char(char),
    Str,
    RawStr,
    CharConst,
    Number,
    Ident,
    Field,
    Variable,
    Dot,
    Bool,
    Nil,
    Keyword(Kw),
    Eof,
    Error(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) pos: usize,
    /// Source text of the token (for strings and numbers: still quoted/unparsed).
    pub(crate) val: String,
}

impl Token {
    pub(crate) fn end(&self) -> usize {
        self.pos + self.val.len()
    }
}

pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(crate) fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    toks: Vec<Token>,
    paren_depth: i64,
}

pub(crate) fn lex(input: &str) -> Vec<Token> {
    let mut l = Lexer { input, pos: 0, toks: Vec::new(), paren_depth: 0 };
    l.run();
    l.toks
}

/// `}}` or ` -}}` at the start of `s`: (length consumed, trims following space).
fn at_right_delim(s: &str) -> Option<(usize, bool)> {
    if s.starts_with("}}") {
        return Some((2, false));
    }
    let b = s.as_bytes();
    if b.len() >= 4 && is_space(b[0] as char) && b[1] == b'-' && b[2] == b'}' && b[3] == b'}' {
        return Some((4, true));
    }
    None
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

impl Lexer<'_> {
    fn push(&mut self, kind: Kind, pos: usize, end: usize) {
        let val = self.input.get(pos..end).unwrap_or("").to_string();
        self.toks.push(Token { kind, pos, val });
    }

    fn error(&mut self, pos: usize, msg: String) {
        self.toks.push(Token { kind: Kind::Error(msg), pos, val: String::new() });
    }

    fn rest(&self) -> &str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek_char() {
            if !is_space(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn run(&mut self) {
        loop {
            let rest = self.rest();
            let Some(x) = rest.find("{{") else {
                if !rest.is_empty() {
                    let t = rest.to_string();
                    self.toks.push(Token { kind: Kind::Text(t.clone()), pos: self.pos, val: t });
                }
                let end = self.input.len();
                self.toks.push(Token { kind: Kind::Eof, pos: end, val: String::new() });
                return;
            };
            let delim = self.pos + x;
            let after = delim + 2;
            let trim = has_left_trim(&self.input[after..]);
            let mut text = &self.input[self.pos..delim];
            if trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                let t = text.to_string();
                self.toks.push(Token { kind: Kind::Text(t.clone()), pos: self.pos, val: t });
            }
            let p = after + if trim { 2 } else { 0 };
            if self.input[p..].starts_with("/*") {
                // Comments produce no token at all, like Go's default lexer mode.
                let Some(e) = self.input[p + 2..].find("*/") else {
                    self.error(delim, "unclosed comment".into());
                    return;
                };
                let q = p + 2 + e + 2;
                let Some((len, rtrim)) = at_right_delim(&self.input[q..]) else {
                    self.error(q, "comment ends before closing delimiter".into());
                    return;
                };
                self.pos = q + len;
                if rtrim {
                    self.skip_space();
                }
                continue;
            }
            self.push(Kind::LeftDelim, delim, after);
            self.pos = p;
            self.paren_depth = 0;
            if !self.lex_action(delim) {
                return;
            }
        }
    }

    fn at_terminator(&self) -> bool {
        let rest = self.rest();
        match rest.chars().next() {
            None => true,
            Some(c) if is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => rest.starts_with("}}"),
        }
    }

    /// Lexes inside `{{ }}`; false after an error token was pushed.
    fn lex_action(&mut self, action_start: usize) -> bool {
        loop {
            if let Some((len, trim)) = at_right_delim(self.rest()) {
                if self.paren_depth > 0 {
                    self.error(self.pos, "unclosed left paren".into());
                    return false;
                }
                let start = self.pos + if trim { 2 } else { 0 };
                self.push(Kind::RightDelim, start, self.pos + len);
                self.pos += len;
                if trim {
                    self.skip_space();
                }
                return true;
            }
            let Some(c) = self.peek_char() else {
                self.error(action_start, "unclosed action".into());
                return false;
            };
            let start = self.pos;
            match c {
                c if is_space(c) => {
                    self.skip_space();
                    // A space directly before `-}}` belongs to the trim marker.
                    if self.rest().starts_with("-}}") {
                        self.pos -= 1;
                    }
                    if self.pos > start {
                        self.push(Kind::Space, start, self.pos);
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.push(Kind::Assign, start, self.pos);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        self.error(start, "expected :=".into());
                        return false;
                    }
                    self.pos += 2;
                    self.push(Kind::Declare, start, self.pos);
                }
                '|' => {
                    self.pos += 1;
                    self.push(Kind::Pipe, start, self.pos);
                }
                '"' | '\'' => {
                    if !self.lex_quote(c) {
                        return false;
                    }
                }
                '`' => {
                    let Some(e) = self.input[start + 1..].find('`') else {
                        self.error(start, "unterminated raw quoted string".into());
                        return false;
                    };
                    self.pos = start + 1 + e + 1;
                    self.push(Kind::RawStr, start, self.pos);
                }
                '$' | '.' => {
                    self.pos += 1;
                    if c == '.' && self.peek_char().is_some_and(|d| d.is_ascii_digit()) {
                        self.pos = start;
                        if !self.lex_number() {
                            return false;
                        }
                        continue;
                    }
                    if self.at_terminator() {
                        let kind = if c == '$' { Kind::Variable } else { Kind::Dot };
                        self.push(kind, start, self.pos);
                        continue;
                    }
                    while let Some(d) = self.peek_char() {
                        if !is_alnum(d) {
                            break;
                        }
                        self.pos += d.len_utf8();
                    }
                    if !self.at_terminator() {
                        let bad = self.peek_char().unwrap_or('\0');
                        self.error(self.pos, format!("bad character {}", fmt_unicode_sharp(bad)));
                        return false;
                    }
                    let kind = if c == '$' { Kind::Variable } else { Kind::Field };
                    self.push(kind, start, self.pos);
                }
                '+' | '-' | '0'..='9' => {
                    if !self.lex_number() {
                        return false;
                    }
                }
                c if c == '_' || c.is_alphabetic() => {
                    while let Some(d) = self.peek_char() {
                        if !is_alnum(d) {
                            break;
                        }
                        self.pos += d.len_utf8();
                    }
                    if !self.at_terminator() {
                        let bad = self.peek_char().unwrap_or('\0');
                        self.error(self.pos, format!("bad character {}", fmt_unicode_sharp(bad)));
                        return false;
                    }
                    let kind = match &self.input[start..self.pos] {
                        "block" => Kind::Keyword(Kw::Block),
                        "break" => Kind::Keyword(Kw::Break),
                        "continue" => Kind::Keyword(Kw::Continue),
                        "define" => Kind::Keyword(Kw::Define),
                        "else" => Kind::Keyword(Kw::Else),
                        "end" => Kind::Keyword(Kw::End),
                        "if" => Kind::Keyword(Kw::If),
                        "range" => Kind::Keyword(Kw::Range),
                        "template" => Kind::Keyword(Kw::Template),
                        "with" => Kind::Keyword(Kw::With),
                        "nil" => Kind::Nil,
                        "true" | "false" => Kind::Bool,
                        _ => Kind::Ident,
                    };
                    self.push(kind, start, self.pos);
                }
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.push(Kind::LeftParen, start, self.pos);
                }
                ')' => {
                    self.pos += 1;
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        self.error(start, "unexpected right paren".into());
                        return false;
                    }
                    self.push(Kind::RightParen, start, self.pos);
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.push(Kind::Char(c), start, self.pos);
                }
                c => {
                    self.error(start, format!("unrecognized character in action: {}", fmt_unicode_sharp(c)));
                    return false;
                }
            }
        }
    }

    fn lex_quote(&mut self, q: char) -> bool {
        let start = self.pos;
        self.pos += 1;
        let msg = if q == '"' { "unterminated quoted string" } else { "unterminated character constant" };
        loop {
            let Some(c) = self.peek_char() else {
                self.error(start, msg.into());
                return false;
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.peek_char() {
                    None | Some('\n') => {
                        self.error(start, msg.into());
                        return false;
                    }
                    Some(d) => self.pos += d.len_utf8(),
                },
                '\n' => {
                    self.error(start, msg.into());
                    return false;
                }
                c if c == q => break,
                _ => {}
            }
        }
        let kind = if q == '"' { Kind::Str } else { Kind::CharConst };
        self.push(kind, start, self.pos);
        true
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek_char() {
            Some(c) if set.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    /// Go's scanNumber: accepts a superset of number syntax; the parser validates.
    fn lex_number(&mut self) -> bool {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek_char().is_some_and(is_alnum) {
            if let Some(c) = self.peek_char() {
                self.pos += c.len_utf8();
            }
            let text = self.input[start..self.pos].to_string();
            self.error(start, format!("bad number syntax: {}", crate::gofmt::go_quote(&text, false)));
            return false;
        }
        self.push(Kind::Number, start, self.pos);
        true
    }
}
