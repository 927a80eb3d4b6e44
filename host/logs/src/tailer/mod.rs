//! Follows the files a pipeline's globs match: picks up new files (inotify
//! through `notify`, plus a periodic scan that also covers file systems where
//! inotify does not work), follows rename and copytruncate rotation, reads
//! deleted files to their end, and resumes from acknowledged checkpoints.
//! Runs on its own blocking thread; reading stops while the batch queue is full.

pub mod batch;
mod file;
pub(crate) mod glob;

use crate::checkpoint::{CheckpointStore, FileKey, Fingerprint};
use crate::config::{SourceConfig, StartAt};
use crate::framing::kubernetes::{PodMetadataSource, PodRef};
use crate::framing::{CompiledFraming, Framed, Framer};
use crate::metrics::TailerMetrics;
use crate::record::Attributes;
use batch::{Batcher, Closed};
use file::TailedFile;
use glob::PathGlobs;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, info, warn};

/// Read at most this much of one file before looking at the others, so one busy file cannot starve the rest.
const READ_QUANTUM: usize = 4 << 20;
const READ_BUFFER: usize = 256 << 10;

pub(crate) struct Source {
    pub cfg: SourceConfig,
    pub globs: PathGlobs,
    pub framing: Arc<CompiledFraming>,
}

/// Shared with the pipeline: how far acknowledgements have got, and how to stop the tailer.
#[derive(Clone)]
pub(crate) struct TailerControl {
    pub stop: Arc<AtomicBool>,
    pub rescan: Arc<AtomicBool>,
    pub wake: std_mpsc::SyncSender<()>,
    /// The highest batch sequence number acknowledged by every sink.
    pub acked_batch: Arc<AtomicU64>,
}

impl TailerControl {
    pub fn new() -> (Self, std_mpsc::Receiver<()>) {
        // One pending wake-up is enough: the tailer reads everything each time it wakes.
        let (wake, rx) = std_mpsc::sync_channel(1);
        let c = Self {
            stop: Arc::new(AtomicBool::new(false)),
            rescan: Arc::new(AtomicBool::new(true)),
            wake,
            acked_batch: Arc::new(AtomicU64::new(0)),
        };
        (c, rx)
    }

    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

pub(crate) struct Tailer {
    sources: Vec<Source>,
    files: HashMap<FileKey, TailedFile>,
    store: CheckpointStore,
    metrics: Arc<TailerMetrics>,
    pod_metadata: Option<Arc<dyn PodMetadataSource>>,
    batcher: Batcher,
    control: TailerControl,
    wake_rx: std_mpsc::Receiver<()>,
    watcher: Option<notify::RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Paths that failed to open, so each is logged once.
    open_failures: HashSet<PathBuf>,
    buf: Vec<u8>,
    framed: Vec<Framed>,
    first_scan: bool,
    next_scan: Instant,
    poll_interval: Duration,
}

impl Tailer {
    pub fn new(
        sources: Vec<Source>,
        store: CheckpointStore,
        metrics: Arc<TailerMetrics>,
        pod_metadata: Option<Arc<dyn PodMetadataSource>>,
        batcher: Batcher,
        control: TailerControl,
        wake_rx: std_mpsc::Receiver<()>,
    ) -> Self {
        let poll_interval = sources
            .iter()
            .map(|s| s.cfg.poll_interval.0)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        let watcher = if sources.iter().any(|s| s.cfg.watch) { Self::make_watcher(&control) } else { None };
        Self {
            sources,
            files: HashMap::new(),
            store,
            metrics,
            pod_metadata,
            batcher,
            control,
            wake_rx,
            watcher,
            watched: HashSet::new(),
            open_failures: HashSet::new(),
            buf: vec![0; READ_BUFFER],
            framed: Vec::new(),
            first_scan: true,
            next_scan: Instant::now(),
            poll_interval,
        }
    }

    fn make_watcher(control: &TailerControl) -> Option<notify::RecommendedWatcher> {
        use notify::{EventKind, event::ModifyKind};
        let c = control.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                // Data written to a file only needs a read; anything else may be a new or renamed file.
                if !matches!(ev.kind, EventKind::Modify(ModifyKind::Data(_)) | EventKind::Access(_)) {
                    c.rescan.store(true, Ordering::Relaxed);
                }
            }
            c.wake();
        };
        match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "file watching unavailable; new files are found by polling only");
                None
            }
        }
    }

    /// Runs until stopped or until the pipeline stops taking batches.
    pub fn run(mut self) {
        match self.run_inner() {
            Ok(()) => debug!("tailer stopped"),
            Err(Closed) => debug!("tailer stopped: the pipeline closed"),
        }
        // The batch being built is dropped on purpose: its records are not
        // acknowledged, so they are read again after a restart, exactly once.
    }

    fn run_inner(&mut self) -> Result<(), Closed> {
        loop {
            if self.control.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= self.next_scan || self.control.rescan.swap(false, Ordering::Relaxed) {
                self.scan()?;
                self.next_scan = Instant::now() + self.poll_interval;
            }
            let progressed = self.read_all()?;
            let now = Instant::now();
            for f in self.files.values_mut() {
                f.framer.flush_expired(now, &mut self.framed);
                if !self.framed.is_empty() {
                    self.batcher.add(f, &mut self.framed)?;
                }
            }
            self.close_finished(now)?;
            self.batcher.flush_if_due(now)?;
            if progressed {
                continue;
            }
            let mut wait = self.next_scan.saturating_duration_since(now);
            let deadlines = self.files.values().filter_map(|f| f.framer.next_deadline()).chain(self.batcher.deadline());
            if let Some(d) = deadlines.min() {
                wait = wait.min(d.saturating_duration_since(now));
            }
            // Rotated files wait for their acknowledgement; look again soon.
            if self.files.values().any(|f| f.flushed) {
                wait = wait.min(Duration::from_millis(20));
            }
            let _ = self.wake_rx.recv_timeout(wait);
        }
    }

    fn now_ns() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
    }

    /// Reads every file once (up to a quantum each); whether anything was read.
    fn read_all(&mut self) -> Result<bool, Closed> {
        let mut progressed = false;
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            if self.control.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let Some(f) = self.files.get_mut(&key) else { continue };
            if f.at_eof_since.is_some() {
                // Idle file: one fstat tells whether there is anything to read. When
                // there is, make sure it is still the same content first: after a
                // copytruncate the writer may already have written past our offset.
                let Ok(meta) = f.file.metadata() else { continue };
                if meta.len() == f.read_offset {
                    continue;
                }
                let fp_bytes = self.sources[f.source].cfg.fingerprint_bytes;
                if f.gone_since.is_none() && check_identity(f, fp_bytes) {
                    Self::truncated(f, fp_bytes, &self.metrics, &mut self.framed, &mut self.batcher)?;
                    progressed = true;
                }
            }
            let mut read = 0;
            while read < READ_QUANTUM {
                let n = match f.file.read(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        TailerMetrics::inc(&self.metrics.read_errors);
                        warn!(path = %f.path.display(), offset = f.read_offset, error = %e, "cannot read log file");
                        break;
                    }
                };
                if n == 0 {
                    f.at_eof_since.get_or_insert_with(Instant::now);
                    break;
                }
                f.at_eof_since = None;
                read += n;
                f.framer.push(&self.buf[..n], f.read_offset, Self::now_ns(), Instant::now(), &mut self.framed);
                f.read_offset += n as u64;
                self.metrics.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                let counts = f.framer.take_counts();
                self.metrics.add_framing(&counts);
                if let Some((offset, why)) = f.framer.take_first_malformed() {
                    warn!(path = %f.path.display(), offset, reason = why, "line does not follow the source's format; sent as it is (further ones are only counted)");
                }
                self.batcher.add(f, &mut self.framed)?;
            }
            if read > 0 {
                progressed = true;
            }
        }
        Ok(progressed)
    }

    /// Copytruncate (or any truncation): send what is buffered, then read again from the start.
    fn truncated(
        f: &mut TailedFile,
        fingerprint_bytes: usize,
        metrics: &TailerMetrics,
        framed: &mut Vec<Framed>,
        batcher: &mut Batcher,
    ) -> Result<(), Closed> {
        TailerMetrics::inc(&metrics.truncations);
        info!(path = %f.path.display(), offset = f.read_offset, "log file truncated; reading it again from the start");
        // Added before the fingerprint changes, so their positions pair old offsets with the old fingerprint.
        f.framer.flush_all(Self::now_ns(), Instant::now(), framed);
        batcher.add(f, framed)?;
        f.read_offset = 0;
        f.emitted_commit = 0;
        if let Err(e) = f.file.seek(SeekFrom::Start(0)) {
            warn!(path = %f.path.display(), error = %e, "cannot seek in truncated log file");
        }
        f.fingerprint = Fingerprint::read(&f.file, fingerprint_bytes).unwrap_or_default();
        Ok(())
    }

    fn scan(&mut self) -> Result<(), Closed> {
        self.watch_roots();
        let mut seen: HashMap<FileKey, PathBuf> = HashMap::new();
        for si in 0..self.sources.len() {
            for path in self.sources[si].globs.expand() {
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                let key = FileKey::of(&meta);
                if seen.contains_key(&key) {
                    continue;
                }
                seen.insert(key, path.clone());
                if !self.files.contains_key(&key) {
                    self.open(si, &path);
                }
            }
        }
        let now = Instant::now();
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let Some(f) = self.files.get_mut(&key) else { continue };
            match seen.get(&key) {
                Some(path) => {
                    f.gone_since = None;
                    if *path != f.path {
                        // Renamed within the globs: same file, same position.
                        f.path_str = Arc::from(path.to_string_lossy().as_ref());
                        f.path = path.clone();
                    }
                    let fingerprint_bytes = self.sources[f.source].cfg.fingerprint_bytes;
                    if check_identity(f, fingerprint_bytes) {
                        Self::truncated(f, fingerprint_bytes, &self.metrics, &mut self.framed, &mut self.batcher)?;
                    }
                    refresh_pod_attributes(f, self.pod_metadata.as_deref());
                }
                None if f.gone_since.is_none() => {
                    f.gone_since = Some(now);
                    let deleted = f.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
                    if deleted {
                        TailerMetrics::inc(&self.metrics.files_deleted);
                        info!(path = %f.path.display(), "log file deleted; reading it to its end");
                    } else {
                        TailerMetrics::inc(&self.metrics.rotations);
                        info!(path = %f.path.display(), "log file rotated; reading the old file to its end");
                    }
                }
                None => {}
            }
        }
        if self.first_scan {
            // Positions of files that no longer exist are of no use.
            let stale: Vec<FileKey> =
                self.store.positions().into_iter().map(|p| p.key).filter(|k| !seen.contains_key(k)).collect();
            self.store.forget(&stale);
            self.first_scan = false;
        }
        TailerMetrics::inc(&self.metrics.scans);
        Ok(())
    }

    fn watch_roots(&mut self) {
        use notify::{RecursiveMode, Watcher};
        let Some(w) = self.watcher.as_mut() else { return };
        for s in self.sources.iter().filter(|s| s.cfg.watch) {
            for root in s.globs.roots() {
                if self.watched.contains(root) || !root.is_dir() {
                    continue;
                }
                match w.watch(root, RecursiveMode::Recursive) {
                    Ok(()) => {
                        self.watched.insert(root.to_path_buf());
                    }
                    Err(e) => {
                        // Polling still finds everything, only later.
                        if self.open_failures.insert(root.to_path_buf()) {
                            warn!(path = %root.display(), error = %e, "cannot watch directory; relying on polling");
                        }
                    }
                }
            }
        }
    }

    fn open(&mut self, si: usize, path: &Path) {
        let source = &self.sources[si];
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                if self.open_failures.insert(path.to_path_buf()) {
                    TailerMetrics::inc(&self.metrics.read_errors);
                    warn!(source = %source.cfg.name, path = %path.display(), error = %e, "cannot open log file");
                }
                return;
            }
        };
        self.open_failures.remove(path);
        // Identity from the open handle: the path may have been replaced since the scan.
        let Ok(meta) = file.metadata() else { return };
        let key = FileKey::of(&meta);
        if self.files.contains_key(&key) {
            return;
        }
        let fingerprint = match Fingerprint::read(&file, source.cfg.fingerprint_bytes) {
            Ok(fp) => fp,
            Err(e) => {
                TailerMetrics::inc(&self.metrics.read_errors);
                warn!(path = %path.display(), error = %e, "cannot read log file");
                return;
            }
        };
        let mut offset = 0;
        let mut resumed = false;
        if let Some(p) = self.store.get(key) {
            // Same inode and the same first bytes: the file we were reading.
            let same = p.fingerprint.len <= fingerprint.len && p.fingerprint.matches(&file).unwrap_or(false);
            if same && p.offset <= meta.len() {
                offset = p.offset;
                resumed = true;
            } else {
                info!(path = %path.display(), "checkpoint does not match the file (inode reused or truncated); reading from the start");
            }
        } else if self.first_scan && source.cfg.start_at == StartAt::End {
            offset = meta.len();
        }
        let mut file = file;
        if offset > 0
            && let Err(e) = file.seek(SeekFrom::Start(offset))
        {
            warn!(path = %path.display(), error = %e, "cannot seek in log file");
            return;
        }
        let pod = if source.cfg.kubernetes_metadata { PodRef::from_path(path) } else { None };
        let mut f = TailedFile {
            key,
            source: si,
            path: path.to_path_buf(),
            path_str: Arc::from(path.to_string_lossy().as_ref()),
            file,
            read_offset: offset,
            fingerprint,
            framer: Framer::new(source.framing.clone()),
            attributes: Arc::default(),
            pod,
            emitted_commit: offset,
            last_batch: 0,
            gone_since: None,
            at_eof_since: None,
            flushed: false,
        };
        refresh_pod_attributes(&mut f, self.pod_metadata.as_deref());
        debug!(path = %path.display(), offset, resumed, "tailing log file");
        TailerMetrics::inc(&self.metrics.files_opened);
        if resumed {
            TailerMetrics::inc(&self.metrics.files_resumed);
        }
        self.metrics.files_open.fetch_add(1, Ordering::Relaxed);
        self.files.insert(key, f);
    }

    /// Rotated-away and deleted files: after `rotate_wait` at their end, send
    /// what is buffered; once that is acknowledged, close and forget them.
    fn close_finished(&mut self, now: Instant) -> Result<(), Closed> {
        let acked = self.control.acked_batch.load(Ordering::Acquire);
        let mut closed = Vec::new();
        for f in self.files.values_mut() {
            let Some(gone) = f.gone_since else { continue };
            let Some(eof) = f.at_eof_since else { continue };
            let rotate_wait = self.sources[f.source].cfg.rotate_wait.0;
            if !f.flushed && now.saturating_duration_since(gone.max(eof)) >= rotate_wait {
                f.framer.flush_all(Self::now_ns(), now, &mut self.framed);
                self.batcher.add(f, &mut self.framed)?;
                f.flushed = true;
            }
            if f.flushed && (f.last_batch == 0 || f.last_batch <= acked) && f.last_batch < self.batcher.current_seq() {
                closed.push(f.key);
            }
        }
        // Anything in the open batch of a flushed file must go out, or it would never be acknowledged.
        if self.files.values().any(|f| f.flushed && f.last_batch == self.batcher.current_seq()) {
            self.batcher.send()?;
        }
        for key in &closed {
            if let Some(f) = self.files.remove(key) {
                debug!(path = %f.path.display(), "closed rotated log file");
                self.metrics.files_open.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.store.forget(&closed);
        Ok(())
    }
}

/// Whether `f` was truncated or rewritten (shorter than the read offset, or
/// different first bytes); extends a short fingerprint as the file grows.
fn check_identity(f: &mut TailedFile, fingerprint_bytes: usize) -> bool {
    let Ok(meta) = f.file.metadata() else { return false };
    if meta.len() < f.read_offset {
        return true;
    }
    if f.fingerprint.len > 0 && !f.fingerprint.matches(&f.file).unwrap_or(true) {
        return true;
    }
    if (f.fingerprint.len as usize) < fingerprint_bytes
        && meta.len() > u64::from(f.fingerprint.len)
        && let Ok(fp) = Fingerprint::read(&f.file, fingerprint_bytes)
    {
        f.fingerprint = fp;
    }
    false
}

fn refresh_pod_attributes(f: &mut TailedFile, source: Option<&dyn PodMetadataSource>) {
    let Some(pod) = &f.pod else { return };
    let mut attrs = Attributes::new();
    pod.attributes(&mut attrs);
    if let Some(source) = source {
        attrs.extend(source.pod_attributes(pod));
    }
    if attrs != *f.attributes {
        f.attributes = Arc::new(attrs);
    }
}
