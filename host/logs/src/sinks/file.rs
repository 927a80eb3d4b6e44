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

/// The JSON shape of one line, the same fields as the WIT `log-record`.
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

#[derive(Serialize)]
struct Line<'a> {
    timestamp_ns: i64,
    body: &'a str,
    attributes: Merged<'a>,
    source: Source<'a>,
}

/// The record's and its file's attributes as one JSON object.
struct Merged<'a>(&'a LogRecord);

impl Serialize for Merged<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.all_attributes())
    }
}

#[derive(Serialize)]
struct Source<'a> {
    path: &'a str,
    stream: &'a str,
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
            let line = Line {
                timestamp_ns: r.timestamp_ns,
                body: &r.body,
                attributes: Merged(r),
                source: Source { path: &r.source.path, stream: r.source.stream.as_str() },
            };
            if let Err(e) = serde_json::to_writer(&mut self.buf, &line) {
                return Verdict::Drop { reason: format!("cannot encode: {e}") };
            }
            self.buf.push(b'\n');
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
