//! The CRI log format written by kubelet/containerd/CRI-O:
//! `<rfc3339nano> <stdout|stderr> <P|F>[:more tags] <content>`. `P` marks a
//! partial line (the runtime splits long lines, 16 KiB by default), `F` the last piece.

use crate::framing::timestamp::parse_rfc3339_nanos;
use crate::record::Stream;

#[derive(Debug, PartialEq)]
pub(crate) struct CriLine<'a> {
    pub timestamp_ns: i64,
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

pub(crate) fn parse(line: &[u8]) -> Result<CriLine<'_>, &'static str> {
    let (ts, rest) = split_space(line).ok_or("no space after the timestamp")?;
    let timestamp_ns = parse_rfc3339_nanos(ts).ok_or("timestamp is not RFC 3339")?;
    let (stream, rest) = split_space(rest).ok_or("no space after the stream")?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return Err("stream is neither stdout nor stderr"),
    };
    // Content may be empty, and then the separating space may be missing too.
    let (tags, content) = split_space(rest).unwrap_or((rest, &[]));
    let partial = match tags.split(|&c| c == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err("tag is neither P nor F"),
    };
    Ok(CriLine { timestamp_ns, stream, partial, content })
}

fn split_space(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b' ', s)?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_parse() {
        let l = parse(b"2016-10-06T00:17:09.669794202Z stdout P log content 1").unwrap();
        assert_eq!(l.stream, Stream::Stdout);
        assert!(l.partial);
        assert_eq!(l.content, b"log content 1");
        let l = parse(b"2016-10-06T00:17:09.669794202Z stderr F").unwrap();
        assert!(!l.partial && l.content.is_empty() && l.stream == Stream::Stderr);
        let l = parse(b"2016-10-06T00:17:09.669794202Z stderr F:x  two spaces").unwrap();
        assert_eq!(l.content, b" two spaces");
        assert!(parse(b"hello world").is_err());
        assert!(parse(b"2016-10-06T00:17:09Z stdin F x").is_err());
        assert!(parse(b"2016-10-06T00:17:09Z stdout X x").is_err());
    }
}
