//! The log record that flows from the tailer through processors to sinks. It
//! mirrors the WIT `record-head { timestamp-ns, source, .. }` and its body and
//! attributes in `log-records`, so a Wasm `log-processor` receives exactly
//! these fields.

use std::sync::Arc;

/// The attribute map of records and sources: ordered by key, packed into one
/// string (see `wasmon_sdk::attributes`), the same type the log-processor SDK
/// uses and the form in which attributes cross into a Wasm processor.
pub use wasmon_sdk::attributes::Attributes;

/// Which output stream of a container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Plain files have no stream.
    #[default]
    Unknown,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Unknown => "",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
            Stream::Unknown => 2,
        }
    }
}

/// Where a record was read.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSource {
    /// Shared by every record of one file, so a batch does not copy the path per line.
    pub path: Arc<str>,
    pub stream: Stream,
    /// Attributes of the file rather than the line: Kubernetes metadata and pod
    /// labels. Shared, not copied per record (they were a third of the CPU time
    /// when cloned). `LogRecord::attributes()` merges them under the record's
    /// own; the Wasm adapter passes the merged list as the WIT `attributes`.
    pub attributes: Arc<Attributes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Nanoseconds since the Unix epoch: the runtime's timestamp for CRI/docker
    /// lines, the time the line was read for plain files.
    pub timestamp_ns: i64,
    pub body: String,
    pub attributes: Attributes,
    pub source: LogSource,
}

impl LogRecord {
    /// A field a sink can select by name: `source.path`, `source.stream`, or an attribute.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "source.path" => Some(&self.source.path),
            "source.stream" => Some(self.source.stream.as_str()).filter(|s| !s.is_empty()),
            _ => self.attribute(name),
        }
    }

    /// An attribute of the record, or else of its file.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).or_else(|| self.source.attributes.get(name))
    }

    /// The record's and its file's attributes in key order; the record's win on equal keys.
    pub fn all_attributes(&self) -> MergedAttributes<'_> {
        MergedAttributes { own: self.attributes.iter().peekable(), file: self.source.attributes.iter().peekable() }
    }
}

/// Iterator of `LogRecord::all_attributes`: a merge of two sorted maps.
pub struct MergedAttributes<'a> {
    own: std::iter::Peekable<wasmon_sdk::attributes::Iter<'a>>,
    file: std::iter::Peekable<wasmon_sdk::attributes::Iter<'a>>,
}

impl<'a> Iterator for MergedAttributes<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.own.peek(), self.file.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        if order == std::cmp::Ordering::Equal {
            self.file.next(); // shadowed by the record's own value
        }
        let pick_own = order != std::cmp::Ordering::Greater;
        if pick_own { self.own.next() } else { self.file.next() }
    }
}

impl std::fmt::Debug for MergedAttributes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergedAttributes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_attributes_win_over_file_attributes() {
        let file = Attributes::from([("a", "file"), ("c", "file"), ("d", "file")]);
        let own = Attributes::from([("b", "own"), ("c", "own")]);
        let r = LogRecord {
            timestamp_ns: 0,
            body: String::new(),
            attributes: own,
            source: LogSource { path: "/x".into(), stream: Stream::Unknown, attributes: Arc::new(file) },
        };
        let all: Vec<_> = r.all_attributes().collect();
        assert_eq!(all, vec![("a", "file"), ("b", "own"), ("c", "own"), ("d", "file")]);
        assert_eq!(r.field("c"), Some("own"));
        assert_eq!(r.field("d"), Some("file"));
        assert_eq!(r.field("source.stream"), None);
    }
}

/// Attribute names set by the tailer, following the OpenTelemetry semantic conventions.
pub mod attr {
    pub const K8S_NAMESPACE: &str = "k8s.namespace.name";
    pub const K8S_POD_NAME: &str = "k8s.pod.name";
    pub const K8S_POD_UID: &str = "k8s.pod.uid";
    pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
    pub const K8S_CONTAINER_RESTART_COUNT: &str = "k8s.container.restart_count";
}
