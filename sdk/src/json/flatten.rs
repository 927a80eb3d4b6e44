//! One JSON object to flattened attributes, written straight into an
//! [`AttributeWriter`]: the hot path of the `logs-json` plugin and of the
//! host's native JSON step, which share it so the benchmark's ratio measures
//! Wasm and nothing else.
//!
//! Why not serde_json here: its `Visitor` round trips and per-string setup
//! cost ~200 guest instructions per string, and its string scan reads
//! `usize` chunks, four bytes on wasm32. This reader scans strings eight
//! bytes at a time on both targets, borrows everything that has no escapes
//! and checks the JSON grammar as it goes (RFC 8259: no trailing commas, no
//! leading zeros, escapes and surrogate pairs checked). Arrays and objects
//! deeper than `max_depth` are handed to serde_json, so their text is the
//! compact form `serde_json::Value` prints.

use super::{first_to_escape, push_f64};
use crate::attributes::{AttributeWriter, ValueText};
use std::fmt;

/// How [`flatten_object`] names and bounds what it writes.
#[derive(Debug, Clone, Copy)]
pub struct FlattenOptions<'a> {
    /// Put before every key.
    pub prefix: &'a str,
    /// Between a nested object's key and its members' keys.
    pub separator: &'a str,
    /// Objects nested this deep (the body is 1) are flattened; deeper ones
    /// stay JSON text. 0 counts as 1.
    pub max_depth: usize,
}

/// A value as [`flatten_object`] met it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leaf<'a> {
    Str(&'a str),
    /// An integer that fits an `i64` or a `u64`, as its JSON text (which has
    /// no leading zeros or `+`, so it is also its canonical decimal form).
    Int(&'a str),
    /// Every other number: fractions, exponents, `-0` and integers past
    /// 64 bits, as serde_json reads them.
    Float(f64),
    /// `true`, `false`, and `null` as "".
    Word(&'static str),
    /// Arrays and too-deep objects, as compact JSON text.
    Json(&'a str),
}

impl Leaf<'_> {
    /// The attribute value this leaf becomes.
    pub fn write(&self, out: &mut ValueText<'_>) {
        match *self {
            Leaf::Str(s) | Leaf::Int(s) | Leaf::Word(s) | Leaf::Json(s) => out.push_str(s),
            Leaf::Float(f) => push_f64(out, f),
        }
    }

    /// The value of an integer leaf.
    pub fn integer(&self) -> Option<i128> {
        match self {
            Leaf::Int(text) => text.parse().ok(),
            _ => None,
        }
    }
}

/// Where and why a body is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub message: String,
    /// 1-based, counted in lines of the body and bytes of the line.
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.message, self.line, self.column)
    }
}

impl std::error::Error for JsonError {}

/// What went wrong and at which byte, boxed so that a `Result` of the hot
/// functions is one pointer wide (it travels in a register, not through
/// memory); turned into a [`JsonError`] with line and column at the end.
struct Fault {
    message: String,
    at: usize,
}

type Scan<T> = Result<T, Box<Fault>>;

#[cold]
#[inline(never)]
fn fault(message: &str, at: usize) -> Box<Fault> {
    Box::new(Fault { message: message.to_string(), at })
}

/// Writes the members of the JSON object `body` (leading and trailing
/// whitespace allowed, nothing else) to `out` as attributes: nested objects'
/// keys joined by the separator, every key under the prefix. Before a leaf
/// becomes an attribute, `claim(key, level, &leaf)` may take it (return
/// `true`); `key` is the flattened key without the prefix and `level` 0 for
/// the body's own members. On error, some attributes may have been written:
/// callers that want all or nothing call [`AttributeWriter::discard`].
pub fn flatten_object(
    body: &str,
    options: &FlattenOptions<'_>,
    out: &mut AttributeWriter<'_>,
    claim: impl FnMut(&str, usize, &Leaf<'_>) -> bool,
) -> Result<(), JsonError> {
    let mut walk = Walk {
        scan: Scanner { text: body, pos: 0 },
        options,
        out,
        claim,
        path: String::new(),
        key_scratch: String::new(),
        value_scratch: String::new(),
        depth: options.max_depth.max(1),
    };
    let read = (|| {
        walk.scan.skip_whitespace();
        walk.scan.expect(b'{', "expected `{`")?;
        walk.object(0)?;
        walk.scan.skip_whitespace();
        if walk.scan.pos < body.len() {
            return Err(fault("trailing characters", walk.scan.pos));
        }
        Ok(())
    })();
    read.map_err(|f| position(body, f.message, f.at))
}

/// serde_json's error about `raw`, which starts at byte `start` of the body.
#[cold]
#[inline(never)]
fn serde_fault(e: &serde_json::Error, raw: &str, start: usize) -> Box<Fault> {
    let text = e.to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m);
    // serde_json counts lines from 1 and columns from 1 (0 before a line's first byte).
    let line_start: usize = raw.split_inclusive('\n').take(e.line().saturating_sub(1)).map(str::len).sum();
    fault(message, start + line_start + e.column().saturating_sub(1))
}

/// `message` about byte `at` of `text`, with its line and column.
fn position(text: &str, message: String, at: usize) -> JsonError {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    JsonError { message, line: 1 + before.iter().filter(|&&b| b == b'\n').count(), column: at - line_start + 1 }
}

struct Walk<'a, 'o, 'w, F> {
    scan: Scanner<'a>,
    options: &'a FlattenOptions<'a>,
    out: &'o mut AttributeWriter<'w>,
    claim: F,
    /// Keys of the enclosing objects, each followed by the separator.
    path: String,
    key_scratch: String,
    value_scratch: String,
    depth: usize,
}

impl<'a, F: FnMut(&str, usize, &Leaf<'_>) -> bool> Walk<'a, '_, '_, F> {
    /// The members of an object whose `{` was just read, at `level`.
    fn object(&mut self, level: usize) -> Scan<()> {
        let path_len = self.path.len();
        self.scan.skip_whitespace();
        if self.scan.eat(b'}') {
            return Ok(());
        }
        loop {
            if self.scan.peek() != Some(b'"') {
                return Err(self.scan.unexpected("expected a string key"));
            }
            // The key: borrowed from the body when it is a top-level key
            // without escapes, in `path` otherwise.
            self.path.truncate(path_len);
            let borrowed = match self.scan.string(&mut self.key_scratch)? {
                Some(key) if path_len == 0 => Some(key),
                unescaped => {
                    self.path.push_str(unescaped.unwrap_or(&self.key_scratch));
                    None
                }
            };
            self.scan.skip_whitespace();
            self.scan.expect(b':', "expected `:`")?;
            self.scan.skip_whitespace();
            self.member(level, borrowed, path_len)?;
            self.scan.skip_whitespace();
            match self.scan.peek() {
                Some(b',') => {
                    self.scan.pos += 1;
                    self.scan.skip_whitespace();
                }
                Some(b'}') => {
                    self.scan.pos += 1;
                    self.path.truncate(path_len);
                    return Ok(());
                }
                _ => return Err(self.scan.unexpected("expected `,` or `}`")),
            }
        }
    }

    /// One member's value; its key is `borrowed`, or `path` when `None`.
    fn member(&mut self, level: usize, borrowed: Option<&'a str>, path_len: usize) -> Scan<()> {
        let start = self.scan.pos;
        let leaf = match self.scan.peek() {
            Some(b'"') => match self.scan.string(&mut self.value_scratch)? {
                Some(s) => Leaf::Str(s),
                None => Leaf::Str(self.value_scratch.as_str()),
            },
            Some(b'{') if level + 1 < self.depth => {
                if let Some(key) = borrowed {
                    self.path.push_str(key);
                }
                self.path.push_str(self.options.separator);
                self.scan.pos += 1;
                self.object(level + 1)?;
                self.path.truncate(path_len);
                return Ok(());
            }
            Some(b'{' | b'[') => {
                let raw = self.scan.skip_nested()?;
                let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| serde_fault(&e, raw, start))?;
                self.value_scratch = value.to_string();
                Leaf::Json(self.value_scratch.as_str())
            }
            Some(b't') => Leaf::Word(self.scan.literal("true")?),
            Some(b'f') => Leaf::Word(self.scan.literal("false")?),
            Some(b'n') => {
                self.scan.literal("null")?;
                Leaf::Word("")
            }
            Some(b'-' | b'0'..=b'9') => self.scan.number()?,
            _ => return Err(self.scan.unexpected("expected a value")),
        };
        let key = borrowed.unwrap_or(self.path.as_str());
        if !(self.claim)(key, level, &leaf) {
            self.out.push_with(&[self.options.prefix, key], |value| leaf.write(value));
        }
        Ok(())
    }
}

/// A position in a body being read.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.pos += hit as usize;
        hit
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8, what: &str) -> Scan<()> {
        if self.eat(byte) { Ok(()) } else { Err(self.unexpected(what)) }
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The string whose opening quote is at `pos`: borrowed when it has no
    /// escapes, else `None` with its text decoded into `scratch`.
    #[allow(unsafe_code)]
    fn string(&mut self, scratch: &mut String) -> Scan<Option<&'a str>> {
        let bytes = self.text.as_bytes();
        let start = self.pos + 1;
        let end = first_to_escape(bytes, start);
        match bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                // SAFETY: `start` follows an ASCII quote and `end` is one, so
                // both are char boundaries of `text` and `start <= end`.
                Ok(Some(unsafe { self.text.get_unchecked(start..end) }))
            }
            Some(b'\\') => {
                scratch.clear();
                scratch.push_str(&self.text[start..end]);
                self.pos = end;
                self.escaped(scratch)?;
                Ok(None)
            }
            Some(_) => Err(fault("control character (\\u0000-\\u001F) in a string", end)),
            None => Err(fault("EOF while parsing a string", end)),
        }
    }

    /// The rest of a string from the backslash at `pos`, decoded into `out`.
    fn escaped(&mut self, out: &mut String) -> Scan<()> {
        let bytes = self.text.as_bytes();
        loop {
            // At a backslash: the escape is two bytes, or six (or twelve,
            // for a surrogate pair) for `\u`, which moves `pos` itself.
            let at = self.pos;
            self.pos = at + 2;
            let decoded = match bytes.get(at + 1) {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => self.unicode_escape()?,
                Some(_) => return Err(fault("invalid escape", at)),
                None => return Err(fault("EOF while parsing a string", at + 1)),
            };
            out.push(decoded);
            let end = first_to_escape(bytes, self.pos);
            out.push_str(&self.text[self.pos..end]);
            self.pos = end;
            match bytes.get(end) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => continue,
                Some(_) => return Err(fault("control character (\\u0000-\\u001F) in a string", end)),
                None => return Err(fault("EOF while parsing a string", end)),
            }
        }
    }

    /// The character of a `\uXXXX` escape whose digits start at `pos`
    /// (and of the low surrogate's escape after it, for a pair).
    fn unicode_escape(&mut self) -> Scan<char> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if self.text.as_bytes().get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(fault("lone leading surrogate in hex escape", self.pos));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(fault("invalid low surrogate in hex escape", self.pos - 4));
                }
                0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(fault("lone trailing surrogate in hex escape", self.pos - 4)),
            code => u32::from(code),
        };
        char::from_u32(code).ok_or_else(|| fault("invalid unicode code point", self.pos - 4))
    }

    fn hex4(&mut self) -> Scan<u16> {
        let digits = self.text.as_bytes().get(self.pos..self.pos + 4);
        let value =
            digits.and_then(|d| d.iter().try_fold(0u16, |acc, &b| Some(acc << 4 | (b as char).to_digit(16)? as u16)));
        let value = value.ok_or_else(|| fault("invalid hex escape", self.pos))?;
        self.pos += 4;
        Ok(value)
    }

    /// `word` at `pos`, or an error.
    fn literal(&mut self, word: &'static str) -> Scan<&'static str> {
        if self.text.as_bytes().get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(word)
        } else {
            Err(fault("expected a value", self.pos))
        }
    }

    /// The number at `pos`, checked against JSON's grammar.
    fn number(&mut self) -> Scan<Leaf<'a>> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = start + (bytes[start] == b'-') as usize;
        let digits = |i: usize| bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let integer_digits = match bytes.get(i) {
            Some(b'0') => 1,
            Some(b'1'..=b'9') => digits(i),
            _ => return Err(fault("invalid number", i)),
        };
        i += integer_digits;
        let mut integer = true;
        if bytes.get(i) == Some(&b'.') {
            integer = false;
            let fraction = digits(i + 1);
            if fraction == 0 {
                return Err(fault("invalid number", i + 1));
            }
            i += 1 + fraction;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1 + matches!(bytes.get(i + 1), Some(b'+' | b'-')) as usize;
            let exponent = digits(i);
            if exponent == 0 {
                return Err(fault("invalid number", i));
            }
            i += exponent;
        }
        self.pos = i;
        let text = &self.text[start..i];
        // As serde_json reads integers: into an i64 or u64 where they fit
        // (`-0` becomes -0.0), a float otherwise. 18 digits always fit.
        if integer {
            let negative = bytes[start] == b'-';
            let fits = if negative {
                text != "-0" && (integer_digits <= 18 || text[1..].parse::<u64>().is_ok_and(|m| m <= 1 << 63))
            } else {
                integer_digits <= 18 || text.parse::<u64>().is_ok()
            };
            if fits {
                return Ok(Leaf::Int(text));
            }
        }
        // The grammar checked above is a subset of what `f64::from_str`
        // takes, and it rounds correctly. Like serde_json, refuse what
        // overflows to infinity (which JSON cannot write back).
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Leaf::Float(f)),
            _ => Err(fault("number out of range", start)),
        }
    }

    /// The text of the array or object at `pos`, found by matching brackets
    /// outside strings (serde_json then checks it).
    fn skip_nested(&mut self) -> Scan<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut open = 0usize;
        let mut scratch = String::new();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    self.string(&mut scratch)?;
                    continue;
                }
                b'{' | b'[' => open += 1,
                b'}' | b']' => {
                    open -= 1;
                    if open == 0 {
                        self.pos += 1;
                        return Ok(&self.text[start..self.pos]);
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(fault("EOF while parsing a value", self.pos))
    }

    /// An error about the byte at `pos` (or the end of the body).
    #[cold]
    #[inline(never)]
    fn unexpected(&self, what: &str) -> Box<Fault> {
        match self.peek() {
            Some(_) => fault(what, self.pos),
            None => fault(&format!("EOF while parsing an object ({what})"), self.pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Attributes;
    use proptest::prelude::*;
    use serde_json::Value;

    const DOTTED: FlattenOptions<'static> = FlattenOptions { prefix: "", separator: ".", max_depth: 4 };

    /// `key=value` in key order, or the error.
    fn flat(body: &str, options: &FlattenOptions<'_>) -> Result<Vec<String>, JsonError> {
        let mut attributes = Attributes::new();
        let mut writer = attributes.writer();
        let result = flatten_object(body, options, &mut writer, |_, _, _| false);
        drop(writer);
        result.map(|()| attributes.iter().map(|(k, v)| format!("{k}={v}")).collect())
    }

    /// What flattening `value` must give, from serde_json's own reading.
    fn expected(value: &Value, path: &str, depth: usize, out: &mut Vec<(String, String)>) {
        for (k, v) in value.as_object().expect("an object") {
            let key = format!("{path}{k}");
            match v {
                Value::Object(_) if depth > 1 => expected(v, &format!("{key}."), depth - 1, out),
                Value::Object(_) | Value::Array(_) => out.push((key, v.to_string())),
                Value::String(s) => out.push((key, s.clone())),
                Value::Null => out.push((key, String::new())),
                other => out.push((key, other.to_string())),
            }
        }
    }

    #[test]
    fn members_flatten_with_their_types_as_serde_json_prints_them() {
        let body =
            r#" { "a" : 1 , "http":{"status":200,"req":{"m":"GET"}},"t":[1, {"x" : 2}],"n":null,"b":false,"f":1.5} "#;
        let options = FlattenOptions { prefix: "app.", separator: "_", max_depth: 2 };
        assert_eq!(
            flat(body, &options).unwrap(),
            [
                "app.a=1",
                "app.b=false",
                "app.f=1.5",
                r#"app.http_req={"m":"GET"}"#,
                "app.http_status=200",
                "app.n=",
                r#"app.t=[1,{"x":2}]"#,
            ]
        );
        assert_eq!(flat("{}", &DOTTED).unwrap(), Vec::<String>::new());
        assert_eq!(flat(r#"{"e":{}}"#, &DOTTED).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn escapes_decode_in_keys_values_and_nested_keys() {
        let body = r#"{"k\"ey":"v\u00e9\n\t\/\\","o\u0062j":{"in\u006eer":"x"},"emoji":"\ud83d\ude00","long":"0123456789abcdef\"q"}"#;
        assert_eq!(
            flat(body, &DOTTED).unwrap(),
            ["emoji=😀", "k\"ey=vé\n\t/\\", "long=0123456789abcdef\"q", "obj.inner=x"]
        );
        // Non-ASCII text outside escapes passes through; strings of every
        // length around the eight-byte step end in the right place.
        for n in 0..20 {
            let s = "ü".repeat(n) + &"x".repeat(n);
            assert_eq!(flat(&format!(r#"{{"k":"{s}","z":1}}"#), &DOTTED).unwrap(), [format!("k={s}"), "z=1".into()]);
        }
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        for number in [
            "0",
            "-7",
            "1.5",
            "1e20",
            "-0",
            "-0.0",
            "2.5E-8",
            "0.30000000000000004",
            "9223372036854775807",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678901234567890",
        ] {
            let want = serde_json::from_str::<Value>(number).unwrap().to_string();
            assert_eq!(flat(&format!(r#"{{"n":{number}}}"#), &DOTTED).unwrap(), [format!("n={want}")], "{number}");
        }
    }

    #[test]
    fn claimed_leaves_are_not_written() {
        let mut attributes = Attributes::new();
        let mut seen = Vec::new();
        let mut writer = attributes.writer();
        let body = r#"{"msg":"hi","n":12,"a":{"msg":"nested"}}"#;
        flatten_object(body, &DOTTED, &mut writer, |key, level, leaf| {
            seen.push(format!("{key}@{level}:{leaf:?}"));
            key == "msg"
        })
        .unwrap();
        drop(writer);
        assert_eq!(seen, [r#"msg@0:Str("hi")"#, r#"n@0:Int("12")"#, r#"a.msg@1:Str("nested")"#]);
        assert_eq!(attributes.to_vec(), [("a.msg".to_string(), "nested".to_string()), ("n".into(), "12".into())]);
        assert_eq!(Leaf::Int("-12").integer(), Some(-12));
    }

    #[test]
    fn broken_bodies_say_what_and_where() {
        let cases = [
            (r#"{"a":1,"b"}"#, "expected `:` at line 1 column 11"),
            (r#"{"a":1,}"#, "expected a string key at line 1 column 8"),
            (r#"{"a":01}"#, "expected `,` or `}` at line 1 column 7"),
            ("{\"a\":1,\n\"b\":tru}", "expected a value at line 2 column 5"),
            (r#"{"a":"x"#, "EOF while parsing a string at line 1 column 8"),
            (r#"{"a":"\x"}"#, "invalid escape at line 1 column 7"),
            (r#"{"a":"\ud800"}"#, "lone leading surrogate in hex escape at line 1 column 13"),
            (r#"{"a":"\udc00"}"#, "lone trailing surrogate in hex escape at line 1 column 9"),
            (r#"{"a":"\u12g4"}"#, "invalid hex escape at line 1 column 9"),
            ("{\"a\":\"\u{1}\"}", "control character (\\u0000-\\u001F) in a string at line 1 column 7"),
            (r#"{"a":1.}"#, "invalid number at line 1 column 8"),
            (r#"{"a":-}"#, "invalid number at line 1 column 7"),
            (r#"{"a":1e+}"#, "invalid number at line 1 column 9"),
            (r#"{"a":[1,2"#, "EOF while parsing a value at line 1 column 10"),
            (r#"{"a":[1,2}}"#, "expected `,` or `]` at line 1 column 10"),
            (r#"{"a":[1,]}"#, "trailing comma at line 1 column 9"),
            ("{\"a\":\n [1,\n ]}", "trailing comma at line 3 column 2"),
            (r#"{"a":1e400}"#, "number out of range at line 1 column 6"),
            (r#"{"a":1} x"#, "trailing characters at line 1 column 9"),
            (r#"{"a":1"#, "EOF while parsing an object (expected `,` or `}`) at line 1 column 7"),
            ("[1]", "expected `{` at line 1 column 1"),
        ];
        for (body, want) in cases {
            assert_eq!(flat(body, &DOTTED).unwrap_err().to_string(), want, "{body}");
        }
    }

    #[test]
    fn deep_arrays_are_an_error_not_a_stack_overflow() {
        let body = format!(r#"{{"a":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(flat(&body, &DOTTED).unwrap_err().message.contains("recursion limit"));
    }

    /// JSON objects of every shape: strings with escapes and non-ASCII,
    /// integers of all widths, short decimals, nesting up to four levels.
    fn object() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-100_000i32..100_000).prop_map(|n| Value::from(f64::from(n) / 100.0)),
            "[a-z\"\\\\/\u{0}-\u{1f}é😀 ]{0,24}".prop_map(Value::from),
            Just(Value::Null),
        ];
        let value = leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z.\"é]{1,6}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-z_\"é]{1,8}", value, 0..8).prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_on_valid_objects(value in object(), pretty in any::<bool>(), depth in 1usize..5) {
            let body = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
            let options = FlattenOptions { prefix: "", separator: ".", max_depth: depth };
            let mut want = Vec::new();
            expected(&value, "", depth, &mut want);
            // The writer keeps the last of repeated keys (`a.b` beside `a: {b}`).
            let mut last = std::collections::BTreeMap::new();
            last.extend(want);
            let want: Vec<String> = last.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            prop_assert_eq!(flat(&body, &options).unwrap(), want);
        }

        /// Cut or changed anywhere, a body is accepted exactly when serde_json
        /// accepts it as an object.
        #[test]
        fn accepts_what_serde_json_accepts(value in object(), at in any::<prop::sample::Index>(), byte in prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b','), Just(b':'), Just(b'}'), Just(b']'), Just(b'0'), Just(b'-'), Just(b'e'), Just(b'u'), Just(b' '), Just(b'\n')
        ], cut in any::<bool>()) {
            let mut body = serde_json::to_string(&value).unwrap().into_bytes();
            let i = at.index(body.len());
            if cut { body.truncate(i) } else { body[i] = byte }
            let Ok(text) = String::from_utf8(body) else { return Ok(()) };
            let serde = serde_json::from_str::<Value>(&text).map(|v| v.is_object()).unwrap_or(false);
            prop_assert_eq!(flat(&text, &DOTTED).is_ok(), serde, "{}", text);
        }
    }
}
