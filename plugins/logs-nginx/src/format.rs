//! nginx `log_format` strings (`$remote_addr - $remote_user [$time_local] "$request" ...`)
//! compiled into a matcher for the lines they produce.
//!
//! A line is matched left to right: each literal must appear exactly, and each
//! variable takes the bytes up to the first occurrence of the literal after it (or
//! the rest of the line for a final variable). That is unambiguous for what nginx
//! writes, because it escapes `"`, `\` and bytes outside printable ASCII in variable
//! values as `\xHH`. A `"` preceded by a backslash (Apache's `\"`) does not end a
//! quoted value.

/// nginx's predefined `combined` format (also Apache's `combined`).
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// Apache's Common Log Format, `combined` without referer and user agent.
pub const COMMON: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent"#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(Vec<u8>),
    Variable(String),
}

/// A compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    tokens: Vec<Token>,
}

/// Why a format string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the format has no variables")]
    NoVariables,
    #[error("at byte {pos}: `$` without a variable name")]
    EmptyName { pos: usize },
    #[error("at byte {pos}: `${{` without its `}}`")]
    UnclosedBrace { pos: usize },
    #[error("at byte {pos}: ${first} and ${second} have no text between them, so a line cannot be split")]
    Adjacent { pos: usize, first: String, second: String },
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl LogFormat {
    /// Compiles a `log_format` string as nginx reads it: `$name` or `${name}`, where a
    /// name is letters, digits and `_`; everything else is literal text.
    pub fn parse(format: &str) -> Result<Self, FormatError> {
        let b = format.as_bytes();
        let mut tokens: Vec<Token> = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                literal.push(b[i]);
                i += 1;
                continue;
            }
            let start = i;
            let name = if b.get(i + 1) == Some(&b'{') {
                let close =
                    b[i + 2..].iter().position(|&c| c == b'}').ok_or(FormatError::UnclosedBrace { pos: start })?;
                let name = &format[i + 2..i + 2 + close];
                i += close + 3;
                name
            } else {
                let len = b[i + 1..].iter().take_while(|&&c| is_name_byte(c)).count();
                let name = &format[i + 1..i + 1 + len];
                i += len + 1;
                name
            };
            if name.is_empty() || !name.bytes().all(is_name_byte) {
                return Err(FormatError::EmptyName { pos: start });
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            } else if let Some(Token::Variable(prev)) = tokens.last() {
                return Err(FormatError::Adjacent { pos: start, first: prev.clone(), second: name.to_string() });
            }
            tokens.push(Token::Variable(name.to_string()));
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        if !tokens.iter().any(|t| matches!(t, Token::Variable(_))) {
            return Err(FormatError::NoVariables);
        }
        Ok(Self { tokens })
    }

    /// The variable names in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|t| match t {
            Token::Variable(v) => Some(v.as_str()),
            Token::Literal(_) => None,
        })
    }

    /// `(variable, value)` for every variable, or `None` if the line does not have
    /// this format. Values borrow from the line.
    pub fn match_line<'a>(&'a self, line: &'a [u8]) -> Option<Vec<(&'a str, &'a [u8])>> {
        let mut out = Vec::with_capacity(self.tokens.len() / 2 + 1);
        let mut pos = 0;
        let mut tokens = self.tokens.iter().peekable();
        while let Some(token) = tokens.next() {
            match token {
                Token::Literal(lit) => {
                    if !line[pos..].starts_with(lit) {
                        return None;
                    }
                    pos += lit.len();
                }
                Token::Variable(name) => {
                    let end = match tokens.peek() {
                        Some(Token::Literal(lit)) => find_unescaped(line, pos, lit)?,
                        Some(Token::Variable(_)) => return None, // refused by `parse`
                        None => line.len(),
                    };
                    out.push((name.as_str(), &line[pos..end]));
                    pos = end;
                }
            }
        }
        (pos == line.len()).then_some(out)
    }
}

/// Whether the byte at `at` is preceded by an odd number of backslashes.
fn escaped(line: &[u8], at: usize) -> bool {
    line[..at].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1
}

/// The first occurrence of `lit` at or after `from` that does not start with an
/// escaped quote.
fn find_unescaped(line: &[u8], from: usize, lit: &[u8]) -> Option<usize> {
    let mut start = from;
    loop {
        let rel = line.get(start..)?.windows(lit.len()).position(|w| w == lit)?;
        let at = start + rel;
        if lit.first() == Some(&b'"') && escaped(line, at) {
            start = at + 1;
            continue;
        }
        return Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(f: &'a LogFormat, line: &'a str) -> Option<Vec<(&'a str, &'a str)>> {
        f.match_line(line.as_bytes())
            .map(|v| v.into_iter().map(|(k, v)| (k, std::str::from_utf8(v).unwrap())).collect())
    }

    #[test]
    fn combined_line() {
        let f = LogFormat::parse(COMBINED).unwrap();
        assert_eq!(
            f.variables().collect::<Vec<_>>(),
            vec![
                "remote_addr",
                "remote_user",
                "time_local",
                "request",
                "status",
                "body_bytes_sent",
                "http_referer",
                "http_user_agent"
            ]
        );
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;
        assert_eq!(
            fields(&f, line).unwrap(),
            vec![
                ("remote_addr", "127.0.0.1"),
                ("remote_user", "frank"),
                ("time_local", "10/Oct/2000:13:55:36 -0700"),
                ("request", "GET /apache_pb.gif HTTP/1.0"),
                ("status", "200"),
                ("body_bytes_sent", "2326"),
                ("http_referer", "http://www.example.com/start.html"),
                ("http_user_agent", "Mozilla/4.08 [en] (Win98; I ;Nav)"),
            ]
        );
    }

    #[test]
    fn quotes_inside_values() {
        let f = LogFormat::parse(COMBINED).unwrap();
        // nginx: \x22; Apache: \" — neither ends the quoted field.
        let line = r#"::1 - - [10/Oct/2000:13:55:36 +0000] "GET /a\x22b HTTP/1.1" 404 0 "-" "say \"hi\"""#;
        let got = fields(&f, line).unwrap();
        assert_eq!(got[3], ("request", r"GET /a\x22b HTTP/1.1"));
        assert_eq!(got[7], ("http_user_agent", r#"say \"hi\""#));
    }

    #[test]
    fn lines_of_another_shape_do_not_match() {
        let f = LogFormat::parse(COMBINED).unwrap();
        assert_eq!(fields(&f, "hello"), None);
        assert_eq!(fields(&f, ""), None);
        let common = r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326"#;
        assert_eq!(fields(&f, common), None);
        let extra = format!(r#"{common} "-" "curl" "extra""#);
        assert_eq!(fields(&f, &extra), None, "nginx's `main` format is not `combined`");
        let c = LogFormat::parse(COMMON).unwrap();
        assert_eq!(fields(&c, common).map(|v| v.len()), Some(6));
        assert_eq!(fields(&c, &format!("{common} trailing")).map(|v| v[5].1.to_string()), Some("2326 trailing".into()));
    }

    #[test]
    fn custom_formats() {
        let f = LogFormat::parse(r#"${remote_addr}|$request_time|$upstream_response_time "$request""#).unwrap();
        assert_eq!(
            fields(&f, r#"10.0.0.1|0.005|0.004 "GET / HTTP/1.1""#).unwrap(),
            vec![
                ("remote_addr", "10.0.0.1"),
                ("request_time", "0.005"),
                ("upstream_response_time", "0.004"),
                ("request", "GET / HTTP/1.1"),
            ]
        );
        // A trailing variable takes the rest of the line.
        let f = LogFormat::parse("$status $msec").unwrap();
        assert_eq!(fields(&f, "200 1714564800.123").unwrap(), vec![("status", "200"), ("msec", "1714564800.123")]);
    }

    #[test]
    fn bad_formats() {
        assert_eq!(LogFormat::parse("plain text"), Err(FormatError::NoVariables));
        assert_eq!(LogFormat::parse("a $ b"), Err(FormatError::EmptyName { pos: 2 }));
        assert_eq!(LogFormat::parse("a ${x"), Err(FormatError::UnclosedBrace { pos: 2 }));
        assert_eq!(LogFormat::parse("a ${x-y}"), Err(FormatError::EmptyName { pos: 2 }));
        assert!(matches!(LogFormat::parse("$status$body_bytes_sent"), Err(FormatError::Adjacent { pos: 7, .. })));
    }
}
