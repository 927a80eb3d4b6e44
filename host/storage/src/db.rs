//! The store: WAL + head + blocks behind one thread-safe handle.
//!
//! Crash guarantee: a commit is handed to the OS in one `write` before it
//! is visible in the head, so a process crash loses nothing that was
//! committed. The WAL is fsynced when a commit finds the last fsync older
//! than [`DbOptions::wal_fsync_interval`], and by a background thread every
//! interval, so an OS crash or power loss loses at most the last interval of
//! samples. A zero interval fsyncs on every commit.

use crate::block::{Block, BlockError, BlockMeta, IndexCache};
use crate::head::{AppendError, Head, validate};
use crate::retention::{self, Retention};
use crate::wal::{self, Record, RefSample, ReplayReport, Wal, WalError};
use crate::{Labels, Matcher, Querier, Sample, SeriesSamples};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

const BLOCKS_DIR: &str = "blocks";
const WAL_DIR: &str = "wal";

/// Errors of the store as a whole.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("the store was opened read-only")]
    ReadOnly,
}

/// Tuning knobs; [`Default`] gives Prometheus-like values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// Length of a block; blocks are aligned to multiples of it.
    pub block_range: Duration,
    /// Blocks ending longer ago than this are deleted. Zero keeps them.
    pub retention_time: Duration,
    /// Total block bytes to keep; the oldest blocks go first. Zero means
    /// unlimited.
    pub retention_size: u64,
    /// WAL segment size before rotation.
    pub wal_segment_size: u64,
    /// Longest time committed samples may sit in the WAL without fsync.
    /// Zero fsyncs on every commit.
    pub wal_fsync_interval: Duration,
    /// Block indexes kept in memory (most recently queried first).
    pub index_cache_blocks: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            block_range: Duration::from_secs(2 * 3600),
            retention_time: Duration::from_secs(15 * 24 * 3600),
            retention_size: 0,
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_fsync_interval: Duration::from_secs(1),
            index_cache_blocks: 4,
        }
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What happened to one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendReport {
    pub appended: usize,
    /// Same timestamp and value as the series' last sample: ignored, not an error.
    pub duplicates: usize,
    pub new_series: usize,
    pub out_of_order: usize,
    /// Same timestamp as the last sample but a different value.
    pub conflicting: usize,
    /// Older than the head (that range is already persisted).
    pub too_old: usize,
    /// Empty label sets.
    pub invalid: usize,
    /// Valid samples not stored because the WAL write failed (logged) or the
    /// store is read-only.
    pub wal_failed: usize,
}

impl std::fmt::Display for AppendReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "appended={} duplicates={} new_series={} out_of_order={} conflicting={} too_old={} invalid={} wal_failed={}",
            self.appended,
            self.duplicates,
            self.new_series,
            self.out_of_order,
            self.conflicting,
            self.too_old,
            self.invalid,
            self.wal_failed
        )
    }
}

impl AppendReport {
    /// Samples refused with an error.
    pub fn rejected(&self) -> usize {
        self.out_of_order + self.conflicting + self.too_old + self.invalid + self.wal_failed
    }

    fn count(&mut self, e: &AppendError) {
        match e {
            AppendError::OutOfOrder { .. } => self.out_of_order += 1,
            AppendError::Duplicate { .. } => self.conflicting += 1,
            AppendError::TooOld { .. } => self.too_old += 1,
            AppendError::UnknownSeries(_) => self.invalid += 1,
        }
    }
}

/// What [`Db::maintenance`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaintenanceReport {
    pub blocks_written: Vec<BlockMeta>,
    pub blocks_deleted: Vec<BlockMeta>,
    pub head_series_removed: usize,
    pub wal_segments_removed: usize,
}

/// One block as listed by [`DbStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// Directory name, `<mint>-<maxt>`.
    pub name: String,
    /// Inclusive lower bound, ms.
    pub min_time: i64,
    /// Exclusive upper bound, ms.
    pub max_time: i64,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    /// Chunks and index bytes.
    pub bytes: u64,
}

impl BlockInfo {
    fn new(b: &Block) -> Self {
        let m = b.meta();
        Self {
            name: b.dir().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            min_time: m.mint,
            max_time: m.maxt,
            series: m.num_series,
            chunks: m.num_chunks,
            samples: m.num_samples,
            bytes: m.bytes,
        }
    }
}

/// A snapshot of the store's size.
#[derive(Debug, Clone, PartialEq)]
pub struct DbStats {
    pub head_series: usize,
    pub head_samples: u64,
    /// Oldest sample time in the head.
    pub head_min_time: Option<i64>,
    /// Newest sample time in the head.
    pub head_max_time: Option<i64>,
    /// Estimated heap bytes of the head.
    pub head_memory_bytes: usize,
    /// Blocks, oldest first.
    pub blocks: Vec<BlockInfo>,
    pub block_samples: u64,
    pub block_bytes: u64,
    pub wal_bytes: u64,
    /// Blocks plus WAL.
    pub bytes_on_disk: u64,
    /// Block bytes per block sample (0 without blocks).
    pub bytes_per_sample: f64,
    /// The WAL replay done by [`Db::open`].
    pub replay: ReplayReport,
}

/// Collects samples for one [`Db::append_batch`] call.
#[derive(Debug)]
pub struct Appender<'a> {
    db: &'a Db,
    batch: Vec<(Labels, i64, f64)>,
}

impl Appender<'_> {
    /// Adds a sample (`t` in ms) to the batch.
    pub fn append(&mut self, labels: Labels, t: i64, v: f64) {
        self.batch.push((labels, t, v));
    }

    /// Writes the batch to the WAL in one go, then to the head.
    pub fn commit(self) -> AppendReport {
        self.db.append_batch(&self.batch)
    }
}

#[derive(Debug)]
struct WalState {
    /// `None` when opened read-only.
    wal: Option<Wal>,
    last_sync: Instant,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: DbOptions,
    head: RwLock<Head>,
    wal: Mutex<WalState>,
    blocks: RwLock<Vec<Arc<Block>>>,
    index_cache: IndexCache,
    /// Serialises maintenance runs (block cuts, WAL truncation, retention).
    maintenance: Mutex<()>,
    replay: ReplayReport,
    /// Oldest segment each WAL consumer still needs, by hold id.
    wal_holds: Arc<Mutex<BTreeMap<u64, u64>>>,
    next_hold: AtomicU64,
    /// Newest sample time written to the WAL (replayed or appended).
    newest_t: AtomicI64,
}

/// Keeps the WAL segments a consumer (a remote-write queue) has not
/// finished with from being truncated. Dropping it releases them.
#[derive(Debug)]
pub struct WalHold {
    holds: Arc<Mutex<BTreeMap<u64, u64>>>,
    id: u64,
}

impl WalHold {
    /// Segments from `segment` on are still needed; older ones may go.
    pub fn keep_from(&self, segment: u64) {
        lock(&self.holds).insert(self.id, segment);
    }
}

impl Drop for WalHold {
    fn drop(&mut self) {
        lock(&self.holds).remove(&self.id);
    }
}

/// A poisoned lock only means another thread panicked mid-operation; the
/// data is still structurally valid, so carry on rather than panic too.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    fn sync_wal(&self, only_if_due: bool) -> Result<(), WalError> {
        let mut w = lock(&self.wal);
        if only_if_due && w.last_sync.elapsed() < self.opts.wal_fsync_interval {
            return Ok(());
        }
        if let Some(wal) = w.wal.as_mut() {
            wal.sync()?;
        }
        w.last_sync = Instant::now();
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.sync_wal(false) {
            tracing::error!(error = %e, "final wal fsync failed");
        }
    }
}

/// The embedded time-series database. Cheap to share: wrap in an `Arc`.
#[derive(Debug)]
pub struct Db {
    inner: Arc<Inner>,
}

impl Db {
    /// Opens (or creates) a store in `dir`: loads block metas, replays the
    /// WAL into the head (streaming, one record at a time) and starts the
    /// WAL fsync thread. A damaged WAL is cut and reported, never fatal.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Self, StorageError> {
        Self::open_mode(dir, opts, false)
    }

    /// Opens a store without writing anything (no WAL repair, no new
    /// segment, no fsync thread), e.g. for `wasmon tsdb` next to a running
    /// agent. Appends are refused (counted as `wal_failed`) and
    /// [`Db::maintenance`] returns [`StorageError::ReadOnly`].
    pub fn open_read_only(dir: &Path, opts: DbOptions) -> Result<Self, StorageError> {
        Self::open_mode(dir, opts, true)
    }

    fn open_mode(dir: &Path, opts: DbOptions, read_only: bool) -> Result<Self, StorageError> {
        let blocks_dir = dir.join(BLOCKS_DIR);
        if !read_only {
            fs::create_dir_all(&blocks_dir).map_err(|source| StorageError::Io { path: blocks_dir.clone(), source })?;
        }
        let blocks = if blocks_dir.is_dir() { load_blocks(&blocks_dir, !read_only)? } else { Vec::new() };
        let min_valid = blocks.iter().map(|b| b.meta().maxt).max().unwrap_or(i64::MIN);
        let range = duration_ms(opts.block_range).max(1);
        let mut head = Head::new(range, min_valid);

        let mut aliases: HashMap<u64, u64> = HashMap::new();
        let mut counts = AppendReport::default();
        let mut unknown = 0u64;
        let mut newest_t = i64::MIN;
        let on_record = |rec| match rec {
            Record::Series(series) => {
                for s in series {
                    head.observe_id(s.id);
                    let id = head.insert_series(s.id, s.labels);
                    if id != s.id {
                        aliases.insert(s.id, id);
                    }
                }
            }
            Record::Samples(samples) => {
                for s in samples {
                    head.observe_id(s.id);
                    newest_t = newest_t.max(s.t);
                    let id = aliases.get(&s.id).copied().unwrap_or(s.id);
                    match head.append(id, s.t, s.v) {
                        Ok(true) => counts.appended += 1,
                        Ok(false) => counts.duplicates += 1,
                        Err(AppendError::UnknownSeries(_)) => unknown += 1,
                        Err(e) => counts.count(&e),
                    }
                }
            }
        };
        let wal_dir = dir.join(WAL_DIR);
        let (wal, replay) = if read_only {
            (None, Wal::replay_read_only(&wal_dir, on_record)?)
        } else {
            let (wal, replay) = Wal::open(&wal_dir, opts.wal_segment_size, on_record)?;
            (Some(wal), replay)
        };
        // Series whose samples all turned out to be in blocks already.
        head.truncate(min_valid);
        if !replay.is_clean() {
            tracing::warn!(
                dir = %dir.display(),
                damage = replay.damage.as_deref().unwrap_or(""),
                dropped_bytes = replay.dropped_bytes,
                dropped_records = replay.dropped_records,
                dropped_segments = replay.dropped_segments,
                "wal was damaged; cut it at the last good record"
            );
        }
        tracing::info!(
            records = replay.records,
            samples = counts.appended,
            series = head.num_series(),
            already_persisted = counts.too_old,
            rejected = counts.out_of_order + counts.conflicting,
            unknown_series = unknown,
            blocks = blocks.len(),
            "storage opened"
        );

        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            index_cache: IndexCache::new(opts.index_cache_blocks),
            opts,
            head: RwLock::new(head),
            wal: Mutex::new(WalState { wal, last_sync: Instant::now() }),
            blocks: RwLock::new(blocks),
            maintenance: Mutex::new(()),
            replay,
            wal_holds: Arc::default(),
            next_hold: AtomicU64::new(0),
            newest_t: AtomicI64::new(newest_t),
        });
        if !read_only && !inner.opts.wal_fsync_interval.is_zero() {
            spawn_syncer(Arc::downgrade(&inner), inner.opts.wal_fsync_interval);
        }
        Ok(Self { inner })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &DbOptions {
        &self.inner.opts
    }

    /// An appender collecting one batch.
    pub fn appender(&self) -> Appender<'_> {
        Appender { db: self, batch: Vec::new() }
    }

    /// Commits `(labels, t ms, value)` samples: validates them against the
    /// head, writes new series and accepted samples to the WAL with one
    /// write, then inserts them into the head. Rejected samples are counted,
    /// not errors. If the WAL write fails, nothing is stored: the error is
    /// logged and the samples are counted as `wal_failed`.
    pub fn append_batch(&self, batch: &[(Labels, i64, f64)]) -> AppendReport {
        let inner = &*self.inner;
        let mut report = AppendReport::default();
        // The write lock makes validation, WAL order and head order agree.
        let mut head = write(&inner.head);
        let min_valid = head.min_valid();
        let mut new_series: Vec<(u64, &Labels)> = Vec::new();
        let mut pending: HashMap<&Labels, u64> = HashMap::new();
        let mut last: HashMap<u64, Option<(i64, u64)>> = HashMap::new();
        let mut samples: Vec<RefSample> = Vec::with_capacity(batch.len());
        for (labels, t, v) in batch {
            if labels.is_empty() {
                report.invalid += 1;
                continue;
            }
            let id = match head.get_id(labels).or_else(|| pending.get(labels).copied()) {
                Some(id) => id,
                None if *t < min_valid => {
                    report.too_old += 1;
                    continue;
                }
                None => {
                    let id = head.reserve_id();
                    pending.insert(labels, id);
                    new_series.push((id, labels));
                    id
                }
            };
            let prev = *last.entry(id).or_insert_with(|| head.last_sample(id));
            match validate(prev, min_valid, *t, *v) {
                Ok(true) => {
                    samples.push(RefSample { id, t: *t, v: *v });
                    last.insert(id, Some((*t, v.to_bits())));
                }
                Ok(false) => report.duplicates += 1,
                Err(e) => report.count(&e),
            }
        }
        if samples.is_empty() {
            return report;
        }
        {
            let mut w = lock(&inner.wal);
            let due = w.last_sync.elapsed() >= inner.opts.wal_fsync_interval;
            let Some(wal) = w.wal.as_mut() else {
                report.wal_failed += samples.len();
                return report;
            };
            if let Err(e) = wal.log(&new_series, &samples) {
                tracing::error!(error = %e, samples = samples.len(), "wal write failed; batch not stored");
                report.wal_failed += samples.len();
                return report;
            }
            if due {
                // The batch is already with the OS; a failed fsync only
                // weakens durability, so report it without refusing the data.
                match wal.sync() {
                    Ok(()) => w.last_sync = Instant::now(),
                    Err(e) => tracing::error!(error = %e, "wal fsync failed"),
                }
            }
        }
        if let Some(t) = samples.iter().map(|s| s.t).max() {
            inner.newest_t.fetch_max(t, Ordering::Relaxed);
        }
        report.new_series = new_series.len();
        for (id, labels) in new_series {
            head.insert_series(id, labels.clone());
        }
        for s in &samples {
            match head.append(s.id, s.t, s.v) {
                Ok(_) => report.appended += 1,
                Err(e) => report.count(&e),
            }
        }
        report
    }

    /// The WAL directory, for consumers that tail it with
    /// [`wal::SegmentReader`].
    pub fn wal_dir(&self) -> PathBuf {
        self.inner.dir.join(WAL_DIR)
    }

    /// The segment appends go to now (`None` when read-only).
    pub fn wal_current_segment(&self) -> Option<u64> {
        lock(&self.inner.wal).wal.as_ref().map(Wal::current_segment)
    }

    /// Holds back WAL truncation from `segment` on until the returned hold
    /// is moved forward or dropped. Maintenance still cuts blocks; only the
    /// held segments stay on disk.
    pub fn hold_wal(&self, segment: u64) -> WalHold {
        let id = self.inner.next_hold.fetch_add(1, Ordering::Relaxed);
        let holds = self.inner.wal_holds.clone();
        lock(&holds).insert(id, segment);
        WalHold { holds, id }
    }

    /// The newest sample time written to the WAL since the store was opened
    /// (including replay); `None` before the first sample.
    pub fn newest_sample_time(&self) -> Option<i64> {
        Some(self.inner.newest_t.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN)
    }

    /// Fsyncs the WAL now.
    pub fn flush_wal(&self) -> Result<(), StorageError> {
        Ok(self.inner.sync_wal(false)?)
    }

    /// Flushes the WAL for a clean shutdown. The store stays usable; dropping
    /// the last handle also flushes, but cannot report errors.
    pub fn close(&self) -> Result<(), StorageError> {
        self.flush_wal()
    }

    /// Periodic housekeeping (call every minute or so): while the head spans
    /// more than 1.5 block ranges, persists its oldest block range, drops it
    /// from memory and truncates the WAL; then applies retention relative to
    /// `now_ms`.
    pub fn maintenance(&self, now_ms: i64) -> Result<MaintenanceReport, StorageError> {
        let inner = &*self.inner;
        if lock(&inner.wal).wal.is_none() {
            return Err(StorageError::ReadOnly);
        }
        let _running = lock(&inner.maintenance);
        let mut report = MaintenanceReport::default();
        let range = duration_ms(inner.opts.block_range).max(1);
        let blocks_dir = inner.dir.join(BLOCKS_DIR);
        loop {
            let span = read(&inner.head).time_range();
            let Some((mint, maxt)) = span else { break };
            if maxt.saturating_sub(mint) <= range / 2 * 3 {
                break;
            }
            let cut_min = mint.div_euclid(range) * range;
            let cut_max = cut_min.saturating_add(range);
            // Raising the lower bound first means no sample can join the
            // range while it is being written.
            let chunks = {
                let mut head = write(&inner.head);
                head.set_min_valid(cut_max);
                head.chunks_before(cut_max)
            };
            if !chunks.is_empty() {
                let block = Block::write(&blocks_dir, cut_min, cut_max, chunks)?;
                tracing::info!(
                    mint = cut_min,
                    maxt = cut_max,
                    series = block.meta().num_series,
                    samples = block.meta().num_samples,
                    bytes = block.meta().bytes,
                    "persisted block"
                );
                report.blocks_written.push(block.meta().clone());
                let mut blocks = write(&inner.blocks);
                blocks.push(Arc::new(block));
                blocks.sort_by_key(|b| b.meta().mint);
            }
            report.head_series_removed += write(&inner.head).truncate(cut_max).series;
        }
        if !report.blocks_written.is_empty() {
            report.wal_segments_removed = self.truncate_wal()?;
        }
        report.blocks_deleted = self.apply_retention(now_ms);
        self.inner.sync_wal(false)?;
        Ok(report)
    }

    fn truncate_wal(&self) -> Result<usize, StorageError> {
        let inner = &*self.inner;
        let keep_from = read(&inner.head).min_valid();
        let point = match lock(&inner.wal).wal.as_mut() {
            Some(wal) => wal.truncation_point(keep_from)?,
            None => return Err(StorageError::ReadOnly),
        };
        // A consumer still reading segment `h` keeps it and everything after.
        let held = lock(&inner.wal_holds).values().min().copied();
        let point = match (point, held) {
            (Some(p), Some(h)) => h.checked_sub(1).map(|h| p.min(h)),
            (p, None) => p,
            (None, _) => None,
        };
        let Some(point) = point else { return Ok(0) };
        // Taken after the head was truncated, so it is exactly the series
        // the removed segments may have defined and the head still needs.
        let live = read(&inner.head).live_series();
        Wal::write_checkpoint(&inner.dir.join(WAL_DIR), point, &live)?;
        match lock(&inner.wal).wal.as_mut() {
            Some(wal) => Ok(wal.remove_through(point)?),
            None => Err(StorageError::ReadOnly),
        }
    }

    fn apply_retention(&self, now_ms: i64) -> Vec<BlockMeta> {
        let inner = &*self.inner;
        let r = Retention { time_ms: duration_ms(inner.opts.retention_time), size_bytes: inner.opts.retention_size };
        let doomed: Vec<Arc<Block>> = {
            let mut blocks = write(&inner.blocks);
            let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
            let idx = retention::expired(&metas, now_ms, r);
            let doomed = idx.iter().filter_map(|&i| blocks.get(i).cloned()).collect();
            let mut i = 0;
            blocks.retain(|_| {
                i += 1;
                !idx.contains(&(i - 1))
            });
            doomed
        };
        let mut deleted = Vec::new();
        for b in doomed {
            inner.index_cache.evict(b.dir());
            match b.delete() {
                Ok(()) => {
                    tracing::info!(mint = b.meta().mint, maxt = b.meta().maxt, "deleted block by retention");
                    deleted.push(b.meta().clone());
                }
                Err(e) => tracing::warn!(error = %e, "could not delete expired block"),
            }
        }
        deleted
    }

    /// Sizes and counts.
    pub fn stats(&self) -> DbStats {
        let inner = &*self.inner;
        let (head_series, head_samples, head_time_range, head_memory_bytes) = {
            let h = read(&inner.head);
            (h.num_series(), h.num_samples(), h.time_range(), h.memory_estimate())
        };
        let blocks: Vec<BlockInfo> = read(&inner.blocks).iter().map(|b| BlockInfo::new(b)).collect();
        let block_samples = blocks.iter().map(|b| b.samples).sum();
        let block_bytes = blocks.iter().map(|b| b.bytes).sum();
        let wal_bytes = wal::dir_size(&inner.dir.join(WAL_DIR));
        DbStats {
            head_series,
            head_samples,
            head_min_time: head_time_range.map(|r| r.0),
            head_max_time: head_time_range.map(|r| r.1),
            head_memory_bytes,
            blocks,
            block_samples,
            block_bytes,
            wal_bytes,
            bytes_on_disk: block_bytes + wal_bytes,
            bytes_per_sample: if block_samples == 0 { 0.0 } else { block_bytes as f64 / block_samples as f64 },
            replay: inner.replay.clone(),
        }
    }

    /// Every matching series with samples in `[mint, maxt]`, sorted by
    /// labels; for `wasmon tsdb dump`. Same data as [`Querier::select`].
    pub fn dump(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.select(matchers, mint, maxt)
    }

    fn blocks_overlapping(&self, mint: i64, maxt: i64) -> Vec<Arc<Block>> {
        read(&self.inner.blocks).iter().filter(|b| b.meta().overlaps(mint, maxt)).cloned().collect()
    }
}

fn load_blocks(blocks_dir: &Path, clean_up: bool) -> Result<Vec<Arc<Block>>, StorageError> {
    let io = |source| StorageError::Io { path: blocks_dir.to_owned(), source };
    let mut blocks = Vec::new();
    for entry in fs::read_dir(blocks_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if !path.is_dir() {
            continue;
        }
        if path.extension().is_some_and(|e| e == "tmp") {
            // An interrupted block write; the head/WAL still hold its data.
            if clean_up && let Err(e) = fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove partial block");
            }
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            // Left in place for inspection; it is not deleted automatically.
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable block"),
        }
    }
    blocks.sort_by_key(|b| b.meta().mint);
    Ok(blocks)
}

fn spawn_syncer(inner: Weak<Inner>, interval: Duration) {
    let res = std::thread::Builder::new().name("wasmon-wal-sync".into()).spawn(move || {
        loop {
            std::thread::sleep(interval);
            let Some(inner) = inner.upgrade() else { break };
            if let Err(e) = inner.sync_wal(true) {
                tracing::error!(error = %e, "wal fsync failed");
            }
        }
    });
    if let Err(e) = res {
        tracing::warn!(error = %e, "no wal fsync thread; fsync happens on commits only");
    }
}

/// Merges per-source results; samples with the same timestamp in several
/// sources (a block and the head right after a cut) are kept once.
fn merge(parts: Vec<Vec<SeriesSamples>>) -> Vec<SeriesSamples> {
    let mut by_labels: HashMap<Labels, Vec<Sample>> = HashMap::new();
    for part in parts {
        for s in part {
            by_labels.entry(s.labels).or_default().extend(s.samples);
        }
    }
    let mut out: Vec<SeriesSamples> = by_labels
        .into_iter()
        .map(|(labels, mut samples)| {
            if !samples.windows(2).all(|w| w[0].t < w[1].t) {
                samples.sort_by_key(|s| s.t);
                samples.dedup_by_key(|s| s.t);
            }
            SeriesSamples { labels, samples }
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

impl Querier for Db {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let mut parts = Vec::new();
        for b in self.blocks_overlapping(mint, maxt) {
            match self.inner.index_cache.get(&b).and_then(|idx| b.select(&idx, matchers, mint, maxt)) {
                Ok(p) => parts.push(p),
                Err(e) => tracing::warn!(error = %e, "skipping unreadable block in query"),
            }
        }
        parts.push(read(&self.inner.head).select(matchers, mint, maxt));
        merge(parts)
    }

    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let mut out: BTreeSet<Labels> = BTreeSet::new();
        for b in self.blocks_overlapping(mint, maxt) {
            match self.inner.index_cache.get(&b) {
                Ok(idx) => out.extend(idx.select(matchers, mint, maxt).map(|s| s.labels.clone())),
                Err(e) => tracing::warn!(error = %e, "skipping unreadable block in query"),
            }
        }
        out.extend(read(&self.inner.head).series(matchers, mint, maxt));
        out.into_iter().collect()
    }
}
