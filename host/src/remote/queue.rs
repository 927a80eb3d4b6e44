//! One remote-write queue: a thread tails the store's WAL from the queue's
//! acknowledged position and hands samples to shards (tokio tasks), which
//! batch, send and retry. Everything before the acknowledged position has
//! been sent or dropped; that position is persisted and holds back WAL
//! truncation, so neither an outage nor a restart loses samples until the
//! backlog passes `buffer_limit`.

use super::client::{RemoteClient, SendOutcome};
use super::proto;
use crate::config::{QueueConfig, RemoteWriteConfig};
use crate::relabel::Relabeler;
use crate::telemetry::Telemetry;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wasmon_storage::wal::{self, ReadNext, Record, SegmentReader, WalListing, WalPosition};
use wasmon_storage::{Db, Labels, WalHold};

const PENDING: &str = "wasmon_remote_write_samples_pending";
const PENDING_HELP: &str = "Samples read from the WAL that are neither sent nor dropped yet.";
const SENT: &str = "wasmon_remote_write_samples_sent_total";
const SENT_HELP: &str = "Samples the remote endpoint accepted.";
const FAILED: &str = "wasmon_remote_write_samples_failed_total";
const FAILED_HELP: &str =
    "Samples in requests that failed with a retryable error (5xx, 429, network); they are retried.";
const DROPPED: &str = "wasmon_remote_write_samples_dropped_total";
const DROPPED_HELP: &str = "Samples never delivered, by reason: http_4xx (rejected by the receiver), buffer_limit \
     (backlog beyond buffer_limit), relabel (write_relabel_configs), unknown_series (no series record in the WAL).";
const LAG: &str = "wasmon_remote_write_lag_seconds";
const LAG_HELP: &str = "Newest sample appended to the store minus newest sample sent, while samples are pending.";
const SHARDS: &str = "wasmon_remote_write_shards";
const SHARDS_HELP: &str = "Shards (parallel senders) of the queue.";
const BEHIND: &str = "wasmon_remote_write_wal_bytes_behind";
const BEHIND_HELP: &str = "WAL bytes after the queue's acknowledged position (what it holds back from truncation).";

/// How often the reader looks for new WAL data when it has caught up.
const POLL: Duration = Duration::from_millis(50);
/// How often the position is persisted and the buffer limit checked.
const HOUSEKEEPING: Duration = Duration::from_millis(500);

/// One sample on its way to a shard.
#[derive(Debug, Clone)]
struct Item {
    labels: Arc<Labels>,
    t: i64,
    v: f64,
    /// The WAL record it came from (see [`Tracker`]).
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    end: WalPosition,
    remaining: u64,
}

/// Which WAL records still have unsent samples. Records are numbered in
/// read order; the acknowledged position is the end of the newest record
/// before which every sample is sent or dropped.
#[derive(Debug)]
struct Tracker {
    entries: VecDeque<Entry>,
    first_seq: u64,
    acked: WalPosition,
    pending: u64,
}

impl Tracker {
    fn new(acked: WalPosition) -> Self {
        Self { entries: VecDeque::new(), first_seq: 0, acked, pending: 0 }
    }

    fn register(&mut self, end: WalPosition, samples: u64) -> u64 {
        let seq = self.first_seq + self.entries.len() as u64;
        self.entries.push_back(Entry { end, remaining: samples });
        self.pending += samples;
        self.advance();
        seq
    }

    fn complete(&mut self, seqs: impl Iterator<Item = u64>) {
        for seq in seqs {
            let Some(idx) = seq.checked_sub(self.first_seq) else { continue };
            if let Some(e) = self.entries.get_mut(idx as usize)
                && e.remaining > 0
            {
                e.remaining -= 1;
                self.pending = self.pending.saturating_sub(1);
            }
        }
        self.advance();
    }

    fn advance(&mut self) {
        while self.entries.front().is_some_and(|e| e.remaining == 0) {
            if let Some(e) = self.entries.pop_front() {
                self.acked = e.end;
                self.first_seq += 1;
            }
        }
    }

    /// Gives up the oldest records until at most `limit` WAL bytes follow the
    /// acknowledged position; returns the samples given up.
    fn drop_oldest(&mut self, listing: &WalListing, limit: u64) -> u64 {
        let mut dropped = 0;
        while listing.bytes_after(self.acked) > limit {
            let Some(e) = self.entries.pop_front() else { break };
            dropped += e.remaining;
            self.pending = self.pending.saturating_sub(e.remaining);
            self.acked = e.end;
            self.first_seq += 1;
        }
        self.advance();
        dropped
    }
}

/// State shared by the reader thread and the shards.
struct Shared {
    name: String,
    telemetry: Arc<Telemetry>,
    db: Arc<Db>,
    tracker: Mutex<Tracker>,
    /// Mirrors `Tracker::first_seq`: samples of older records are either
    /// done or were dropped by the buffer limit, so shards skip them.
    floor_seq: AtomicU64,
    newest_sent: AtomicI64,
    first_read: AtomicI64,
    shards: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn labels(&self) -> [(&'static str, &str); 1] {
        [("remote", self.name.as_str())]
    }

    fn count(&self, name: &'static str, help: &'static str, n: u64) {
        self.telemetry.inc(name, help, &self.labels(), n as f64);
    }

    fn dropped(&self, reason: &str, n: u64) {
        self.telemetry.inc(DROPPED, DROPPED_HELP, &[("remote", self.name.as_str()), ("reason", reason)], n as f64);
    }

    /// Updates the gauges.
    fn publish(&self) {
        let pending = self.tracker().pending;
        self.telemetry.set(PENDING, PENDING_HELP, &self.labels(), pending as f64);
        let lag = if pending == 0 {
            0
        } else {
            let sent = self.newest_sent.load(Ordering::Relaxed);
            let from = if sent == i64::MIN { self.first_read.load(Ordering::Relaxed) } else { sent };
            self.db.newest_sample_time().map_or(0, |newest| newest.saturating_sub(from).max(0))
        };
        self.telemetry.set(LAG, LAG_HELP, &self.labels(), lag as f64 / 1000.0);
        self.telemetry.set(SHARDS, SHARDS_HELP, &self.labels(), self.shards.load(Ordering::Relaxed) as f64);
    }
}

/// A running queue; dropping it stops it and persists its position.
pub struct Queue {
    shared: Arc<Shared>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.shared.name).finish_non_exhaustive()
    }
}

/// Why a queue could not start.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Client(#[from] super::client::ClientError),
    #[error("remote_write {name}: write_relabel_configs{message}")]
    Relabel { name: String, message: String },
    #[error("remote_write {name}: cannot start the wal reader: {source}")]
    Thread {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

impl Queue {
    /// Starts the queue: must run inside the tokio runtime (shards are tasks).
    pub fn start(config: &RemoteWriteConfig, db: Arc<Db>, telemetry: Arc<Telemetry>) -> Result<Self, QueueError> {
        let name = config.queue_name();
        let client = Arc::new(RemoteClient::new(config)?);
        let relabel = Relabeler::new(&config.write_relabel_configs)
            .map_err(|message| QueueError::Relabel { name: name.clone(), message })?;
        let state_file = position_file(db.dir(), &name);
        let (acked, how) = initial_position(&db, &state_file);
        tracing::info!(remote = %name, url = %config.url, segment = acked.segment, offset = acked.offset, how,
            "remote write queue starting");
        // Holding before the first maintenance run keeps the resume point.
        let hold = db.hold_wal(acked.segment);
        if let Err(e) = save_position(&state_file, acked) {
            tracing::warn!(remote = %name, error = %e, "cannot persist remote write position");
        }
        let shared = Arc::new(Shared {
            name: name.clone(),
            telemetry,
            db,
            tracker: Mutex::new(Tracker::new(acked)),
            floor_seq: AtomicU64::new(0),
            newest_sent: AtomicI64::new(i64::MIN),
            first_read: AtomicI64::new(i64::MIN),
            shards: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        for (metric, help) in [(SENT, SENT_HELP), (FAILED, FAILED_HELP)] {
            shared.telemetry.touch(metric, help, &shared.labels());
        }
        for reason in ["http_4xx", "buffer_limit", "relabel", "unknown_series"] {
            shared.dropped(reason, 0);
        }
        let reader = Reader {
            shared: shared.clone(),
            client,
            queue: config.queue_config.clone(),
            buffer_limit: config.buffer_limit.0,
            relabel,
            state_file,
            hold,
            wal_dir: shared.db.wal_dir(),
            runtime: tokio::runtime::Handle::current(),
            senders: Vec::new(),
            series: HashMap::new(),
            pruned_at: None,
            last_housekeeping: Instant::now(),
            saved: acked,
            last_reshard: Instant::now(),
            failed_seen: 0.0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("wasmon-rw-{name}"))
            .spawn(move || reader.run(acked))
            .map_err(|source| QueueError::Thread { name, source })?;
        Ok(Self { shared, reader: Some(thread) })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The reader persists the final position on its way out.
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

/// `<data>/remote_write/<name>-<hash>.json`: the name made file-safe, plus a
/// hash so different names never share a file.
fn position_file(data: &Path, name: &str) -> PathBuf {
    use sha2::Digest;
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(64)
        .collect();
    let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4]);
    data.join("remote_write").join(format!("{safe}-{hash}.json"))
}

#[derive(serde::Deserialize)]
struct SavedPosition {
    segment: u64,
    offset: u64,
}

fn load_position(path: &Path) -> Option<WalPosition> {
    let text = std::fs::read_to_string(path).ok()?;
    let p: SavedPosition = serde_json::from_str(&text).ok()?;
    Some(WalPosition { segment: p.segment, offset: p.offset })
}

/// Written to a temp file, fsynced, renamed: a crash leaves the old or the
/// new position, never a torn one.
fn save_position(path: &Path, pos: WalPosition) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{{\"segment\":{},\"offset\":{}}}", pos.segment, pos.offset)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // Makes the rename durable; not supported on every filesystem.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The persisted position, or the current end of the WAL for a new queue
/// (like Prometheus, a new endpoint gets new samples, not the history).
fn initial_position(db: &Db, state_file: &Path) -> (WalPosition, &'static str) {
    let listing = wal::list(&db.wal_dir()).unwrap_or_default();
    if let Some(saved) = load_position(state_file) {
        match listing.segments.first() {
            Some(&(first, _)) if saved.segment < first => {
                tracing::warn!(saved = saved.segment, first, file = %state_file.display(),
                    "the wal segments after the saved remote write position are gone; resuming at the oldest one");
                return (WalPosition { segment: first, offset: 0 }, "oldest segment");
            }
            _ => return (saved, "resumed"),
        }
    }
    let current = db.wal_current_segment().or(listing.newest()).unwrap_or(0);
    let len = listing.segments.iter().find(|s| s.0 == current).map_or(0, |s| s.1);
    (WalPosition { segment: current, offset: len }, "new")
}

/// Spreads sequential series ids evenly over shards.
fn shard_of(id: u64, shards: usize) -> usize {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % shards.max(1)
}

struct Reader {
    shared: Arc<Shared>,
    client: Arc<RemoteClient>,
    queue: QueueConfig,
    buffer_limit: u64,
    relabel: Relabeler,
    state_file: PathBuf,
    hold: WalHold,
    wal_dir: PathBuf,
    runtime: tokio::runtime::Handle,
    senders: Vec<mpsc::Sender<Item>>,
    /// Series id → labels to send (`None`: dropped by relabeling) and the
    /// segment that defined it.
    series: HashMap<u64, (Option<Arc<Labels>>, u64)>,
    /// The checkpoint the series map was last pruned against.
    pruned_at: Option<u64>,
    last_housekeeping: Instant,
    saved: WalPosition,
    last_reshard: Instant,
    /// Failed-sample count at the last housekeeping, to see new failures.
    failed_seen: f64,
}

impl Reader {
    fn run(mut self, start: WalPosition) {
        self.load_series(start);
        self.set_shards(self.queue.min_shards);
        let mut reader = SegmentReader::new(&self.wal_dir, start);
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.housekeeping(&mut reader, false);
            match reader.read_next() {
                Ok(ReadNext::Record(rec)) => self.handle(rec, reader.position(), &mut reader),
                Ok(ReadNext::Pending) => self.at_end(&mut reader, None),
                Ok(ReadNext::Damaged(why)) => self.at_end(&mut reader, Some(why)),
                Ok(ReadNext::Missing) => self.missing(&mut reader),
                Err(e) => {
                    tracing::warn!(remote = %self.shared.name, error = %e, "reading the wal failed; retrying");
                    std::thread::sleep(POLL * 10);
                }
            }
        }
        self.housekeeping(&mut reader, true);
    }

    /// Learns the series defined before `start` (checkpoint and earlier
    /// records), so samples after it can be labelled.
    fn load_series(&mut self, start: WalPosition) {
        let listing = wal::list(&self.wal_dir).unwrap_or_default();
        let mut defs = Vec::new();
        if let Some(cp) = listing.checkpoint
            && let Err(e) = wal::read_checkpoint(&self.wal_dir, cp, |r| {
                if let Record::Series(s) = r {
                    defs.extend(s.into_iter().map(|s| (s, cp)));
                }
            })
        {
            tracing::warn!(remote = %self.shared.name, error = %e, "cannot read the wal checkpoint");
        }
        for &(n, _) in listing.segments.iter().filter(|s| s.0 <= start.segment) {
            let mut r = SegmentReader::new(&self.wal_dir, WalPosition { segment: n, offset: 0 });
            while n < start.segment || r.position().offset < start.offset {
                match r.read_next() {
                    Ok(ReadNext::Record(Record::Series(s))) => defs.extend(s.into_iter().map(|s| (s, n))),
                    Ok(ReadNext::Record(Record::Samples(_))) => {}
                    _ => break,
                }
            }
        }
        self.pruned_at = listing.checkpoint;
        for (s, segment) in defs {
            self.define(s.id, &s.labels, segment);
        }
    }

    fn define(&mut self, id: u64, labels: &Labels, segment: u64) {
        self.series.insert(id, (self.relabel.apply(labels).map(Arc::new), segment));
    }

    /// Forgets series that died: a new checkpoint `cp` holds every series
    /// still live when segments up to `cp` were removed, so one defined in
    /// those segments but missing from it never gets samples again (the
    /// store gives a returning series a new id).
    fn prune_series(&mut self, listing: &WalListing) {
        let Some(cp) = listing.checkpoint else { return };
        if self.pruned_at.is_some_and(|p| p >= cp) {
            return;
        }
        let mut live = std::collections::HashSet::new();
        let read = wal::read_checkpoint(&self.wal_dir, cp, |r| {
            if let Record::Series(s) = r {
                live.extend(s.into_iter().map(|s| s.id));
            }
        });
        if read.is_ok() {
            self.series.retain(|id, (_, defined)| *defined > cp || live.contains(id));
            self.pruned_at = Some(cp);
        }
    }

    fn handle(&mut self, rec: Record, end: WalPosition, reader: &mut SegmentReader) {
        match rec {
            Record::Series(series) => {
                for s in series {
                    self.define(s.id, &s.labels, end.segment);
                }
                self.shared.tracker().register(end, 0);
            }
            Record::Samples(samples) => {
                if let Some(first) = samples.first() {
                    let _ = self.shared.first_read.compare_exchange(
                        i64::MIN,
                        first.t,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                let (mut unknown, mut relabeled) = (0, 0);
                let mut items = Vec::with_capacity(samples.len());
                for s in samples {
                    match self.series.get(&s.id) {
                        Some((Some(labels), _)) => items.push((s.id, labels.clone(), s.t, s.v)),
                        Some((None, _)) => relabeled += 1,
                        None => unknown += 1,
                    }
                }
                if unknown > 0 {
                    self.shared.dropped("unknown_series", unknown);
                }
                if relabeled > 0 {
                    self.shared.dropped("relabel", relabeled);
                }
                let seq = self.shared.tracker().register(end, items.len() as u64);
                for (id, labels, t, v) in items {
                    if !self.dispatch(id, Item { labels, t, v, seq }, reader) {
                        break;
                    }
                }
            }
        }
    }

    /// Hands `item` to its shard, waiting while the shard is full. False
    /// when the rest of the record need not be sent (stopped, or dropped by
    /// the buffer limit while waiting).
    fn dispatch(&mut self, id: u64, mut item: Item, reader: &mut SegmentReader) -> bool {
        loop {
            if item.seq < self.shared.floor_seq.load(Ordering::Relaxed) || self.shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            let Some(tx) = self.senders.get(shard_of(id, self.senders.len())) else { return false };
            match tx.try_send(item) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                    self.housekeeping(reader, false);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
    }

    /// No complete record at the position. Moves to the next segment once
    /// one exists (the writer never returns to an older segment).
    fn at_end(&mut self, reader: &mut SegmentReader, damage: Option<String>) {
        let pos = reader.position();
        let listing = wal::list(&self.wal_dir).unwrap_or_default();
        let Some(&(next, _)) = listing.segments.iter().find(|s| s.0 > pos.segment) else {
            std::thread::sleep(POLL);
            return;
        };
        // The last bytes may have landed between the read and the listing.
        match reader.read_next() {
            Ok(ReadNext::Record(rec)) => return self.handle(rec, reader.position(), reader),
            Ok(ReadNext::Damaged(why)) => self.skipped_damage(pos, &why),
            _ => {
                if let Some(why) = damage {
                    self.skipped_damage(pos, &why);
                }
            }
        }
        reader.seek(WalPosition { segment: next, offset: 0 });
        self.shared.tracker().register(reader.position(), 0);
    }

    fn skipped_damage(&self, pos: WalPosition, why: &str) {
        tracing::warn!(remote = %self.shared.name, segment = pos.segment, offset = pos.offset, damage = why,
            "skipping the damaged rest of a wal segment");
    }

    fn missing(&mut self, reader: &mut SegmentReader) {
        let pos = reader.position();
        let listing = wal::list(&self.wal_dir).unwrap_or_default();
        match listing.segments.iter().find(|s| s.0 > pos.segment) {
            Some(&(next, _)) => {
                tracing::warn!(remote = %self.shared.name, segment = pos.segment, next,
                    "wal segment vanished before it was read; continuing with the next");
                reader.seek(WalPosition { segment: next, offset: 0 });
                self.shared.tracker().register(reader.position(), 0);
            }
            None => std::thread::sleep(POLL),
        }
    }

    /// Every [`HOUSEKEEPING`] (or when `force`d): enforce the buffer limit,
    /// persist the acknowledged position, move the WAL hold, update metrics,
    /// and grow the shards when the queue lags.
    fn housekeeping(&mut self, reader: &mut SegmentReader, force: bool) {
        if !force && self.last_housekeeping.elapsed() < HOUSEKEEPING {
            return;
        }
        self.last_housekeeping = Instant::now();
        let listing = wal::list(&self.wal_dir).unwrap_or_default();
        if self.buffer_limit > 0 && listing.bytes_after(self.shared.tracker().acked) > self.buffer_limit {
            self.enforce_buffer_limit(&listing, reader);
        }
        let acked = self.shared.tracker().acked;
        if acked != self.saved {
            match save_position(&self.state_file, acked) {
                Ok(()) => self.saved = acked,
                Err(e) => {
                    tracing::warn!(remote = %self.shared.name, error = %e, "cannot persist remote write position")
                }
            }
        }
        self.hold.keep_from(acked.segment);
        self.prune_series(&listing);
        self.shared.telemetry.set(BEHIND, BEHIND_HELP, &self.shared.labels(), listing.bytes_after(acked) as f64);
        self.shared.publish();
        self.maybe_reshard();
    }

    fn enforce_buffer_limit(&mut self, listing: &WalListing, reader: &mut SegmentReader) {
        let (mut dropped, floor) = {
            let mut t = self.shared.tracker();
            let dropped = t.drop_oldest(listing, self.buffer_limit);
            (dropped, t.first_seq)
        };
        self.shared.floor_seq.store(floor, Ordering::Relaxed);
        // Still over the limit with nothing queued: the reader itself is too
        // far behind, so skip records (learning their series) until within it.
        if self.shared.tracker().entries.is_empty() {
            while listing.bytes_after(reader.position()) > self.buffer_limit {
                match reader.read_next() {
                    Ok(ReadNext::Record(Record::Series(s))) => {
                        let segment = reader.position().segment;
                        for s in s {
                            self.define(s.id, &s.labels, segment);
                        }
                    }
                    Ok(ReadNext::Record(Record::Samples(s))) => dropped += s.len() as u64,
                    _ => match listing.segments.iter().find(|s| s.0 > reader.position().segment) {
                        Some(&(next, _)) => reader.seek(WalPosition { segment: next, offset: 0 }),
                        None => break,
                    },
                }
            }
            let mut t = self.shared.tracker();
            t.acked = t.acked.max(reader.position());
        }
        if dropped > 0 {
            tracing::warn!(remote = %self.shared.name, samples = dropped, limit = self.buffer_limit,
                "remote write backlog exceeds buffer_limit; dropped the oldest samples");
            self.shared.dropped("buffer_limit", dropped);
        }
    }

    fn set_shards(&mut self, n: usize) {
        let n = n.max(1);
        let capacity = self.queue.capacity.max(1);
        self.senders = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::channel(capacity);
                let shard =
                    Shard { shared: self.shared.clone(), client: self.client.clone(), queue: self.queue.clone(), rx };
                self.runtime.spawn(shard.run());
                tx
            })
            .collect();
        self.shared.shards.store(n, Ordering::Relaxed);
        self.shared.publish();
    }

    /// Doubles the shards (up to `max_shards`) while samples pile up faster
    /// than they are sent and the endpoint answers. Per-series order needs
    /// the old shards drained first, so this waits until nothing is pending.
    fn maybe_reshard(&mut self) {
        let failed = self.shared.telemetry.value(FAILED, &self.shared.labels()).unwrap_or(0.0);
        let failing = failed > self.failed_seen;
        self.failed_seen = failed;
        let current = self.senders.len();
        if failing || current >= self.queue.max_shards || self.last_reshard.elapsed() < Duration::from_secs(10) {
            return;
        }
        if !self.senders.iter().any(|tx| tx.capacity() == 0) {
            return;
        }
        // Wait (bounded) for the shards to drain; give up if they are stuck
        // in retries: more shards would not help a failing endpoint.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.shared.tracker().pending > 0 {
            if Instant::now() > deadline || self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.shared.telemetry.value(FAILED, &self.shared.labels()).unwrap_or(0.0) > failed {
            return;
        }
        let next = (current * 2).min(self.queue.max_shards);
        tracing::info!(remote = %self.shared.name, from = current, to = next, "resharding remote write queue");
        self.last_reshard = Instant::now();
        self.set_shards(next);
    }
}

struct Shard {
    shared: Arc<Shared>,
    client: Arc<RemoteClient>,
    queue: QueueConfig,
    rx: mpsc::Receiver<Item>,
}

impl Shard {
    async fn run(mut self) {
        let max = self.queue.max_samples_per_send.max(1);
        let mut batch: Vec<Item> = Vec::with_capacity(max);
        loop {
            let Some(first) = self.rx.recv().await else { break };
            batch.push(first);
            let now = tokio::time::Instant::now();
            // A deadline of years is as good as none; it must not overflow.
            let deadline =
                now.checked_add(self.queue.batch_send_deadline.0).unwrap_or(now + Duration::from_secs(86_400));
            let mut closed = false;
            while batch.len() < max {
                tokio::select! {
                    item = self.rx.recv() => match item {
                        Some(item) => batch.push(item),
                        None => { closed = true; break; }
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.send(std::mem::take(&mut batch)).await;
            if closed || self.shared.stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }

    /// Sends one batch until it is accepted or must be dropped; 5xx, 429 and
    /// network errors are retried with exponential backoff, never dropped
    /// (only the buffer limit can void them).
    async fn send(&self, mut batch: Vec<Item>) {
        let mut backoff = self.queue.min_backoff.0;
        let mut body: Option<(usize, Bytes)> = None;
        let mut attempts = 0u32;
        loop {
            let floor = self.shared.floor_seq.load(Ordering::Relaxed);
            batch.retain(|i| i.seq >= floor);
            if batch.is_empty() || self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let bytes = match &body {
                Some((n, b)) if *n == batch.len() => b.clone(),
                _ => {
                    let b = Bytes::from(super::encode_request(&build_request(&batch)));
                    body = Some((batch.len(), b.clone()));
                    b
                }
            };
            let n = batch.len() as u64;
            match self.client.send(bytes).await {
                SendOutcome::Sent => {
                    if attempts > 0 {
                        tracing::info!(remote = %self.shared.name, attempts, "remote write recovered");
                    }
                    self.shared.count(SENT, SENT_HELP, n);
                    if let Some(t) = batch.iter().map(|i| i.t).max() {
                        self.shared.newest_sent.fetch_max(t, Ordering::Relaxed);
                    }
                    self.shared.tracker().complete(batch.iter().map(|i| i.seq));
                    self.shared.publish();
                    return;
                }
                SendOutcome::Drop { status, reason } => {
                    tracing::warn!(remote = %self.shared.name, status, samples = n, reason,
                        "remote endpoint rejected a batch; dropped it");
                    self.shared.dropped("http_4xx", n);
                    self.shared.tracker().complete(batch.iter().map(|i| i.seq));
                    self.shared.publish();
                    return;
                }
                SendOutcome::Retry { reason, retry_after } => {
                    self.shared.count(FAILED, FAILED_HELP, n);
                    if attempts == 0 {
                        tracing::warn!(remote = %self.shared.name, samples = n, reason, "remote write failed; retrying");
                    } else {
                        tracing::debug!(remote = %self.shared.name, samples = n, reason, attempts, "retry failed");
                    }
                    attempts = attempts.saturating_add(1);
                    let max = self.queue.max_backoff.0;
                    let delay = retry_after.map_or(backoff, |r| r.max(backoff)).min(max);
                    tokio::time::sleep(delay).await;
                    backoff = backoff.saturating_mul(2).min(max);
                }
            }
        }
    }
}

/// One `WriteRequest`: samples grouped by series in arrival order, labels
/// sorted (the store's label sets always are).
fn build_request(batch: &[Item]) -> proto::WriteRequest {
    let mut index: HashMap<*const Labels, usize> = HashMap::new();
    let mut timeseries: Vec<proto::TimeSeries> = Vec::new();
    for item in batch {
        let i = *index.entry(Arc::as_ptr(&item.labels)).or_insert_with(|| {
            timeseries.push(proto::TimeSeries {
                labels: item
                    .labels
                    .iter()
                    .map(|l| proto::Label { name: l.name.clone(), value: l.value.clone() })
                    .collect(),
                samples: Vec::new(),
            });
            timeseries.len() - 1
        });
        if let Some(ts) = timeseries.get_mut(i) {
            ts.samples.push(proto::Sample { value: item.v, timestamp: item.t });
        }
    }
    proto::WriteRequest { timeseries, metadata: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(segment: u64, offset: u64) -> WalPosition {
        WalPosition { segment, offset }
    }

    #[test]
    fn the_acknowledged_position_waits_for_the_oldest_unsent_record() {
        let mut t = Tracker::new(pos(0, 0));
        let a = t.register(pos(0, 10), 2);
        let b = t.register(pos(0, 20), 1);
        let _ = t.register(pos(0, 30), 0);
        assert_eq!((t.acked, t.pending), (pos(0, 0), 3));
        t.complete([b].into_iter());
        assert_eq!(t.acked, pos(0, 0), "b is done but a is not");
        t.complete([a, a].into_iter());
        assert_eq!((t.acked, t.pending), (pos(0, 30), 0));
        // Late completions of records already acknowledged are ignored.
        t.complete([a].into_iter());
        assert_eq!(t.pending, 0);
    }

    #[test]
    fn the_buffer_limit_gives_up_the_oldest_records() {
        let mut t = Tracker::new(pos(1, 0));
        t.register(pos(1, 100), 5);
        t.register(pos(2, 50), 7);
        t.register(pos(2, 90), 1);
        let listing = WalListing { segments: vec![(1, 100), (2, 100)], checkpoint: None };
        assert_eq!(t.drop_oldest(&listing, 60), 12);
        assert_eq!((t.acked, t.pending, t.first_seq), (pos(2, 50), 1, 2));
        assert_eq!(t.drop_oldest(&listing, 60), 0);
    }

    #[test]
    fn requests_group_samples_by_series_in_order() {
        let a = Arc::new(Labels::from_pairs([("__name__", "a")]));
        let b = Arc::new(Labels::from_pairs([("__name__", "b"), ("x", "1")]));
        let stale = wasmon_storage::stale_nan();
        let items = [(a.clone(), 1, 1.0), (b.clone(), 1, 2.0), (a.clone(), 2, stale)].map(|(labels, t, v)| Item {
            labels,
            t,
            v,
            seq: 0,
        });
        let req = build_request(&items);
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(req.timeseries[0].samples.len(), 2);
        assert_eq!(req.timeseries[0].samples[1].value.to_bits(), wasmon_storage::STALE_NAN_BITS);
        let decoded = super::super::decode_request(&super::super::encode_request(&req)).unwrap();
        assert_eq!(decoded.timeseries[0].samples[1].value.to_bits(), wasmon_storage::STALE_NAN_BITS);
        assert_eq!(shard_of(7, 1), 0);
        assert!((0..100).map(|id| shard_of(id, 4)).all(|s| s < 4));
    }

    #[test]
    fn positions_persist_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = position_file(dir.path(), "a/b c");
        assert!(path.file_name().unwrap().to_str().unwrap().starts_with("a_b_c-"));
        assert_eq!(load_position(&path), None);
        save_position(&path, pos(3, 77)).unwrap();
        assert_eq!(load_position(&path), Some(pos(3, 77)));
        save_position(&path, pos(4, 0)).unwrap();
        assert_eq!(load_position(&path), Some(pos(4, 0)));
    }
}
