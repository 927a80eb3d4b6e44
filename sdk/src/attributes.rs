//! A log record's attributes: a string map ordered by key, packed into one
//! string. Shared by the host's logs pipeline and the log-processor SDK, and
//! the shape in which attributes cross the component boundary (WIT
//! `packed-attributes`: the text, and where each key and value lies in it).
//!
//! Why packed: a record carries a dozen or more attributes, and as a vector of
//! `(String, String)` that was two allocations per attribute, made and freed
//! for every record on each side of the boundary. Here a record's attributes
//! are two allocations whatever their number, and crossing the boundary moves
//! one string and one list of numbers instead of two strings per attribute.

use std::fmt;

/// Where one attribute lives in [`Attributes::text`]: `[start, key length,
/// value length]`, the value right after the key. The same three numbers as
/// the WIT `spans`, so the list crosses the boundary without being rebuilt.
type Entry = [u32; 3];

/// The parts of an [`Entry`]. Keys are compared as bytes, which orders UTF-8
/// as `str` does without checking character boundaries on every comparison
/// (sorting was a tenth of a log processor's time).
trait Span {
    fn start(&self) -> usize;
    fn bytes(&self) -> usize;
    fn key_bytes<'t>(&self, text: &'t str) -> &'t [u8];
    fn key<'t>(&self, text: &'t str) -> &'t str;
    fn value<'t>(&self, text: &'t str) -> &'t str;
}

impl Span for Entry {
    fn start(&self) -> usize {
        self[0] as usize
    }

    fn bytes(&self) -> usize {
        self[1] as usize + self[2] as usize
    }

    fn key_bytes<'t>(&self, text: &'t str) -> &'t [u8] {
        &text.as_bytes()[self.start()..self.start() + self[1] as usize]
    }

    fn key<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start()..self.start() + self[1] as usize]
    }

    fn value<'t>(&self, text: &'t str) -> &'t str {
        let at = self.start() + self[1] as usize;
        &text[at..at + self[2] as usize]
    }
}

/// Attributes ordered by key, each key at most once; later writes win.
#[derive(Clone, Default)]
pub struct Attributes {
    /// Keys and values back to back, in the order they were added.
    text: String,
    /// One entry per attribute, sorted by key.
    entries: Vec<Entry>,
    /// Bytes of `text` no entry refers to any more (replaced or removed values).
    garbage: usize,
}

/// Packed attributes that do not describe their text (see [`Attributes::from_packed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedError(String);

impl fmt::Display for PackedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PackedError {}

impl PackedError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.key_bytes(&self.text).cmp(key.as_bytes()))
    }

    /// Adds attributes in any order, each written straight into the text,
    /// and restores key order once, when the writer is dropped (later
    /// attributes win, as with `extend`). For a parser that produces a
    /// record's fields one by one: no `(key, value)` list is collected
    /// first, and numbers are formatted in place, so a field costs one copy
    /// and no allocation. [`AttributeWriter::discard`] takes back what the
    /// writer added.
    pub fn writer(&mut self) -> AttributeWriter<'_> {
        let (entries_before, text_before) = (self.entries.len(), self.text.len());
        AttributeWriter { attributes: self, entries_before, text_before }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.entries[i].value(&self.text))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Appends a key and value to the text (not yet to the entries). `None`
    /// if that would take the text past 4 GiB, which offsets of 32 bits cannot
    /// address: such an attribute is not stored. (The pipeline's line-size
    /// limit keeps a record's attributes far below that.)
    fn append(&mut self, key: &str, value: &str) -> Option<Entry> {
        let start = u32::try_from(self.text.len()).ok()?;
        let key_len = u32::try_from(key.len()).ok()?;
        let value_len = u32::try_from(value.len()).ok()?;
        start.checked_add(key_len)?.checked_add(value_len)?;
        self.text.push_str(key);
        self.text.push_str(value);
        Some([start, key_len, value_len])
    }

    /// Sets `key` to `value`, returning the value it replaces. (One that
    /// would take the text past 4 GiB is not stored, and gives `None`.)
    pub fn insert(&mut self, key: &str, value: &str) -> Option<String> {
        match self.find(key) {
            Ok(i) => {
                let old = self.entries[i];
                let previous = old.value(&self.text).to_string();
                let entry = self.append(key, value)?;
                self.entries[i] = entry;
                self.garbage += old.bytes();
                self.compact_if_worth_it();
                Some(previous)
            }
            Err(i) => {
                let entry = self.append(key, value)?;
                self.entries.insert(i, entry);
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key).ok()?;
        let old = self.entries.remove(i);
        let value = old.value(&self.text).to_string();
        self.garbage += old.bytes();
        self.compact_if_worth_it();
        Some(value)
    }

    /// Keeps only the attributes for which `keep(key, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let text = &self.text;
        let mut dropped = 0;
        self.entries.retain(|e| {
            let kept = keep(e.key(text), e.value(text));
            if !kept {
                dropped += e.bytes();
            }
            kept
        });
        self.garbage += dropped;
        self.compact_if_worth_it();
    }

    /// Rewrites the text without the bytes nobody refers to, once they are
    /// more than half of it, so repeated writes cannot grow it without bound.
    fn compact_if_worth_it(&mut self) {
        if self.garbage <= 64 || self.garbage * 2 <= self.text.len() {
            return;
        }
        let mut text = String::with_capacity(self.text.len() - self.garbage);
        for e in &mut self.entries {
            let start = text.len();
            text.push_str(&self.text[e.start()..e.start() + e.bytes()]);
            // No longer than before, so still within 32 bits.
            e[0] = start as u32;
        }
        self.text = text;
        self.garbage = 0;
    }

    /// The attributes in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { text: &self.text, entries: self.entries.iter() }
    }

    /// As `(key, value)` pairs in key order.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Restores key order after entries were appended unsorted, keeping the
    /// last of equal keys (the sort is stable, so that is the latest write).
    fn sort_and_dedup(&mut self, sorted_before: usize) {
        let n = self.entries.len();
        if n > SMALL_SORT {
            let text = self.text.as_str();
            self.entries.sort_by(|a, b| a.key_bytes(text).cmp(b.key_bytes(text)));
            return self.dedup_sorted(|_, _| true);
        }
        // A record's handful of attributes: keys compared by their first
        // eight bytes as a number, and as bytes only where those are equal,
        // since comparing bytes is a call. (Sorting was an eighth of
        // logs-json's guest instructions.)
        let text = self.text.as_str();
        let entries = &self.entries;
        let from = sorted_before.saturating_sub(1);
        if from + 1 >= n {
            return;
        }
        let mut prefixes = [0u64; SMALL_SORT];
        let mut in_order = true;
        for i in 0..n {
            prefixes[i] = key_prefix(entries[i].key_bytes(text));
            if i > from && in_order {
                let (previous, current) = (prefixes[i - 1], prefixes[i]);
                in_order = previous < current
                    || (previous == current && entries[i - 1].key_bytes(text) < entries[i].key_bytes(text));
            }
        }
        if in_order {
            return;
        }
        let prefixes = &prefixes[..n];
        let (order, distinct) = match SortMemo::recall(prefixes) {
            Some(order) => (order, true),
            None => sort_small(prefixes, entries, text),
        };
        let mut unsorted = [[0u32; 3]; SMALL_SORT];
        unsorted[..n].copy_from_slice(entries);
        for (entry, &from) in self.entries.iter_mut().zip(&order[..n]) {
            *entry = unsorted[from as usize];
        }
        if !distinct {
            let sorted: Vec<u64> = order[..n].iter().map(|&from| prefixes[from as usize]).collect();
            self.dedup_sorted(|i, j| sorted[i] == sorted[j]);
        }
    }

    /// Drops all but the last of each run of equal keys in sorted entries;
    /// `may_equal(i, i + 1)` false says two neighbours differ without
    /// comparing their keys.
    fn dedup_sorted(&mut self, may_equal: impl Fn(usize, usize) -> bool) {
        let text = self.text.as_str();
        let entries = &mut self.entries;
        let n = entries.len();
        let mut kept = 0;
        let mut dropped = 0;
        for i in 0..n {
            if i + 1 < n && may_equal(i, i + 1) && entries[i].key_bytes(text) == entries[i + 1].key_bytes(text) {
                dropped += entries[i].bytes();
                continue;
            }
            entries[kept] = entries[i];
            kept += 1;
        }
        entries.truncate(kept);
        if dropped > 0 {
            self.garbage += dropped;
            self.compact_if_worth_it();
        }
    }

    /// Attributes as they cross the component boundary: `text` and, per
    /// attribute, three numbers in `spans`: where its key starts in `text`,
    /// the key's byte length and the value's (which follows the key). Taken
    /// as they are when in key order without repeats (what a well-behaved
    /// side sends); sorted, later attributes winning, otherwise. Spans that
    /// run past the text or cut a UTF-8 character are an error that names
    /// the attribute.
    pub fn from_packed(text: String, spans: &[u32]) -> Result<Self, PackedError> {
        if !spans.len().is_multiple_of(3) {
            return Err(PackedError(format!(
                "{} span numbers: each attribute needs three (start, key length, value length)",
                spans.len()
            )));
        }
        let mut entries = Vec::with_capacity(spans.len() / 3);
        let mut referenced = 0usize;
        for (i, span) in spans.chunks_exact(3).enumerate() {
            let (start, key_len, value_len) = (span[0] as usize, span[1] as usize, span[2] as usize);
            let end =
                start.checked_add(key_len).and_then(|k| k.checked_add(value_len)).filter(|&end| end <= text.len());
            let Some(end) = end else {
                return Err(PackedError(format!(
                    "attribute {i}: key of {key_len} and value of {value_len} bytes from byte {start} run past \
                     the text's {} bytes",
                    text.len()
                )));
            };
            for (what, boundary) in [("key", start), ("value", start + key_len), ("value", end)] {
                if !text.is_char_boundary(boundary) {
                    return Err(PackedError(format!(
                        "attribute {i}: its {what} splits a UTF-8 character at byte {boundary}"
                    )));
                }
            }
            entries.push([span[0], span[1], span[2]]);
            referenced += key_len + value_len;
        }
        let garbage = text.len().saturating_sub(referenced);
        let mut attributes = Self { text, entries, garbage };
        attributes.sort_and_dedup(0);
        Ok(attributes)
    }

    /// The packed form of [`from_packed`](Self::from_packed): the text as
    /// it is and the spans, neither copied.
    pub fn into_packed(self) -> (String, Vec<u32>) {
        (self.text, self.entries.into_flattened())
    }

    /// The packed form, borrowed: the text and the spans.
    pub fn packed_parts(&self) -> (&str, &[u32]) {
        (&self.text, self.entries.as_flattened())
    }

    /// [`into_packed`](Self::into_packed) without giving the map up.
    pub fn to_packed(&self) -> (String, Vec<u32>) {
        (self.text.clone(), self.entries.as_flattened().to_vec())
    }
}

/// Writes attributes into an [`Attributes`] (see [`Attributes::writer`]).
pub struct AttributeWriter<'a> {
    attributes: &'a mut Attributes,
    entries_before: usize,
    text_before: usize,
}

impl AttributeWriter<'_> {
    /// Makes room for `attributes` more attributes of `text_bytes` in all,
    /// so that the text and the list grow once rather than push by push (a
    /// parser knows about how much its input will add).
    pub fn reserve(&mut self, text_bytes: usize, attributes: usize) {
        self.attributes.text.reserve(text_bytes);
        self.attributes.entries.reserve(attributes);
    }

    /// Adds `key` with `value`.
    pub fn push(&mut self, key: &str, value: &str) {
        self.push_with(&[key], |text| text.push_str(value));
    }

    /// Adds an attribute whose key is `key_parts` one after the other (a
    /// prefix and a nested path, say) and whose value `write_value` appends
    /// (a number formatted in place, say). An attribute that would take the
    /// text past 4 GiB is not stored, as with `insert`.
    #[inline]
    pub fn push_with(&mut self, key_parts: &[&str], write_value: impl FnOnce(&mut ValueText<'_>)) {
        let text = &mut self.attributes.text;
        let start = text.len();
        for part in key_parts {
            append(text, part);
        }
        let value_start = text.len();
        write_value(&mut ValueText(text));
        let end = text.len();
        match (u32::try_from(start), u32::try_from(value_start - start), u32::try_from(end - value_start)) {
            (Ok(start), Ok(key_len), Ok(value_len)) if u32::try_from(end).is_ok() => {
                self.attributes.entries.push([start, key_len, value_len])
            }
            _ => text.truncate(start),
        }
    }

    /// Takes back every attribute this writer has added so far (so a parser
    /// that fails halfway adds nothing).
    pub fn discard(&mut self) {
        self.attributes.entries.truncate(self.entries_before);
        self.attributes.text.truncate(self.text_before);
    }
}

/// The value of the attribute [`AttributeWriter::push_with`] is adding:
/// text can only be appended to it.
pub struct ValueText<'t>(&'t mut String);

impl ValueText<'_> {
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        append(self.0, s);
    }
}

impl fmt::Write for ValueText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        append(self.0, s);
        Ok(())
    }
}

impl Drop for AttributeWriter<'_> {
    fn drop(&mut self) {
        if self.attributes.entries.len() != self.entries_before {
            self.attributes.sort_and_dedup(self.entries_before);
        }
    }
}

/// `text.push_str(s)`, with strings of up to 16 bytes copied by fixed-size
/// loads and stores. In wasm a copy of a variable length is a
/// `memory.copy`, which wasmtime runs as a call into the host of about 50
/// instructions, and a JSON log line makes twenty of them for keys and
/// values a few bytes long.
#[allow(unsafe_code)]
#[inline(always)]
fn append(text: &mut String, s: &str) {
    let n = s.len();
    if n == 0 {
        return;
    }
    if n > 16 {
        return text.push_str(s);
    }
    text.reserve(n);
    // SAFETY: `reserve` made room for `n` more bytes after `len`. The stores
    // write exactly bytes `len..len + n` (where two overlap, both write the
    // same byte), copied from `s`, which `text` cannot alias and which is
    // UTF-8, so the string is UTF-8 again once `set_len` covers them.
    unsafe {
        let bytes = text.as_mut_vec();
        let len = bytes.len();
        let (src, dst) = (s.as_ptr(), bytes.as_mut_ptr().add(len));
        if n >= 8 {
            dst.cast::<u64>().write_unaligned(src.cast::<u64>().read_unaligned());
            dst.add(n - 8).cast::<u64>().write_unaligned(src.add(n - 8).cast::<u64>().read_unaligned());
        } else if n >= 4 {
            dst.cast::<u32>().write_unaligned(src.cast::<u32>().read_unaligned());
            dst.add(n - 4).cast::<u32>().write_unaligned(src.add(n - 4).cast::<u32>().read_unaligned());
        } else {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        bytes.set_len(len + n);
    }
}

/// The first eight bytes of a key as a number (zero-padded), whose order is
/// the keys' byte order wherever two prefixes differ: comparing them is one
/// instruction where comparing the keys is a call.
#[inline]
fn key_prefix(key: &[u8]) -> u64 {
    if let Some(first) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    // Shorter keys by fixed-size loads, not a copy of a variable length (in
    // wasm a `memory.copy`, a call into the host) or a loop over the bytes.
    let n = key.len();
    if n >= 4 {
        let word = |at: usize| u64::from(u32::from_be_bytes([key[at], key[at + 1], key[at + 2], key[at + 3]]));
        // The last four bytes overlap the first four; shifting them up by the
        // overlap leaves bytes 4.. at the top of the low half.
        return (word(0) << 32) | ((word(n - 4) << (8 * (8 - n))) & 0xFFFF_FFFF);
    }
    match *key {
        [] => 0,
        [a] => u64::from(a) << 56,
        [a, b] => u64::from(a) << 56 | u64::from(b) << 48,
        [a, b, c, ..] => u64::from(a) << 56 | u64::from(b) << 48 | u64::from(c) << 40,
    }
}

/// Entries this many or fewer are sorted by [`sort_small`], longer lists by
/// the slice sort.
const SMALL_SORT: usize = 32;

/// The order that sorts `entries` (at most [`SMALL_SORT`]) by key, stably,
/// by insertion: `order[i]` is the index of the entry that goes to `i`.
/// `prefixes` are their keys' [`key_prefix`]es. Also says whether those were
/// all different, in which case no two keys are equal and the order is
/// remembered for the next sort (see [`SortMemo`]).
fn sort_small(prefixes: &[u64], entries: &[Entry], text: &str) -> ([u8; SMALL_SORT], bool) {
    let n = prefixes.len();
    let mut order = [0u8; SMALL_SORT];
    let mut sorted = [0u64; SMALL_SORT];
    for i in 0..n {
        let item_prefix = prefixes[i];
        let mut j = i;
        while j > 0
            && (sorted[j - 1] > item_prefix
                || (sorted[j - 1] == item_prefix
                    && entries[order[j - 1] as usize].key_bytes(text) > entries[i].key_bytes(text)))
        {
            order[j] = order[j - 1];
            sorted[j] = sorted[j - 1];
            j -= 1;
        }
        order[j] = i as u8;
        sorted[j] = item_prefix;
    }
    let distinct = sorted[..n].windows(2).all(|w| w[0] != w[1]);
    if distinct {
        SortMemo::remember(prefixes, &order);
    }
    (order, distinct)
}

/// The order the last small sort with all-different key prefixes put its
/// entries in. Lines from one call site of a structured logger carry the
/// same keys in the same order, and when a record's prefixes are the same
/// as the last one's, so is its order: the prefixes alone decide it, since
/// they differ. Sorting is then one comparison and one move per key.
struct SortMemo {
    len: usize,
    prefixes: [u64; SMALL_SORT],
    order: [u8; SMALL_SORT],
}

thread_local! {
    static LAST_SORT: std::cell::RefCell<SortMemo> =
        const { std::cell::RefCell::new(SortMemo { len: usize::MAX, prefixes: [0; SMALL_SORT], order: [0; SMALL_SORT] }) };
}

impl SortMemo {
    /// The remembered order, if the last one was for keys with these prefixes.
    fn recall(prefixes: &[u64]) -> Option<[u8; SMALL_SORT]> {
        LAST_SORT.with(|memo| {
            let memo = memo.borrow();
            // Differences or'ed together rather than a slice comparison,
            // which in wasm is a byte-by-byte `memcmp`.
            let same = memo.len == prefixes.len()
                && prefixes.iter().zip(&memo.prefixes).fold(0, |acc, (p, m)| acc | (p ^ m)) == 0;
            same.then_some(memo.order)
        })
    }

    fn remember(prefixes: &[u64], order: &[u8; SMALL_SORT]) {
        LAST_SORT.with(|memo| {
            let mut memo = memo.borrow_mut();
            memo.len = prefixes.len();
            memo.prefixes[..prefixes.len()].copy_from_slice(prefixes);
            memo.order = *order;
        });
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for Attributes {
    /// Later pairs win over earlier ones and over existing keys.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let before = self.entries.len();
        let iter = iter.into_iter();
        self.entries.reserve(iter.size_hint().0);
        for (k, v) in iter {
            if let Some(entry) = self.append(k.as_ref(), v.as_ref()) {
                self.entries.push(entry);
            }
        }
        if self.entries.len() != before {
            self.sort_and_dedup(before);
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut a = Self::new();
        a.extend(iter);
        a
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<Vec<(K, V)>> for Attributes {
    fn from(pairs: Vec<(K, V)>) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Attributes {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl PartialEq for Attributes {
    /// Equal when they hold the same keys and values, however the text is laid out.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Attributes {}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = str;

    /// The value of `key`; panics when there is none, as `HashMap`'s index does.
    fn index(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("no attribute {key:?}"))
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator of [`Attributes::iter`]: `(key, value)` in key order.
#[derive(Clone)]
pub struct Iter<'a> {
    text: &'a str,
    entries: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next().map(|e| (e.key(self.text), e.value(self.text)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(a: &Attributes) -> Vec<String> {
        a.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn stays_sorted_and_later_values_win() {
        let mut a = Attributes::new();
        assert_eq!(a.insert("b", "1"), None);
        a.insert("a", "1");
        a.extend([("c", "1"), ("b", "2"), ("b", "3")]);
        assert_eq!(pairs(&a), ["a=1", "b=3", "c=1"]);
        assert_eq!(a.insert("a", "2"), Some("1".into()));
        assert_eq!(a.remove("c"), Some("1".into()));
        assert_eq!(a.remove("c"), None);
        assert_eq!((a.get("a"), a.get("b"), a.get("c")), (Some("2"), Some("3"), None));
        assert_eq!(a, Attributes::from([("b", "3"), ("a", "2")]), "equality ignores the text's layout");
    }

    #[test]
    fn packed_form_round_trips_without_copying_the_text() {
        let a = Attributes::from([("level", "info"), ("k8s.pod.name", "web"), ("é", "ü")]);
        let (text, spans) = a.clone().into_packed();
        assert_eq!(text, concat!("level", "info", "k8s.pod.name", "web", "é", "ü"), "the text as it was written");
        assert_eq!(spans, [9, 12, 3, 0, 5, 4, 24, 2, 2], "spans in key order");
        assert_eq!(Attributes::from_packed(text, &spans).unwrap(), a);
        // Unsorted and repeated keys from the other side: sorted, the last one wins.
        let b = Attributes::from_packed("bxaybz".into(), &[0, 1, 1, 2, 1, 1, 4, 1, 1]).unwrap();
        assert_eq!(pairs(&b), ["a=y", "b=z"]);
        assert_eq!(b.into_packed(), ("bxaybz".to_string(), vec![2, 1, 1, 4, 1, 1]));
    }

    #[test]
    fn bad_packed_spans_are_errors_that_say_where() {
        let err = |text: &str, spans: &[u32]| Attributes::from_packed(text.into(), spans).unwrap_err().to_string();
        assert!(err("ab", &[0, 1]).contains("each attribute needs three"));
        assert!(
            err("ab", &[0, 1, 1, 2, 1, 0]).contains("attribute 1: key of 1 and value of 0 bytes from byte 2 run past")
        );
        assert!(err("aé", &[0, 2, 1]).contains("attribute 0: its value splits a UTF-8 character at byte 2"));
        assert!(err("ab", &[u32::MAX, u32::MAX, u32::MAX]).contains("run past"));
    }

    proptest::proptest! {
        /// Whatever order and repeats keys come in (short keys, shared
        /// prefixes, NUL bytes, past the small-sort size): the map a
        /// `BTreeMap` with last-write-wins would be.
        #[test]
        fn extend_matches_a_btreemap(pairs in proptest::collection::vec(("[ab\\x00é]{0,10}", "[xy]{0,3}"), 0..48)) {
            let mut model = std::collections::BTreeMap::new();
            for (k, v) in &pairs {
                model.insert(k.clone(), v.clone());
            }
            let mut a = Attributes::new();
            a.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let want: Vec<(String, String)> = model.into_iter().collect();
            proptest::prop_assert_eq!(a.to_vec(), want.clone());
            // In two steps: the second sorts onto attributes already sorted.
            let (first, second) = pairs.split_at(pairs.len() / 2);
            let mut b = Attributes::new();
            b.extend(first.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            b.extend(second.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            proptest::prop_assert_eq!(b.to_vec(), want);
            // The same keys in the same order again, other values: the
            // remembered order (when the prefixes differed) must still hold.
            let mut model = std::collections::BTreeMap::new();
            let mut c = Attributes::new();
            for (i, (k, _)) in pairs.iter().enumerate() {
                model.insert(k.clone(), i.to_string());
                c.writer().push(k, &i.to_string());
            }
            let mut d = Attributes::new();
            let mut w = d.writer();
            for (i, (k, _)) in pairs.iter().enumerate() {
                w.push(k, &i.to_string());
            }
            drop(w);
            let want: Vec<(String, String)> = model.into_iter().collect();
            proptest::prop_assert_eq!(c.to_vec(), want.clone());
            proptest::prop_assert_eq!(d.to_vec(), want);
        }
    }

    #[test]
    fn short_and_long_strings_append_whole() {
        let mut text = String::from("é");
        let mut want = text.clone();
        for n in 0..40 {
            let s: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF".chars().take(n).collect();
            append(&mut text, &s);
            want.push_str(&s);
            assert_eq!(text, want, "after {n} bytes");
        }
        append(&mut text, "ü€");
        want.push_str("ü€");
        assert_eq!(text, want);
    }

    #[test]
    fn key_prefixes_order_as_the_keys_do() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            b"abcde",
            b"abcdef",
            b"abcdefg",
            b"abcdefgh",
            b"b",
            b"ts",
            b"level",
            b"\xff\xfe\xfd\xfc\xfb",
        ];
        for key in &keys {
            let mut padded = [0u8; 8];
            for (p, b) in padded.iter_mut().zip(key.iter()) {
                *p = *b;
            }
            assert_eq!(key_prefix(key), u64::from_be_bytes(padded), "{key:?}");
        }
    }

    #[test]
    fn a_writer_adds_in_any_order_and_discard_takes_it_all_back() {
        let mut a = Attributes::from([("b", "old"), ("z", "1")]);
        {
            let mut w = a.writer();
            w.push("c", "x");
            w.push_with(&["app.", "n"], |v| {
                use std::fmt::Write;
                write!(v, "{}", 42).unwrap()
            });
            w.push("b", "new");
            w.push("c", "y");
        }
        assert_eq!(pairs(&a), ["app.n=42", "b=new", "c=y", "z=1"]);
        let before = a.clone();
        let mut w = a.writer();
        w.push("a", "1");
        w.push("b", "2");
        w.discard();
        w.push("c", "kept");
        drop(w);
        let mut want = before.clone();
        want.insert("c", "kept");
        assert_eq!(a, want);
        assert_eq!(a.text.len(), before.text.len() + "ckept".len(), "discarded text is gone too");
    }

    #[test]
    fn a_remembered_order_serves_keys_that_differ_after_eight_bytes() {
        let sorted = |keys: &[&str]| {
            let mut a = Attributes::new();
            let mut w = a.writer();
            for k in keys {
                w.push(k, "v");
            }
            drop(w);
            a.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(sorted(&["zz", "request_id_b", "level"]), ["level", "request_id_b", "zz"]);
        // Same prefixes, so the remembered order is used: still right.
        let second = ["zz", "request_ip_a", "level"];
        let prefixes: Vec<u64> = second.iter().map(|k| key_prefix(k.as_bytes())).collect();
        assert!(SortMemo::recall(&prefixes).is_some(), "the first sort was remembered");
        assert_eq!(sorted(&second), ["level", "request_ip_a", "zz"]);
        // Equal prefixes within one record are compared in full, and deduplicated.
        assert_eq!(sorted(&["request_id_b", "request_id_a", "request_id_b"]), ["request_id_a", "request_id_b"]);
    }

    #[test]
    fn rewrites_do_not_grow_the_text_without_bound() {
        let mut a = Attributes::new();
        for i in 0..10_000 {
            a.insert("counter", &i.to_string());
            a.insert(&format!("k{}", i % 3), "value");
        }
        assert_eq!(a.get("counter"), Some("9999"));
        assert_eq!(a.len(), 4);
        assert!(a.text.len() < 200, "text is {} bytes", a.text.len());
        a.retain(|k, _| k != "counter");
        assert_eq!(pairs(&a), ["k0=value", "k1=value", "k2=value"]);
    }
}
