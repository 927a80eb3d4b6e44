//! The logfmt decoder of go-logfmt (`github.com/go-logfmt/logfmt`, `decode.go` and
//! `jsonstring.go`), transcribed byte for byte so that a line splits into the same
//! keys and values, and fails at the same position, as it does for Go programs.
//!
//! One difference: go-logfmt reads a stream and ends a record at `\n`. A log body is
//! one record already (multiline joining happened before the processor), so here a
//! `\n` is whitespace like any other byte `<= ' '`.

use std::borrow::Cow;

/// One `key`, `key=`, `key=value` or `key="quoted value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// Never empty, never contains a byte `<= ' '`, `=` or `"`, always valid UTF-8.
    pub key: &'a str,
    /// `None` for a bare key (no `=`). `key=` and `key=""` give an empty value.
    /// Bare and unescaped quoted values are the line's bytes as they are, so they may
    /// be invalid UTF-8; an escaped quoted value is decoded as JSON decodes a string
    /// (invalid UTF-8 becomes U+FFFD there, as in Go).
    pub value: Option<Cow<'a, [u8]>>,
}

/// Why go-logfmt stops reading a line. `pos` is go-logfmt's `Pos`: one-based,
/// pointing just past the offending byte's index (for an unterminated quote,
/// one past the end of the line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("logfmt syntax error at pos {pos}: unexpected '{}'", char::from(*byte))]
    UnexpectedByte { pos: usize, byte: u8 },
    #[error("logfmt syntax error at pos {pos}: invalid key")]
    InvalidKey { pos: usize },
    #[error("logfmt syntax error at pos {pos}: unterminated quoted value")]
    UnterminatedQuote { pos: usize },
    #[error("logfmt syntax error at pos {pos}: invalid quoted value")]
    InvalidQuote { pos: usize },
}

/// Iterates over the pairs of one line; after the first error it yields nothing.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    line: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Decoder<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        Self { line, pos: 0, failed: false }
    }

    /// All pairs up to the first error, and the error.
    pub fn decode_all(line: &'a [u8]) -> (Vec<Pair<'a>>, Option<SyntaxError>) {
        let mut pairs = Vec::new();
        for item in Decoder::new(line) {
            match item {
                Ok(p) => pairs.push(p),
                Err(e) => return (pairs, Some(e)),
            }
        }
        (pairs, None)
    }

    fn fail(&mut self, e: SyntaxError) -> Option<Result<Pair<'a>, SyntaxError>> {
        self.failed = true;
        self.pos = self.line.len();
        Some(Err(e))
    }

    /// The key `line[start..end]`, or `invalid key` if it is not UTF-8 (go-logfmt
    /// rejects a multibyte key that contains `utf8.RuneError`, i.e. an invalid
    /// sequence or a literal U+FFFD). `end` is where the key stopped.
    fn key(&self, start: usize, end: usize) -> Result<&'a str, SyntaxError> {
        let raw = &self.line[start..end];
        match std::str::from_utf8(raw) {
            Ok(k) if !k.contains('\u{FFFD}') => Ok(k),
            _ => Err(SyntaxError::InvalidKey { pos: end + 1 }),
        }
    }
}

impl<'a> Iterator for Decoder<'a> {
    type Item = Result<Pair<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let line = self.line;
        // Garbage: skip to the first byte > ' '.
        match line[self.pos..].iter().position(|&c| c > b' ') {
            Some(p) => self.pos += p,
            None => {
                self.pos = line.len();
                return None;
            }
        }

        // Key.
        let start = self.pos;
        let mut key_end = line.len();
        let mut equals = false;
        for (p, &c) in line[start..].iter().enumerate() {
            let at = start + p;
            match c {
                b'=' => {
                    if at == start {
                        return self.fail(SyntaxError::UnexpectedByte { pos: at + 1, byte: c });
                    }
                    key_end = at;
                    equals = true;
                    break;
                }
                b'"' => return self.fail(SyntaxError::UnexpectedByte { pos: at + 1, byte: c }),
                _ if c <= b' ' => {
                    key_end = at;
                    break;
                }
                _ => {}
            }
        }
        let key = match self.key(start, key_end) {
            Ok(k) => k,
            Err(e) => return self.fail(e),
        };
        self.pos = key_end;
        if !equals {
            return Some(Ok(Pair { key, value: None }));
        }

        // Equals sign.
        self.pos += 1;
        let empty = Some(Ok(Pair { key, value: Some(Cow::Borrowed(&[][..])) }));
        let Some(&first) = line.get(self.pos) else { return empty };
        if first <= b' ' {
            return empty;
        }
        if first != b'"' {
            // Bare value.
            let start = self.pos;
            for (p, &c) in line[start..].iter().enumerate() {
                let at = start + p;
                if c == b'=' || c == b'"' {
                    return self.fail(SyntaxError::UnexpectedByte { pos: at + 1, byte: c });
                }
                if c <= b' ' {
                    self.pos = at;
                    return Some(Ok(Pair { key, value: Some(Cow::Borrowed(&line[start..at])) }));
                }
            }
            self.pos = line.len();
            return Some(Ok(Pair { key, value: Some(Cow::Borrowed(&line[start..])) }));
        }

        // Quoted value: `start` is the opening quote.
        let start = self.pos;
        let (mut has_esc, mut esc) = (false, false);
        for (p, &c) in line[start + 1..].iter().enumerate() {
            if esc {
                esc = false;
            } else if c == b'\\' {
                has_esc = true;
                esc = true;
            } else if c == b'"' {
                self.pos = start + p + 2;
                if !has_esc {
                    let value = &line[start + 1..self.pos - 1];
                    return Some(Ok(Pair { key, value: Some(Cow::Borrowed(value)) }));
                }
                return match unquote(&line[start + 1..self.pos - 1]) {
                    Some(v) => Some(Ok(Pair { key, value: Some(Cow::Owned(v)) })),
                    None => self.fail(SyntaxError::InvalidQuote { pos: self.pos + 1 }),
                };
            }
        }
        let pos = line.len() + 1;
        self.fail(SyntaxError::UnterminatedQuote { pos })
    }
}

/// `unquoteBytes` of Go's `encoding/json`, on the bytes between the quotes. `None`
/// for a bad escape, a raw `"` or a control byte.
fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut r = 0;
    while r < s.len() {
        let c = s[r];
        match c {
            b'\\' => {
                r += 1;
                let e = *s.get(r)?;
                let plain = match e {
                    b'"' | b'\\' | b'/' | b'\'' => e,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        let mut rr = getu4(&s[r - 1..])?;
                        r += 5;
                        if (0xd800..0xe000).contains(&rr) {
                            let low = getu4(&s[r..]);
                            match low.and_then(|lo| decode_surrogates(rr, lo)) {
                                Some(ch) => {
                                    r += 6;
                                    push_char(&mut out, ch);
                                    continue;
                                }
                                None => rr = 0xfffd,
                            }
                        }
                        push_char(&mut out, char::from_u32(rr).unwrap_or('\u{FFFD}'));
                        continue;
                    }
                    _ => return None,
                };
                out.push(plain);
                r += 1;
            }
            b'"' => return None,
            _ if c < b' ' => return None,
            _ if c < 0x80 => {
                out.push(c);
                r += 1;
            }
            _ => {
                // Coerce to well-formed UTF-8, one rune (or one bad byte) at a time.
                let (ch, size) = decode_rune(&s[r..]);
                push_char(&mut out, ch);
                r += size;
            }
        }
    }
    Some(out)
}

/// `\uXXXX` at the start of `s` as a code unit.
fn getu4(s: &[u8]) -> Option<u32> {
    if s.len() < 6 || s[0] != b'\\' || s[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&s[2..6]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Go's `utf16.DecodeRune`: a valid high/low pair, or `None` (U+FFFD in Go).
fn decode_surrogates(hi: u32, lo: u32) -> Option<char> {
    if (0xd800..0xdc00).contains(&hi) && (0xdc00..0xe000).contains(&lo) {
        char::from_u32((((hi - 0xd800) << 10) | (lo - 0xdc00)) + 0x10000)
    } else {
        None
    }
}

/// Go's `utf8.DecodeRune`: the first rune and its length, or (U+FFFD, 1) for an
/// invalid or truncated sequence.
fn decode_rune(s: &[u8]) -> (char, usize) {
    let len = match s.first() {
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        _ => return ('\u{FFFD}', 1),
    };
    match s.get(..len).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.chars().next()) {
        Some(ch) => (ch, len),
        None => ('\u{FFFD}', 1),
    }
}

fn push_char(out: &mut Vec<u8>, ch: char) {
    let mut buf = [0; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// go-logfmt's `Decoder` over a whole input: records split at `\n` as
    /// `bufio.ScanLines` splits them, `nil` for empty values, and the first error with
    /// its one-based line, as its `SyntaxError` has them.
    /// One record's pairs, `None` for go-logfmt's nil value.
    type GoRecord = Vec<(String, Option<String>)>;
    /// (line, pos, message) of go-logfmt's `SyntaxError`.
    type GoError = (usize, usize, String);

    fn go_decode(data: &str) -> (Vec<GoRecord>, Option<GoError>) {
        let mut lines: Vec<&str> = data.split('\n').collect();
        if data.is_empty() || data.ends_with('\n') {
            lines.pop();
        }
        let mut records = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let (pairs, err) = Decoder::decode_all(line.as_bytes());
            records.push(
                pairs
                    .into_iter()
                    .map(|p| {
                        let v = p.value.filter(|v| !v.is_empty());
                        (p.key.to_string(), v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                    })
                    .collect(),
            );
            if let Some(e) = err {
                let text = e.to_string();
                let msg = text.split_once(": ").map(|(_, m)| m.to_string()).unwrap_or_default();
                let pos = match e {
                    SyntaxError::UnexpectedByte { pos, .. }
                    | SyntaxError::InvalidKey { pos }
                    | SyntaxError::UnterminatedQuote { pos }
                    | SyntaxError::InvalidQuote { pos } => pos,
                };
                return (records, Some((i + 1, pos, msg)));
            }
        }
        (records, None)
    }

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_string(), v.map(str::to_string))
    }

    /// go-logfmt 0.5.0's `TestDecoder_scan`, every case, as it is written there.
    #[test]
    fn go_logfmt_test_decoder_scan() {
        let cases: Vec<(&str, Vec<GoRecord>)> = vec![
            ("", vec![]),
            ("\n\n", vec![vec![], vec![]]),
            ("x= ", vec![vec![kv("x", None)]]),
            ("y=", vec![vec![kv("y", None)]]),
            ("y", vec![vec![kv("y", None)]]),
            ("y=f", vec![vec![kv("y", Some("f"))]]),
            ("y=\"\\tf\"", vec![vec![kv("y", Some("\tf"))]]),
            ("a=1\n", vec![vec![kv("a", Some("1"))]]),
            (
                "a=1 b=\"bar\" ƒ=2h3s r=\"esc\\t\" d x=sf   ",
                vec![vec![
                    kv("a", Some("1")),
                    kv("b", Some("bar")),
                    kv("ƒ", Some("2h3s")),
                    kv("r", Some("esc\t")),
                    kv("d", None),
                    kv("x", Some("sf")),
                ]],
            ),
            ("y=f\ny=g", vec![vec![kv("y", Some("f"))], vec![kv("y", Some("g"))]]),
            ("y=f  \n\x1e y=g", vec![vec![kv("y", Some("f"))], vec![kv("y", Some("g"))]]),
            ("y= d y=g", vec![vec![kv("y", None), kv("d", None), kv("y", Some("g"))]]),
            ("y=\"f\"\ny=g", vec![vec![kv("y", Some("f"))], vec![kv("y", Some("g"))]]),
            ("y=\"f\\n\"y=g", vec![vec![kv("y", Some("f\n")), kv("y", Some("g"))]]),
        ];
        for (data, want) in cases {
            assert_eq!(go_decode(data), (want, None), "{data:?}");
        }
    }

    /// go-logfmt 0.5.0's `TestDecoder_errors`, every case: line, position and message.
    #[test]
    fn go_logfmt_test_decoder_errors() {
        let cases = [
            ("a=1\n=bar", (2, 1, "unexpected '='")),
            ("a=1\n\"k\"=bar", (2, 1, "unexpected '\"'")),
            ("a=1\nk\"ey=bar", (2, 2, "unexpected '\"'")),
            ("a=1\nk=b\"ar", (2, 4, "unexpected '\"'")),
            ("a=1\nk=b =ar", (2, 5, "unexpected '='")),
            ("a==", (1, 3, "unexpected '='")),
            ("a=1\nk=b=ar", (2, 4, "unexpected '='")),
            ("a=\"1", (1, 5, "unterminated quoted value")),
            ("a=\"1\\", (1, 6, "unterminated quoted value")),
            ("a=\"\\t1", (1, 7, "unterminated quoted value")),
            ("a=\"\\u1\"", (1, 8, "invalid quoted value")),
            ("a\u{fffd}=bar", (1, 5, "invalid key")),
        ];
        for (data, (line, pos, msg)) in cases {
            assert_eq!(go_decode(data).1, Some((line, pos, msg.to_string())), "{data:?}");
        }
        // The last two cases are bytes that are not UTF-8.
        for (data, pos) in [(&b"\x80=bar"[..], 2), (&b"\x80"[..], 2)] {
            assert_eq!(Decoder::decode_all(data).1, Some(SyntaxError::InvalidKey { pos }), "{data:?}");
        }
    }

    /// More cases of ours, checked against go-logfmt's output on the corpus in
    /// `tests/fixtures` as well.
    #[test]
    fn more_cases() {
        let ok = |line: &str| {
            let (pairs, err) = go_decode(line);
            assert_eq!(err, None, "{line:?}");
            pairs.into_iter().next().unwrap_or_default()
        };
        assert_eq!(ok("y=\"\\\"\""), vec![kv("y", Some("\""))]);
        assert_eq!(ok("x=\"\\u2603\""), vec![kv("x", Some("☃"))]);
        assert_eq!(ok("x=\"\\ud83d\\ude00\""), vec![kv("x", Some("😀"))]);
        assert_eq!(ok("a=\"b\"c=d"), vec![kv("a", Some("b")), kv("c", Some("d"))]);
        assert_eq!(go_decode("a=1 b=\"bar").1, Some((1, 11, "unterminated quoted value".into())));
        assert_eq!(go_decode("a=\"\\x\"").1, Some((1, 7, "invalid quoted value".into())));
        // Pairs before the error are still delivered, as ScanKeyval returns them.
        assert_eq!(go_decode("a=1 b=\"bar").0, vec![vec![kv("a", Some("1"))]]);
        // Our decoder keeps `k=` apart from a bare `k`; go-logfmt's nil is both.
        assert_eq!(
            Decoder::decode_all(b"k= j").0,
            vec![Pair { key: "k", value: Some(Cow::Borrowed(&b""[..])) }, Pair { key: "j", value: None }]
        );
    }

    #[test]
    fn key_must_be_utf8_value_need_not_be() {
        let (p, err) = Decoder::decode_all(b"k\xff=1");
        assert!(p.is_empty());
        assert_eq!(err, Some(SyntaxError::InvalidKey { pos: 3 }));
        let (p, err) = Decoder::decode_all(b"k=\xff\xfe z=\"\xc3\"");
        assert_eq!(err, None);
        assert_eq!(p[0].value.as_deref(), Some(&b"\xff\xfe"[..]));
        // Unescaped quoted values keep their bytes; escaped ones are coerced as Go does.
        assert_eq!(p[1].value.as_deref(), Some(&b"\xc3"[..]));
        let (p, _) = Decoder::decode_all(b"z=\"\\n\xc3\"");
        assert_eq!(p[0].value.as_deref(), Some("\n\u{FFFD}".as_bytes()));
    }

    #[test]
    fn control_bytes_only_fail_in_escaped_values() {
        assert_eq!(Decoder::decode_all(b"a=\"x\x01\"").1, None);
        assert_eq!(Decoder::decode_all(b"a=\"\\tx\x01\"").1, Some(SyntaxError::InvalidQuote { pos: 9 }));
    }

    #[test]
    fn newline_is_whitespace() {
        let (pairs, err) = Decoder::decode_all(b"a=1\nb=2");
        assert_eq!(err, None);
        assert_eq!(pairs.iter().map(|p| p.key).collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn lone_surrogate_becomes_replacement() {
        let (pairs, _) = Decoder::decode_all(b"x=\"\\ud83dz\"");
        assert_eq!(pairs[0].value.as_deref(), Some("\u{FFFD}z".as_bytes()));
    }
}
