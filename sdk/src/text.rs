//! Read and write the Prometheus text exposition format (0.0.4) and OpenMetrics 1.0 text.
//!
//! [`parse`] turns a `/metrics` body into the same [`MetricFamily`] values a plugin returns
//! from `collect`, so a plugin that scrapes an existing exporter can filter, relabel and pass
//! its families on. [`encode`] writes families back out. The host has its own, faster
//! encoder; this one exists for tests, round trips and plugins that need text.
//!
//! ```
//! use wasmon_sdk::text::{self, Format};
//! use wasmon_sdk::{MetricKind, MetricValue};
//!
//! let body = concat!(
//!     "# HELP http_requests_total Requests served.\n",
//!     "# TYPE http_requests_total counter\n",
//!     "http_requests_total{code=\"200\"} 1027\n",
//!     "http_requests_total{code=\"500\"} 3\n",
//!     "# TYPE rpc_seconds histogram\n",
//!     "rpc_seconds_bucket{le=\"0.1\"} 8\n",
//!     "rpc_seconds_bucket{le=\"+Inf\"} 10\n",
//!     "rpc_seconds_sum 1.5\n",
//!     "rpc_seconds_count 10\n",
//! );
//! let families = text::parse(body)?;
//! assert_eq!(families[0].name, "http_requests_total");
//! assert_eq!(families[0].kind, MetricKind::Counter);
//! assert_eq!(families[0].metrics[1].value, MetricValue::Counter(3.0));
//!
//! let MetricValue::Histogram(rpc) = &families[1].metrics[0].value else { panic!() };
//! assert_eq!((rpc.buckets.len(), rpc.count, rpc.sum), (2, 10, 1.5));
//! assert_eq!(rpc.buckets[1].upper_bound, f64::INFINITY);
//!
//! // The same families as OpenMetrics, and back again.
//! let openmetrics = text::encode(&families, Format::OpenMetrics);
//! assert!(openmetrics.contains("# TYPE http_requests counter\n"));
//! assert!(openmetrics.ends_with("# EOF\n"));
//! assert_eq!(text::parse(&openmetrics)?, families);
//!
//! // Errors say where and what was expected.
//! let err = text::parse("up{job=\"a\" 1\n").unwrap_err();
//! assert_eq!(err.to_string(), "line 1, column 12: expected `,` or `}` after a label value, found `1`");
//! # Ok::<(), text::ParseError>(())
//! ```
//!
//! # How text maps onto families
//!
//! | `# TYPE`                      | [`MetricKind`] | sample values                                |
//! |-------------------------------|----------------|----------------------------------------------|
//! | `counter`                     | `Counter`      | [`MetricValue::Counter`]                     |
//! | `gauge`                       | `Gauge`        | [`MetricValue::Gauge`]                       |
//! | `untyped`, `unknown`, none    | `Unknown`      | [`MetricValue::Gauge`]                       |
//! | `info`, `stateset` (OM only)  | `Info`, `Stateset` | [`MetricValue::Gauge`]                   |
//! | `histogram`, `gaugehistogram` | `Histogram`    | one [`MetricValue::Histogram`] per label set |
//! | `summary`                     | `Summary`      | one [`MetricValue::Summary`] per label set   |
//!
//! * **Histograms and summaries.** The `x_bucket{le=..}`, `x_sum` and `x_count` lines (for a
//!   summary `x{quantile=..}`, `x_sum`, `x_count`; for a gauge histogram `x_gsum`, `x_gcount`)
//!   that share their other labels become one [`Metric`], without the `le`/`quantile` label.
//!   Buckets are sorted by bound and the `+Inf` bucket is kept, as bound `f64::INFINITY`.
//!   Quantiles keep the written order. A missing `_sum` reads as 0 and a missing `_count` as
//!   the count of the highest bucket (0 for summaries). Counts must be non-negative integers.
//! * **Family names.** A family is named as its sample lines are, so both formats give the
//!   same name: in Prometheus text a counter's TYPE line already says `x_total`, while an
//!   OpenMetrics counter `x` has samples `x_total` and becomes family **`x_total`**. Likewise an
//!   OpenMetrics info family `x` (samples `x_info`) becomes `x_info`. OpenMetrics `_created`
//!   samples are checked for syntax and then dropped.
//! * **Samples without metadata** form their own `Unknown` family named after the sample.
//! * **Labels** keep their written order. The same label set in another order is the same series.
//! * **Timestamps** are milliseconds: integers in Prometheus text, float seconds in
//!   OpenMetrics (sub-millisecond digits are dropped). OpenMetrics exemplars are checked for
//!   syntax and dropped. `# UNIT` sets [`MetricFamily::unit`] in both formats.
//! * A family whose metadata has no samples is kept, with no metrics (Go's `expfmt` drops it).
//!
//! # What is rejected
//!
//! Invalid metric or label names, duplicate label names in one sample, unterminated label
//! values, escapes other than `\\`, `\"` and `\n`, values and timestamps that are not numbers,
//! a second HELP/TYPE/UNIT line for a family or one after its samples, a family whose lines are
//! interrupted by another family, a series given twice, buckets without a numeric `le` and
//! summary lines without a numeric `quantile`. OpenMetrics input must end with `# EOF` and
//! may not contain blank lines or other comments; in Prometheus text those are ignored.
//! Lines may end in `\r\n`. Nothing panics, whatever the input.
//!
//! Some leniency, as in Prometheus' own parser: spaces or tabs may surround every token, and
//! a label set may end with a comma. Metric names with dots or other UTF-8 (quoted names of
//! Prometheus 3) are not supported.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::BuildHasherDefault;

use crate::{Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, Quantile, SummaryValue};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), what most exporters serve.
    Prometheus,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`), ends with `# EOF`.
    OpenMetrics,
}

/// Why a text could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes).
    pub column: usize,
    /// What was found and what was expected instead.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse Prometheus text format 0.0.4 or OpenMetrics 1.0 text into families.
///
/// The format is guessed from the text: a line reading exactly `# EOF` means OpenMetrics.
/// Use [`parse_with`] when the `Content-Type` says which one it is.
pub fn parse(text: &str) -> Result<Vec<MetricFamily>, ParseError> {
    let lines: Vec<&str> = text.lines().map(trim_cr).collect();
    let format = if lines.contains(&"# EOF") { Format::OpenMetrics } else { Format::Prometheus };
    parse_lines(text, &lines, format)
}

/// Same as [`parse`], with an explicit format (OpenMetrics requires `# EOF`).
pub fn parse_with(text: &str, format: Format) -> Result<Vec<MetricFamily>, ParseError> {
    let lines: Vec<&str> = text.lines().map(trim_cr).collect();
    parse_lines(text, &lines, format)
}

/// The `# TYPE` word of `kind` in `format`.
fn type_word(kind: MetricKind, format: Format) -> &'static str {
    match (kind, format) {
        (MetricKind::Counter, _) => "counter",
        (MetricKind::Gauge, _) => "gauge",
        (MetricKind::Histogram, _) => "histogram",
        (MetricKind::Summary, _) => "summary",
        (MetricKind::Info, Format::OpenMetrics) => "info",
        (MetricKind::Stateset, Format::OpenMetrics) => "stateset",
        (MetricKind::Info | MetricKind::Stateset, Format::Prometheus) => "gauge",
        (MetricKind::Unknown, Format::OpenMetrics) => "unknown",
        (MetricKind::Unknown, Format::Prometheus) => "untyped",
    }
}

/// Why fragmented text (see [`parse_fragments`]) could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentError {
    /// Index of the fragment, from 0.
    pub fragment: usize,
    /// What is wrong, with the line and column inside the fragment where it has them.
    pub message: String,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fragment {}: {}", self.fragment + 1, self.message)
    }
}

impl std::error::Error for FragmentError {}

/// Parse Prometheus text (0.0.4) written in fragments, each complete text on its
/// own, where one family may continue in a later fragment: what a kube-state
/// plugin's `collect` writes (`wit/kube.wit`, `exposition`). Families are merged
/// by name in order of first appearance; a family that changes its type between
/// fragments is an error. The first non-empty HELP wins.
pub fn parse_fragments<S: AsRef<str>>(fragments: &[S]) -> Result<Vec<MetricFamily>, FragmentError> {
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (fragment, text) in fragments.iter().enumerate() {
        let parsed = parse_with(text.as_ref(), Format::Prometheus)
            .map_err(|e| FragmentError { fragment, message: e.to_string() })?;
        for family in parsed {
            match index.get(&family.name) {
                None => {
                    index.insert(family.name.clone(), families.len());
                    families.push(family);
                }
                Some(&at) => {
                    let merged = &mut families[at];
                    if merged.kind != family.kind {
                        return Err(FragmentError {
                            fragment,
                            message: format!(
                                "family `{}` is a {} here but was a {} in an earlier fragment",
                                family.name,
                                type_word(family.kind, Format::Prometheus),
                                type_word(merged.kind, Format::Prometheus)
                            ),
                        });
                    }
                    if merged.help.is_empty() {
                        merged.help = family.help;
                    }
                    merged.metrics.extend(family.metrics);
                }
            }
        }
    }
    Ok(families)
}

/// Parse `text`, already split into `lines` (without line endings).
fn parse_lines(text: &str, lines: &[&str], format: Format) -> Result<Vec<MetricFamily>, ParseError> {
    let mut parser = Parser { format, families: Vec::new(), seen: HashMap::new() };
    let mut eof_line = None;
    for (index, &text) in lines.iter().enumerate() {
        let line = Line { number: index + 1, text };
        if eof_line.is_some() {
            return Err(line.error(0, "unexpected content after `# EOF`: it must be the last line"));
        }
        if format == Format::OpenMetrics && line.text == "# EOF" {
            eof_line = Some(line.number);
            continue;
        }
        parser.line(&line, lines.get(index..).unwrap_or_default())?;
    }
    if format == Format::OpenMetrics && eof_line.is_none() {
        let (line, column) = end_position(text);
        return Err(ParseError { line, column, message: "expected `# EOF` at the end of OpenMetrics text".into() });
    }
    Ok(parser.families.into_iter().map(|family| family.finish(format)).collect())
}

/// Write families as Prometheus text or OpenMetrics.
///
/// Floats are written as Go's Prometheus client writes them (`1e+06`, `+Inf`, `NaN`), counts
/// and timestamps exactly, so `parse(&encode(f, format))` gives `f` back, with these
/// exceptions, all forced by the formats:
/// * A histogram without a `+Inf` bucket gets one, with the histogram's `count`.
/// * In Prometheus text, `info` and `stateset` families are written as `gauge`. `# UNIT` is
///   written as a comment line there too (Prometheus parsers skip it), so units survive.
/// * In OpenMetrics a counter family's samples must end in `_total` (an info family's in
///   `_info`). A family named `x_total` is written as counter `x` with samples `x_total`; a
///   counter named without the suffix gets it added, and reads back with the new name.
/// * HELP text loses leading blanks and a trailing `\r`, which the formats cannot express.
///
/// Names and units are written as given, so they should be valid (see `wit/types.wit`).
/// Values should agree with the family's kind; a value that does not is written by its own
/// variant (a histogram value as `_bucket`/`_sum`/`_count` lines), which will not read back.
pub fn encode(families: &[MetricFamily], format: Format) -> String {
    let mut out = String::new();
    for family in families {
        encode_family(&mut out, family, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

// ---------------------------------------------------------------------------------------
// Families and their sample names
// ---------------------------------------------------------------------------------------

/// The family types the text formats know. Finer than [`MetricKind`] because a gauge
/// histogram names its samples differently from a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    Stateset,
    Unknown,
}

/// What a sample line contributes to its family, decided by the suffix of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The whole value of a counter, gauge, info, stateset or unknown series.
    Value,
    /// `x_bucket{le=..}` of a histogram.
    Bucket,
    /// `x{quantile=..}` of a summary.
    Quantile,
    /// `x_sum` (or `x_gsum`).
    Sum,
    /// `x_count` (or `x_gcount`).
    Count,
    /// OpenMetrics `x_created`: checked, then ignored.
    Created,
}

impl Kind {
    /// The kind a `# TYPE` line names, if the format knows it.
    fn from_type(word: &str, format: Format) -> Option<Kind> {
        let open_metrics = format == Format::OpenMetrics;
        Some(match word {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" | "unknown" => Kind::Unknown,
            "gaugehistogram" if open_metrics => Kind::GaugeHistogram,
            "info" if open_metrics => Kind::Info,
            "stateset" if open_metrics => Kind::Stateset,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::GaugeHistogram => "gaugehistogram",
            Kind::Summary => "summary",
            Kind::Info => "info",
            Kind::Stateset => "stateset",
            Kind::Unknown => "unknown",
        }
    }

    fn metric_kind(self) -> MetricKind {
        match self {
            Kind::Counter => MetricKind::Counter,
            Kind::Gauge => MetricKind::Gauge,
            Kind::Histogram | Kind::GaugeHistogram => MetricKind::Histogram,
            Kind::Summary => MetricKind::Summary,
            Kind::Info => MetricKind::Info,
            Kind::Stateset => MetricKind::Stateset,
            Kind::Unknown => MetricKind::Unknown,
        }
    }

    /// The suffixes that, appended to the family name of a TYPE line, name its samples.
    fn sample_suffixes(self, format: Format) -> &'static [(&'static str, Role)] {
        use Role::*;
        let open_metrics = format == Format::OpenMetrics;
        match self {
            Kind::Counter if open_metrics => &[("_total", Value), ("_created", Created)],
            Kind::Info if open_metrics => &[("_info", Value)],
            Kind::Counter | Kind::Gauge | Kind::Info | Kind::Stateset | Kind::Unknown => &[("", Value)],
            Kind::Histogram if open_metrics => {
                &[("_bucket", Bucket), ("_sum", Sum), ("_count", Count), ("_created", Created)]
            }
            Kind::Histogram => &[("_bucket", Bucket), ("_sum", Sum), ("_count", Count)],
            Kind::GaugeHistogram => &[("_bucket", Bucket), ("_gsum", Sum), ("_gcount", Count)],
            Kind::Summary if open_metrics => &[("", Quantile), ("_sum", Sum), ("_count", Count), ("_created", Created)],
            Kind::Summary => &[("", Quantile), ("_sum", Sum), ("_count", Count)],
        }
    }

    /// The family name given to the parsed family (see the module docs on family names).
    fn family_name(self, key: &str, format: Format) -> String {
        match (self, format) {
            (Kind::Counter, Format::OpenMetrics) => format!("{key}_total"),
            (Kind::Info, Format::OpenMetrics) => format!("{key}_info"),
            _ => key.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The line-level lexer
// ---------------------------------------------------------------------------------------

/// One input line, without its line ending, for error positions.
struct Line<'a> {
    number: usize,
    text: &'a str,
}

impl Line<'_> {
    /// The 1-based character column of byte offset `pos`.
    fn column(&self, pos: usize) -> usize {
        self.text.get(..pos).map_or(pos, |before| before.chars().count()) + 1
    }

    /// An error at byte offset `pos` of this line.
    fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError { line: self.number, column: self.column(pos), message: message.into() }
    }
}

/// A position in one line. It only ever moves by whole characters, so every slice it takes
/// falls on a UTF-8 boundary; `get` guards the slicing anyway so that no input can panic.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        match self.text.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii() => Some(char::from(b)),
            Some(_) => self.rest().chars().next(),
            None => None,
        }
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, wanted: char) -> bool {
        let found = self.peek() == Some(wanted);
        if found {
            self.pos += wanted.len_utf8();
        }
        found
    }

    /// Skip spaces and tabs; true if there were any.
    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// The characters from here that `keep` accepts, for a test that only ever keeps ASCII
    /// characters: a byte at a time.
    fn take_ascii_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos)
            && b.is_ascii()
            && keep(b)
        {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// The next run of non-blank characters. (Blanks are ASCII, so no byte of a multi-byte
    /// character is one, and scanning bytes stops where scanning characters would.)
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        if !self.text.is_char_boundary(start) {
            return "";
        }
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos)
            && b != b' '
            && b != b'\t'
        {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or("")
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn trim_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// Line and column just past the last character of `text`.
fn end_position(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    (line, trim_cr(last).chars().count() + 1)
}

/// Shows a character in an error message: printable ones as they are, others escaped.
fn show(c: char) -> String {
    if c.is_control() { c.escape_default().collect() } else { c.to_string() }
}

fn found(cursor: &Cursor<'_>) -> String {
    match cursor.peek() {
        Some(c) => format!("`{}`", show(c)),
        None => "end of line".into(),
    }
}

fn is_metric_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_metric_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_label_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Read a metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`. It must end at a blank, the end of the
/// line, or (for samples) `{`, so `foo-bar` is reported at the `-` rather than as `foo`.
fn metric_name<'a>(line: &Line<'_>, cursor: &mut Cursor<'a>, may_open_labels: bool) -> Result<&'a str, ParseError> {
    let start = cursor.pos;
    match cursor.peek() {
        Some(c) if is_metric_name_start(c) => {}
        Some(c) => {
            return Err(line.error(
                start,
                format!("invalid metric name: expected a letter, `_` or `:` to start it, found `{}`", show(c)),
            ));
        }
        None => return Err(line.error(start, "expected a metric name, found end of line")),
    }
    let name = cursor.take_ascii_while(|b| is_metric_name_char(char::from(b)));
    match cursor.peek() {
        None => {}
        Some(c) if is_blank(c) || (may_open_labels && c == '{') => {}
        Some(c) => {
            return Err(line.error(
                cursor.pos,
                format!(
                    "invalid metric name: `{}` may not appear in a name (only letters, digits, `_` and `:`)",
                    show(c)
                ),
            ));
        }
    }
    Ok(name)
}

/// One `name="value"` pair as written, with the value's position for later errors. Both
/// borrow from the text (a value only needs a copy of its own when it has escapes), so a
/// line that adds to a series seen before (a histogram's next bucket) allocates no strings.
struct RawLabel<'a> {
    name: &'a str,
    value: Cow<'a, str>,
    value_pos: usize,
}

/// Read `{name="value",...}` with the cursor on the `{`.
fn label_set<'a>(line: &Line<'_>, cursor: &mut Cursor<'a>) -> Result<Vec<RawLabel<'a>>, ParseError> {
    cursor.bump(); // `{`
    let mut labels: Vec<RawLabel<'a>> = Vec::new();
    loop {
        cursor.skip_blanks();
        if cursor.eat('}') {
            return Ok(labels);
        }
        let name_pos = cursor.pos;
        let name = label_name(line, cursor)?;
        if labels.iter().any(|label| label.name == name) {
            return Err(line.error(name_pos, format!("duplicate label name `{name}` in one sample")));
        }
        cursor.skip_blanks();
        if !cursor.eat('=') {
            return Err(
                line.error(cursor.pos, format!("expected `=` after label name `{name}`, found {}", found(cursor)))
            );
        }
        cursor.skip_blanks();
        let value_pos = cursor.pos;
        if !cursor.eat('"') {
            return Err(line.error(
                value_pos,
                format!("expected `\"` to open the value of label `{name}`, found {}", found(cursor)),
            ));
        }
        let value = label_value(line, cursor, value_pos)?;
        labels.push(RawLabel { name, value, value_pos });
        cursor.skip_blanks();
        if cursor.eat('}') {
            return Ok(labels);
        }
        if !cursor.eat(',') {
            return Err(
                line.error(cursor.pos, format!("expected `,` or `}}` after a label value, found {}", found(cursor)))
            );
        }
    }
}

/// Read a label name `[a-zA-Z_][a-zA-Z0-9_]*`, which must be followed by a blank or `=`.
fn label_name<'a>(line: &Line<'_>, cursor: &mut Cursor<'a>) -> Result<&'a str, ParseError> {
    match cursor.peek() {
        Some(c) if is_label_name_start(c) => {}
        Some(c) => {
            return Err(line.error(
                cursor.pos,
                format!("invalid label name: expected a letter or `_` to start it, found `{}`", show(c)),
            ));
        }
        None => return Err(line.error(cursor.pos, "expected a label name or `}`, found end of line")),
    }
    let name = cursor.take_ascii_while(|b| is_label_name_char(char::from(b)));
    match cursor.peek() {
        Some(c) if !is_blank(c) && c != '=' => Err(line.error(
            cursor.pos,
            format!("invalid label name: `{}` may not appear in a name (only letters, digits and `_`)", show(c)),
        )),
        _ => Ok(name),
    }
}

/// Read a label value after its opening quote, resolving `\\`, `\"` and `\n`.
fn label_value<'a>(line: &Line<'_>, cursor: &mut Cursor<'a>, open_pos: usize) -> Result<Cow<'a, str>, ParseError> {
    // Most values have no escapes: then the value is the text up to the closing quote.
    let rest = cursor.rest();
    if let Some(end) = rest.bytes().position(|b| b == b'"' || b == b'\\')
        && rest.as_bytes().get(end) == Some(&b'"')
        && let Some(value) = rest.get(..end)
    {
        cursor.pos += end + 1;
        return Ok(Cow::Borrowed(value));
    }
    let mut value = String::new();
    loop {
        let char_pos = cursor.pos;
        match cursor.bump() {
            Some('"') => return Ok(Cow::Owned(value)),
            Some('\\') => match cursor.bump() {
                Some('\\') => value.push('\\'),
                Some('"') => value.push('"'),
                Some('n') => value.push('\n'),
                Some(other) => {
                    return Err(line.error(
                        char_pos,
                        format!("invalid escape `\\{}` in label value: expected `\\\\`, `\\\"` or `\\n`", show(other)),
                    ));
                }
                None => break,
            },
            Some(c) => value.push(c),
            None => break,
        }
    }
    let open_column = line.column(open_pos);
    Err(line.error(
        cursor.pos,
        format!("unterminated label value: expected `\"` to close the value opened at column {open_column}"),
    ))
}

/// Resolve the escapes of a HELP text: `\\` and `\n`, and `\"` (OpenMetrics escapes quotes).
fn help_text(line: &Line<'_>, cursor: &mut Cursor<'_>) -> Result<String, ParseError> {
    let rest = cursor.rest();
    if !rest.contains('\\') {
        cursor.pos += rest.len();
        return Ok(rest.to_string());
    }
    let mut help = String::new();
    loop {
        let char_pos = cursor.pos;
        match cursor.bump() {
            None => return Ok(help),
            Some('\\') => match cursor.bump() {
                Some('\\') => help.push('\\'),
                Some('n') => help.push('\n'),
                Some('"') => help.push('"'),
                Some(other) => {
                    return Err(line.error(
                        char_pos,
                        format!("invalid escape `\\{}` in HELP text: expected `\\\\` or `\\n`", show(other)),
                    ));
                }
                None => return Err(line.error(char_pos, "HELP text ends in a lone `\\`: write `\\\\` for a backslash")),
            },
            Some(c) => help.push(c),
        }
    }
}

/// A float in decimal or exponent notation, or `Inf`, `+Inf`, `-Inf`, `NaN` in any case.
/// (Go's `strconv.ParseFloat` also reads hex floats, which no exporter writes.)
fn parse_float(word: &str) -> Option<f64> {
    word.parse().ok()
}

/// A histogram or summary count: a non-negative integer, also when written as a float
/// (`1.5e+06`). Plain digit strings are read exactly, beyond f64's 2^53.
fn parse_count(word: &str, value: f64) -> Option<u64> {
    if !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_digit())
        && let Ok(count) = word.parse()
    {
        return Some(count);
    }
    // `as` saturates, so an absurd 1e30 reads as u64::MAX rather than failing.
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0).then_some(value as u64)
}

/// An OpenMetrics timestamp (float seconds) as milliseconds. Decimal text is converted
/// exactly, so `1700000000.123` is 1700000000123 ms; other forms go through f64.
fn parse_seconds_as_ms(word: &str) -> Option<i64> {
    let (negative, unsigned) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(whole.is_empty() && fraction.is_empty()) && is_digits(whole) && is_digits(fraction) {
        let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let millis: i128 =
            fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |n, b| n * 10 + i128::from(b - b'0'));
        let total = whole.checked_mul(1000)?.checked_add(millis)?;
        return i64::try_from(if negative { -total } else { total }).ok();
    }
    let ms = (parse_float(word)? * 1000.0).round();
    // i64::MAX as f64 rounds up to 2^63, which is already out of range.
    (ms.is_finite() && ms >= i64::MIN as f64 && ms < i64::MAX as f64).then_some(ms as i64)
}

/// A parsed sample line, before it is assigned to a family.
struct Sample<'a> {
    name: &'a str,
    name_pos: usize,
    labels: Vec<RawLabel<'a>>,
    value: f64,
    value_word: &'a str,
    value_pos: usize,
    timestamp_ms: Option<i64>,
}

/// Read `name{labels} value [timestamp] [# exemplar]` with the cursor on the name.
fn sample_line<'a>(line: &Line<'a>, cursor: &mut Cursor<'a>, format: Format) -> Result<Sample<'a>, ParseError> {
    let name_pos = cursor.pos;
    let name = metric_name(line, cursor, true)?;
    // `metric_name` made sure a blank or `{` follows. A blank between `}` and the value is
    // optional, as in Go's parser.
    cursor.skip_blanks();
    let labels = if cursor.peek() == Some('{') { label_set(line, cursor)? } else { Vec::new() };
    let (value, value_word, value_pos) = sample_value(line, cursor, "the metric name and labels")?;

    let mut timestamp_ms = None;
    cursor.skip_blanks();
    if !cursor.at_end() && cursor.peek() != Some('#') {
        let pos = cursor.pos;
        let word = cursor.word();
        let parsed = match format {
            Format::Prometheus => word.parse().ok(),
            Format::OpenMetrics => parse_seconds_as_ms(word),
        };
        let Some(ms) = parsed else {
            let expected = match format {
                Format::Prometheus => "an integer of milliseconds",
                Format::OpenMetrics => "seconds since the epoch",
            };
            return Err(line.error(pos, format!("invalid timestamp `{word}`: expected {expected} or end of line")));
        };
        timestamp_ms = Some(ms);
        cursor.skip_blanks();
    }
    if cursor.peek() == Some('#') {
        if format == Format::Prometheus {
            return Err(
                line.error(cursor.pos, "expected end of line, found `#`: exemplars are only allowed in OpenMetrics")
            );
        }
        exemplar(line, cursor)?;
        cursor.skip_blanks();
    }
    if !cursor.at_end() {
        return Err(line.error(cursor.pos, format!("expected end of line after the sample, found {}", found(cursor))));
    }
    Ok(Sample { name, name_pos, labels, value, value_word, value_pos, timestamp_ms })
}

/// Read the float after a sample's name and labels (`after` says which, for errors).
fn sample_value<'a>(
    line: &Line<'_>,
    cursor: &mut Cursor<'a>,
    after: &str,
) -> Result<(f64, &'a str, usize), ParseError> {
    cursor.skip_blanks();
    if cursor.at_end() {
        return Err(line.error(cursor.pos, format!("missing value: expected a number after {after}")));
    }
    let pos = cursor.pos;
    let word = cursor.word();
    match parse_float(word) {
        Some(value) => Ok((value, word, pos)),
        None => Err(line.error(pos, format!("invalid value `{word}`: expected a number, `+Inf`, `-Inf` or `NaN`"))),
    }
}

/// Check an OpenMetrics exemplar ` # {labels} value [timestamp]`, which is then dropped.
fn exemplar(line: &Line<'_>, cursor: &mut Cursor<'_>) -> Result<(), ParseError> {
    cursor.bump(); // `#`
    cursor.skip_blanks();
    if cursor.peek() != Some('{') {
        return Err(
            line.error(cursor.pos, format!("expected `{{` to start an exemplar's labels, found {}", found(cursor)))
        );
    }
    label_set(line, cursor)?;
    sample_value(line, cursor, "the exemplar's labels")?;
    cursor.skip_blanks();
    if !cursor.at_end() {
        let pos = cursor.pos;
        let word = cursor.word();
        if parse_float(word).is_none() {
            return Err(
                line.error(pos, format!("invalid exemplar timestamp `{word}`: expected seconds since the epoch"))
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The parser: lines into families
// ---------------------------------------------------------------------------------------

struct Parser {
    format: Format,
    /// Every family so far; the last one is the family lines currently add to.
    families: Vec<FamilyBuilder>,
    /// Family names and sample names of the families before the current one, so that a
    /// family showing up again after another one is caught. Values index `families`.
    seen: HashMap<String, usize>,
}

/// A family being read.
struct FamilyBuilder {
    /// The name on its HELP/TYPE lines, or its sample name when it has no metadata.
    key: String,
    kind: Kind,
    help: String,
    unit: String,
    help_line: Option<usize>,
    type_line: Option<usize>,
    unit_line: Option<usize>,
    first_line: usize,
    last_line: usize,
    first_sample_line: Option<usize>,
    series: Vec<Series>,
    /// Series indexes by a hash of their label set (independent of label order); several
    /// when hashes collide. Avoids cloning every label into a map key.
    by_labels: HashMap<u64, Vec<usize>, BuildHasherDefault<PassThroughHasher>>,
}

/// A hash of a label set that does not depend on the labels' order: FNV-1a of each
/// `name`/`value` pair, mixed and summed (names are unique within a sample).
fn label_set_hash<'x>(labels: impl Iterator<Item = (&'x str, &'x str)>) -> u64 {
    let mut sum: u64 = 0;
    for (name, value) in labels {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes().chain([0xff]).chain(value.bytes()).chain([0xfe]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        // A final mix, so that sums of related pairs do not cancel out.
        hash ^= hash >> 29;
        hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash ^= hash >> 32;
        sum = sum.wrapping_add(hash);
    }
    sum
}

/// Same labels regardless of order (names are unique within a sample).
fn same_label_set(a: &[Label], b: &[RawLabel<'_>]) -> bool {
    a.len() == b.len() && a.iter().all(|l| b.iter().any(|m| m.name == l.name && *m.value == *l.value))
}

/// Owned labels, in the order written.
fn owned_labels(labels: Vec<RawLabel<'_>>) -> Vec<Label> {
    let mut owned = Vec::with_capacity(labels.len());
    owned.extend(labels.into_iter().map(|l| Label { name: l.name.to_string(), value: l.value.into_owned() }));
    owned
}

/// The keys of `by_labels` are hashes already.
#[derive(Default)]
struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One series of a family. Histogram and summary series collect several lines.
struct Series {
    labels: Vec<Label>,
    timestamp_ms: Option<i64>,
    line: usize,
    data: SeriesData,
}

enum SeriesData {
    Single(f64),
    Histogram { buckets: Vec<Bucket>, sum: Option<f64>, count: Option<u64> },
    Summary { quantiles: Vec<Quantile>, sum: Option<f64>, count: Option<u64> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Metadata {
    Help,
    Type,
    Unit,
}

impl Metadata {
    fn word(self) -> &'static str {
        match self {
            Metadata::Help => "HELP",
            Metadata::Type => "TYPE",
            Metadata::Unit => "UNIT",
        }
    }
}

impl Parser {
    /// Read one line; `block` is this line and those after it.
    fn line(&mut self, line: &Line<'_>, block: &[&str]) -> Result<(), ParseError> {
        let mut cursor = Cursor::new(line.text);
        cursor.skip_blanks();
        if cursor.at_end() {
            return match self.format {
                Format::Prometheus => Ok(()),
                Format::OpenMetrics => Err(line.error(0, "blank line: OpenMetrics does not allow empty lines")),
            };
        }
        if cursor.peek() == Some('#') {
            return self.comment(line, &mut cursor, block);
        }
        let sample = sample_line(line, &mut cursor, self.format)?;
        self.add_sample(line, sample)
    }

    /// `# HELP`, `# TYPE` and `# UNIT` lines; other comments are skipped in Prometheus text
    /// (as Go's parser does) but are errors in OpenMetrics.
    fn comment(&mut self, line: &Line<'_>, cursor: &mut Cursor<'_>, block: &[&str]) -> Result<(), ParseError> {
        cursor.bump(); // `#`
        cursor.skip_blanks();
        let keyword_pos = cursor.pos;
        let keyword = cursor.word();
        let metadata = match keyword {
            "HELP" => Metadata::Help,
            "TYPE" => Metadata::Type,
            "UNIT" => Metadata::Unit,
            _ if self.format == Format::Prometheus => return Ok(()),
            "EOF" => return Err(line.error(0, "expected `# EOF` alone on its line")),
            _ => {
                return Err(line.error(keyword_pos, format!(
                    "expected HELP, TYPE, UNIT or EOF after `#`, found `{keyword}`: OpenMetrics has no other comments"
                )));
            }
        };
        let blank = cursor.skip_blanks();
        if cursor.at_end() && self.format == Format::Prometheus {
            return Ok(()); // A bare `# HELP` is a comment to Go's parser too.
        }
        if !blank || cursor.at_end() {
            return Err(line.error(cursor.pos, format!("expected a space and a metric name after {keyword}")));
        }
        let name_pos = cursor.pos;
        let name = metric_name(line, cursor, false)?;
        let word = metadata.word();
        let index = self.family_for_metadata(line, name, name_pos, metadata, block)?;
        let family = &mut self.families[index];
        family.last_line = line.number;

        // Metadata describes the samples that follow; Go's parser rejects it afterwards too.
        let already = match metadata {
            Metadata::Help => family.help_line,
            Metadata::Type => family.type_line,
            Metadata::Unit => family.unit_line,
        };
        if let Some(first) = already {
            return Err(
                line.error(name_pos, format!("second {word} line for family {name} (the first is on line {first})"))
            );
        }
        if let Some(first) = family.first_sample_line {
            return Err(line.error(name_pos, format!(
                "{word} line for family {name} after its samples (first sample on line {first}): metadata must come first"
            )));
        }

        match metadata {
            Metadata::Help => {
                // Go's parser skips all blanks before the text; OpenMetrics has exactly one space.
                match self.format {
                    Format::Prometheus => {
                        cursor.skip_blanks();
                    }
                    Format::OpenMetrics => {
                        cursor.eat(' ');
                    }
                }
                family.help = help_text(line, cursor)?;
                family.help_line = Some(line.number);
            }
            Metadata::Type => {
                cursor.skip_blanks();
                let type_pos = cursor.pos;
                let type_word = cursor.word();
                let Some(kind) = Kind::from_type(type_word, self.format) else {
                    let expected = match self.format {
                        Format::Prometheus => "counter, gauge, histogram, summary or untyped",
                        Format::OpenMetrics => {
                            "counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown"
                        }
                    };
                    let found = if type_word.is_empty() { "nothing".to_string() } else { format!("`{type_word}`") };
                    return Err(line.error(type_pos, format!("expected a metric type ({expected}), found {found}")));
                };
                cursor.skip_blanks();
                if !cursor.at_end() {
                    return Err(
                        line.error(cursor.pos, format!("expected end of line after the type, found {}", found(cursor)))
                    );
                }
                family.kind = kind;
                family.type_line = Some(line.number);
            }
            Metadata::Unit => {
                cursor.skip_blanks();
                family.unit = cursor.rest().trim_end_matches([' ', '\t']).to_string();
                family.unit_line = Some(line.number);
            }
        }
        Ok(())
    }

    /// The family a metadata line is about: the current one if it has that name, else a new one.
    fn family_for_metadata(
        &mut self,
        line: &Line<'_>,
        name: &str,
        pos: usize,
        metadata: Metadata,
        block: &[&str],
    ) -> Result<usize, ParseError> {
        let word = metadata.word();
        if let Some(current) = self.families.last() {
            if current.key == name {
                // OpenMetrics drops `_total` from a counter's family name, so a gauge `x` and
                // a counter `x_total` both become `x`. client_golang writes such pairs (its
                // go_memstats_alloc_bytes, client_golang#829) and Prometheus accepts them, so
                // metadata for `x` after x's samples starts a new family if it declares a
                // type whose samples are named differently.
                let collides =
                    |kind: Kind| kind.family_name(name, self.format) == current.kind.family_name(name, self.format);
                if current.first_sample_line.is_some()
                    && let Some(next_kind) = declared_type(block, name, self.format)
                    && !collides(next_kind)
                {
                    return Ok(self.start_family(name, line.number));
                }
                return Ok(self.families.len() - 1);
            }
            if current.role_of(name, self.format).is_some() {
                return Err(line.error(
                    pos,
                    format!(
                        "{word} line names {name}, a sample name of {} family {}: name the family instead",
                        current.kind.word(),
                        current.key
                    ),
                ));
            }
        }
        if let Some(&index) = self.seen.get(name) {
            let earlier = &self.families[index];
            let what = if earlier.key == name {
                format!("{word} line for family {name}")
            } else {
                format!("{word} line for {name} (a sample name of family {})", earlier.key)
            };
            return Err(line.error(pos, format!(
                "{what} after other families; family {} was on lines {}-{} and the lines of one family must be contiguous",
                earlier.key, earlier.first_line, earlier.last_line
            )));
        }
        Ok(self.start_family(name, line.number))
    }

    fn add_sample(&mut self, line: &Line<'_>, sample: Sample<'_>) -> Result<(), ParseError> {
        let (index, role) = self.family_for_sample(line, sample.name, sample.name_pos)?;
        self.families[index].add(line, sample, role)
    }

    /// The family a sample belongs to, and what the sample means to it.
    fn family_for_sample(&mut self, line: &Line<'_>, name: &str, pos: usize) -> Result<(usize, Role), ParseError> {
        if let Some(current) = self.families.last() {
            if let Some(role) = current.role_of(name, self.format) {
                return Ok((self.families.len() - 1, role));
            }
            if current.key == name {
                return Err(line.error(
                    pos,
                    format!(
                        "sample {name} does not fit {} family {name}: expected {}{}",
                        current.kind.word(),
                        current.expected_sample_names(self.format),
                        if self.format == Format::OpenMetrics
                            && current.kind == Kind::Counter
                            && name.ends_with("_total")
                        {
                            " (an OpenMetrics TYPE line names a counter without its `_total` suffix)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        if let Some(&index) = self.seen.get(name) {
            let earlier = &self.families[index];
            return Err(line.error(pos, format!(
                "sample {name} of family {} after other families; that family was on lines {}-{} and the lines of one family must be contiguous",
                earlier.key, earlier.first_line, earlier.last_line
            )));
        }
        // A sample without metadata is an untyped family of its own (as in Go's parser).
        Ok((self.start_family(name, line.number), Role::Value))
    }

    /// Close the current family (remembering its names) and start a new, untyped one.
    fn start_family(&mut self, key: &str, line: usize) -> usize {
        if let Some(previous) = self.families.last() {
            let index = self.families.len() - 1;
            self.seen.entry(previous.key.clone()).or_insert(index);
            for (suffix, _) in previous.kind.sample_suffixes(self.format) {
                self.seen.entry(format!("{}{suffix}", previous.key)).or_insert(index);
            }
        }
        self.families.push(FamilyBuilder {
            key: key.to_string(),
            kind: Kind::Unknown,
            help: String::new(),
            unit: String::new(),
            help_line: None,
            type_line: None,
            unit_line: None,
            first_line: line,
            last_line: line,
            first_sample_line: None,
            series: Vec::new(),
            by_labels: HashMap::default(),
        });
        self.families.len() - 1
    }
}

impl FamilyBuilder {
    /// What a sample called `name` contributes to this family, if it belongs here.
    fn role_of(&self, name: &str, format: Format) -> Option<Role> {
        let suffix = name.strip_prefix(self.key.as_str())?;
        self.kind.sample_suffixes(format).iter().find(|(s, _)| *s == suffix).map(|(_, role)| *role)
    }

    /// "a_bucket, a_sum or a_count", for error messages.
    fn expected_sample_names(&self, format: Format) -> String {
        let names: Vec<String> =
            self.kind.sample_suffixes(format).iter().map(|(suffix, _)| format!("{}{suffix}", self.key)).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }

    fn add(&mut self, line: &Line<'_>, sample: Sample<'_>, role: Role) -> Result<(), ParseError> {
        self.last_line = line.number;
        self.first_sample_line.get_or_insert(line.number);
        let Sample { name, name_pos, mut labels, value, value_word, value_pos, timestamp_ms } = sample;
        let at = Position { line, name, name_pos };
        let count = || {
            parse_count(value_word, value).ok_or_else(|| {
                line.error(
                    value_pos,
                    format!("invalid count `{value_word}` for {name}: expected a non-negative integer"),
                )
            })
        };
        match role {
            Role::Created => Ok(()),
            Role::Value => {
                let index = self.series_for(&at, labels, timestamp_ms, true)?;
                self.series[index].data = SeriesData::Single(value);
                Ok(())
            }
            Role::Bucket => {
                let bound = take_bound(&at, &mut labels, "le", "histogram bucket")?;
                let count = count()?;
                let index = self.series_for(&at, labels, timestamp_ms, false)?;
                let series = &mut self.series[index];
                if let SeriesData::Histogram { buckets, .. } = &mut series.data {
                    if buckets.iter().any(|b| b.upper_bound == bound) {
                        return Err(duplicate(&at, &series.labels, Some(("le", bound)), series.line));
                    }
                    buckets.push(Bucket { upper_bound: bound, count });
                }
                Ok(())
            }
            Role::Quantile => {
                let quantile = take_bound(&at, &mut labels, "quantile", "summary")?;
                let index = self.series_for(&at, labels, timestamp_ms, false)?;
                let series = &mut self.series[index];
                if let SeriesData::Summary { quantiles, .. } = &mut series.data {
                    if quantiles.iter().any(|q| q.quantile == quantile) {
                        return Err(duplicate(&at, &series.labels, Some(("quantile", quantile)), series.line));
                    }
                    quantiles.push(Quantile { quantile, value });
                }
                Ok(())
            }
            Role::Sum => {
                let index = self.series_for(&at, labels, timestamp_ms, false)?;
                let series = &mut self.series[index];
                let (SeriesData::Histogram { sum, .. } | SeriesData::Summary { sum, .. }) = &mut series.data else {
                    return Ok(());
                };
                if sum.replace(value).is_some() {
                    return Err(duplicate(&at, &series.labels, None, series.line));
                }
                Ok(())
            }
            Role::Count => {
                let count = count()?;
                let index = self.series_for(&at, labels, timestamp_ms, false)?;
                let series = &mut self.series[index];
                let (SeriesData::Histogram { count: slot, .. } | SeriesData::Summary { count: slot, .. }) =
                    &mut series.data
                else {
                    return Ok(());
                };
                if slot.replace(count).is_some() {
                    return Err(duplicate(&at, &series.labels, None, series.line));
                }
                Ok(())
            }
        }
    }

    /// The series with these labels. For a plain value (`single`), a series seen before is a
    /// duplicate; histogram and summary series are shared by several lines.
    fn series_for(
        &mut self,
        at: &Position<'_, '_>,
        labels: Vec<RawLabel<'_>>,
        timestamp_ms: Option<i64>,
        single: bool,
    ) -> Result<usize, ParseError> {
        let hash = label_set_hash(labels.iter().map(|l| (l.name, &*l.value)));
        let existing = self.by_labels.get(&hash).and_then(|candidates| {
            candidates.iter().copied().find(|&i| same_label_set(&self.series[i].labels, &labels))
        });
        if let Some(index) = existing {
            let series = &mut self.series[index];
            if single {
                return Err(duplicate(at, &owned_labels(labels), None, series.line));
            }
            series.timestamp_ms = series.timestamp_ms.or(timestamp_ms);
            return Ok(index);
        }
        let data = match self.kind {
            Kind::Histogram | Kind::GaugeHistogram => {
                SeriesData::Histogram { buckets: Vec::new(), sum: None, count: None }
            }
            Kind::Summary => SeriesData::Summary { quantiles: Vec::new(), sum: None, count: None },
            _ => SeriesData::Single(0.0),
        };
        self.series.push(Series { labels: owned_labels(labels), timestamp_ms, line: at.line.number, data });
        self.by_labels.entry(hash).or_default().push(self.series.len() - 1);
        Ok(self.series.len() - 1)
    }

    fn finish(self, format: Format) -> MetricFamily {
        let kind = self.kind;
        let metrics = self.series.into_iter().map(|series| Metric {
            labels: series.labels,
            timestamp_ms: series.timestamp_ms,
            value: match series.data {
                SeriesData::Single(value) if kind == Kind::Counter => MetricValue::Counter(value),
                SeriesData::Single(value) => MetricValue::Gauge(value),
                SeriesData::Histogram { mut buckets, sum, count } => {
                    buckets.sort_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
                    // Buckets are cumulative, so the highest one counts every observation.
                    let count = count.unwrap_or_else(|| buckets.last().map_or(0, |b| b.count));
                    MetricValue::Histogram(HistogramValue { buckets, sum: sum.unwrap_or(0.0), count })
                }
                SeriesData::Summary { quantiles, sum, count } => {
                    MetricValue::Summary(SummaryValue { quantiles, sum: sum.unwrap_or(0.0), count: count.unwrap_or(0) })
                }
            },
        });
        MetricFamily {
            name: kind.family_name(&self.key, format),
            help: self.help,
            unit: self.unit,
            kind: kind.metric_kind(),
            metrics: metrics.collect(),
        }
    }
}

/// Where a sample line is, for errors about it.
struct Position<'l, 't> {
    line: &'l Line<'t>,
    name: &'l str,
    name_pos: usize,
}

/// The type declared by the metadata lines for `name` at the start of `block`.
fn declared_type(block: &[&str], name: &str, format: Format) -> Option<Kind> {
    for text in block {
        let mut words = text.trim_start().strip_prefix('#')?.split_whitespace();
        let keyword = words.next()?;
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") || words.next()? != name {
            return None;
        }
        if keyword == "TYPE" {
            return Kind::from_type(words.next()?, format);
        }
    }
    None
}

/// Remove the `le` or `quantile` label from a histogram or summary line and read its number.
fn take_bound(
    at: &Position<'_, '_>,
    labels: &mut Vec<RawLabel<'_>>,
    label: &str,
    what: &str,
) -> Result<f64, ParseError> {
    let Some(index) = labels.iter().position(|l| l.name == label) else {
        return Err(at.line.error(at.name_pos, format!("{what} line {} has no `{label}` label", at.name)));
    };
    let raw = labels.remove(index);
    match parse_float(&raw.value) {
        Some(bound) if !bound.is_nan() => Ok(bound),
        _ => Err(at.line.error(
            raw.value_pos,
            format!("invalid `{label}` value \"{}\": expected a number or +Inf", raw.value.escape_default()),
        )),
    }
}

fn duplicate(at: &Position<'_, '_>, labels: &[Label], extra: Option<(&str, f64)>, first: usize) -> ParseError {
    let mut series = at.name.to_string();
    let extra = extra.map(|(name, value)| (name, format_float(value)));
    write_labels(&mut series, labels, extra.as_ref().map(|(n, v)| (*n, v.as_str())));
    at.line.error(at.name_pos, format!("duplicate series {series}: already given (series first seen on line {first})"))
}

// ---------------------------------------------------------------------------------------
// The encoder
// ---------------------------------------------------------------------------------------

fn encode_family(out: &mut String, family: &MetricFamily, format: Format) {
    let open_metrics = format == Format::OpenMetrics;
    // OpenMetrics names a counter (info) family without the `_total` (`_info`) its samples carry.
    let (key, value_name) = match (format, family.kind) {
        (Format::OpenMetrics, MetricKind::Counter) => openmetrics_names(&family.name, "_total"),
        (Format::OpenMetrics, MetricKind::Info) => openmetrics_names(&family.name, "_info"),
        _ => (family.name.clone(), family.name.clone()),
    };
    if !family.help.is_empty() {
        let _ = write!(out, "# HELP {key} ");
        for c in family.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '"' if open_metrics => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "# TYPE {key} {}", type_word(family.kind, format));
    if !family.unit.is_empty() {
        let _ = writeln!(out, "# UNIT {key} {}", family.unit);
    }
    for metric in &family.metrics {
        let timestamp = metric.timestamp_ms.map(|ms| format_timestamp(ms, format));
        let mut sample = |suffix: &str, extra: Option<(&str, &str)>, value: &str| {
            let name = if suffix.is_empty() { value_name.as_str() } else { key.as_str() };
            out.push_str(name);
            out.push_str(suffix);
            write_labels(out, &metric.labels, extra);
            out.push(' ');
            out.push_str(value);
            if let Some(timestamp) = &timestamp {
                out.push(' ');
                out.push_str(timestamp);
            }
            out.push('\n');
        };
        match &metric.value {
            MetricValue::Gauge(value) | MetricValue::Counter(value) => sample("", None, &format_float(*value)),
            MetricValue::Histogram(histogram) => {
                for bucket in &histogram.buckets {
                    sample("_bucket", Some(("le", &format_float(bucket.upper_bound))), &bucket.count.to_string());
                }
                // Both formats require the `+Inf` bucket; it holds every observation.
                if !histogram.buckets.iter().any(|b| b.upper_bound == f64::INFINITY) {
                    sample("_bucket", Some(("le", "+Inf")), &histogram.count.to_string());
                }
                sample("_sum", None, &format_float(histogram.sum));
                sample("_count", None, &histogram.count.to_string());
            }
            MetricValue::Summary(summary) => {
                for quantile in &summary.quantiles {
                    sample("", Some(("quantile", &format_float(quantile.quantile))), &format_float(quantile.value));
                }
                sample("_sum", None, &format_float(summary.sum));
                sample("_count", None, &summary.count.to_string());
            }
        }
    }
}

/// (family name for metadata, sample name) of an OpenMetrics counter or info family.
fn openmetrics_names(name: &str, suffix: &str) -> (String, String) {
    match name.strip_suffix(suffix) {
        Some(key) if !key.is_empty() => (key.to_string(), name.to_string()),
        _ => (name.to_string(), format!("{name}{suffix}")),
    }
}

/// `{a="1",b="2"}` with `extra` (`le` or `quantile`) last, as Go writes it; nothing if empty.
fn write_labels(out: &mut String, labels: &[Label], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let pairs = labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).chain(extra);
    for (i, (name, value)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        push_label_value(out, value);
        out.push('"');
    }
    out.push('}');
}

/// Whether `v` has a byte the text format escapes in label values (`\\`,
/// `"`, newline). Eight bytes at a time: this scan runs for every label of
/// every series, and almost never finds anything.
#[inline]
fn needs_escaping(v: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Non-zero where a byte of `word` equals `byte` (the classic "has zero byte" test).
    let has = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let bytes = v.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if has(word, b'\\') | has(word, b'"') | has(word, b'\n') != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|b| matches!(b, b'\\' | b'"' | b'\n'))
}

/// Append a label value with `\\`, `"` and newlines escaped, as both text
/// formats want. Shared by every encoder (the SDK's, the host's `/metrics`, the
/// kube-state plugin's renderer).
#[inline]
pub fn push_label_value(out: &mut String, v: &str) {
    if !needs_escaping(v) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Format a float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does, which is what
/// exporters write: the shortest digits that read back exactly, with an exponent below 1e-4
/// and from 1e6 up (`1.048576e+06`), and `+Inf`, `-Inf`, `NaN`.
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddddeN`.
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return value.to_string() };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        // Display never uses an exponent and is also shortest round-trip.
        value.to_string()
    }
}

/// Milliseconds as Prometheus text writes them, or as OpenMetrics seconds (`1.500` for 1500).
fn format_timestamp(ms: i64, format: Format) -> String {
    match format {
        Format::Prometheus => ms.to_string(),
        Format::OpenMetrics => {
            let sign = if ms < 0 { "-" } else { "" };
            let abs = ms.unsigned_abs();
            format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(text: &str) -> Vec<MetricFamily> {
        parse(text).unwrap_or_else(|e| panic!("{e}\nin:\n{text}"))
    }

    fn openmetrics(text: &str) -> Vec<MetricFamily> {
        parse_with(text, Format::OpenMetrics).unwrap_or_else(|e| panic!("{e}\nin:\n{text}"))
    }

    fn error_in(text: &str, format: Format) -> ParseError {
        match parse_with(text, format) {
            Ok(families) => panic!("expected an error, parsed {families:?}\nin:\n{text}"),
            Err(e) => e,
        }
    }

    /// Assert that `text` fails at `line`:`column` with a message containing `fragment`.
    #[track_caller]
    fn assert_error(text: &str, format: Format, line: usize, column: usize, fragment: &str) {
        let e = error_in(text, format);
        assert!(e.message.contains(fragment), "message {:?} lacks {fragment:?}", e.message);
        assert_eq!((e.line, e.column), (line, column), "wrong position for {e}");
    }

    #[track_caller]
    fn assert_prom_error(text: &str, line: usize, column: usize, fragment: &str) {
        assert_error(text, Format::Prometheus, line, column, fragment);
    }

    fn label(name: &str, value: &str) -> Label {
        Label { name: name.into(), value: value.into() }
    }

    fn histogram(value: &MetricValue) -> &HistogramValue {
        match value {
            MetricValue::Histogram(h) => h,
            other => panic!("not a histogram: {other:?}"),
        }
    }

    fn summary(value: &MetricValue) -> &SummaryValue {
        match value {
            MetricValue::Summary(s) => s,
            other => panic!("not a summary: {other:?}"),
        }
    }

    fn gauge(value: &MetricValue) -> f64 {
        match value {
            MetricValue::Gauge(v) => *v,
            other => panic!("not a gauge: {other:?}"),
        }
    }

    fn bounds(h: &HistogramValue) -> Vec<(f64, u64)> {
        h.buckets.iter().map(|b| (b.upper_bound, b.count)).collect()
    }

    // ---- mapping rules ----------------------------------------------------------------

    #[test]
    fn counter_gauge_and_untyped_families() {
        let f = families(
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1234.5\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 99\n\
             # TYPE node_load1 gauge\n\
             node_load1 0.25\n\
             # HELP mysql_global_status_uptime Generic metric.\n\
             # TYPE mysql_global_status_uptime untyped\n\
             mysql_global_status_uptime 42\n",
        );
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, "node_cpu_seconds_total");
        assert_eq!(f[0].help, "Seconds the CPUs spent in each mode.");
        assert_eq!(f[0].kind, MetricKind::Counter);
        assert_eq!(f[0].metrics[0].labels, vec![label("cpu", "0"), label("mode", "idle")]);
        assert_eq!(f[0].metrics[0].value, MetricValue::Counter(1234.5));
        assert_eq!(f[0].metrics[1].value, MetricValue::Counter(99.0));
        assert_eq!((f[1].kind, f[1].help.as_str()), (MetricKind::Gauge, ""));
        assert_eq!(f[1].metrics[0].value, MetricValue::Gauge(0.25));
        assert_eq!(f[2].kind, MetricKind::Unknown);
        assert_eq!(f[2].metrics[0].value, MetricValue::Gauge(42.0));
        assert!(f.iter().all(|family| family.unit.is_empty()));
    }

    #[test]
    fn labels_keep_their_written_order() {
        let f = families("x{zeta=\"1\",alpha=\"2\",mid=\"3\"} 1\n");
        let names: Vec<&str> = f[0].metrics[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "mid"]);
    }

    #[test]
    fn samples_without_type_form_their_own_unknown_families() {
        let f = families("a{x=\"1\"} 1\na{x=\"2\"} 2\nb 3\n# HELP c Only help.\nc 4\n");
        let shape: Vec<(&str, MetricKind, usize)> =
            f.iter().map(|f| (f.name.as_str(), f.kind, f.metrics.len())).collect();
        assert_eq!(
            shape,
            [("a", MetricKind::Unknown, 2), ("b", MetricKind::Unknown, 1), ("c", MetricKind::Unknown, 1)]
        );
        assert_eq!(f[2].help, "Only help.");
    }

    #[test]
    fn help_escapes() {
        let f = families("# HELP x a\\\\b\\nc \"quoted\"\n# TYPE x gauge\nx 1\n");
        assert_eq!(f[0].help, "a\\b\nc \"quoted\"");
    }

    #[test]
    fn label_value_escapes_and_unicode() {
        let f = families("x{a=\"q\\\"b\\\\c\\nd\",b=\"ünï ✓ {},=#\"} 1\n");
        assert_eq!(f[0].metrics[0].labels, vec![label("a", "q\"b\\c\nd"), label("b", "ünï ✓ {},=#")]);
    }

    #[test]
    fn float_values() {
        let text = "v{k=\"a\"} +Inf\nv{k=\"b\"} -Inf\nv{k=\"c\"} NaN\nv{k=\"d\"} 1e+06\nv{k=\"e\"} -0.5\nv{k=\"f\"} 1.5E3\nv{k=\"g\"} 1.8446744073709552e+19\n";
        let values: Vec<f64> = families(text)[0].metrics.iter().map(|m| gauge(&m.value)).collect();
        assert_eq!(values[..2], [f64::INFINITY, f64::NEG_INFINITY]);
        assert!(values[2].is_nan());
        assert_eq!(values[3..], [1e6, -0.5, 1500.0, 18446744073709551616.0]);
    }

    #[test]
    fn prometheus_timestamps_are_milliseconds() {
        let f = families("a 1 1700000000123\nb 2 -5\nc 3\n");
        let stamps: Vec<Option<i64>> = f.iter().map(|f| f.metrics[0].timestamp_ms).collect();
        assert_eq!(stamps, [Some(1_700_000_000_123), Some(-5), None]);
    }

    #[test]
    fn lenient_whitespace_trailing_comma_and_crlf() {
        let f = families("# TYPE a gauge\r\n  a { x = \"1\" , y=\"2\", } \t 7  \r\n\r\n# just a comment\r\nb{} 1\r\n");
        assert_eq!(f[0].metrics[0].labels, vec![label("x", "1"), label("y", "2")]);
        assert_eq!(f[0].metrics[0].value, MetricValue::Gauge(7.0));
        assert_eq!(f[1].name, "b");
        assert!(f[1].metrics[0].labels.is_empty());
        // `name{...}value` without a blank is accepted, as by Go's parser.
        assert_eq!(families("a{x=\"1\"}5\n")[0].metrics[0].value, MetricValue::Gauge(5.0));
        // No final newline is needed.
        assert_eq!(families("a 1")[0].metrics.len(), 1);
    }

    #[test]
    fn blank_lines_and_comments_are_ignored_in_prometheus_text() {
        let f = families("\n# A comment\n#\n# HELPFUL note\n# EOF? not here\n\n   \nx 1\n\n");
        assert_eq!(f.len(), 1);
        assert!(families("").is_empty());
        assert!(families("\n\n# nothing\n").is_empty());
    }

    #[test]
    fn histogram_series_are_grouped_by_their_other_labels() {
        let f = families(
            "# HELP rpc_seconds RPC latency.\n\
             # TYPE rpc_seconds histogram\n\
             rpc_seconds_bucket{method=\"get\",le=\"+Inf\"} 10\n\
             rpc_seconds_bucket{method=\"get\",le=\"0.5\"} 9\n\
             rpc_seconds_bucket{le=\"0.1\",method=\"get\"} 4\n\
             rpc_seconds_bucket{method=\"put\",le=\"1e+06\"} 1\n\
             rpc_seconds_bucket{method=\"put\",le=\"+Inf\"} 1\n\
             rpc_seconds_sum{method=\"get\"} 2.5\n\
             rpc_seconds_count{method=\"get\"} 10\n\
             rpc_seconds_sum{method=\"put\"} 0.125\n\
             rpc_seconds_count{method=\"put\"} 1\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].name.as_str(), f[0].kind), ("rpc_seconds", MetricKind::Histogram));
        assert_eq!(f[0].metrics.len(), 2);
        let get = &f[0].metrics[0];
        assert_eq!(get.labels, vec![label("method", "get")]);
        let h = histogram(&get.value);
        assert_eq!(bounds(h), [(0.1, 4), (0.5, 9), (f64::INFINITY, 10)]);
        assert_eq!((h.sum, h.count), (2.5, 10));
        let put = histogram(&f[0].metrics[1].value);
        assert_eq!(bounds(put), [(1e6, 1), (f64::INFINITY, 1)]);
        assert_eq!((put.sum, put.count), (0.125, 1));
    }

    #[test]
    fn histogram_without_sum_or_count_uses_defaults() {
        let h = families("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 5\n");
        let h = histogram(&h[0].metrics[0].value);
        assert_eq!((h.sum, h.count), (0.0, 5));
    }

    #[test]
    fn histogram_counts_are_exact_integers() {
        let f = families(
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 18446744073709551615\nh_count 9007199254740993\nh_sum 1.5e+06\n",
        );
        let h = histogram(&f[0].metrics[0].value);
        assert_eq!((h.buckets[0].count, h.count, h.sum), (u64::MAX, 9_007_199_254_740_993, 1.5e6));
        // A float that is an integer is a count too.
        let f = families("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1.5e+06\n");
        assert_eq!(histogram(&f[0].metrics[0].value).count, 1_500_000);
    }

    #[test]
    fn summary_series_are_grouped() {
        let f = families(
            "# TYPE go_gc_duration_seconds summary\n\
             go_gc_duration_seconds{quantile=\"0.5\"} 3.3551e-05\n\
             go_gc_duration_seconds{quantile=\"0\"} 2.64e-05\n\
             go_gc_duration_seconds{quantile=\"1\"} NaN\n\
             go_gc_duration_seconds_sum 0.001\n\
             go_gc_duration_seconds_count 47\n\
             go_gc_duration_seconds{job=\"x\",quantile=\"0.9\"} 1\n",
        );
        assert_eq!(f[0].kind, MetricKind::Summary);
        assert_eq!(f[0].metrics.len(), 2);
        let s = summary(&f[0].metrics[0].value);
        assert!(f[0].metrics[0].labels.is_empty());
        let quantiles: Vec<f64> = s.quantiles.iter().map(|q| q.quantile).collect();
        assert_eq!(quantiles, [0.5, 0.0, 1.0], "quantiles keep their written order");
        assert_eq!(s.quantiles[0].value, 3.3551e-05);
        assert!(s.quantiles[2].value.is_nan());
        assert_eq!((s.sum, s.count), (0.001, 47));
        assert_eq!(f[0].metrics[1].labels, vec![label("job", "x")]);
        assert_eq!(summary(&f[0].metrics[1].value).count, 0);
    }

    #[test]
    fn le_and_quantile_are_ordinary_labels_elsewhere() {
        let f = families("# TYPE g gauge\ng{le=\"x\",quantile=\"y\"} 1\n");
        assert_eq!(f[0].metrics[0].labels, vec![label("le", "x"), label("quantile", "y")]);
    }

    #[test]
    fn unknown_suffix_after_a_histogram_starts_a_new_family() {
        let f = families("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_total 3\n");
        assert_eq!(f[1].name, "h_total");
        assert_eq!(f[1].kind, MetricKind::Unknown);
    }

    #[test]
    fn metadata_without_samples_is_kept_as_an_empty_family() {
        let f = families("# HELP a Nothing yet.\n# TYPE a counter\n# TYPE b gauge\nb 1\n");
        assert_eq!((f[0].name.as_str(), f[0].kind, f[0].metrics.len()), ("a", MetricKind::Counter, 0));
        assert_eq!(f[1].metrics.len(), 1);
    }

    #[test]
    fn unit_lines_set_the_unit() {
        let f = families("# TYPE t_seconds gauge\n# UNIT t_seconds seconds\nt_seconds 1\n");
        assert_eq!(f[0].unit, "seconds");
    }

    // ---- OpenMetrics --------------------------------------------------------------------

    #[test]
    fn openmetrics_counter_family_is_named_after_its_total_sample() {
        let text = "# TYPE requests counter\n# UNIT requests requests\n# HELP requests Requests \\\"served\\\".\n\
                    requests_total{code=\"200\"} 10 1700000000.5\n\
                    requests_created{code=\"200\"} 1699990000.0\n\
                    requests_total{code=\"500\"} 1 # {trace_id=\"abc\"} 1 1700000000.25\n\
                    # EOF\n";
        let f = openmetrics(text);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].name.as_str(), f[0].kind, f[0].unit.as_str()),
            ("requests_total", MetricKind::Counter, "requests")
        );
        assert_eq!(f[0].help, "Requests \"served\".");
        assert_eq!(f[0].metrics.len(), 2, "_created samples are dropped");
        assert_eq!(f[0].metrics[0].value, MetricValue::Counter(10.0));
        assert_eq!(f[0].metrics[0].timestamp_ms, Some(1_700_000_000_500));
        assert_eq!(f[0].metrics[1].timestamp_ms, None);
        // `parse` recognises OpenMetrics by its `# EOF`.
        assert_eq!(families(text), f);
    }

    #[test]
    fn prometheus_and_openmetrics_give_the_same_counter_name() {
        let prometheus = families("# TYPE jobs_total counter\njobs_total 3\n");
        let open = openmetrics("# TYPE jobs counter\njobs_total 3\n# EOF");
        assert_eq!(prometheus, open);
    }

    #[test]
    fn openmetrics_gauge_and_counter_may_share_a_family_name() {
        // client_golang's OpenMetrics output for go_memstats_alloc_bytes (gauge) and
        // go_memstats_alloc_bytes_total (counter); see client_golang#829.
        let f = openmetrics(
            "# HELP go_memstats_alloc_bytes Bytes in use.\n# TYPE go_memstats_alloc_bytes gauge\ngo_memstats_alloc_bytes 1.5e+06\n\
             # HELP go_memstats_alloc_bytes Bytes allocated.\n# TYPE go_memstats_alloc_bytes counter\ngo_memstats_alloc_bytes_total 1e+08\n\
             # EOF\n",
        );
        let shape: Vec<(&str, MetricKind, &str)> =
            f.iter().map(|f| (f.name.as_str(), f.kind, f.help.as_str())).collect();
        assert_eq!(
            shape,
            [
                ("go_memstats_alloc_bytes", MetricKind::Gauge, "Bytes in use."),
                ("go_memstats_alloc_bytes_total", MetricKind::Counter, "Bytes allocated.")
            ]
        );
        // Families that would come out with the same name are still an error.
        assert_error(
            "# TYPE x gauge\nx 1\n# TYPE x gauge\nx 2\n# EOF\n",
            Format::OpenMetrics,
            3,
            8,
            "second TYPE line",
        );
        assert_error(
            "# TYPE x gauge\nx 1\n# HELP x again\nx 2\n# EOF\n",
            Format::OpenMetrics,
            3,
            8,
            "after its samples",
        );
        assert_prom_error("# TYPE x gauge\nx 1\n# HELP x late\n", 3, 8, "after its samples");
    }

    #[test]
    fn openmetrics_info_stateset_and_gaugehistogram() {
        let f = openmetrics(
            "# TYPE build info\nbuild_info{version=\"1.2\"} 1\n\
             # TYPE feature stateset\nfeature{feature=\"a\"} 1\nfeature{feature=\"b\"} 0\n\
             # TYPE queue_size gaugehistogram\nqueue_size_bucket{le=\"10\"} 3\nqueue_size_bucket{le=\"+Inf\"} 4\n\
             queue_size_gsum 17\nqueue_size_gcount 4\n\
             # TYPE temp unknown\ntemp 21.5\n\
             # EOF\n",
        );
        let shape: Vec<(&str, MetricKind, usize)> =
            f.iter().map(|f| (f.name.as_str(), f.kind, f.metrics.len())).collect();
        assert_eq!(
            shape,
            [
                ("build_info", MetricKind::Info, 1),
                ("feature", MetricKind::Stateset, 2),
                ("queue_size", MetricKind::Histogram, 1),
                ("temp", MetricKind::Unknown, 1)
            ]
        );
        assert_eq!(f[0].metrics[0].value, MetricValue::Gauge(1.0));
        let h = histogram(&f[2].metrics[0].value);
        assert_eq!((bounds(h), h.sum, h.count), (vec![(10.0, 3), (f64::INFINITY, 4)], 17.0, 4));
    }

    #[test]
    fn openmetrics_timestamps_are_converted_exactly() {
        let f = openmetrics("a 1 1700000000.123456\nb 1 -1.5\nc 1 1.7e9\nd 1 0\n# EOF\n");
        let stamps: Vec<Option<i64>> = f.iter().map(|f| f.metrics[0].timestamp_ms).collect();
        assert_eq!(stamps, [Some(1_700_000_000_123), Some(-1500), Some(1_700_000_000_000), Some(0)]);
    }

    #[test]
    fn openmetrics_needs_eof_and_nothing_after_it() {
        assert_error("a 1\n", Format::OpenMetrics, 2, 1, "expected `# EOF`");
        assert_error("a 1", Format::OpenMetrics, 1, 4, "expected `# EOF`");
        assert_error("a 1\n# EOF\nb 2\n", Format::OpenMetrics, 3, 1, "after `# EOF`");
        assert_error("a 1\n# EOF\n\n", Format::OpenMetrics, 3, 1, "after `# EOF`");
        assert_eq!(openmetrics("# EOF").len(), 0);
        assert_eq!(openmetrics("# EOF\r\n").len(), 0);
    }

    #[test]
    fn openmetrics_rejects_blank_lines_and_comments() {
        assert_error("a 1\n\nb 1\n# EOF\n", Format::OpenMetrics, 2, 1, "blank line");
        assert_error("# hello\n# EOF\n", Format::OpenMetrics, 1, 3, "OpenMetrics has no other comments");
        assert_error("#  EOF\n# EOF\n", Format::OpenMetrics, 1, 1, "alone on its line");
    }

    #[test]
    fn openmetrics_sample_names_must_fit_the_type() {
        assert_error(
            "# TYPE foo counter\nfoo 1\n# EOF\n",
            Format::OpenMetrics,
            2,
            1,
            "expected foo_total or foo_created",
        );
        assert_error(
            "# TYPE foo_total counter\nfoo_total 1\n# EOF\n",
            Format::OpenMetrics,
            2,
            1,
            "without its `_total` suffix",
        );
        assert_error(
            "# TYPE foo counter\n# HELP foo_total x\n# EOF\n",
            Format::OpenMetrics,
            2,
            8,
            "name the family instead",
        );
        assert_prom_error("# TYPE h histogram\nh 1\n", 2, 1, "expected h_bucket, h_sum or h_count");
    }

    #[test]
    fn openmetrics_only_types_are_rejected_in_prometheus_text() {
        assert_prom_error(
            "# TYPE x info\n",
            1,
            10,
            "expected a metric type (counter, gauge, histogram, summary or untyped)",
        );
        assert_eq!(openmetrics("# TYPE x info\n# EOF\n")[0].kind, MetricKind::Info);
    }

    #[test]
    fn exemplars_are_checked_in_openmetrics_and_rejected_in_prometheus() {
        assert_error("# TYPE a counter\na_total 1 # {x=\"1\"}\n# EOF\n", Format::OpenMetrics, 2, 20, "missing value");
        assert_error("# TYPE a counter\na_total 1 # x\n# EOF\n", Format::OpenMetrics, 2, 13, "exemplar");
        assert_prom_error("a 1 # {x=\"1\"} 1\n", 1, 5, "only allowed in OpenMetrics");
    }

    // ---- errors -----------------------------------------------------------------------

    #[test]
    fn invalid_metric_names() {
        assert_prom_error("0foo 1\n", 1, 1, "invalid metric name");
        assert_prom_error("ok 1\nfoo-bar 1\n", 2, 4, "invalid metric name: `-`");
        assert_prom_error("# TYPE 9x gauge\n", 1, 8, "invalid metric name");
        assert_prom_error("# TYPE x{} gauge\n", 1, 9, "invalid metric name");
        assert_error("# HELP\n# EOF\n", Format::OpenMetrics, 1, 7, "expected a space and a metric name after HELP");
        assert_error("# TYPE \n# EOF\n", Format::OpenMetrics, 1, 8, "expected a space and a metric name after TYPE");
        // Go's parser takes a bare `# HELP` for a comment.
        assert!(families("# HELP\n# TYPE  \n").is_empty());
        assert_prom_error("{a=\"b\"} 1\n", 1, 1, "invalid metric name");
    }

    #[test]
    fn invalid_label_names() {
        assert_prom_error("foo{0a=\"x\"} 1\n", 1, 5, "invalid label name");
        assert_prom_error("foo{a-b=\"x\"} 1\n", 1, 6, "invalid label name: `-`");
        assert_prom_error("foo{a.b=\"x\"} 1\n", 1, 6, "invalid label name");
        assert_prom_error("foo{a \"x\"} 1\n", 1, 7, "expected `=` after label name `a`");
        assert_prom_error("foo{a=x} 1\n", 1, 7, "expected `\"` to open the value");
        assert_prom_error("foo{a=\"x\" b=\"y\"} 1\n", 1, 11, "expected `,` or `}`");
        assert_prom_error("foo{a=\"x\",\n", 1, 11, "expected a label name or `}`");
    }

    #[test]
    fn unterminated_label_values() {
        assert_prom_error(
            "foo{a=\"x} 1\n",
            1,
            12,
            "unterminated label value: expected `\"` to close the value opened at column 7",
        );
        assert_prom_error("foo{a=\"x\\", 1, 10, "unterminated label value");
    }

    #[test]
    fn bad_escapes() {
        assert_prom_error("foo{a=\"x\\ty\"} 1\n", 1, 9, "invalid escape `\\t` in label value");
        assert_prom_error("# HELP foo a\\qb\n", 1, 13, "invalid escape `\\q` in HELP");
        assert_prom_error("# HELP foo a\\\n", 1, 13, "lone `\\`");
    }

    #[test]
    fn duplicate_label_names() {
        assert_prom_error("foo{a=\"1\",b=\"2\",a=\"3\"} 1\n", 1, 17, "duplicate label name `a`");
        // Columns count characters, not bytes.
        assert_prom_error("foo{a=\"ü\",a=\"x\"} 1\n", 1, 11, "duplicate label name");
    }

    #[test]
    fn bad_and_missing_values() {
        assert_prom_error("foo 1.2.3\n", 1, 5, "invalid value `1.2.3`");
        assert_prom_error("foo{a=\"1\"} one\n", 1, 12, "invalid value `one`");
        assert_prom_error("foo\n", 1, 4, "missing value");
        assert_prom_error("foo{a=\"1\"}   \n", 1, 14, "missing value");
        assert_prom_error("foo 1 2 3\n", 1, 9, "expected end of line");
        assert_prom_error("foo 1 1.5\n", 1, 7, "invalid timestamp `1.5`: expected an integer of milliseconds");
        assert_error("foo 1 soon\n# EOF\n", Format::OpenMetrics, 1, 7, "invalid timestamp `soon`: expected seconds");
    }

    #[test]
    fn type_redefined_or_after_samples() {
        assert_prom_error(
            "# TYPE foo gauge\n# TYPE foo counter\n",
            2,
            8,
            "second TYPE line for family foo (the first is on line 1)",
        );
        assert_prom_error("foo 1\n# TYPE foo gauge\n", 2, 8, "TYPE line for family foo after its samples");
        assert_prom_error(
            "# TYPE foo gauge\nfoo 1\n# HELP foo late\n",
            3,
            8,
            "HELP line for family foo after its samples",
        );
        assert_prom_error("# HELP foo a\n# HELP foo b\n", 2, 8, "second HELP line");
        assert_prom_error("# TYPE foo histogram\n# HELP foo_bucket x\n", 2, 8, "a sample name of histogram family foo");
        assert_prom_error("# TYPE foo nonsense\n", 1, 12, "expected a metric type");
        assert_prom_error("# TYPE foo\n", 1, 11, "found nothing");
        assert_prom_error("# TYPE foo gauge extra\n", 1, 18, "expected end of line after the type");
    }

    #[test]
    fn histogram_and_summary_label_errors() {
        assert_prom_error(
            "# TYPE h histogram\nh_bucket{a=\"1\"} 1\n",
            2,
            1,
            "histogram bucket line h_bucket has no `le` label",
        );
        assert_prom_error("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 2, 13, "invalid `le` value \"x\"");
        assert_prom_error("# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\n", 2, 13, "invalid `le` value");
        assert_prom_error("# TYPE h histogram\nh_bucket{le=\"1\"} 1.5\n", 2, 18, "invalid count `1.5`");
        assert_prom_error("# TYPE h histogram\nh_count -1\n", 2, 9, "invalid count `-1`");
        assert_prom_error("# TYPE s summary\ns{a=\"1\"} 1\n", 2, 1, "summary line s has no `quantile` label");
        assert_prom_error("# TYPE s summary\ns{quantile=\"high\"} 1\n", 2, 12, "invalid `quantile` value");
    }

    #[test]
    fn interleaved_families() {
        let text = "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 2\n";
        assert_prom_error(text, 5, 1, "sample a of family a after other families; that family was on lines 1-2");
        assert_prom_error("# TYPE a gauge\na 1\nb 1\n# TYPE a gauge\n", 4, 8, "must be contiguous");
        assert_prom_error("# TYPE h histogram\nh_sum 1\nb 1\nh_count 1\n", 4, 1, "family h after other families");
    }

    #[test]
    fn duplicate_series() {
        assert_prom_error("a{x=\"1\"} 1\na{x=\"1\"} 2\n", 2, 1, "duplicate series a{x=\"1\"}");
        assert_prom_error("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n", 2, 1, "first seen on line 1");
        assert_prom_error("a 1\na 2\n", 2, 1, "duplicate series a:");
        let histogram = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n";
        assert_prom_error(histogram, 3, 1, "duplicate series h_bucket{le=\"1\"}");
        assert_prom_error("# TYPE h histogram\nh_sum 1\nh_sum 2\n", 3, 1, "duplicate series h_sum");
        assert_prom_error("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.5\"} 1\n", 3, 1, "duplicate series");
    }

    #[test]
    fn error_display() {
        let e = error_in("foo 1.2.3\n", Format::Prometheus);
        assert_eq!(
            e.to_string(),
            "line 1, column 5: invalid value `1.2.3`: expected a number, `+Inf`, `-Inf` or `NaN`"
        );
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn awkward_inputs_do_not_panic() {
        for text in [
            "\u{feff}",
            "{",
            "#",
            "# ",
            "# TYPE",
            "# TYPE ",
            "# TYPE é",
            "# HELP x \\",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
            "x{a=\"é",
            "x{é=\"1\"} 1",
            "é 1",
            "x 1 é",
            "x é",
            "x{a=\"\\é\"} 1",
            "\r",
            "\r\n\r\n",
            "x\u{0} 1",
            "x{a=\"1\"}\u{a0}1",
            "# EOF",
            "# EOF\n# EOF",
            "x 1 # {",
            "x 1 # {a=\"1\"} é",
        ] {
            let _ = parse(text);
            let _ = parse_with(text, Format::OpenMetrics);
            let _ = parse_with(text, Format::Prometheus);
        }
    }

    // ---- encoder ----------------------------------------------------------------------

    #[test]
    fn floats_are_formatted_like_go() {
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.005, "0.005"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.3795e-05, "2.3795e-05"),
            (154900.0, "154900"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1048576.0, "1.048576e+06"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (1e300, "1e+300"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (value, text) in cases {
            assert_eq!(format_float(value), text, "{value:?}");
        }
    }

    #[test]
    fn timestamps_are_formatted_exactly() {
        assert_eq!(format_timestamp(1_700_000_000_123, Format::OpenMetrics), "1700000000.123");
        assert_eq!(format_timestamp(-1500, Format::OpenMetrics), "-1.500");
        assert_eq!(format_timestamp(5, Format::OpenMetrics), "0.005");
        assert_eq!(format_timestamp(i64::MIN, Format::OpenMetrics), "-9223372036854775.808");
        assert_eq!(parse_seconds_as_ms("-9223372036854775.808"), Some(i64::MIN));
        assert_eq!(parse_seconds_as_ms("9223372036854775.808"), None);
        assert_eq!(format_timestamp(-5, Format::Prometheus), "-5");
    }

    fn sample_families() -> Vec<MetricFamily> {
        let mut requests = crate::Family::counter("http_requests_total", "Requests \"served\"\\n.");
        requests.sample(&[("code", "200"), ("path", "/a\"b\\c\nd")], 1027.0);
        let mut latency = crate::Family::histogram("rpc_seconds", "RPC latency.").unit("seconds");
        latency.histogram_sample(&[("method", "get")], &[(0.1, 4), (1e6, 9)], 2.5, 10);
        let mut gc = crate::Family::summary("gc_seconds", "");
        gc.summary_sample(&[], &[(0.5, 1e-5), (1.0, f64::NAN)], 0.25, 3);
        let mut info = crate::Family::info("build_info", "Build.");
        info.sample(&[("version", "1.0")], 1.0);
        vec![requests.build(), latency.build(), gc.build(), info.build()]
    }

    #[test]
    fn encodes_prometheus_text() {
        let expected = "\
# HELP http_requests_total Requests \"served\"\\\\n.
# TYPE http_requests_total counter
http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 1027
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds histogram
# UNIT rpc_seconds seconds
rpc_seconds_bucket{method=\"get\",le=\"0.1\"} 4
rpc_seconds_bucket{method=\"get\",le=\"1e+06\"} 9
rpc_seconds_bucket{method=\"get\",le=\"+Inf\"} 10
rpc_seconds_sum{method=\"get\"} 2.5
rpc_seconds_count{method=\"get\"} 10
# TYPE gc_seconds summary
gc_seconds{quantile=\"0.5\"} 1e-05
gc_seconds{quantile=\"1\"} NaN
gc_seconds_sum 0.25
gc_seconds_count 3
# HELP build_info Build.
# TYPE build_info gauge
build_info{version=\"1.0\"} 1
";
        assert_eq!(encode(&sample_families(), Format::Prometheus), expected);
    }

    #[test]
    fn encodes_openmetrics() {
        let mut families = sample_families();
        families[0].metrics[0].timestamp_ms = Some(1_700_000_000_500);
        let expected = "\
# HELP http_requests Requests \\\"served\\\"\\\\n.
# TYPE http_requests counter
http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 1027 1700000000.500
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds histogram
# UNIT rpc_seconds seconds
rpc_seconds_bucket{method=\"get\",le=\"0.1\"} 4
rpc_seconds_bucket{method=\"get\",le=\"1e+06\"} 9
rpc_seconds_bucket{method=\"get\",le=\"+Inf\"} 10
rpc_seconds_sum{method=\"get\"} 2.5
rpc_seconds_count{method=\"get\"} 10
# TYPE gc_seconds summary
gc_seconds{quantile=\"0.5\"} 1e-05
gc_seconds{quantile=\"1\"} NaN
gc_seconds_sum 0.25
gc_seconds_count 3
# HELP build Build.
# TYPE build info
build_info{version=\"1.0\"} 1
# EOF
";
        assert_eq!(encode(&families, Format::OpenMetrics), expected);
    }

    #[test]
    fn openmetrics_counter_without_total_gains_the_suffix() {
        let mut accepted = crate::Family::counter("nginx_connections_accepted", "Accepted.");
        accepted.sample(&[], 2.0);
        let text = encode(&[accepted.build()], Format::OpenMetrics);
        assert!(
            text.contains("# TYPE nginx_connections_accepted counter\nnginx_connections_accepted_total 2\n"),
            "{text}"
        );
        assert_eq!(openmetrics(&text)[0].name, "nginx_connections_accepted_total");
    }

    #[test]
    fn encoded_text_parses_back() {
        let families = sample_families();
        let mut expected = families.clone();
        // Prometheus text has no info type; such families are served as gauges.
        expected[3].kind = MetricKind::Gauge;
        // The encoder added the `+Inf` bucket the histogram lacked.
        if let MetricValue::Histogram(h) = &mut expected[1].metrics[0].value {
            h.buckets.push(Bucket { upper_bound: f64::INFINITY, count: 10 });
        }
        let nan_free = |mut f: Vec<MetricFamily>| {
            if let MetricValue::Summary(s) = &mut f[2].metrics[0].value {
                s.quantiles[1].value = 0.0;
            }
            f
        };
        let prometheus = families_with(&encode(&families, Format::Prometheus), Format::Prometheus);
        assert_eq!(nan_free(prometheus), nan_free(expected.clone()));
        expected[3].kind = MetricKind::Info;
        let open = families_with(&encode(&families, Format::OpenMetrics), Format::OpenMetrics);
        assert_eq!(nan_free(open), nan_free(expected));
    }

    #[test]
    fn the_word_at_a_time_scan_finds_every_escaped_byte_anywhere() {
        let plain = "abcdefghijklmnopqrstuvwxyz-._/:0123456789ü";
        for len in 0..plain.len() {
            let Some(prefix) = plain.get(..len) else { continue };
            assert!(!needs_escaping(prefix), "{prefix:?}");
            for special in ['\\', '"', '\n'] {
                for at in 0..=prefix.len() {
                    if !prefix.is_char_boundary(at) {
                        continue;
                    }
                    let v = format!("{}{special}{}", &prefix[..at], &prefix[at..]);
                    assert!(needs_escaping(&v), "{v:?}");
                }
            }
        }
        // Bytes next to the escaped ones (0x5b, 0x5d, 0x21, 0x23, 0x09, 0x0b) are not.
        assert!(!needs_escaping("[]!#\t\u{b}[]!#\t\u{b}"));
        let mut out = String::new();
        push_label_value(&mut out, "a\\b\"c\nd");
        assert_eq!(out, "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn fragments_merge_families_by_name_in_first_appearance_order() {
        let fragments = [
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\n# TYPE b gauge\nb 2\n",
            "# TYPE a_total counter\na_total{x=\"2\"} 3\n# HELP c C.\n# TYPE c gauge\n",
        ];
        let families = parse_fragments(&fragments).expect("valid fragments");
        let names: Vec<(&str, &str, usize)> =
            families.iter().map(|f| (f.name.as_str(), f.help.as_str(), f.metrics.len())).collect();
        assert_eq!(names, [("a_total", "A.", 2), ("b", "", 1), ("c", "C.", 0)]);
        assert_eq!(families[0].metrics[1].labels, vec![Label { name: "x".into(), value: "2".into() }]);
        // The same text in one piece reads the same.
        let whole = parse("# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 3\n# TYPE b gauge\nb 2\n# HELP c C.\n# TYPE c gauge\n").unwrap();
        assert_eq!(families, whole);
    }

    #[test]
    fn fragment_errors_name_the_fragment_and_line() {
        let err = parse_fragments(&["# TYPE a gauge\na 1\n", "# TYPE b gauge\nb{ 1\n"]).unwrap_err();
        assert_eq!(err.fragment, 1);
        assert!(err.to_string().starts_with("fragment 2: line 2, column"), "{err}");
        let err = parse_fragments(&["# TYPE a gauge\na 1\n", "# TYPE a counter\na 1\n"]).unwrap_err();
        assert_eq!(err.to_string(), "fragment 2: family `a` is a counter here but was a gauge in an earlier fragment");
    }

    fn families_with(text: &str, format: Format) -> Vec<MetricFamily> {
        parse_with(text, format).unwrap_or_else(|e| panic!("{e}\nin:\n{text}"))
    }
}
