//! Turns the bytes of one file into records: physical lines (bounded), the
//! container runtime's format (CRI, docker json-file, plain), partial lines
//! joined, and optionally multiline events.

pub mod cri;
pub mod docker;
pub mod kubernetes;
pub(crate) mod lines;
pub mod multiline;
pub(crate) mod timestamp;

pub use multiline::{MultilineConfig, MultilineMatch};

use crate::config::ByteSize;
use crate::record::Stream;
use lines::{Cut, LineSplitter, PhysicalLine};
use multiline::{CompiledMultiline, Event};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramingConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// The longest record: a physical line, a joined CRI/docker message. Longer ones are split or truncated.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,
    #[serde(default)]
    pub long_lines: LongLineMode,
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
}

impl Default for FramingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            max_line_bytes: default_max_line_bytes(),
            long_lines: LongLineMode::default(),
            multiline: None,
        }
    }
}

fn default_max_line_bytes() -> ByteSize {
    ByteSize(256 * 1024)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Kubernetes container logs (`/var/log/pods`).
    Cri,
    /// Docker's json-file driver (`/var/lib/docker/containers/*/*-json.log`).
    Docker,
    #[default]
    Plain,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongLineMode {
    /// Several records of at most `max_line_bytes`; nothing is lost.
    #[default]
    Split,
    /// One record with the first `max_line_bytes`; the rest is skipped.
    Truncate,
}

impl FramingConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.max_line_bytes.0 < 64 {
            v.push("max_line_bytes must be at least 64".into());
        }
        if let Some(m) = &self.multiline
            && let Err(e) = m.compile()
        {
            v.push(e);
        }
        v
    }

    pub(crate) fn compile(&self) -> Result<Arc<CompiledFraming>, String> {
        if let Some(e) = self.validate().into_iter().next() {
            return Err(e);
        }
        Ok(Arc::new(CompiledFraming {
            format: self.format,
            max: self.max_line_bytes.0,
            mode: self.long_lines,
            multiline: self.multiline.as_ref().map(|m| m.compile()).transpose()?,
        }))
    }
}

#[derive(Debug)]
pub(crate) struct CompiledFraming {
    format: LogFormat,
    max: usize,
    mode: LongLineMode,
    multiline: Option<CompiledMultiline>,
}

/// Why lines were changed or not parsed; added to the tailer's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FramingCounts {
    pub lines: u64,
    pub records: u64,
    pub invalid_utf8: u64,
    /// Lines that did not follow the source's format; sent as they are.
    pub malformed: u64,
    pub long_lines_split: u64,
    pub long_lines_truncated: u64,
    pub partial_lines_joined: u64,
    /// Multiline events cut at `max_lines` / `max_bytes`.
    pub multiline_limited: u64,
}

/// One framed record.
#[derive(Debug, PartialEq)]
pub struct Framed {
    pub timestamp_ns: i64,
    pub body: String,
    pub stream: Stream,
    /// Once this record is delivered, reading may resume here without losing or
    /// repeating anything: never past a byte that is still buffered in a joiner.
    pub commit: u64,
}

/// Per-stream partial message (CRI `P` lines, docker pieces without `\n`).
struct Partial {
    bytes: Vec<u8>,
    start: u64,
    timestamp_ns: i64,
    truncated: bool,
}

/// A logical line before multiline joining.
struct Logical {
    body: String,
    stream: Stream,
    start: u64,
    end: u64,
    timestamp_ns: i64,
}

/// The framing state of one file.
pub struct Framer {
    splitter: LineSplitter,
    stages: Stages,
}

struct Stages {
    cfg: Arc<CompiledFraming>,
    partial: [Option<Partial>; 3],
    events: [Option<Event>; 3],
    counts: FramingCounts,
    /// The first format error of the file, for the operator's log.
    first_malformed: Option<(u64, String)>,
}

impl Framer {
    pub(crate) fn new(cfg: Arc<CompiledFraming>) -> Self {
        Self {
            splitter: LineSplitter::new(cfg.max, cfg.mode),
            stages: Stages {
                cfg,
                partial: Default::default(),
                events: Default::default(),
                counts: FramingCounts::default(),
                first_malformed: None,
            },
        }
    }

    /// Feeds bytes read at file offset `offset`; `now_ns` stamps plain lines.
    pub fn push(&mut self, chunk: &[u8], offset: u64, now_ns: i64, now: Instant, out: &mut Vec<Framed>) {
        let stages = &mut self.stages;
        self.splitter.push(chunk, offset, &mut |line| stages.on_line(line, now_ns, now, out));
    }

    /// Sends multiline events whose flush timeout passed.
    pub fn flush_expired(&mut self, now: Instant, out: &mut Vec<Framed>) {
        for k in 0..3 {
            if self.stages.events[k].as_ref().is_some_and(|e| e.deadline <= now) {
                self.stages.emit_event(k, out);
            }
        }
    }

    /// The file ends for good (deleted, rotated away, truncated): send everything held.
    pub fn flush_all(&mut self, now_ns: i64, now: Instant, out: &mut Vec<Framed>) {
        let stages = &mut self.stages;
        self.splitter.flush(&mut |line| stages.on_line(line, now_ns, now, out));
        for k in 0..3 {
            if let Some(p) = stages.partial[k].take() {
                let end = p.start + p.bytes.len() as u64;
                let logical = stages.logical(&p.bytes, Stream::from_index(k), p.start, end, p.timestamp_ns);
                stages.on_logical(logical, now, out);
            }
        }
        for k in 0..3 {
            if stages.events[k].is_some() {
                stages.emit_event(k, out);
            }
        }
    }

    /// The earliest moment `flush_expired` has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.stages.events.iter().flatten().map(|e| e.deadline).min()
    }

    /// Bytes held in joiners (for the memory bound and tests).
    pub fn buffered(&self) -> usize {
        self.splitter.buffered()
            + self.stages.partial.iter().flatten().map(|p| p.bytes.len()).sum::<usize>()
            + self.stages.events.iter().flatten().map(|e| e.body.len()).sum::<usize>()
    }

    pub fn take_counts(&mut self) -> FramingCounts {
        std::mem::take(&mut self.stages.counts)
    }

    /// The first line of this file that did not follow its format, once.
    pub fn take_first_malformed(&mut self) -> Option<(u64, String)> {
        self.stages.first_malformed.take()
    }
}

impl Stream {
    fn from_index(k: usize) -> Self {
        match k {
            0 => Stream::Stdout,
            1 => Stream::Stderr,
            _ => Stream::Unknown,
        }
    }
}

impl Stages {
    fn on_line(&mut self, line: PhysicalLine<'_>, now_ns: i64, now: Instant, out: &mut Vec<Framed>) {
        self.counts.lines += 1;
        match line.cut {
            Cut::None => {}
            Cut::Split => self.counts.long_lines_split += 1,
            Cut::Truncated => self.counts.long_lines_truncated += 1,
        }
        match self.cfg.format {
            LogFormat::Plain => self.plain(&line, now_ns, now, out),
            LogFormat::Cri => match cri::parse(line.bytes) {
                Ok(c) => self.piece(c.content, c.stream, c.partial, c.timestamp_ns, &line, now, out),
                Err(why) => self.malformed(&line, why, now_ns, now, out),
            },
            LogFormat::Docker => match docker::parse(line.bytes) {
                Ok(d) => {
                    let ts = d.timestamp_ns.unwrap_or(now_ns);
                    self.piece(d.content.as_bytes(), d.stream, d.partial, ts, &line, now, out)
                }
                Err(why) => self.malformed(&line, &why, now_ns, now, out),
            },
        }
    }

    fn plain(&mut self, line: &PhysicalLine<'_>, now_ns: i64, now: Instant, out: &mut Vec<Framed>) {
        let bytes = line.bytes.strip_suffix(b"\r").unwrap_or(line.bytes);
        let logical = self.logical(bytes, Stream::Unknown, line.start, line.end, now_ns);
        self.on_logical(logical, now, out);
    }

    /// Never dropped: the raw line is sent, and the first one per file is logged with its offset.
    fn malformed(&mut self, line: &PhysicalLine<'_>, why: &str, now_ns: i64, now: Instant, out: &mut Vec<Framed>) {
        self.counts.malformed += 1;
        if self.first_malformed.is_none() {
            self.first_malformed = Some((line.start, why.to_string()));
        }
        self.plain(line, now_ns, now, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn piece(
        &mut self,
        content: &[u8],
        stream: Stream,
        partial: bool,
        timestamp_ns: i64,
        line: &PhysicalLine<'_>,
        now: Instant,
        out: &mut Vec<Framed>,
    ) {
        let k = stream.index();
        let max = self.cfg.max;
        if self.partial[k].is_none() {
            if !partial {
                let logical = self.logical(content, stream, line.start, line.end, timestamp_ns);
                self.on_logical(logical, now, out);
                return;
            }
            self.partial[k] = Some(Partial { bytes: Vec::new(), start: line.start, timestamp_ns, truncated: false });
        }
        self.counts.partial_lines_joined += 1;
        let mut content = content;
        loop {
            let Some(p) = self.partial[k].as_mut() else { return };
            let room = max.saturating_sub(p.bytes.len());
            if content.len() <= room || p.truncated {
                if !p.truncated {
                    p.bytes.extend_from_slice(content);
                }
                if !partial {
                    let p = self.partial[k].take().expect("checked above");
                    let logical = self.logical(&p.bytes, stream, p.start, line.end, p.timestamp_ns);
                    self.on_logical(logical, now, out);
                }
                return;
            }
            let take = lines::utf8_floor(content, room).max(usize::from(p.bytes.is_empty()) * room);
            p.bytes.extend_from_slice(&content[..take]);
            content = &content[take..];
            match self.cfg.mode {
                LongLineMode::Truncate => {
                    self.counts.long_lines_truncated += 1;
                    p.truncated = true;
                }
                LongLineMode::Split => {
                    self.counts.long_lines_split += 1;
                    // The rest of this physical line stays buffered, so a
                    // restart resumes at its start (repeating at most one piece).
                    let p = self.partial[k].take().expect("checked above");
                    let logical = self.logical(&p.bytes, stream, p.start, line.start, p.timestamp_ns);
                    self.on_logical(logical, now, out);
                    self.partial[k] =
                        Some(Partial { bytes: Vec::new(), start: line.start, timestamp_ns, truncated: false });
                }
            }
        }
    }

    fn logical(&mut self, bytes: &[u8], stream: Stream, start: u64, end: u64, timestamp_ns: i64) -> Logical {
        let body = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                self.counts.invalid_utf8 += 1;
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        Logical { body, stream, start, end, timestamp_ns }
    }

    fn on_logical(&mut self, l: Logical, now: Instant, out: &mut Vec<Framed>) {
        let Some(ml) = &self.cfg.multiline else {
            let commit = self.watermark(l.end);
            self.counts.records += 1;
            out.push(Framed { timestamp_ns: l.timestamp_ns, body: l.body, stream: l.stream, commit });
            return;
        };
        let k = l.stream.index();
        let continues = ml.continues(&l.body);
        let deadline = now + ml.flush_timeout;
        let fits = self.events[k].as_ref().is_some_and(|e| ml.fits(e, &l.body));
        let after = ml.match_ == MultilineMatch::After;
        if self.events[k].is_some() && (!fits || (after && !continues)) {
            // Limited only if the line would have joined the event: with
            // `after`, a line that does not continue ends it anyway.
            if !fits && (continues || !after) {
                self.counts.multiline_limited += 1;
            }
            self.emit_event(k, out);
        }
        match &mut self.events[k] {
            Some(e) => {
                e.body.push('\n');
                e.body.push_str(&l.body);
                e.lines += 1;
                e.end = l.end;
                e.deadline = deadline;
            }
            None => {
                self.events[k] = Some(Event {
                    body: l.body,
                    lines: 1,
                    start: l.start,
                    end: l.end,
                    timestamp_ns: l.timestamp_ns,
                    deadline,
                })
            }
        }
        if !after && !continues {
            self.emit_event(k, out);
        }
    }

    fn emit_event(&mut self, k: usize, out: &mut Vec<Framed>) {
        if let Some(e) = self.events[k].take() {
            let commit = self.watermark(e.end);
            self.counts.records += 1;
            out.push(Framed { timestamp_ns: e.timestamp_ns, body: e.body, stream: Stream::from_index(k), commit });
        }
    }

    /// `end`, held back to the start of anything another stream still buffers.
    fn watermark(&self, end: u64) -> u64 {
        let partial = self.partial.iter().flatten().map(|p| p.start);
        let events = self.events.iter().flatten().map(|e| e.start);
        partial.chain(events).fold(end, u64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn framer(yaml: &str) -> Framer {
        let cfg: FramingConfig = serde_yaml_ng::from_str(yaml).unwrap();
        Framer::new(cfg.compile().unwrap())
    }

    fn feed(f: &mut Framer, text: &[u8]) -> Vec<Framed> {
        let mut out = Vec::new();
        f.push(text, 0, 7, Instant::now(), &mut out);
        out
    }

    #[test]
    fn cri_partials_join_per_stream() {
        let mut f = framer("format: cri");
        let out = feed(
            &mut f,
            b"2024-01-01T00:00:00Z stdout P hel\n\
              2024-01-01T00:00:01Z stderr F err\n\
              2024-01-01T00:00:02Z stdout F lo\n",
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].body, "err");
        assert_eq!(out[0].stream, Stream::Stderr);
        // The stdout message is still open, so the stderr line cannot be committed past its start.
        assert_eq!(out[0].commit, 0);
        assert_eq!(out[1].body, "hello");
        assert_eq!(out[1].timestamp_ns, 1_704_067_200_000_000_000);
        assert_eq!(out[1].commit, 101);
        assert_eq!(f.take_counts().partial_lines_joined, 2);
    }

    #[test]
    fn malformed_lines_are_kept_and_counted() {
        let mut f = framer("format: cri");
        let out = feed(&mut f, b"not cri at all\n");
        assert_eq!(out[0].body, "not cri at all");
        assert_eq!(out[0].timestamp_ns, 7);
        assert_eq!(f.take_counts().malformed, 1);
        assert_eq!(f.take_first_malformed().unwrap().0, 0);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted() {
        let mut f = framer("{}");
        let out = feed(&mut f, b"ok \xff\xfe bad\r\n");
        assert_eq!(out[0].body, "ok \u{fffd}\u{fffd} bad");
        assert_eq!(f.take_counts().invalid_utf8, 1);
    }

    #[test]
    fn multiline_after_and_before() {
        let mut f = framer("multiline: { pattern: '^\\s', match: after }");
        let out = feed(&mut f, b"a\n  b\n  c\nd\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, "a\n  b\n  c");
        assert_eq!(out[0].commit, 10);
        let mut pending = Vec::new();
        f.flush_expired(Instant::now() + Duration::from_secs(6), &mut pending);
        assert_eq!(pending[0].body, "d");

        let mut f = framer("multiline: { pattern: '\\\\$', match: before }");
        let out = feed(&mut f, b"a \\\nb \\\nc\nd\n");
        assert_eq!(out.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), vec!["a \\\nb \\\nc", "d"]);

        let mut f = framer("multiline: { pattern: '^\\d{4}-', negate: true, match: after, max_lines: 2 }");
        let out = feed(&mut f, b"2024-01 x\n y\n z\n2024-02 w\n");
        assert_eq!(out.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), vec!["2024-01 x\n y", " z"]);
        assert_eq!(f.take_counts().multiline_limited, 1);

        // max_bytes: an event is cut before the line that would take it past the limit.
        let mut f = framer("multiline: { pattern: '^\\s', match: after, max_bytes: 12 }");
        let out = feed(&mut f, b"head\n  aaa\n  bbb\n  ccc\nnext\n");
        assert_eq!(out.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), vec!["head\n  aaa", "  bbb\n  ccc"]);
        assert!(out.iter().all(|r| r.body.len() <= 12));
        assert_eq!(f.take_counts().multiline_limited, 1);
    }

    #[test]
    fn joined_messages_are_bounded() {
        let mut f = framer("{format: cri, max_line_bytes: 64, long_lines: truncate}");
        let piece = "x".repeat(30);
        let p = format!("2024-01-01T00:00:00Z stdout P {piece}\n");
        let text = format!("{p}{p}{p}2024-01-01T00:00:00Z stdout F end\n");
        let out = feed(&mut f, text.as_bytes());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body.len(), 64);
        assert_eq!(f.take_counts().long_lines_truncated, 1);
    }
}
