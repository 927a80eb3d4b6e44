//! Docker's `json-file` driver: `{"log":"text\n","stream":"stdout","time":"..."}`.
//! Docker also splits long lines (16 KiB); a piece without the trailing `\n` is partial.

use crate::framing::timestamp::parse_rfc3339_nanos;
use crate::record::Stream;
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(default, borrow)]
    stream: Cow<'a, str>,
    #[serde(default, borrow)]
    time: Cow<'a, str>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct DockerLine<'a> {
    pub timestamp_ns: Option<i64>,
    pub stream: Stream,
    pub partial: bool,
    pub content: Cow<'a, str>,
}

pub(crate) fn parse(line: &[u8]) -> Result<DockerLine<'_>, String> {
    let raw: Raw<'_> = serde_json::from_slice(line).map_err(|e| format!("not a json-file line: {e}"))?;
    let stream = match &*raw.stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => Stream::Unknown,
    };
    let (partial, content) = match raw.log {
        Cow::Borrowed(s) => match s.strip_suffix('\n') {
            Some(s) => (false, Cow::Borrowed(s)),
            None => (true, Cow::Borrowed(s)),
        },
        Cow::Owned(mut s) => {
            let partial = !s.ends_with('\n');
            if !partial {
                s.pop();
            }
            (partial, Cow::Owned(s))
        }
    };
    Ok(DockerLine { timestamp_ns: parse_rfc3339_nanos(raw.time.as_bytes()), stream, partial, content })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_file_lines_parse() {
        let l = parse(br#"{"log":"hello \"x\"\n","stream":"stderr","time":"2019-04-01T10:00:00.5Z"}"#).unwrap();
        assert_eq!(l.content, "hello \"x\"");
        assert_eq!(l.stream, Stream::Stderr);
        assert!(!l.partial);
        assert_eq!(l.timestamp_ns, Some(1_554_112_800_500_000_000));
        let l = parse(br#"{"log":"part","stream":"stdout","time":"2019-04-01T10:00:00Z"}"#).unwrap();
        assert!(l.partial);
        assert!(parse(b"{\"log\": 3}").is_err());
        assert!(parse(b"plain").is_err());
    }
}
