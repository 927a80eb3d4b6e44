//! The function table: Go's builtins plus Prometheus' template functions.
//! Names are resolved at parse time because Go rejects unknown functions
//! while parsing, and rule checking relies on that.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Html,
    Js,
    Urlquery,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Call,
    Query,
    First,
    Label,
    Value,
    Strvalue,
    Args,
    ReReplaceAll,
    SafeHtml,
    Match,
    Title,
    ToUpper,
    ToLower,
    StripPort,
    StripDomain,
    GraphLink,
    TableLink,
    SortByLabel,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    ToTime,
    ParseDuration,
    PathPrefix,
    ExternalUrl,
}

/// (name, function, fixed argument count or minimum when variadic, variadic).
const TABLE: &[(&str, Func, usize, bool)] = &[
    ("and", Func::And, 1, true),
    ("or", Func::Or, 1, true),
    ("not", Func::Not, 1, false),
    ("len", Func::Len, 1, false),
    ("index", Func::Index, 1, true),
    ("slice", Func::Slice, 1, true),
    ("print", Func::Print, 0, true),
    ("printf", Func::Printf, 1, true),
    ("println", Func::Println, 0, true),
    ("html", Func::Html, 0, true),
    ("js", Func::Js, 0, true),
    ("urlquery", Func::Urlquery, 0, true),
    ("eq", Func::Eq, 1, true),
    ("ne", Func::Ne, 2, false),
    ("lt", Func::Lt, 2, false),
    ("le", Func::Le, 2, false),
    ("gt", Func::Gt, 2, false),
    ("ge", Func::Ge, 2, false),
    ("call", Func::Call, 1, true),
    ("query", Func::Query, 1, false),
    ("first", Func::First, 1, false),
    ("label", Func::Label, 2, false),
    ("value", Func::Value, 1, false),
    ("strvalue", Func::Strvalue, 1, false),
    ("args", Func::Args, 0, true),
    ("reReplaceAll", Func::ReReplaceAll, 3, false),
    ("safeHtml", Func::SafeHtml, 1, false),
    ("match", Func::Match, 2, false),
    ("title", Func::Title, 1, false),
    ("toUpper", Func::ToUpper, 1, false),
    ("toLower", Func::ToLower, 1, false),
    ("stripPort", Func::StripPort, 1, false),
    ("stripDomain", Func::StripDomain, 1, false),
    ("graphLink", Func::GraphLink, 1, false),
    ("tableLink", Func::TableLink, 1, false),
    ("sortByLabel", Func::SortByLabel, 2, false),
    ("humanize", Func::Humanize, 1, false),
    ("humanize1024", Func::Humanize1024, 1, false),
    ("humanizeDuration", Func::HumanizeDuration, 1, false),
    ("humanizePercentage", Func::HumanizePercentage, 1, false),
    ("humanizeTimestamp", Func::HumanizeTimestamp, 1, false),
    ("toTime", Func::ToTime, 1, false),
    ("parseDuration", Func::ParseDuration, 1, false),
    ("pathPrefix", Func::PathPrefix, 0, false),
    ("externalURL", Func::ExternalUrl, 0, false),
];

pub(crate) fn lookup(name: &str) -> Option<Func> {
    TABLE.iter().find(|e| e.0 == name).map(|e| e.1)
}

fn entry(f: Func) -> (&'static str, usize, bool) {
    TABLE.iter().find(|e| e.1 == f).map_or(("?", 0, true), |e| (e.0, e.2, e.3))
}

pub(crate) fn name(f: Func) -> &'static str {
    entry(f).0
}

pub(crate) fn arity(f: Func) -> (usize, bool) {
    let (_, n, v) = entry(f);
    (n, v)
}

// ---- escapers (text/template funcs.go) ------------------------------------

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() || crate::gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's url.QueryEscape.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---- Prometheus string helpers --------------------------------------------

/// golang.org/x/text/cases Title with NoLower: upper-case the first letter of
/// each word, keep the rest. Word breaks approximate Unicode word
/// segmentation: apostrophes and dots between letters do not break a word.
pub(crate) fn title(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let word = |c: char| c.is_alphanumeric() || c == '_';
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = match i.checked_sub(1).map(|j| chars[j]) {
            None => true,
            Some(p) if word(p) => false,
            Some('\'' | '.' | ':' | '\u{2019}' | '\u{00B7}') => {
                !(i >= 2 && chars[i - 2].is_alphabetic() && c.is_alphabetic())
            }
            Some(_) => true,
        };
        if starts_word && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// strings.ToUpper/ToLower use simple (one-to-one) case mappings.
pub(crate) fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut it: Box<dyn Iterator<Item = char>> =
                if upper { Box::new(c.to_uppercase()) } else { Box::new(c.to_lowercase()) };
            match (it.next(), it.next()) {
                (Some(m), None) => m,
                _ => c,
            }
        })
        .collect()
}

/// net.SplitHostPort.
pub(crate) fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k);
    if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        host = &hp[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

pub(crate) fn strip_port(hp: &str) -> String {
    split_host_port(hp).map_or_else(|| hp.to_string(), |(h, _)| h.to_string())
}

pub(crate) fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        return host.to_string();
    }
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// url.Parse(externalURL).Path, for pathPrefix.
pub(crate) fn url_path(u: &str) -> String {
    let rest = match u.find("://") {
        Some(i) => {
            let after = &u[i + 3..];
            match after.find(['/', '?', '#']) {
                Some(j) => &after[j..],
                None => "",
            }
        }
        None => u,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    rest[..end].to_string()
}
