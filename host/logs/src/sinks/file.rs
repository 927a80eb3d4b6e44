//! JSON lines to a file or stdout: for debugging, for handing logs to another
//! local shipper, and as the benchmark's sink.

use super::{RetryConfig, Verdict};
use crate::record::LogRecord;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub name: String,
    /// Appended to; unset means stdout.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// fsync after every batch before acknowledging it (survives a power cut, costs throughput).
    #[serde(default)]
    pub fsync: bool,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// The JSON shape of one line, the same fields as a WIT log record.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct JsonLine<'a> {
    pub timestamp_ns: i64,
    #[serde(borrow)]
    pub body: std::borrow::Cow<'a, str>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub source: JsonSource<'a>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct JsonSource<'a> {
    #[serde(borrow)]
    pub path: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub stream: std::borrow::Cow<'a, str>,
}

/// One record as a JSON line: the fields of [`JsonLine`], in its order, with
/// the record's and its file's attributes as one object. Written by hand
/// rather than through `serde`: this is the sink's whole cost per record.
fn push_line(out: &mut Vec<u8>, r: &LogRecord) {
    out.extend_from_slice(b"{\"timestamp_ns\":");
    out.extend_from_slice(itoa::Buffer::new().format(r.timestamp_ns).as_bytes());
    out.extend_from_slice(b",\"body\":");
    super::json::push_str(out, &r.body);
    out.extend_from_slice(b",\"attributes\":{");
    for (i, (k, v)) in r.all_attributes().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        super::json::push_str(out, k);
        out.push(b':');
        super::json::push_str(out, v);
    }
    out.extend_from_slice(b"},\"source\":{\"path\":");
    super::json::push_str(out, &r.source.path);
    out.extend_from_slice(b",\"stream\":");
    super::json::push_str(out, r.source.stream.as_str());
    out.extend_from_slice(b"}}\n");
}

impl FileSinkConfig {
    pub(crate) fn build(&self) -> Result<FileWriter, String> {
        let mut w = FileWriter { path: self.path.clone(), fsync: self.fsync, file: None, buf: Vec::new() };
        if self.path.is_some() {
            w.open()?;
        }
        Ok(w)
    }
}

pub(crate) struct FileWriter {
    path: Option<PathBuf>,
    fsync: bool,
    file: Option<File>,
    buf: Vec<u8>,
}

impl FileWriter {
    fn open(&mut self) -> Result<(), String> {
        if let Some(p) = &self.path {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            self.file = Some(f);
        }
        Ok(())
    }

    /// Runs on the sink's task: a local append is quick, and blocking here is
    /// exactly the back-pressure a full disk should cause.
    pub(crate) fn write(&mut self, records: &[&LogRecord]) -> Verdict {
        self.buf.clear();
        for r in records {
            push_line(&mut self.buf, r);
        }
        let bytes = self.buf.len() as u64;
        let result = match (&self.path, &mut self.file) {
            (None, _) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&self.buf).and_then(|()| out.flush())
            }
            (Some(_), Some(f)) => f.write_all(&self.buf).and_then(|()| if self.fsync { f.sync_data() } else { Ok(()) }),
            (Some(_), None) => Err(std::io::Error::other("file not open")),
        };
        match result {
            Ok(()) => Verdict::Sent { bytes },
            Err(e) => {
                // Reopen next time: the file may have been rotated or the disk freed.
                self.file = None;
                let reopen = self.open().err().map(|e| format!("; {e}")).unwrap_or_default();
                Verdict::Retry { reason: format!("write failed: {e}{reopen}"), retry_after: None }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attributes, LogSource, Stream};
    use std::sync::Arc;

    #[test]
    fn a_line_reads_back_as_the_record_it_was() {
        let file = Attributes::from([("k8s.pod.name", "web"), ("shadowed", "file")]);
        let r = LogRecord {
            timestamp_ns: -1_700_000_000_123_456_789,
            body: "say \"hi\"\\\t\u{1}é".into(),
            attributes: Attributes::from([("shadowed", "own"), ("quote\"key", "line\nbreak")]),
            source: LogSource {
                path: "/var/log/x \"y\".log".into(),
                stream: Stream::Stderr,
                attributes: Arc::new(file),
            },
        };
        let mut out = Vec::new();
        push_line(&mut out, &r);
        assert_eq!(out.last(), Some(&b'\n'));
        let line: JsonLine<'_> = serde_json::from_slice(&out).unwrap();
        let want = JsonLine {
            timestamp_ns: r.timestamp_ns,
            body: r.body.as_str().into(),
            attributes: r.all_attributes().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            source: JsonSource { path: "/var/log/x \"y\".log".into(), stream: "stderr".into() },
        };
        assert_eq!(line, want);
        assert_eq!(line.attributes["shadowed"], "own");
        // The same text serde writes for the same fields, in the same order.
        let reference = serde_json::json!({
            "timestamp_ns": r.timestamp_ns,
            "body": r.body,
            "attributes": want.attributes,
            "source": {"path": &*r.source.path, "stream": "stderr"},
        });
        let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(ours, reference);
        assert!(
            out.starts_with(br#"{"timestamp_ns":-1700000000123456789,"body":"say \"hi\"\\\t\u0001"#),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}
