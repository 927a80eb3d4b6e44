//! The log record that flows from the tailer through processors to sinks. It
//! mirrors the WIT `log-record { timestamp-ns, body, attributes, source }`, so a
//! Wasm `log-processor` receives exactly these fields.

use std::sync::Arc;

/// A string map ordered by key: deterministic output for every sink and a
/// direct mapping to the WIT `list<tuple<string, string>>`. A sorted vector,
/// not a B-tree: records hold a dozen attributes, and one allocation per record
/// instead of a tree of nodes was a measurable share of the pipeline's CPU time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (String, String)> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl Extend<(String, String)> for Attributes {
    /// Later pairs win over earlier ones and over existing keys.
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        let before = self.0.len();
        self.0.extend(iter);
        if self.0.len() == before {
            return;
        }
        // Stable sort keeps insertion order among equal keys; keep the last of each.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.0.len());
        for kv in self.0.drain(..) {
            match out.last_mut() {
                Some(last) if last.0 == kv.0 => *last = kv,
                _ => out.push(kv),
            }
        }
        self.0 = out;
    }
}

impl FromIterator<(String, String)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut a = Self::new();
        a.extend(iter);
        a
    }
}

impl From<Vec<(String, String)>> for Attributes {
    /// Takes a list that is already sorted with unique keys as it is (what a
    /// log processor returns), and sorts and deduplicates any other.
    fn from(pairs: Vec<(String, String)>) -> Self {
        if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            return Self(pairs);
        }
        pairs.into_iter().collect()
    }
}

impl<const N: usize> From<[(String, String); N]> for Attributes {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = &'a (String, String);
    type IntoIter = std::slice::Iter<'a, (String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = String;

    fn index(&self, key: &str) -> &String {
        self.get(key).unwrap_or_else(|| panic!("no attribute {key:?}"))
    }
}

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
        self.attributes.get(name).or_else(|| self.source.attributes.get(name)).map(String::as_str)
    }

    /// The record's and its file's attributes in key order; the record's win on equal keys.
    pub fn all_attributes(&self) -> MergedAttributes<'_> {
        MergedAttributes { own: self.attributes.iter().peekable(), file: self.source.attributes.iter().peekable() }
    }
}

/// Iterator of `LogRecord::all_attributes`: a merge of two sorted maps.
pub struct MergedAttributes<'a> {
    own: std::iter::Peekable<std::slice::Iter<'a, (String, String)>>,
    file: std::iter::Peekable<std::slice::Iter<'a, (String, String)>>,
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
        let (k, v) = if pick_own { self.own.next()? } else { self.file.next()? };
        Some((k.as_str(), v.as_str()))
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
    fn attributes_stay_sorted_and_later_values_win() {
        let mut a = Attributes::new();
        a.insert("b".into(), "1".into());
        a.insert("a".into(), "1".into());
        a.extend([("c".to_string(), "1".to_string()), ("b".into(), "2".into()), ("b".into(), "3".into())]);
        let keys: Vec<_> = a.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, vec!["a=1", "b=3", "c=1"]);
        assert_eq!(a.remove("a"), Some("1".into()));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn a_sorted_list_is_taken_as_it_is_and_any_other_is_sorted() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        let sorted = Attributes::from(vec![kv("a", "1"), kv("b", "2")]);
        assert_eq!(sorted.into_vec(), vec![kv("a", "1"), kv("b", "2")]);
        let unsorted = Attributes::from(vec![kv("b", "2"), kv("a", "1"), kv("b", "3")]);
        assert_eq!(unsorted.into_vec(), vec![kv("a", "1"), kv("b", "3")]);
    }

    #[test]
    fn record_attributes_win_over_file_attributes() {
        let file: Attributes = [("a", "file"), ("c", "file"), ("d", "file")].map(|(k, v)| (k.into(), v.into())).into();
        let own: Attributes = [("b", "own"), ("c", "own")].map(|(k, v)| (k.into(), v.into())).into();
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
