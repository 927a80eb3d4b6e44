//! Go's `fmt` (print.go, format.go) and `strconv` float/quote formatting for
//! the values templates handle. Output has to match Prometheus byte for byte,
//! so this follows Go's algorithms rather than Rust's formatting rules.

use std::fmt::Write as _;

use crate::QuerySample;
use crate::value::Value;

// ---- strconv.FormatFloat ----------------------------------------------------

/// Decimal digits without trailing zeros (empty for zero) and the position of
/// the decimal point, like strconv's decimalSlice.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

fn sci_digits(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// Shortest digits that round-trip (Rust and Go both pick the closest).
fn shortest(a: f64) -> Digits {
    sci_digits(&format!("{a:e}"))
}

/// `n` significant digits, correctly rounded (half to even on exact ties, as Go).
fn fixed(a: f64, n: usize) -> Digits {
    sci_digits(&format!("{:.*e}", n.saturating_sub(1), a))
}

fn fmt_e(out: &mut String, d: &Digits, prec: i32, ch: char) {
    let nd = d.d.len() as i32;
    out.push(d.d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        let mut i = 1;
        let m = nd.min(prec + 1);
        while i < m {
            out.push(d.d[i as usize] as char);
            i += 1;
        }
        while i <= prec {
            out.push('0');
            i += 1;
        }
    }
    out.push(ch);
    let mut exp = if nd == 0 { 0 } else { d.dp - 1 };
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

fn fmt_f(out: &mut String, d: &Digits, prec: i32) {
    let nd = d.d.len() as i32;
    if d.dp > 0 {
        let m = nd.min(d.dp);
        for &c in &d.d[..m as usize] {
            out.push(c as char);
        }
        for _ in m..d.dp {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            let j = d.dp + i - 1;
            out.push(if (0..nd).contains(&j) { d.d[j as usize] as char } else { '0' });
        }
    }
}

/// `%x` of a float64: strconv's fmtX.
fn fmt_x(out: &mut String, v: f64, prec: i32, upper: bool) {
    let bits = v.abs().to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1u64 << 52;
    }
    exp -= 1023;
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1u64 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1u64 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1u64 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    out.push('0');
    out.push(if upper { 'X' } else { 'x' });
    out.push((b'0' + ((mant >> 60) & 1) as u8) as char);
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    }
    out.push(if upper { 'P' } else { 'p' });
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

/// strconv.FormatFloat(v, fmt, prec, 64); prec < 0 means shortest.
pub(crate) fn format_float(v: f64, fmt: u8, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let a = v.abs();
    match fmt {
        b'f' | b'F' if prec >= 0 => {
            let _ = write!(out, "{:.*}", prec as usize, a);
        }
        b'f' | b'F' => {
            let d = shortest(a);
            let p = (d.d.len() as i32 - d.dp).max(0);
            fmt_f(&mut out, &d, p);
        }
        b'e' | b'E' => {
            let (d, p) = if prec >= 0 {
                (fixed(a, prec as usize + 1), prec)
            } else {
                let d = shortest(a);
                let p = (d.d.len() as i32 - 1).max(0);
                (d, p)
            };
            fmt_e(&mut out, &d, p, fmt as char);
        }
        b'g' | b'G' => {
            let shortest_mode = prec < 0;
            let (d, mut p) = if shortest_mode {
                let d = shortest(a);
                let n = d.d.len() as i32;
                (d, n)
            } else {
                let p = prec.max(1);
                (fixed(a, p as usize), p)
            };
            let nd = d.d.len() as i32;
            let mut eprec = p;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            if shortest_mode {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut out, &d, (p - 1).max(0), if fmt == b'g' { 'e' } else { 'E' });
            } else {
                if p > d.dp {
                    p = nd;
                }
                fmt_f(&mut out, &d, (p - d.dp).max(0));
            }
        }
        b'x' | b'X' => fmt_x(&mut out, v, prec, fmt == b'X'),
        b'b' => {
            let bits = a.to_bits();
            let mut exp = ((bits >> 52) & 0x7ff) as i64;
            let mut mant = bits & ((1u64 << 52) - 1);
            if exp == 0 {
                exp += 1;
            } else {
                mant |= 1u64 << 52;
            }
            exp -= 1023 + 52;
            let _ = write!(out, "{mant}p");
            if exp >= 0 {
                out.push('+');
            }
            let _ = write!(out, "{exp}");
        }
        _ => {
            out.push('%');
            out.push(fmt as char);
        }
    }
    out
}

/// `%v` of a float64.
pub(crate) fn float_v(v: f64) -> String {
    format_float(v, b'g', -1)
}

// ---- strconv.Quote ----------------------------------------------------------

/// Approximates unicode.IsPrint (letters, marks, numbers, punctuation,
/// symbols and U+0020); Rust has no general-category lookup in std.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF | 0xE000..=0xF8FF
        | 0xE0000..=0xE007F | 0xF0000..=0x10FFFF)
}

fn escaped_rune(out: &mut String, c: char, quote: char, ascii: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if if ascii { c.is_ascii() && is_print(c) } else { is_print(c) } {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// strconv.Quote (or QuoteToASCII).
pub(crate) fn go_quote(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escaped_rune(&mut out, c, '"', ascii);
    }
    out.push('"');
    out
}

fn quote_rune(r: i64, ascii: bool) -> String {
    let c = u32::try_from(r).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
    let mut out = String::from("'");
    escaped_rune(&mut out, c, '\'', ascii);
    out.push('\'');
    out
}

fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !c.is_control()))
}

/// `%#U` of a rune, as Go's lexer reports bad characters.
pub(crate) fn fmt_unicode_sharp(c: char) -> String {
    if is_print(c) { format!("U+{:04X} '{c}'", c as u32) } else { format!("U+{:04X}", c as u32) }
}

// ---- fmt --------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct Flags {
    wid: Option<usize>,
    prec: Option<usize>,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

#[derive(Default)]
struct Pp {
    buf: String,
    f: Flags,
}

/// Go refuses widths and precisions beyond a million (fmt's tooLarge).
const TOO_LARGE: i64 = 1_000_000;

impl Pp {
    fn write_padding(&mut self, n: usize, zero: bool) {
        let c = if zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// fmt.pad: width counted in runes; zero padding only to the left.
    fn pad(&mut self, s: &str) {
        let Some(w) = self.f.wid else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        if n >= w {
            self.buf.push_str(s);
        } else if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(w - n, false);
        } else {
            self.write_padding(w - n, self.f.zero);
            self.buf.push_str(s);
        }
    }

    /// Strings are padded with spaces even with the 0 flag (Go >= 1.23).
    fn pad_str(&mut self, s: &str) {
        let z = self.f.zero;
        self.f.zero = false;
        self.pad(s);
        self.f.zero = z;
    }

    fn bad_verb(&mut self, verb: char, v: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match v {
            Value::Nil | Value::Missing => self.buf.push_str("<nil>"),
            _ => {
                self.buf.push_str(v.type_name());
                self.buf.push('=');
                self.print_arg(v, 'v', 0);
            }
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, v: &Value, verb: char, depth: usize) {
        match v {
            Value::Nil | Value::Missing => {
                if matches!(verb, 'T' | 'v') {
                    self.pad_str("<nil>");
                } else {
                    self.bad_verb(verb, v);
                }
                return;
            }
            _ if verb == 'T' => {
                self.pad_str(v.type_name());
                return;
            }
            _ => {}
        }
        match v {
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad_str(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, v),
            },
            Value::Int(i) => self.fmt_int(*i, verb, v),
            Value::Float(x) => self.fmt_float(*x, verb, v),
            Value::Str(s) | Value::Html(s) => self.fmt_string(s, verb, v),
            Value::Labels(m) => {
                if self.f.sharp_v {
                    self.buf.push_str("map[string]string{");
                    for (i, (k, val)) in m.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(", ");
                        }
                        self.buf.push_str(&go_quote(k, false));
                        self.buf.push(':');
                        self.buf.push_str(&go_quote(val, false));
                    }
                    self.buf.push('}');
                    return;
                }
                self.buf.push_str("map[");
                for (i, (k, val)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.fmt_string(k, verb, &Value::Str(k.clone()));
                    self.buf.push(':');
                    self.fmt_string(val, verb, &Value::Str(val.clone()));
                }
                self.buf.push(']');
            }
            Value::Map(m) => {
                self.buf.push_str("map[");
                for (i, (k, val)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.fmt_string(k, verb, &Value::Str(k.clone()));
                    self.buf.push(':');
                    self.print_arg(val, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Sample(None) => {
                if verb == 'v' {
                    self.pad_str("<nil>");
                } else {
                    self.bad_verb(verb, v);
                }
            }
            // Go prints a nested pointer as its address; an address means
            // nothing here, so nested samples print like top-level ones.
            Value::Sample(Some(s)) => {
                self.buf.push('&');
                self.sample_struct(s, verb, depth);
            }
            Value::Samples(list) => {
                self.buf.push('[');
                for (i, s) in list.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.buf.push('&');
                    self.sample_struct(s, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Time(t) => match verb {
                'v' | 's' | 'q' | 'x' | 'X' => {
                    let s = crate::humanize::time_string(*t);
                    self.fmt_string(&s, verb, v);
                }
                _ => self.bad_verb(verb, v),
            },
            Value::Root(r) => {
                let names = self.f.plus_v;
                self.buf.push('{');
                if names {
                    self.buf.push_str("Labels:");
                }
                self.print_arg(&Value::Labels(r.labels.clone()), verb, depth + 1);
                self.buf.push(' ');
                if names {
                    self.buf.push_str("ExternalLabels:");
                }
                self.print_arg(&Value::Labels(r.external_labels.clone()), verb, depth + 1);
                self.buf.push(' ');
                if names {
                    self.buf.push_str("ExternalURL:");
                }
                self.fmt_string(&r.external_url, verb, &Value::Str(r.external_url.clone()));
                self.buf.push(' ');
                if names {
                    self.buf.push_str("Value:");
                }
                self.fmt_float(r.value, verb, &Value::Float(r.value));
                self.buf.push('}');
            }
            Value::Nil | Value::Missing => {}
        }
    }

    fn sample_struct(&mut self, s: &QuerySample, verb: char, depth: usize) {
        self.buf.push('{');
        if self.f.plus_v {
            self.buf.push_str("Labels:");
        }
        self.print_arg(&Value::Labels(std::rc::Rc::new(s.labels.clone())), verb, depth + 1);
        self.buf.push(' ');
        if self.f.plus_v {
            self.buf.push_str("Value:");
        }
        self.fmt_float(s.value, verb, &Value::Float(s.value));
        self.buf.push('}');
    }

    fn fmt_int(&mut self, i: i64, verb: char, v: &Value) {
        match verb {
            'v' | 'd' => self.fmt_integer(i, 10, verb, false),
            'b' => self.fmt_integer(i, 2, verb, false),
            'o' | 'O' => self.fmt_integer(i, 8, verb, false),
            'x' => self.fmt_integer(i, 16, verb, false),
            'X' => self.fmt_integer(i, 16, verb, true),
            'c' => {
                let c = u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
                self.pad(c.encode_utf8(&mut [0u8; 4]));
            }
            'q' => {
                let s = quote_rune(i, self.f.plus);
                self.pad_str(&s);
            }
            'U' => {
                let u = i as u64;
                let min = self.f.prec.unwrap_or(4);
                let mut s = format!("U+{u:0>min$X}");
                if self.f.sharp
                    && let Some(c) = u32::try_from(i).ok().and_then(char::from_u32)
                    && is_print(c)
                {
                    let _ = write!(s, " '{c}'");
                }
                self.pad_str(&s);
            }
            _ => self.bad_verb(verb, v),
        }
    }

    /// fmt.fmtInteger.
    fn fmt_integer(&mut self, i: i64, base: u32, verb: char, upper: bool) {
        let neg = i < 0;
        let u = i.unsigned_abs();
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let w = self.f.wid.unwrap_or(0);
                self.write_padding(w, false);
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid.is_some() {
            prec = self.f.wid.unwrap_or(0);
            if neg || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => format!("{u}"),
        };
        if digits.len() < prec {
            digits.insert_str(0, &"0".repeat(prec - digits.len()));
        }
        let mut s = String::new();
        if neg {
            s.push('-');
        } else if self.f.plus {
            s.push('+');
        } else if self.f.space {
            s.push(' ');
        }
        if self.f.sharp {
            match base {
                2 => s.push_str("0b"),
                8 if !digits.starts_with('0') => s.push('0'),
                16 => s.push_str(if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            s.push_str("0o");
        }
        s.push_str(&digits);
        let z = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = z;
    }

    fn fmt_float(&mut self, x: f64, verb: char, v: &Value) {
        let (fmt, default_prec) = match verb {
            'v' => (b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => (verb as u8, -1),
            'f' | 'F' | 'e' | 'E' => (verb as u8, 6),
            _ => {
                self.bad_verb(verb, v);
                return;
            }
        };
        let prec = self.f.prec.map_or(default_prec, |p| p as i32);
        let num = format_float(x, fmt, prec);
        let mut s = if num.starts_with(['-', '+']) { num } else { format!("+{num}") };
        if self.f.space && s.starts_with('+') && !self.f.plus {
            s.replace_range(0..1, " ");
        }
        if s[1..].starts_with("Inf") || s[1..].starts_with("NaN") {
            if s[1..].starts_with("NaN") && !self.f.space && !self.f.plus {
                s.remove(0);
            }
            self.pad_str(&s);
            return;
        }
        if self.f.plus || !s.starts_with('+') {
            if self.f.zero
                && !self.f.minus
                && let Some(w) = self.f.wid
                && w > s.len()
            {
                let (sign, rest) = s.split_at(1);
                self.buf.push_str(sign);
                self.write_padding(w - s.len(), true);
                self.buf.push_str(rest);
                return;
            }
            self.pad(&s);
            return;
        }
        self.pad(&s[1..]);
    }

    fn fmt_string(&mut self, s: &str, verb: char, v: &Value) {
        let truncated: String;
        let s = match self.f.prec {
            Some(p) if matches!(verb, 'v' | 's' | 'q') => {
                truncated = s.chars().take(p).collect();
                truncated.as_str()
            }
            _ => s,
        };
        match verb {
            'v' if self.f.sharp_v => self.pad_str(&go_quote(s, false)),
            'v' | 's' => self.pad_str(s),
            'x' | 'X' => self.fmt_sx(s, verb == 'X'),
            'q' => {
                let q = if self.f.sharp && can_backquote(s) { format!("`{s}`") } else { go_quote(s, self.f.plus) };
                self.pad_str(&q);
            }
            _ => self.bad_verb(verb, v),
        }
    }

    /// fmt.fmtSbx: hex of the bytes of a string.
    fn fmt_sx(&mut self, s: &str, upper: bool) {
        let b = s.as_bytes();
        let len = self.f.prec.map_or(b.len(), |p| p.min(b.len()));
        let mut width = 2 * len;
        if width == 0 {
            let w = self.f.wid.unwrap_or(0);
            self.write_padding(w, false);
            return;
        }
        if self.f.space {
            if self.f.sharp {
                width *= 2;
            }
            width += len - 1;
        } else if self.f.sharp {
            width += 2;
        }
        let pad = self.f.wid.map_or(0, |w| w.saturating_sub(width));
        if !self.f.minus {
            self.write_padding(pad, false);
        }
        let x = if upper { "0X" } else { "0x" };
        if self.f.sharp {
            self.buf.push_str(x);
        }
        for (i, byte) in b[..len].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push_str(x);
                }
            }
            let _ = if upper { write!(self.buf, "{byte:02X}") } else { write!(self.buf, "{byte:02x}") };
        }
        if self.f.minus {
            self.write_padding(pad, false);
        }
    }
}

fn is_string(v: &Value) -> bool {
    matches!(v, Value::Str(_) | Value::Html(_))
}

/// fmt.Sprint: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut p = Pp::default();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let s = is_string(a);
        if i > 0 && !s && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
        prev_string = s;
    }
    p.buf
}

/// fmt.Sprintln: always spaces, then a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut p = Pp::default();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
    }
    p.buf.push('\n');
    p.buf
}

/// How a top-level action prints a sample: Go's printableValue dereferences
/// the pointer, so no leading `&`.
pub(crate) fn sample_value(s: &QuerySample) -> String {
    let mut p = Pp::default();
    p.sample_struct(s, 'v', 0);
    p.buf
}

/// fmt's parsenum: (number, present, new index); absurdly long numbers
/// swallow the rest of the format like Go does.
fn parsenum(b: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num: i64 = 0;
    let mut isnum = false;
    let mut i = start;
    while i < end && b[i].is_ascii_digit() {
        if num > TOO_LARGE {
            return (0, false, end);
        }
        num = num * 10 + i64::from(b[i] - b'0');
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

struct ArgState {
    arg_num: usize,
    reordered: bool,
    good: bool,
}

impl ArgState {
    /// fmt's argNumber: an explicit `[n]` index.
    fn arg_number(&mut self, b: &[u8], i: usize, nargs: usize) -> (usize, bool) {
        if i >= b.len() || b[i] != b'[' {
            return (i, false);
        }
        self.reordered = true;
        let s = &b[i..];
        if s.len() < 3 {
            self.good = false;
            return (i + 1, false);
        }
        for j in 1..s.len() {
            if s[j] == b']' {
                let (w, ok, ni) = parsenum(s, 1, j);
                if !ok || ni != j {
                    self.good = false;
                    return (i + j + 1, false);
                }
                let idx = w - 1;
                if idx >= 0 && (idx as usize) < nargs {
                    self.arg_num = idx as usize;
                    return (i + j + 1, true);
                }
                self.good = false;
                return (i + j + 1, true);
            }
        }
        self.good = false;
        (i + 1, false)
    }
}

fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    match args.get(arg_num) {
        None => (0, false, arg_num),
        Some(v) => {
            let (n, ok) = match v {
                Value::Int(i) => (*i, true),
                _ => (0, false),
            };
            if !(-TOO_LARGE..=TOO_LARGE).contains(&n) {
                return (0, false, arg_num + 1);
            }
            (n, ok, arg_num + 1)
        }
    }
}

/// fmt.Sprintf.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let b = format.as_bytes();
    let end = b.len();
    let mut p = Pp::default();
    let mut st = ArgState { arg_num: 0, reordered: false, good: true };
    let mut i = 0;
    while i < end {
        st.good = true;
        let lasti = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        if i > lasti {
            p.buf.push_str(&format[lasti..i]);
        }
        if i >= end {
            break;
        }
        i += 1;
        p.f = Flags::default();
        while i < end {
            match b[i] {
                b'#' => p.f.sharp = true,
                b'0' => p.f.zero = !p.f.minus,
                b'+' => p.f.plus = true,
                b'-' => {
                    p.f.minus = true;
                    p.f.zero = false;
                }
                b' ' => p.f.space = true,
                _ => break,
            }
            i += 1;
        }
        let (ni, mut after_index) = st.arg_number(b, i, args.len());
        i = ni;
        if i < end && b[i] == b'*' {
            i += 1;
            let (w, ok, an) = int_from_arg(args, st.arg_num);
            st.arg_num = an;
            if !ok {
                p.buf.push_str("%!(BADWIDTH)");
            } else if w < 0 {
                p.f.wid = Some(w.unsigned_abs() as usize);
                p.f.minus = true;
                p.f.zero = false;
            } else {
                p.f.wid = Some(w as usize);
            }
            after_index = false;
        } else {
            let (w, present, ni) = parsenum(b, i, end);
            i = ni;
            if present {
                p.f.wid = Some(w as usize);
                if after_index {
                    st.good = false;
                }
            }
        }
        if i < end && b[i] == b'.' {
            i += 1;
            if after_index {
                st.good = false;
            }
            let (ni, ai) = st.arg_number(b, i, args.len());
            i = ni;
            after_index = ai;
            if i < end && b[i] == b'*' {
                i += 1;
                let (pr, ok, an) = int_from_arg(args, st.arg_num);
                st.arg_num = an;
                if pr < 0 || !ok {
                    p.f.prec = None;
                    p.buf.push_str("%!(BADPREC)");
                } else {
                    p.f.prec = Some(pr as usize);
                }
                after_index = false;
            } else {
                let (pr, present, ni) = parsenum(b, i, end);
                i = ni;
                p.f.prec = Some(if present { pr as usize } else { 0 });
            }
        }
        if !after_index {
            let (ni, _) = st.arg_number(b, i, args.len());
            i = ni;
        }
        if i >= end {
            p.buf.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('?');
        i += verb.len_utf8();
        if verb == '%' {
            p.buf.push('%');
            continue;
        }
        if !st.good {
            p.buf.push_str("%!");
            p.buf.push(verb);
            p.buf.push_str("(BADINDEX)");
            continue;
        }
        let Some(arg) = args.get(st.arg_num) else {
            p.buf.push_str("%!");
            p.buf.push(verb);
            p.buf.push_str("(MISSING)");
            continue;
        };
        if verb == 'v' {
            if p.f.sharp {
                p.f.sharp = false;
                p.f.sharp_v = true;
            }
            if p.f.plus {
                p.f.plus = false;
                p.f.plus_v = true;
            }
        }
        p.print_arg(arg, verb, 0);
        st.arg_num += 1;
    }
    if !st.reordered && st.arg_num < args.len() {
        p.f = Flags::default();
        p.buf.push_str("%!(EXTRA ");
        for (k, a) in args[st.arg_num..].iter().enumerate() {
            if k > 0 {
                p.buf.push_str(", ");
            }
            match a {
                Value::Nil | Value::Missing => p.buf.push_str("<nil>"),
                _ => {
                    p.buf.push_str(a.type_name());
                    p.buf.push('=');
                    p.print_arg(a, 'v', 0);
                }
            }
        }
        p.buf.push(')');
    }
    p.buf
}
