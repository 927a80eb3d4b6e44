//! The in-memory head: every series still receiving samples, its closed XOR
//! chunks and its open chunk, plus the label index. Chunks never straddle a
//! block boundary, so cutting a block moves whole chunks and needs no
//! re-encoding.

use crate::chunk::{self, XorAppender};
use crate::encoding::{Decoder, put_str, put_uvarint};
use crate::index::Postings;
use crate::{Label, Labels, Matcher, SeriesSamples};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// Why a sample was not appended. The caller counts these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample: {t} is before the series' last sample at {last}")]
    OutOfOrder { t: i64, last: i64 },
    #[error("duplicate sample at {t} with a different value")]
    Duplicate { t: i64 },
    #[error("sample at {t} is older than the head's lower bound {min_valid}")]
    TooOld { t: i64, min_valid: i64 },
    #[error("unknown series id {0}")]
    UnknownSeries(u64),
}

/// Checks a sample against the series' last one. `Ok(false)` is an exact
/// duplicate (same timestamp, same value bits): accepted, but nothing to do.
pub fn validate(last: Option<(i64, u64)>, min_valid: i64, t: i64, v: f64) -> Result<bool, AppendError> {
    if t < min_valid {
        return Err(AppendError::TooOld { t, min_valid });
    }
    match last {
        Some((lt, _)) if t < lt => Err(AppendError::OutOfOrder { t, last: lt }),
        Some((lt, lv)) if t == lt => {
            if lv == v.to_bits() {
                Ok(false)
            } else {
                Err(AppendError::Duplicate { t })
            }
        }
        _ => Ok(true),
    }
}

/// A closed chunk. Shared so that cutting a block can snapshot it without a
/// copy while appends continue.
#[derive(Debug, Clone)]
pub struct HeadChunk {
    pub mint: i64,
    pub maxt: i64,
    pub data: Arc<[u8]>,
}

#[derive(Debug)]
struct OpenChunk {
    mint: i64,
    maxt: i64,
    app: XorAppender,
}

impl OpenChunk {
    fn close(self) -> HeadChunk {
        HeadChunk { mint: self.mint, maxt: self.maxt, data: Arc::from(self.app.into_bytes()) }
    }
}

/// A label set packed into one allocation (`n | (name, value)*`,
/// length-prefixed): about a quarter of the memory of `Labels`' separate
/// Strings, which dominate the per-series cost.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackedLabels(Box<[u8]>);

impl PackedLabels {
    fn pack(labels: &Labels) -> Self {
        let mut b = Vec::new();
        put_uvarint(&mut b, labels.len() as u64);
        for l in labels {
            put_str(&mut b, &l.name);
            put_str(&mut b, &l.value);
        }
        Self(b.into_boxed_slice())
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut d = Decoder::new(&self.0);
        let n = d.uvarint().unwrap_or(0);
        (0..n).map_while(move |_| Some((d.str().ok()?, d.str().ok()?)))
    }

    fn unpack(&self) -> Labels {
        Labels::new(self.pairs().map(|(n, v)| Label { name: n.to_owned(), value: v.to_owned() }).collect())
    }

    fn matches(&self, labels: &Labels) -> bool {
        let mut it = labels.iter();
        self.pairs().all(|(n, v)| it.next().is_some_and(|l| l.name == n && l.value == v)) && it.next().is_none()
    }

    fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

#[derive(Debug)]
struct MemSeries {
    labels: PackedLabels,
    chunks: Vec<HeadChunk>,
    open: Option<OpenChunk>,
    /// Last sample (t, value bits); outlives the chunks so ordering is still
    /// enforced right after a block cut.
    last: Option<(i64, u64)>,
}

impl MemSeries {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.open.is_none()
    }

    fn time_range(&self) -> Option<(i64, i64)> {
        let first = self.chunks.first().map(|c| c.mint).or(self.open.as_ref().map(|o| o.mint))?;
        let last = self.open.as_ref().map(|o| o.maxt).or(self.chunks.last().map(|c| c.maxt))?;
        Some((first, last))
    }

    /// (mint, maxt, bytes) of every chunk overlapping `[mint, maxt]`.
    fn chunks_in(&self, mint: i64, maxt: i64) -> impl Iterator<Item = (i64, i64, &[u8])> {
        let closed = self.chunks.iter().map(|c| (c.mint, c.maxt, &c.data[..]));
        let open = self.open.iter().map(|o| (o.mint, o.maxt, o.app.bytes()));
        closed.chain(open).filter(move |(lo, hi, _)| *lo <= maxt && *hi >= mint)
    }
}

/// Counts from [`Head::truncate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TruncateStats {
    pub chunks: usize,
    pub samples: u64,
    pub series: usize,
}

/// The in-memory part of the store.
#[derive(Debug)]
pub struct Head {
    chunk_range: i64,
    min_valid: i64,
    /// Boxed so the table's spare capacity costs 16 bytes per slot, not 150.
    series: HashMap<u64, Box<MemSeries>>,
    /// Label hash → id. Collisions are rare, so they live in a side table
    /// instead of costing every series a Vec.
    by_hash: HashMap<u64, u64>,
    collisions: HashMap<u64, Vec<u64>>,
    postings: Postings,
    next_id: u64,
    samples: u64,
}

fn hash_labels(labels: &Labels) -> u64 {
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

impl Head {
    /// `chunk_range` is the block range in ms; samples before `min_valid`
    /// are already in blocks and are rejected.
    pub fn new(chunk_range: i64, min_valid: i64) -> Self {
        Self {
            chunk_range: chunk_range.max(1),
            min_valid,
            series: HashMap::new(),
            by_hash: HashMap::new(),
            collisions: HashMap::new(),
            postings: Postings::new(),
            next_id: 1,
            samples: 0,
        }
    }

    /// Samples before this time are rejected.
    pub fn min_valid(&self) -> i64 {
        self.min_valid
    }

    /// Raises (never lowers) the lower bound.
    pub fn set_min_valid(&mut self, t: i64) {
        self.min_valid = self.min_valid.max(t);
    }

    /// Series in memory.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Samples in memory.
    pub fn num_samples(&self) -> u64 {
        self.samples
    }

    /// The id of the series with exactly `labels`.
    pub fn get_id(&self, labels: &Labels) -> Option<u64> {
        let h = hash_labels(labels);
        let id = *self.by_hash.get(&h)?;
        if self.series.get(&id).is_some_and(|s| s.labels.matches(labels)) {
            return Some(id);
        }
        self.collisions
            .get(&h)?
            .iter()
            .copied()
            .find(|id| self.series.get(id).is_some_and(|s| s.labels.matches(labels)))
    }

    /// A fresh id for a series about to be created.
    pub fn reserve_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Makes sure future ids are above `id` (used during WAL replay, where
    /// ids come from the log).
    pub fn observe_id(&mut self, id: u64) {
        self.next_id = self.next_id.max(id.saturating_add(1));
    }

    /// Creates a series under `id` and returns the id that now holds
    /// `labels`: an existing one if the labels are already known (replay
    /// after truncation may see a series twice).
    pub fn insert_series(&mut self, id: u64, labels: Labels) -> u64 {
        if let Some(existing) = self.get_id(&labels) {
            return existing;
        }
        if self.series.contains_key(&id) {
            return id;
        }
        self.observe_id(id);
        let h = hash_labels(&labels);
        match self.by_hash.entry(h) {
            Entry::Occupied(_) => self.collisions.entry(h).or_default().push(id),
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
        }
        self.postings.add(id, &labels);
        let labels = PackedLabels::pack(&labels);
        self.series.insert(id, Box::new(MemSeries { labels, chunks: Vec::new(), open: None, last: None }));
        id
    }

    /// Last sample of a series as (t, value bits).
    pub fn last_sample(&self, id: u64) -> Option<(i64, u64)> {
        self.series.get(&id)?.last
    }

    /// Appends a sample; `Ok(false)` for an exact duplicate.
    pub fn append(&mut self, id: u64, t: i64, v: f64) -> Result<bool, AppendError> {
        let range = self.chunk_range;
        let s = self.series.get_mut(&id).ok_or(AppendError::UnknownSeries(id))?;
        if !validate(s.last, self.min_valid, t, v)? {
            return Ok(false);
        }
        let cut = s.open.as_ref().is_some_and(|o| o.app.is_full() || o.mint.div_euclid(range) != t.div_euclid(range));
        if cut && let Some(o) = s.open.take() {
            s.chunks.push(o.close());
        }
        let open = s.open.get_or_insert_with(|| OpenChunk { mint: t, maxt: t, app: XorAppender::new() });
        open.app.append(t, v);
        open.maxt = t;
        s.last = Some((t, v.to_bits()));
        self.samples += 1;
        Ok(true)
    }

    /// Oldest and newest sample time in the head.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.series.values().filter_map(|s| s.time_range()).reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Matching series with their samples in `[mint, maxt]`.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let mut out = Vec::new();
        for id in self.postings.select(matchers) {
            let Some(s) = self.series.get(&id) else { continue };
            let mut samples = Vec::new();
            for (_, _, bytes) in s.chunks_in(mint, maxt) {
                for r in chunk::XorIter::new(bytes) {
                    match r {
                        Ok(x) if x.t >= mint && x.t <= maxt => samples.push(x),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(series = %s.labels.unpack(), error = %e, "undecodable head chunk");
                            break;
                        }
                    }
                }
            }
            if !samples.is_empty() {
                out.push(SeriesSamples { labels: s.labels.unpack(), samples });
            }
        }
        out
    }

    /// Labels of matching series with chunks overlapping `[mint, maxt]`.
    pub fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        self.postings
            .select(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(&id))
            .filter(|s| s.chunks_in(mint, maxt).next().is_some())
            .map(|s| s.labels.unpack())
            .collect()
    }

    /// Closes open chunks that end before `maxt` and returns, per series,
    /// every chunk entirely before `maxt`. Call with `min_valid >= maxt`
    /// so no sample can join those chunks afterwards.
    pub fn chunks_before(&mut self, maxt: i64) -> Vec<(Labels, Vec<HeadChunk>)> {
        let mut out = Vec::new();
        for s in self.series.values_mut() {
            if s.open.as_ref().is_some_and(|o| o.maxt < maxt)
                && let Some(o) = s.open.take()
            {
                s.chunks.push(o.close());
            }
            let chunks: Vec<HeadChunk> = s.chunks.iter().filter(|c| c.maxt < maxt).cloned().collect();
            if !chunks.is_empty() {
                out.push((s.labels.unpack(), chunks));
            }
        }
        out
    }

    /// Drops chunks that end before `before` and series left without data.
    pub fn truncate(&mut self, before: i64) -> TruncateStats {
        let mut stats = TruncateStats::default();
        for s in self.series.values_mut() {
            s.chunks.retain(|c| {
                let keep = c.maxt >= before;
                if !keep {
                    stats.chunks += 1;
                    stats.samples += u64::from(chunk::num_samples(&c.data).unwrap_or(0));
                }
                keep
            });
        }
        let dead: Vec<u64> = self.series.iter().filter(|(_, s)| s.is_empty()).map(|(&id, _)| id).collect();
        let removed: Vec<(u64, Labels)> =
            dead.iter().filter_map(|id| self.series.remove(id).map(|s| (*id, s.labels.unpack()))).collect();
        self.postings.remove(removed.iter().map(|(id, l)| (*id, l)));
        for (id, l) in &removed {
            self.unhash(*id, l);
        }
        stats.series = removed.len();
        if !removed.is_empty() {
            // Tables never shrink on their own; after a cut most of a
            // churned head may be gone.
            self.series.shrink_to_fit();
            self.by_hash.shrink_to_fit();
            self.collisions.shrink_to_fit();
            self.postings.shrink_to_fit();
        }
        self.samples = self.samples.saturating_sub(stats.samples);
        stats
    }

    fn unhash(&mut self, id: u64, labels: &Labels) {
        let h = hash_labels(labels);
        if let Some(list) = self.collisions.get_mut(&h) {
            list.retain(|&x| x != id);
            if self.by_hash.get(&h) == Some(&id)
                && let Some(next) = list.pop()
            {
                self.by_hash.insert(h, next);
            }
            if list.is_empty() {
                self.collisions.remove(&h);
            }
            return;
        }
        if self.by_hash.get(&h) == Some(&id) {
            self.by_hash.remove(&h);
        }
    }

    /// Every live series, for the WAL checkpoint.
    pub fn live_series(&self) -> Vec<(u64, Labels)> {
        let mut v: Vec<(u64, Labels)> = self.series.iter().map(|(&id, s)| (id, s.labels.unpack())).collect();
        v.sort_unstable_by_key(|(id, _)| *id);
        v
    }

    /// Rough heap bytes used by the head (series structs, labels, chunks,
    /// maps, index). Estimated from capacities, not measured.
    pub fn memory_estimate(&self) -> usize {
        let per_entry = std::mem::size_of::<(u64, Box<MemSeries>)>() + 1 + std::mem::size_of::<(u64, u64)>() + 1;
        let series: usize = self
            .series
            .values()
            .map(|s| {
                let labels = s.labels.heap_bytes() + std::mem::size_of::<MemSeries>();
                let chunks: usize = s.chunks.iter().map(|c| c.data.len() + 16 + std::mem::size_of::<HeadChunk>()).sum();
                labels
                    + chunks
                    + s.chunks.capacity().saturating_sub(s.chunks.len()) * std::mem::size_of::<HeadChunk>()
                    + s.open.as_ref().map_or(0, |o| o.app.capacity())
            })
            .sum();
        // hashbrown keeps tables at most 7/8 full.
        series + self.series.capacity() * per_entry + self.postings.memory_estimate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::MAX_SAMPLES_PER_CHUNK;

    const H2: i64 = 2 * 3600 * 1000;

    fn labels(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
    }

    #[test]
    fn rejects_out_of_order_and_conflicting_duplicates() {
        let mut h = Head::new(H2, 0);
        let id = h.reserve_id();
        assert_eq!(h.insert_series(id, labels(1)), id);
        assert_eq!(h.append(id, 10, 1.0), Ok(true));
        assert_eq!(h.append(id, 10, 1.0), Ok(false));
        assert_eq!(h.append(id, 10, 2.0), Err(AppendError::Duplicate { t: 10 }));
        assert_eq!(h.append(id, 5, 2.0), Err(AppendError::OutOfOrder { t: 5, last: 10 }));
        assert_eq!(h.append(99, 20, 2.0), Err(AppendError::UnknownSeries(99)));
        h.set_min_valid(100);
        assert_eq!(h.append(id, 50, 2.0), Err(AppendError::TooOld { t: 50, min_valid: 100 }));
        assert_eq!(h.num_samples(), 1);
    }

    #[test]
    fn chunks_close_when_full_or_at_a_block_boundary() {
        let mut h = Head::new(H2, 0);
        let id = h.insert_series(1, labels(1));
        for i in 0..(MAX_SAMPLES_PER_CHUNK as i64 + 5) {
            h.append(id, i * 15_000, i as f64).unwrap();
        }
        h.append(id, H2, 0.0).unwrap();
        let s = &h.series[&id];
        assert_eq!(s.chunks.len(), 2);
        assert_eq!(chunk::num_samples(&s.chunks[0].data), Ok(120));
        assert!(s.chunks[1].maxt < H2);
        assert_eq!(s.open.as_ref().map(|o| o.mint), Some(H2));
        let got = h.select(&[Matcher::equal("i", "1")], 0, i64::MAX);
        assert_eq!(got[0].samples.len(), 126);
        assert_eq!(h.select(&[], 15_000, 30_000)[0].samples.len(), 2);
    }

    #[test]
    fn lookup_by_labels_and_truncation_gc() {
        let mut h = Head::new(H2, 0);
        for i in 0..3 {
            let id = h.reserve_id();
            h.insert_series(id, labels(i));
            h.append(id, i as i64 * H2, 1.0).unwrap();
        }
        assert_eq!(h.get_id(&labels(1)), Some(2));
        assert_eq!(h.insert_series(50, labels(1)), 2);
        assert_eq!(h.time_range(), Some((0, 2 * H2)));
        h.set_min_valid(H2);
        let cut = h.chunks_before(H2);
        assert_eq!(cut.len(), 1);
        let st = h.truncate(H2);
        assert_eq!(st, TruncateStats { chunks: 1, samples: 1, series: 1 });
        assert_eq!(h.get_id(&labels(0)), None);
        assert_eq!(h.num_series(), 2);
        assert!(h.select(&[Matcher::equal("i", "0")], 0, i64::MAX).is_empty());
        assert_eq!(h.series(&[], 0, i64::MAX).len(), 2);
        assert_eq!(h.reserve_id(), 4);
    }

    #[test]
    fn memory_per_series_stays_well_under_a_kilobyte_of_overhead() {
        let mut h = Head::new(H2, 0);
        for i in 0..1000 {
            let l = Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total".to_string()),
                ("instance", "localhost:9100".to_string()),
                ("job", "node".to_string()),
                ("cpu", (i % 16).to_string()),
                ("mode", format!("mode{}", i / 16)),
            ]);
            let id = h.reserve_id();
            h.insert_series(id, l);
            h.append(id, 0, 1.0).unwrap();
        }
        // Measured ~470 B, of which 128 B is the open chunk's buffer.
        let per_series = h.memory_estimate() / 1000;
        println!("head overhead: ~{per_series} B/series with one sample");
        assert!(per_series < 600, "{per_series}");
    }
}
