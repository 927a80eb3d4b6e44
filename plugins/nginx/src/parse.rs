//! nginx's `stub_status` page (`ngx_http_stub_status_module`):
//!
//! ```text
//! Active connections: 3
//! server accepts handled requests
//!  44 44 45
//! Reading: 0 Writing: 1 Waiting: 2
//! ```
//!
//! Trailing blanks, `\r\n` and blank lines are tolerated; anything else is an error that names
//! the line, so an operator who pointed `stub_status_path` at the wrong page sees why.

use std::fmt;

/// The counters and gauges of one `stub_status` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StubStatus {
    pub active: u64,
    pub accepted: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

/// Why a page is not a `stub_status` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; one past the last line when the page ends early.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stub_status line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The four lines, in order, with what each must hold.
const EXPECTED: [&str; 4] = [
    "`Active connections: N`",
    "`server accepts handled requests`",
    "three numbers (accepts handled requests)",
    "`Reading: N Writing: N Waiting: N`",
];

/// Parse a `stub_status` page.
pub fn parse(text: &str) -> Result<StubStatus, ParseError> {
    let mut lines = Lines { lines: text.lines(), number: 0 };
    let mut status = StubStatus::default();

    let (n, line) = lines.expect(0)?;
    [status.active] = fields(n, line, &["Active", "connections:"], 0)?;

    let (n, line) = lines.expect(1)?;
    if line.split_whitespace().ne(["server", "accepts", "handled", "requests"]) {
        return Err(unexpected(n, line, 1));
    }

    let (n, line) = lines.expect(2)?;
    [status.accepted, status.handled, status.requests] = fields(n, line, &[], 2)?;

    let (n, line) = lines.expect(3)?;
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["Reading:", reading, "Writing:", writing, "Waiting:", waiting] => {
            status.reading = number(n, reading)?;
            status.writing = number(n, writing)?;
            status.waiting = number(n, waiting)?;
        }
        _ => return Err(unexpected(n, line, 3)),
    }

    if let Some((n, line)) = lines.next_nonblank() {
        return Err(ParseError {
            line: n,
            message: format!("unexpected text after the last line: {:?}", excerpt(line)),
        });
    }
    Ok(status)
}

/// Non-blank lines with their 1-based numbers.
struct Lines<'a> {
    lines: std::str::Lines<'a>,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_nonblank(&mut self) -> Option<(usize, &'a str)> {
        for line in self.lines.by_ref() {
            self.number += 1;
            let line = line.trim();
            if !line.is_empty() {
                return Some((self.number, line));
            }
        }
        None
    }

    /// The next line, which should be `EXPECTED[index]`.
    fn expect(&mut self, index: usize) -> Result<(usize, &'a str), ParseError> {
        self.next_nonblank().ok_or_else(|| ParseError {
            line: self.number + 1,
            message: format!("the page ended early: expected {}", EXPECTED[index]),
        })
    }
}

/// A line of `prefix` words followed by exactly `N` numbers.
fn fields<const N: usize>(n: usize, line: &str, prefix: &[&str], index: usize) -> Result<[u64; N], ParseError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() != prefix.len() + N || words.iter().zip(prefix).any(|(w, p)| w != p) {
        return Err(unexpected(n, line, index));
    }
    let mut out = [0; N];
    for (slot, word) in out.iter_mut().zip(&words[prefix.len()..]) {
        *slot = number(n, word)?;
    }
    Ok(out)
}

fn number(n: usize, word: &str) -> Result<u64, ParseError> {
    word.parse()
        .map_err(|_| ParseError { line: n, message: format!("{:?} is not a non-negative integer", excerpt(word)) })
}

fn unexpected(n: usize, line: &str, index: usize) -> ParseError {
    ParseError { line: n, message: format!("expected {}, found {:?}", EXPECTED[index], excerpt(line)) }
}

/// The start of untrusted text, for error messages.
fn excerpt(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PAGE: &str =
        "Active connections: 3 \nserver accepts handled requests\n 44 44 45 \nReading: 0 Writing: 1 Waiting: 2 \n";

    #[test]
    fn parses_a_page() {
        let expected =
            StubStatus { active: 3, accepted: 44, handled: 44, requests: 45, reading: 0, writing: 1, waiting: 2 };
        assert_eq!(parse(PAGE).unwrap(), expected);
        assert_eq!(parse(&PAGE.replace('\n', "\r\n")).unwrap(), expected);
        assert_eq!(parse(&format!("\n{PAGE}\n\n")).unwrap(), expected);
        let big = PAGE.replace("44 44 45", "18446744073709551615 1 2");
        assert_eq!(parse(&big).unwrap().accepted, u64::MAX);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, expected) in [
            ("", "stub_status line 1: the page ended early: expected `Active connections: N`"),
            ("<html>\n<body>hi</body>\n", "stub_status line 1: expected `Active connections: N`, found \"<html>\""),
            ("Active connections: x\n", "stub_status line 1: \"x\" is not a non-negative integer"),
            ("Active connections: -1\n", "stub_status line 1: \"-1\" is not a non-negative integer"),
            ("Active connections: 1\n", "stub_status line 2: the page ended early: expected `server accepts"),
            (
                "Active connections: 1\nserver accepts\n",
                "stub_status line 2: expected `server accepts handled requests`",
            ),
            (
                "Active connections: 1\nserver accepts handled requests\n 1 2\n",
                "stub_status line 3: expected three numbers",
            ),
            ("Active connections: 1\nserver accepts handled requests\n 1 2 3 4\n", "line 3: expected three numbers"),
            ("Active connections: 1\nserver accepts handled requests\n 1 2 1e3\n", "line 3: \"1e3\" is not"),
            ("Active connections: 1\nserver accepts handled requests\n 1 2 3\n", "line 4: the page ended early"),
            (
                "Active connections: 1\nserver accepts handled requests\n 1 2 3\nReading: 0 Writing: 1\n",
                "stub_status line 4: expected `Reading: N Writing: N Waiting: N`",
            ),
            (
                "Active connections: 1\nserver accepts handled requests\n 1 2 3\nReading: 0 Writing: 1 Waiting: z\n",
                "line 4: \"z\" is not",
            ),
            (&format!("{PAGE}extra\n"), "stub_status line 5: unexpected text after the last line: \"extra\""),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(expected) || err.contains(expected), "{text:?}: {err}");
        }
    }
}
