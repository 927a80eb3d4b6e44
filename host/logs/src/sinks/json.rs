//! JSON strings for the sinks that write JSON by hand. The next byte that
//! needs escaping is found eight bytes at a time and the run before it copied
//! whole: attribute values, which rarely need any, cost a scan and a copy.
//! A body that is itself JSON has a quote every few bytes, which leaves less
//! to gain: a 230-byte JSON body and ten 32-byte values took 0.28–0.41 s per
//! million against serde_json's 0.37–0.53 s (interleaved rounds, release
//! build). The output is byte for byte what serde_json writes (tested).

use wasmon_sdk::json::first_to_escape;

/// Appends `s` as a JSON string literal, quotes included, escaped as
/// serde_json escapes (`\"`, `\\`, `\n`-style escapes for the five that
/// have one, `\u00xx` for other control characters, nothing else).
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    loop {
        let at = first_to_escape(bytes, from);
        out.extend_from_slice(&bytes[from..at]);
        let Some(&byte) = bytes.get(at) else { break };
        push_escape(out, byte);
        from = at + 1;
    }
    out.push(b'"');
}

fn push_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        b => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_exactly_what_serde_json_writes() {
        let mut cases: Vec<String> = [
            "",
            "plain text of more than eight bytes",
            "quote\" in the middle",
            "back\\slash",
            "tab\tand newline\n",
            "\u{1}\u{1f}\u{7f} control and DEL",
            "é ü 日本語 🎉 non-ASCII",
            "ends with a quote\"",
            "\"",
            "{\"level\":\"info\",\"msg\":\"a \\\"quoted\\\" word\"}\r\n",
            "\u{0}\u{8}\u{c}\u{1b}[0m",
        ]
        .map(String::from)
        .to_vec();
        // Every byte value below 0x80 at every position of a 17-byte string.
        for b in 0u8..0x80 {
            for at in 0..17 {
                let mut s = vec![b'a'; 17];
                s[at] = b;
                cases.push(String::from_utf8(s).unwrap());
            }
        }
        // Two bytes to escape in one string, at every pair of positions (within a word and across words).
        for (x, y) in [(b'"', b'\\'), (0x01, b'"'), (b'\n', 0x1f), (b'\\', b'\\')] {
            for i in 0..17 {
                for j in 0..17 {
                    let mut s = vec![b'x'; 17];
                    s[i] = x;
                    s[j] = y;
                    cases.push(String::from_utf8(s).unwrap());
                }
            }
        }
        for s in &cases {
            let mut ours = Vec::new();
            push_str(&mut ours, s);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
