//! Segmented write-ahead log.
//!
//! `wal/` holds numbered segment files (`00000000`, `00000001`, …) and at most
//! one `checkpoint.NNNNNNNN/` directory. Each segment is a sequence of frames
//! `type u8 | len u32 BE | crc32 u32 BE | payload`, the CRC (IEEE) covering
//! type, length and payload. A record never spans segments.
//!
//! Replay reads the newest checkpoint, then every later segment in order.
//! The first frame that is torn, has an impossible type or length, a bad CRC
//! or an undecodable payload cuts the log there: the segment is truncated to
//! the last good frame and every later segment is deleted. Nothing in a
//! damaged log stops the store from starting; only I/O errors do.
//!
//! Truncation removes a prefix of segments whose samples are all older than
//! the head (they are in blocks). Series records in them may still be live,
//! so they are first rewritten into `checkpoint.N`, N being the last removed
//! segment.

use crate::Labels;
use crate::encoding::{DecodeError, Decoder, put_str, put_uvarint, put_varint};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Default segment size before rotation.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

const FRAME_HEADER: u64 = 9;
const TYPE_SERIES: u8 = 1;
const TYPE_SAMPLES: u8 = 2;
/// Set in the frame type when the payload is snappy-compressed (block
/// format), as Prometheus' `--storage.tsdb.wal-compression` does per record.
const COMPRESSED: u8 = 0x80;

fn is_record_type(typ: u8) -> bool {
    matches!(typ & !COMPRESSED, TYPE_SERIES | TYPE_SAMPLES)
}
/// Keeps single records (and replay memory) bounded for huge batches.
const MAX_SERIES_PER_RECORD: usize = 5_000;
const MAX_SAMPLES_PER_RECORD: usize = 20_000;
const CHECKPOINT_PREFIX: &str = "checkpoint.";

/// WAL failures. Damaged contents are not errors (see [`ReplayReport`]).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

/// A series definition: the id samples refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSeries {
    pub id: u64,
    pub labels: Labels,
}

/// A sample of the series with id `id`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    pub id: u64,
    pub t: i64,
    pub v: f64,
}

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Series(Vec<RefSeries>),
    Samples(Vec<RefSample>),
}

/// What replay found, including what it had to drop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segment files read (a checkpoint counts as one).
    pub segments: usize,
    /// Good records handed to the caller.
    pub records: u64,
    /// Bytes cut off: the damaged segment's tail plus all later segments.
    pub dropped_bytes: u64,
    /// The damaged record plus the well-framed records after it (a lower
    /// bound: frames after the damage may not be recognisable).
    pub dropped_records: u64,
    /// Later segments deleted because they followed the damage.
    pub dropped_segments: usize,
    /// Where and why the log was cut.
    pub damage: Option<String>,
}

impl ReplayReport {
    /// True when nothing had to be dropped.
    pub fn is_clean(&self) -> bool {
        self.damage.is_none()
    }
}

/// Encodes a Series payload: `count | (id u64 BE | n | (name, value)*)*`.
pub fn encode_series<'a>(buf: &mut Vec<u8>, series: impl IntoIterator<Item = (u64, &'a Labels)>) {
    let items: Vec<(u64, &Labels)> = series.into_iter().collect();
    put_uvarint(buf, items.len() as u64);
    for (id, labels) in items {
        buf.extend_from_slice(&id.to_be_bytes());
        put_uvarint(buf, labels.len() as u64);
        for l in labels {
            put_str(buf, &l.name);
            put_str(buf, &l.value);
        }
    }
}

/// Encodes a Samples payload: `count | id u64 | t i64 | v f64 |
/// (id delta varint | t delta varint | v f64)*`, deltas against the previous
/// sample, values as raw bits so NaN payloads survive.
pub fn encode_samples(buf: &mut Vec<u8>, samples: &[RefSample]) {
    put_uvarint(buf, samples.len() as u64);
    let mut prev: Option<&RefSample> = None;
    for s in samples {
        match prev {
            None => {
                buf.extend_from_slice(&s.id.to_be_bytes());
                buf.extend_from_slice(&s.t.to_be_bytes());
            }
            Some(p) => {
                put_varint(buf, s.id.wrapping_sub(p.id) as i64);
                put_varint(buf, s.t.wrapping_sub(p.t));
            }
        }
        buf.extend_from_slice(&s.v.to_bits().to_be_bytes());
        prev = Some(s);
    }
}

/// Decodes a record payload of the given frame type.
pub fn decode_record(typ: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    if typ & COMPRESSED != 0 {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(payload)
            .map_err(|_| DecodeError::Invalid("compressed record does not decompress"))?;
        return decode_record(typ & !COMPRESSED, &raw);
    }
    let mut d = Decoder::new(payload);
    let rec = match typ {
        TYPE_SERIES => {
            let n = d.len(9)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let id = d.u64_be()?;
                let nl = d.len(2)?;
                let mut labels = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = d.str()?.to_owned();
                    let value = d.str()?.to_owned();
                    labels.push(crate::Label { name, value });
                }
                out.push(RefSeries { id, labels: Labels::new(labels) });
            }
            Record::Series(out)
        }
        TYPE_SAMPLES => {
            let n = d.len(10)?;
            let mut out: Vec<RefSample> = Vec::with_capacity(n);
            for i in 0..n {
                let (id, t) = match out.last() {
                    Some(p) if i > 0 => (p.id.wrapping_add(d.varint()? as u64), p.t.wrapping_add(d.varint()?)),
                    _ => (d.u64_be()?, d.u64_be()? as i64),
                };
                let v = f64::from_bits(d.u64_be()?);
                out.push(RefSample { id, t, v });
            }
            Record::Samples(out)
        }
        _ => return Err(DecodeError::Invalid("unknown record type")),
    };
    if !d.is_empty() {
        return Err(DecodeError::Invalid("trailing bytes after record"));
    }
    Ok(rec)
}

fn frame(out: &mut Vec<u8>, typ: u8, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&[typ]);
    h.update(&len);
    h.update(payload);
    out.push(typ);
    out.extend_from_slice(&len);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    out.extend_from_slice(payload);
}

/// Frames records for `series` and `samples`, split so no record is huge.
fn encode_batch(out: &mut Vec<u8>, series: &[(u64, &Labels)], samples: &[RefSample]) {
    let mut payload = Vec::new();
    let mut encoder = snap::raw::Encoder::new();
    for part in series.chunks(MAX_SERIES_PER_RECORD) {
        payload.clear();
        encode_series(&mut payload, part.iter().copied());
        compressed_frame(out, &mut encoder, TYPE_SERIES, &payload);
    }
    for part in samples.chunks(MAX_SAMPLES_PER_RECORD) {
        payload.clear();
        encode_samples(&mut payload, part);
        compressed_frame(out, &mut encoder, TYPE_SAMPLES, &payload);
    }
}

/// Frames `payload` snappy-compressed when that makes it smaller (label
/// sets and regular timestamps shrink about 2×; a few random floats may not).
fn compressed_frame(out: &mut Vec<u8>, encoder: &mut snap::raw::Encoder, typ: u8, payload: &[u8]) {
    match encoder.compress_vec(payload) {
        Ok(c) if c.len() < payload.len() => frame(out, typ | COMPRESSED, &c),
        _ => frame(out, typ, payload),
    }
}

fn segment_name(n: u64) -> String {
    format!("{n:08}")
}

/// Result of reading one segment file.
#[derive(Debug, Default)]
struct Scan {
    /// Offset just past the last good frame.
    good_end: u64,
    file_len: u64,
    records: u64,
    /// Newest sample time, `i64::MIN` when the segment holds no samples.
    max_t: i64,
    /// Reason and number of frames lost, when the segment is damaged.
    damage: Option<(String, u64)>,
}

enum Frame {
    Good {
        typ: u8,
        payload: Vec<u8>,
    },
    /// Framed correctly (length fits) but unusable; `len` is the frame size.
    Bad {
        reason: String,
        len: u64,
    },
    /// Cannot even be skipped over.
    Broken(String),
}

fn read_frame(r: &mut impl Read, remaining: u64) -> io::Result<Frame> {
    if remaining < FRAME_HEADER {
        return Ok(Frame::Broken(format!("torn frame header ({remaining} bytes)")));
    }
    let mut h = [0u8; FRAME_HEADER as usize];
    r.read_exact(&mut h)?;
    let typ = h[0];
    let len = u64::from(u32::from_be_bytes([h[1], h[2], h[3], h[4]]));
    let crc = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    if !is_record_type(typ) {
        return Ok(Frame::Broken(format!("invalid record type {typ}")));
    }
    if len > remaining - FRAME_HEADER {
        return Ok(Frame::Broken(format!("record length {len} exceeds the {} bytes left", remaining - FRAME_HEADER)));
    }
    // `len` is bounded by the file size, so this allocation is too.
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&h[..5]);
    hasher.update(&payload);
    if hasher.finalize() != crc {
        return Ok(Frame::Bad { reason: "crc mismatch".into(), len: FRAME_HEADER + len });
    }
    Ok(Frame::Good { typ, payload })
}

/// Reads a segment, handing good records to `on_record`, stopping at the
/// first damage (and then counting the well-framed frames after it).
fn scan(path: &Path, on_record: &mut dyn FnMut(Record)) -> Result<Scan, WalError> {
    let file = File::open(path).map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::with_capacity(256 << 10, file);
    let mut s = Scan { file_len, max_t: i64::MIN, ..Scan::default() };
    let mut off = 0u64;
    while off < file_len {
        let frame = read_frame(&mut r, file_len - off).map_err(io_err(path))?;
        let (reason, skip) = match frame {
            Frame::Good { typ, payload } => match decode_record(typ, &payload) {
                Ok(rec) => {
                    if let Record::Samples(ss) = &rec {
                        s.max_t = ss.iter().map(|x| x.t).fold(s.max_t, i64::max);
                    }
                    on_record(rec);
                    s.records += 1;
                    off += FRAME_HEADER + payload.len() as u64;
                    s.good_end = off;
                    continue;
                }
                Err(e) => (format!("undecodable record: {e}"), Some(FRAME_HEADER + payload.len() as u64)),
            },
            Frame::Bad { reason, len } => (reason, Some(len)),
            Frame::Broken(reason) => (reason, None),
        };
        let mut lost = 1;
        if let Some(skip) = skip {
            lost += count_frames(&mut r, off + skip, file_len).map_err(io_err(path))?;
        }
        s.damage = Some((format!("{reason} at offset {off}"), lost));
        break;
    }
    Ok(s)
}

/// Counts the good frames from `off` on, for the replay report.
fn count_frames<R: Read + Seek>(r: &mut R, mut off: u64, file_len: u64) -> io::Result<u64> {
    r.seek(SeekFrom::Start(off))?;
    let mut n = 0;
    while off < file_len {
        match read_frame(r, file_len - off)? {
            Frame::Good { payload, .. } => off += FRAME_HEADER + payload.len() as u64,
            Frame::Bad { len, .. } => off += len,
            Frame::Broken(_) => break,
        }
        n += 1;
    }
    Ok(n)
}

/// Segment numbers and the newest checkpoint in a WAL directory, after
/// removing leftovers of interrupted checkpoints.
fn list_dir(dir: &Path, remove_tmp: bool) -> Result<(Vec<u64>, Vec<u64>), WalError> {
    let mut segments = Vec::new();
    let mut checkpoints = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            if !remove_tmp {
                continue;
            }
            let p = entry.path();
            let res = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            res.map_err(io_err(&p))?;
        } else if let Some(n) = name.strip_prefix(CHECKPOINT_PREFIX).and_then(|n| n.parse::<u64>().ok()) {
            checkpoints.push(n);
        } else if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = name.parse::<u64>()
        {
            segments.push(n);
        }
    }
    segments.sort_unstable();
    checkpoints.sort_unstable();
    Ok((segments, checkpoints))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    // Directory fsync makes creates, renames and deletes durable; not
    // supported everywhere (e.g. Windows), where it is skipped.
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied || e.kind() == io::ErrorKind::Unsupported => Ok(()),
        Err(e) => Err(WalError::Io { path: dir.to_owned(), source: e }),
    }
}

/// Truncates a damaged file to its last good frame.
fn cut_file(path: &Path, len: u64) -> Result<(), WalError> {
    let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
    f.set_len(len).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

struct Replayed {
    report: ReplayReport,
    max_t: BTreeMap<u64, i64>,
    /// The newest segment (or checkpoint) number seen.
    last: Option<u64>,
}

/// Reads the newest checkpoint and every later segment; with `repair`, cuts
/// the log at the first damage and removes leftovers.
fn replay(dir: &Path, repair: bool, on_record: &mut dyn FnMut(Record)) -> Result<Replayed, WalError> {
    let (segments, checkpoints) = list_dir(dir, repair)?;
    let mut report = ReplayReport::default();
    let mut max_t = BTreeMap::new();
    let checkpoint = checkpoints.last().copied();
    if let Some(cp) = checkpoint {
        let path = dir.join(format!("{CHECKPOINT_PREFIX}{cp:08}")).join(segment_name(0));
        if path.exists() {
            let s = scan(&path, on_record)?;
            report.segments += 1;
            report.records += s.records;
            if let Some((reason, lost)) = s.damage {
                if repair {
                    cut_file(&path, s.good_end)?;
                }
                report.dropped_bytes += s.file_len - s.good_end;
                report.dropped_records += lost;
                report.damage = Some(format!("checkpoint {cp}: {reason}"));
            }
        }
        for old in checkpoints.iter().filter(|&&c| c < cp && repair) {
            let p = dir.join(format!("{CHECKPOINT_PREFIX}{old:08}"));
            fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
    }
    let mut last = checkpoint;
    let mut damaged = false;
    for &n in &segments {
        let path = dir.join(segment_name(n));
        if checkpoint.is_some_and(|cp| n <= cp) {
            // Left over from a truncation interrupted after the checkpoint.
            if repair {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
            continue;
        }
        if damaged {
            let s = scan(&path, &mut |_| {})?;
            report.dropped_bytes += s.file_len;
            report.dropped_records += s.records + s.damage.map_or(0, |d| d.1);
            report.dropped_segments += 1;
            if repair {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
            continue;
        }
        let s = scan(&path, on_record)?;
        report.segments += 1;
        report.records += s.records;
        max_t.insert(n, s.max_t);
        last = Some(n);
        if let Some((reason, lost)) = s.damage {
            if repair {
                cut_file(&path, s.good_end)?;
            }
            report.dropped_bytes += s.file_len - s.good_end;
            report.dropped_records += lost;
            report.damage = Some(format!("segment {n}: {reason}"));
            damaged = true;
        }
    }
    if repair {
        sync_dir(dir)?;
    }
    Ok(Replayed { report, max_t, last })
}

/// The open WAL, appending to its newest segment.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    segment_size: u64,
    current: u64,
    file: File,
    written: u64,
    unsynced: bool,
    /// A failed write may have left a partial frame; start a fresh segment
    /// before writing again so the partial frame is the segment's tail.
    needs_rotate: bool,
    /// Newest sample time per segment, to know which segments blocks cover.
    max_t: BTreeMap<u64, i64>,
    buf: Vec<u8>,
}

impl Wal {
    /// Replays `dir` (creating it if needed), repairing damage as described
    /// in the module docs, then starts a new segment for appends.
    pub fn open(
        dir: &Path,
        segment_size: u64,
        mut on_record: impl FnMut(Record),
    ) -> Result<(Self, ReplayReport), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let Replayed { report, mut max_t, last } = replay(dir, true, &mut on_record)?;
        let current = last.map_or(0, |n| n + 1);
        let file = Self::create_segment(dir, current)?;
        max_t.insert(current, i64::MIN);
        let wal = Self {
            dir: dir.to_owned(),
            segment_size: segment_size.max(FRAME_HEADER * 2),
            current,
            file,
            written: 0,
            unsynced: false,
            needs_rotate: false,
            max_t,
            buf: Vec::new(),
        };
        Ok((wal, report))
    }

    /// Replays `dir` without changing anything on disk: damage is reported
    /// and skipped over (reading stops at it) but not cut. For inspecting
    /// the WAL of a running agent.
    pub fn replay_read_only(dir: &Path, mut on_record: impl FnMut(Record)) -> Result<ReplayReport, WalError> {
        if !dir.is_dir() {
            return Ok(ReplayReport::default());
        }
        Ok(replay(dir, false, &mut on_record)?.report)
    }

    fn create_segment(dir: &Path, n: u64) -> Result<File, WalError> {
        let path = dir.join(segment_name(n));
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        sync_dir(dir)?;
        Ok(file)
    }

    fn rotate(&mut self) -> Result<(), WalError> {
        self.sync()?;
        let next = self.current + 1;
        self.file = Self::create_segment(&self.dir, next)?;
        self.current = next;
        self.written = 0;
        self.needs_rotate = false;
        self.max_t.insert(next, i64::MIN);
        Ok(())
    }

    /// Writes series definitions and samples with a single `write` (so a
    /// process crash cannot leave half a batch except as a torn tail). The
    /// data reaches the OS now but the disk only at the next [`Wal::sync`].
    pub fn log(&mut self, series: &[(u64, &Labels)], samples: &[RefSample]) -> Result<(), WalError> {
        if series.is_empty() && samples.is_empty() {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode_batch(&mut buf, series, samples);
        let res = self.write_frames(&buf, samples);
        // Keep a moderately sized buffer around; drop one a huge batch grew.
        if buf.capacity() <= 4 << 20 {
            self.buf = buf;
        }
        res
    }

    fn write_frames(&mut self, buf: &[u8], samples: &[RefSample]) -> Result<(), WalError> {
        if self.needs_rotate || (self.written > 0 && self.written + buf.len() as u64 > self.segment_size) {
            self.rotate()?;
        }
        if let Err(source) = self.file.write_all(buf) {
            // Best effort: drop the partial frame now; if that fails too, the
            // next segment starts clean and replay cuts this one's tail.
            let _ = self.file.set_len(self.written);
            self.needs_rotate = true;
            return Err(WalError::Io { path: self.dir.join(segment_name(self.current)), source });
        }
        self.written += buf.len() as u64;
        self.unsynced = true;
        let newest = samples.iter().map(|s| s.t).max().unwrap_or(i64::MIN);
        let e = self.max_t.entry(self.current).or_insert(i64::MIN);
        *e = (*e).max(newest);
        Ok(())
    }

    /// Makes everything logged so far durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.unsynced {
            self.file.sync_data().map_err(io_err(&self.dir.join(segment_name(self.current))))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// The newest segment number, being appended to.
    pub fn current_segment(&self) -> u64 {
        self.current
    }

    /// The last segment of the longest prefix whose samples are all older
    /// than `keep_from`, rotating first if that prefix includes the segment
    /// being written. `None` when nothing can be removed.
    pub fn truncation_point(&mut self, keep_from: i64) -> Result<Option<u64>, WalError> {
        let mut point = None;
        for (&n, &t) in &self.max_t {
            if t >= keep_from {
                break;
            }
            point = Some(n);
        }
        match point {
            Some(p) if p == self.current && self.written == 0 => {
                Ok(p.checked_sub(1).filter(|p| self.max_t.contains_key(p)))
            }
            Some(p) if p == self.current => {
                self.rotate()?;
                Ok(Some(p))
            }
            other => Ok(other),
        }
    }

    /// Writes `checkpoint.<through>` holding `series`, atomically (tmp dir,
    /// fsync, rename). Needs no lock on the WAL.
    pub fn write_checkpoint(dir: &Path, through: u64, series: &[(u64, Labels)]) -> Result<(), WalError> {
        let final_dir = dir.join(format!("{CHECKPOINT_PREFIX}{through:08}"));
        let tmp = dir.join(format!("{CHECKPOINT_PREFIX}{through:08}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let path = tmp.join(segment_name(0));
        let mut file = File::create(&path).map_err(io_err(&path))?;
        let mut buf = Vec::new();
        for part in series.chunks(MAX_SERIES_PER_RECORD) {
            buf.clear();
            let refs: Vec<(u64, &Labels)> = part.iter().map(|(id, l)| (*id, l)).collect();
            encode_batch(&mut buf, &refs, &[]);
            file.write_all(&buf).map_err(io_err(&path))?;
        }
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(&tmp)?;
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir).map_err(io_err(&final_dir))?;
        }
        fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
        sync_dir(dir)
    }

    /// Deletes segments up to and including `through` and older checkpoints.
    /// Call after [`Wal::write_checkpoint`] for the same `through`.
    pub fn remove_through(&mut self, through: u64) -> Result<usize, WalError> {
        let through = through.min(self.current.saturating_sub(1));
        let (segments, checkpoints) = list_dir(&self.dir, true)?;
        let mut removed = 0;
        for n in segments.into_iter().filter(|&n| n <= through && n < self.current) {
            let p = self.dir.join(segment_name(n));
            fs::remove_file(&p).map_err(io_err(&p))?;
            self.max_t.remove(&n);
            removed += 1;
        }
        for c in checkpoints.into_iter().filter(|&c| c < through) {
            let p = self.dir.join(format!("{CHECKPOINT_PREFIX}{c:08}"));
            fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
        sync_dir(&self.dir)?;
        Ok(removed)
    }
}

/// Where a WAL consumer stands: a segment and the byte offset just past the
/// last record it has taken. Ordered oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPosition {
    pub segment: u64,
    pub offset: u64,
}

/// What a WAL directory holds right now, as seen by a reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalListing {
    /// Segment numbers with their current sizes, oldest first.
    pub segments: Vec<(u64, u64)>,
    /// The newest checkpoint: the series still live when every segment up to
    /// and including this number was removed.
    pub checkpoint: Option<u64>,
}

impl WalListing {
    /// Bytes from `pos` to the end of the newest segment.
    pub fn bytes_after(&self, pos: WalPosition) -> u64 {
        self.segments
            .iter()
            .filter(|(n, _)| *n >= pos.segment)
            .map(|&(n, len)| if n == pos.segment { len.saturating_sub(pos.offset) } else { len })
            .sum()
    }

    /// The newest segment number.
    pub fn newest(&self) -> Option<u64> {
        self.segments.last().map(|s| s.0)
    }
}

/// Lists `dir` without changing anything (a missing directory is empty), for
/// consumers that tail the WAL of a running store.
pub fn list(dir: &Path) -> Result<WalListing, WalError> {
    if !dir.is_dir() {
        return Ok(WalListing::default());
    }
    let (segments, checkpoints) = list_dir(dir, false)?;
    // A segment removed between listing and stat is simply not there.
    let segments = segments
        .into_iter()
        .filter_map(|n| fs::metadata(dir.join(segment_name(n))).ok().map(|m| (n, m.len())))
        .collect();
    Ok(WalListing { segments, checkpoint: checkpoints.last().copied() })
}

/// Hands the records of checkpoint `n` (series only) to `on_record`,
/// stopping at the first damage. A missing checkpoint reads as empty.
pub fn read_checkpoint(dir: &Path, n: u64, mut on_record: impl FnMut(Record)) -> Result<(), WalError> {
    let path = dir.join(format!("{CHECKPOINT_PREFIX}{n:08}")).join(segment_name(0));
    if !path.exists() {
        return Ok(());
    }
    scan(&path, &mut on_record).map(|_| ())
}

/// What [`SegmentReader::read_next`] found at the reader's position.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadNext {
    /// A good record; the position moved past it.
    Record(Record),
    /// No complete record after the position yet: the writer may still be
    /// appending (or the segment ends with a torn frame).
    Pending,
    /// The bytes at the position are not a good frame (bad type, CRC or
    /// payload). In the segment being written this can be a write in
    /// progress; in an older one the rest of the segment is unusable.
    Damaged(String),
    /// The segment file does not exist (removed by truncation, or not yet
    /// created).
    Missing,
}

/// Tails one WAL segment at a time from a [`WalPosition`], without locking
/// or changing anything, for consumers such as remote-write queues. The
/// open file stays readable even after truncation deletes it.
#[derive(Debug)]
pub struct SegmentReader {
    dir: PathBuf,
    pos: WalPosition,
    file: Option<File>,
}

impl SegmentReader {
    pub fn new(dir: &Path, pos: WalPosition) -> Self {
        Self { dir: dir.to_owned(), pos, file: None }
    }

    pub fn position(&self) -> WalPosition {
        self.pos
    }

    /// Continues at `pos` (another segment or offset).
    pub fn seek(&mut self, pos: WalPosition) {
        if pos.segment != self.pos.segment {
            self.file = None;
        }
        self.pos = pos;
    }

    /// Reads the record at the position, if a complete good one is there.
    pub fn read_next(&mut self) -> Result<ReadNext, WalError> {
        let path = self.dir.join(segment_name(self.pos.segment));
        if self.file.is_none() {
            match File::open(&path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadNext::Missing),
                Err(e) => return Err(WalError::Io { path, source: e }),
            }
        }
        let Some(file) = self.file.as_mut() else { return Ok(ReadNext::Missing) };
        let len = file.metadata().map_err(io_err(&path))?.len();
        let off = self.pos.offset;
        if off.saturating_add(FRAME_HEADER) > len {
            return Ok(ReadNext::Pending);
        }
        let mut h = [0u8; FRAME_HEADER as usize];
        file.seek(SeekFrom::Start(off)).map_err(io_err(&path))?;
        file.read_exact(&mut h).map_err(io_err(&path))?;
        let typ = h[0];
        if !is_record_type(typ) {
            return Ok(ReadNext::Damaged(format!("invalid record type {typ} at offset {off}")));
        }
        let plen = u64::from(u32::from_be_bytes([h[1], h[2], h[3], h[4]]));
        let crc = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
        if off + FRAME_HEADER + plen > len {
            return Ok(ReadNext::Pending);
        }
        // Bounded by the file size, like in replay.
        let mut payload = vec![0u8; plen as usize];
        file.read_exact(&mut payload).map_err(io_err(&path))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[..5]);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            return Ok(ReadNext::Damaged(format!("crc mismatch at offset {off}")));
        }
        match decode_record(typ, &payload) {
            Ok(rec) => {
                self.pos.offset = off + FRAME_HEADER + plen;
                Ok(ReadNext::Record(rec))
            }
            Err(e) => Ok(ReadNext::Damaged(format!("undecodable record at offset {off}: {e}"))),
        }
    }
}

/// Total bytes of the files under `dir` (0 if unreadable).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STALE_BITS: u64 = crate::STALE_NAN_BITS;

    fn lbl(i: u64) -> Labels {
        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
    }

    #[test]
    fn compressible_records_are_framed_compressed_and_decode_back() {
        let labels: Vec<(u64, Labels)> = (0..50).map(|i| (i, lbl(i))).collect();
        let samples: Vec<RefSample> =
            (0..500).map(|i| RefSample { id: i % 50, t: 1_000 + 15_000 * i as i64, v: 1.0 }).collect();
        let mut out = Vec::new();
        encode_batch(&mut out, &labels.iter().map(|(i, l)| (*i, l)).collect::<Vec<_>>(), &samples);
        let mut plain = Vec::new();
        encode_series(&mut plain, labels.iter().map(|(i, l)| (*i, l)));
        let mut r = std::io::Cursor::new(out.as_slice());
        let mut decoded = Vec::new();
        let mut types = Vec::new();
        while (r.position() as usize) < out.len() {
            let remaining = (out.len() - r.position() as usize) as u64;
            let Frame::Good { typ, payload } = read_frame(&mut r, remaining).unwrap() else { panic!("bad frame") };
            types.push(typ);
            decoded.push(decode_record(typ, &payload).unwrap());
        }
        assert!(types.iter().all(|t| t & COMPRESSED != 0), "both records shrink: {types:?}");
        assert!(out.len() < plain.len() + samples.len() * 10, "compression pays: {} bytes", out.len());
        assert_eq!(
            decoded[0],
            Record::Series(labels.iter().map(|(id, l)| RefSeries { id: *id, labels: l.clone() }).collect())
        );
        let Record::Samples(got) = &decoded[1] else { panic!("samples expected") };
        assert_eq!(got.len(), 500);
        // Garbage flagged as compressed is an error, not a panic.
        assert!(decode_record(TYPE_SAMPLES | COMPRESSED, &[0xff, 0xff, 0xff]).is_err());
    }

    fn replay(dir: &Path) -> (Wal, ReplayReport, Vec<Record>) {
        let mut recs = Vec::new();
        let (w, r) = Wal::open(dir, 1 << 20, |rec| recs.push(rec)).unwrap();
        (w, r, recs)
    }

    fn write_some(dir: &Path, batches: u64, segment_size: u64) {
        let (mut w, _) = Wal::open(dir, segment_size, |_| {}).unwrap();
        for b in 0..batches {
            let l = lbl(b);
            let samples: Vec<RefSample> =
                (0..10).map(|i| RefSample { id: b, t: (b * 10 + i) as i64, v: i as f64 }).collect();
            w.log(&[(b, &l)], &samples).unwrap();
        }
        w.sync().unwrap();
    }

    fn sample_count(recs: &[Record]) -> usize {
        recs.iter().map(|r| if let Record::Samples(s) = r { s.len() } else { 0 }).sum()
    }

    #[test]
    fn round_trip_across_rotated_segments() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path(), 50, 512);
        let (w, r, recs) = replay(dir.path());
        assert!(r.is_clean(), "{r:?}");
        assert!(r.segments > 5, "{r:?}");
        assert_eq!(recs.len(), 100);
        assert_eq!(sample_count(&recs), 500);
        assert_eq!(recs[0], Record::Series(vec![RefSeries { id: 0, labels: lbl(0) }]));
        assert!(w.current_segment() as usize >= r.segments);
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path(), 5, 1 << 20);
        let seg = dir.path().join(segment_name(0));
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 7).unwrap();
        let (_, r, recs) = replay(dir.path());
        assert_eq!(r.dropped_records, 1);
        assert!(r.dropped_bytes > 0 && r.damage.is_some(), "{r:?}");
        assert_eq!(recs.len(), 9);
        // The cut is persistent: the next replay is clean.
        let (_, r2, recs2) = replay(dir.path());
        assert!(r2.is_clean());
        assert_eq!(recs2.len(), 9);
    }

    #[test]
    fn read_only_replay_reports_damage_without_touching_files() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path(), 5, 1 << 20);
        let seg = dir.path().join(segment_name(0));
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 3).unwrap();
        let mut n = 0;
        let r = Wal::replay_read_only(dir.path(), |_| n += 1).unwrap();
        assert_eq!((n, r.dropped_records), (9, 1));
        assert_eq!(fs::metadata(&seg).unwrap().len(), len - 3);
        assert_eq!(list_dir(dir.path(), false).unwrap().0, vec![0]);
        assert!(Wal::replay_read_only(&dir.path().join("missing"), |_| {}).unwrap().is_clean());
    }

    #[test]
    fn flipped_byte_cuts_segment_and_drops_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path(), 40, 1024);
        let seg = dir.path().join(segment_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5a;
        fs::write(&seg, &bytes).unwrap();
        let segments_before = list_dir(dir.path(), false).unwrap().0.len();
        let (_, r, recs) = replay(dir.path());
        assert!(r.dropped_bytes > 0 && r.dropped_records > 1 && r.dropped_segments > 0, "{r:?}");
        assert_eq!(r.dropped_segments, segments_before - 2);
        // Everything in segment 0 and before the damage in segment 1 is back.
        let first_seg_records = {
            let mut n = 0;
            scan(&dir.path().join(segment_name(0)), &mut |_| n += 1).unwrap();
            n
        };
        assert!(recs.len() > first_seg_records);
        assert!(recs.windows(2).all(|w| !matches!((&w[0], &w[1]), (Record::Series(_), Record::Series(_)))));
    }

    #[test]
    fn truncation_keeps_live_series_via_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(dir.path(), 256, |_| {}).unwrap();
        for b in 0..20u64 {
            let l = lbl(b);
            w.log(&[(b, &l)], &[RefSample { id: b, t: b as i64 * 100, v: 1.0 }]).unwrap();
        }
        let point = w.truncation_point(1000).unwrap().unwrap();
        let live: Vec<(u64, Labels)> = (0..20).map(|b| (b, lbl(b))).collect();
        Wal::write_checkpoint(dir.path(), point, &live).unwrap();
        assert!(w.remove_through(point).unwrap() > 0);
        drop(w);
        let (_, r, recs) = replay(dir.path());
        assert!(r.is_clean());
        let series: usize = recs.iter().map(|r| if let Record::Series(s) = r { s.len() } else { 0 }).sum();
        assert!(series >= 20, "every live series must still be known");
        let samples: Vec<i64> = recs
            .iter()
            .flat_map(|r| if let Record::Samples(s) = r { s.iter().map(|x| x.t).collect() } else { vec![] })
            .collect();
        assert!(samples.iter().all(|&t| t >= 0) && samples.contains(&1900));
        assert!(!samples.contains(&0), "segments before the point are gone");
    }

    #[test]
    fn garbage_files_never_prevent_startup() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00000000"), b"\x02\xff\xff\xff\xffgarbage").unwrap();
        fs::write(dir.path().join("00000001"), [0u8; 100]).unwrap();
        fs::write(dir.path().join("README"), b"not a segment").unwrap();
        let (_, r, recs) = replay(dir.path());
        assert!(recs.is_empty());
        assert_eq!(r.dropped_segments, 1);
        assert_eq!(r.dropped_bytes, 12 + 100);
    }

    #[test]
    fn segment_reader_tails_across_rotations_and_waits_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(dir.path(), 256, |_| {}).unwrap();
        let start = WalPosition { segment: w.current_segment(), offset: 0 };
        let mut r = SegmentReader::new(dir.path(), start);
        assert_eq!(r.read_next().unwrap(), ReadNext::Pending);
        let mut got = Vec::new();
        for b in 0..30u64 {
            let l = lbl(b);
            w.log(&[(b, &l)], &[RefSample { id: b, t: b as i64, v: f64::from_bits(STALE_BITS) }]).unwrap();
            // Read everything available, moving on when a newer segment exists.
            loop {
                match r.read_next().unwrap() {
                    ReadNext::Record(Record::Samples(s)) => got.extend(s),
                    ReadNext::Record(Record::Series(_)) => {}
                    ReadNext::Pending => {
                        let listing = list(dir.path()).unwrap();
                        let pos = r.position();
                        match listing.segments.iter().find(|(n, _)| *n > pos.segment) {
                            Some(&(n, _)) => r.seek(WalPosition { segment: n, offset: 0 }),
                            None => break,
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(got.len(), 30);
        assert!(got.iter().enumerate().all(|(i, s)| s.id == i as u64 && s.v.to_bits() == STALE_BITS));
        let listing = list(dir.path()).unwrap();
        assert!(listing.segments.len() > 3, "{listing:?}");
        assert_eq!(listing.bytes_after(r.position()), 0);
        assert!(listing.bytes_after(start) > 0);
        assert_eq!(
            SegmentReader::new(dir.path(), WalPosition { segment: 999, offset: 0 }).read_next().unwrap(),
            ReadNext::Missing
        );
    }

    #[test]
    fn segment_reader_reports_a_torn_tail_as_pending_and_garbage_as_damaged() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path(), 2, 1 << 20);
        let seg = dir.path().join(segment_name(0));
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 3).unwrap();
        let mut r = SegmentReader::new(dir.path(), WalPosition::default());
        let mut records = 0;
        while let ReadNext::Record(_) = r.read_next().unwrap() {
            records += 1;
        }
        assert_eq!(records, 3);
        assert_eq!(r.read_next().unwrap(), ReadNext::Pending);
        fs::write(dir.path().join(segment_name(1)), [7u8; 64]).unwrap();
        let mut r = SegmentReader::new(dir.path(), WalPosition { segment: 1, offset: 0 });
        assert!(matches!(r.read_next().unwrap(), ReadNext::Damaged(_)));
    }

    #[test]
    fn checkpoints_can_be_read_by_consumers() {
        let dir = tempfile::tempdir().unwrap();
        let live: Vec<(u64, Labels)> = (0..3).map(|b| (b, lbl(b))).collect();
        Wal::write_checkpoint(dir.path(), 4, &live).unwrap();
        let listing = list(dir.path()).unwrap();
        assert_eq!(listing.checkpoint, Some(4));
        let mut n = 0;
        read_checkpoint(dir.path(), 4, |r| {
            if let Record::Series(s) = r {
                n += s.len();
            }
        })
        .unwrap();
        assert_eq!(n, 3);
        assert!(list(&dir.path().join("missing")).unwrap().segments.is_empty());
    }

    proptest! {
        #[test]
        fn records_round_trip(
            samples in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..50),
            names in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{1,8}"), 0..6),
            id in any::<u64>(),
        ) {
            let samples: Vec<RefSample> = samples.into_iter().map(|(id, t, v)| RefSample { id, t, v: f64::from_bits(v) }).collect();
            let mut buf = Vec::new();
            encode_samples(&mut buf, &samples);
            let Record::Samples(got) = decode_record(TYPE_SAMPLES, &buf).unwrap() else { panic!("wrong type") };
            prop_assert_eq!(got.len(), samples.len());
            for (a, b) in got.iter().zip(&samples) {
                prop_assert_eq!((a.id, a.t, a.v.to_bits()), (b.id, b.t, b.v.to_bits()));
            }
            let labels = Labels::from_pairs(names);
            let mut buf = Vec::new();
            encode_series(&mut buf, [(id, &labels)]);
            prop_assert_eq!(decode_record(TYPE_SERIES, &buf).unwrap(), Record::Series(vec![RefSeries { id, labels }]));
        }

        #[test]
        fn arbitrary_payloads_never_panic(typ in 0u8..4, data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record(typ, &data);
        }
    }
}
