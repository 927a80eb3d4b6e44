//! Immutable blocks: one directory per persisted time range,
//! `<data>/blocks/<mint>-<maxt>/`, holding
//!
//! - `chunks`: `"WMCK" | version u8 | (xor chunk | crc32 u32 BE)*`;
//! - `index`: `"WMIX" | version u8 | symbols | series | postings | crc32`,
//!   where symbols are the sorted distinct label strings, each series is its
//!   label symbol pairs plus chunk refs (mint, maxt, offset, length), and
//!   postings map (name, value) symbol pairs to series positions; all
//!   integers are varints;
//! - `meta.json`: [`BlockMeta`].
//!
//! Blocks are written to `<mint>-<maxt>.tmp/`, fsynced and renamed, so a
//! block directory either is complete or does not exist. Only `meta.json`
//! stays in memory; indexes are read on demand (see [`IndexCache`]) and
//! chunks are read per query.

use crate::chunk;
use crate::encoding::{DecodeError, Decoder, put_str, put_uvarint, put_varint};
use crate::head::HeadChunk;
use crate::index::Postings;
use crate::{Label, Labels, Matcher, Sample, SeriesSamples};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const CHUNKS_MAGIC: &[u8; 4] = b"WMCK";
const INDEX_MAGIC: &[u8; 4] = b"WMIX";
const FORMAT_VERSION: u8 = 1;
const META_FILE: &str = "meta.json";
const CHUNKS_FILE: &str = "chunks";
const INDEX_FILE: &str = "index";

/// Block read/write failures.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("block i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid block meta {path}: {source}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt block file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("block directory {0} already exists")]
    Exists(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlockError + '_ {
    move |source| BlockError::Io { path: path.to_owned(), source }
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> BlockError {
    BlockError::Corrupt { path: path.to_owned(), reason: reason.to_string() }
}

/// `meta.json`. The range is half-open: samples have `mint <= t < maxt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub version: u8,
    pub mint: i64,
    pub maxt: i64,
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_samples: u64,
    /// Size of the chunks and index files.
    pub bytes: u64,
}

impl BlockMeta {
    /// Bytes on disk per sample.
    pub fn bytes_per_sample(&self) -> f64 {
        if self.num_samples == 0 { 0.0 } else { self.bytes as f64 / self.num_samples as f64 }
    }

    /// Does the block hold data in the inclusive range `[mint, maxt]`?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.mint <= maxt && self.maxt > mint
    }
}

/// A chunk's place in the chunks file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub mint: i64,
    pub maxt: i64,
    pub offset: u64,
    pub len: u32,
}

/// One series of a block index.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSeries {
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

/// A block's decoded index; ids in `postings` are positions in `series`.
#[derive(Debug, Clone)]
pub struct BlockIndex {
    pub series: Vec<BlockSeries>,
    pub postings: Postings,
}

impl BlockIndex {
    /// Matching series with at least one chunk overlapping `[mint, maxt]`.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> impl Iterator<Item = &BlockSeries> {
        self.postings
            .select(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(id as usize))
            .filter(move |s| s.chunks.iter().any(|c| c.mint <= maxt && c.maxt >= mint))
    }
}

/// A persisted block: its directory and meta.
#[derive(Debug, Clone)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
}

fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied || e.kind() == io::ErrorKind::Unsupported => Ok(()),
        Err(e) => Err(BlockError::Io { path: dir.to_owned(), source: e }),
    }
}

impl Block {
    /// The block's `meta.json`.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads `meta.json` of an existing block.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let meta: BlockMeta = serde_json::from_slice(&bytes).map_err(|source| BlockError::Meta { path, source })?;
        if meta.version != FORMAT_VERSION || meta.maxt <= meta.mint {
            return Err(corrupt(dir, format!("unsupported version {} or empty range", meta.version)));
        }
        Ok(Self { dir: dir.to_owned(), meta })
    }

    /// Persists `series` (chunks entirely inside `[mint, maxt)`) as a new
    /// block under `blocks_dir`.
    pub fn write(
        blocks_dir: &Path,
        mint: i64,
        maxt: i64,
        mut series: Vec<(Labels, Vec<HeadChunk>)>,
    ) -> Result<Self, BlockError> {
        let name = format!("{mint}-{maxt}");
        let final_dir = blocks_dir.join(&name);
        if final_dir.exists() {
            return Err(BlockError::Exists(final_dir));
        }
        let tmp = blocks_dir.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series.retain(|(_, c)| !c.is_empty());

        let (refs, num_samples, chunks_len) = write_chunks(&tmp.join(CHUNKS_FILE), &series)?;
        let index_path = tmp.join(INDEX_FILE);
        let index = encode_index(series.iter().map(|(l, _)| l).zip(&refs));
        write_synced(&index_path, &index)?;
        let meta = BlockMeta {
            version: FORMAT_VERSION,
            mint,
            maxt,
            num_series: series.len() as u64,
            num_chunks: refs.iter().map(|r| r.len() as u64).sum(),
            num_samples,
            bytes: chunks_len + index.len() as u64,
        };
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|source| BlockError::Meta { path: tmp.clone(), source })?;
        write_synced(&tmp.join(META_FILE), &meta_json)?;
        sync_dir(&tmp)?;
        fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
        sync_dir(blocks_dir)?;
        Ok(Self { dir: final_dir, meta })
    }

    /// Reads and decodes the index file.
    pub fn read_index(&self) -> Result<BlockIndex, BlockError> {
        let path = self.dir.join(INDEX_FILE);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        decode_index(&bytes).map_err(|e| corrupt(&path, e))
    }

    /// Samples in `[mint, maxt]` of matching series. A damaged chunk is
    /// logged and skipped so one bad sector does not hide the whole block.
    pub fn select(
        &self,
        index: &BlockIndex,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>, BlockError> {
        let path = self.dir.join(CHUNKS_FILE);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let file_len = file.metadata().map_err(io_err(&path))?.len();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for s in index.select(matchers, mint, maxt) {
            let mut samples: Vec<Sample> = Vec::new();
            for c in s.chunks.iter().filter(|c| c.mint <= maxt && c.maxt >= mint) {
                match read_chunk(&mut file, file_len, c, &mut buf) {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(block = %self.dir.display(), series = %s.labels, error = %e, "skipping unreadable chunk");
                        continue;
                    }
                }
                match chunk::decode(&buf) {
                    Ok(decoded) => samples.extend(decoded.into_iter().filter(|x| x.t >= mint && x.t <= maxt)),
                    Err(e) => {
                        tracing::warn!(block = %self.dir.display(), series = %s.labels, error = %e, "skipping corrupt chunk")
                    }
                }
            }
            if !samples.is_empty() {
                out.push(SeriesSamples { labels: s.labels.clone(), samples });
            }
        }
        Ok(out)
    }

    /// Deletes the block directory.
    pub fn delete(&self) -> Result<(), BlockError> {
        fs::remove_dir_all(&self.dir).map_err(io_err(&self.dir))
    }
}

fn read_chunk(file: &mut File, file_len: u64, c: &ChunkRef, buf: &mut Vec<u8>) -> Result<(), String> {
    if c.offset.saturating_add(u64::from(c.len) + 4) > file_len {
        return Err(format!("chunk at offset {} runs past the end of the file", c.offset));
    }
    buf.resize(c.len as usize + 4, 0);
    file.seek(SeekFrom::Start(c.offset)).map_err(|e| e.to_string())?;
    file.read_exact(buf).map_err(|e| e.to_string())?;
    let n = c.len as usize;
    let want = u32::from_be_bytes([buf[n], buf[n + 1], buf[n + 2], buf[n + 3]]);
    buf.truncate(n);
    if crc32fast::hash(buf) != want {
        return Err(format!("chunk crc mismatch at offset {}", c.offset));
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BlockError> {
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

type ChunksWritten = (Vec<Vec<ChunkRef>>, u64, u64);

fn write_chunks(path: &Path, series: &[(Labels, Vec<HeadChunk>)]) -> Result<ChunksWritten, BlockError> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(CHUNKS_MAGIC).and_then(|()| w.write_all(&[FORMAT_VERSION])).map_err(io_err(path))?;
    let mut offset = 5u64;
    let mut samples = 0u64;
    let mut refs = Vec::with_capacity(series.len());
    for (_, chunks) in series {
        let mut r = Vec::with_capacity(chunks.len());
        for c in chunks {
            w.write_all(&c.data).map_err(io_err(path))?;
            w.write_all(&crc32fast::hash(&c.data).to_be_bytes()).map_err(io_err(path))?;
            samples += u64::from(chunk::num_samples(&c.data).unwrap_or(0));
            r.push(ChunkRef { mint: c.mint, maxt: c.maxt, offset, len: c.data.len() as u32 });
            offset += c.data.len() as u64 + 4;
        }
        refs.push(r);
    }
    let file = w.into_inner().map_err(|e| BlockError::Io { path: path.to_owned(), source: e.into_error() })?;
    file.sync_all().map_err(io_err(path))?;
    Ok((refs, samples, offset))
}

fn encode_index<'a>(series: impl Iterator<Item = (&'a Labels, &'a Vec<ChunkRef>)> + Clone) -> Vec<u8> {
    let symbols: BTreeSet<&str> =
        series.clone().flat_map(|(l, _)| l.iter().flat_map(|l| [l.name.as_str(), l.value.as_str()])).collect();
    let sym: HashMap<&str, u64> = symbols.iter().enumerate().map(|(i, s)| (*s, i as u64)).collect();
    let mut b = Vec::new();
    b.extend_from_slice(INDEX_MAGIC);
    b.push(FORMAT_VERSION);
    put_uvarint(&mut b, symbols.len() as u64);
    for s in &symbols {
        put_str(&mut b, s);
    }
    let mut postings: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    let all: Vec<_> = series.collect();
    put_uvarint(&mut b, all.len() as u64);
    for (pos, (labels, chunks)) in all.iter().enumerate() {
        put_uvarint(&mut b, labels.len() as u64);
        for l in labels.iter() {
            let pair = (sym[l.name.as_str()], sym[l.value.as_str()]);
            put_uvarint(&mut b, pair.0);
            put_uvarint(&mut b, pair.1);
            postings.entry(pair).or_default().push(pos as u64);
        }
        put_uvarint(&mut b, chunks.len() as u64);
        let mut prev_maxt = 0i64;
        let mut prev_end = 0u64;
        for c in chunks.iter() {
            // Chunks of a series are adjacent in time and in the file, so
            // deltas keep refs to a few bytes.
            put_varint(&mut b, c.mint.wrapping_sub(prev_maxt));
            put_uvarint(&mut b, c.maxt.wrapping_sub(c.mint) as u64);
            put_varint(&mut b, c.offset.wrapping_sub(prev_end) as i64);
            put_uvarint(&mut b, u64::from(c.len));
            prev_maxt = c.maxt;
            prev_end = c.offset + u64::from(c.len) + 4;
        }
    }
    put_uvarint(&mut b, postings.len() as u64);
    for ((n, v), ids) in &postings {
        put_uvarint(&mut b, *n);
        put_uvarint(&mut b, *v);
        put_uvarint(&mut b, ids.len() as u64);
        let mut prev = 0;
        for &id in ids {
            put_uvarint(&mut b, id - prev);
            prev = id;
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

fn decode_index(bytes: &[u8]) -> Result<BlockIndex, DecodeError> {
    if bytes.len() < 9 || &bytes[..4] != INDEX_MAGIC {
        return Err(DecodeError::Invalid("bad index magic"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(DecodeError::Invalid("index crc mismatch"));
    }
    let mut d = Decoder::new(&body[4..]);
    if d.u8()? != FORMAT_VERSION {
        return Err(DecodeError::Invalid("unsupported index version"));
    }
    let n_sym = d.len(1)?;
    let mut symbols = Vec::with_capacity(n_sym);
    for _ in 0..n_sym {
        symbols.push(d.str()?);
    }
    let get = |i: u64| symbols.get(i as usize).copied().ok_or(DecodeError::Invalid("symbol out of range"));
    let n_series = d.len(2)?;
    let mut series = Vec::with_capacity(n_series);
    for _ in 0..n_series {
        let nl = d.len(2)?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            let (n, v) = (get(d.uvarint()?)?, get(d.uvarint()?)?);
            labels.push(Label { name: n.to_owned(), value: v.to_owned() });
        }
        let nc = d.len(4)?;
        let mut chunks = Vec::with_capacity(nc);
        let (mut prev_maxt, mut prev_end) = (0i64, 0u64);
        for _ in 0..nc {
            let mint = prev_maxt.wrapping_add(d.varint()?);
            let maxt = mint.wrapping_add(d.uvarint()? as i64);
            let offset = prev_end.wrapping_add(d.varint()? as u64);
            let len = u32::try_from(d.uvarint()?).map_err(|_| DecodeError::Invalid("chunk length too large"))?;
            chunks.push(ChunkRef { mint, maxt, offset, len });
            prev_maxt = maxt;
            prev_end = offset.wrapping_add(u64::from(len) + 4);
        }
        series.push(BlockSeries { labels: Labels::new(labels), chunks });
    }
    let mut postings = Postings::new();
    postings.set_all((0..series.len() as u64).collect());
    let n_post = d.len(3)?;
    for _ in 0..n_post {
        let (n, v) = (get(d.uvarint()?)?, get(d.uvarint()?)?);
        let count = d.len(1)?;
        let mut ids = Vec::with_capacity(count);
        let mut prev = 0u64;
        for _ in 0..count {
            prev = prev.wrapping_add(d.uvarint()?);
            if prev >= series.len() as u64 {
                return Err(DecodeError::Invalid("posting beyond series table"));
            }
            ids.push(prev);
        }
        postings.insert_list(n, v, ids);
    }
    if !d.is_empty() {
        return Err(DecodeError::Invalid("trailing bytes in index"));
    }
    Ok(BlockIndex { series, postings })
}

/// Keeps the most recently used block indexes in memory. Queries mostly hit
/// the newest blocks; keeping every index would cost memory proportional
/// to retention × series.
#[derive(Debug)]
pub struct IndexCache {
    capacity: usize,
    entries: Mutex<VecDeque<(PathBuf, Arc<BlockIndex>)>>,
}

impl IndexCache {
    /// A cache holding at most `capacity` indexes.
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: Mutex::new(VecDeque::new()) }
    }

    /// The block's index, loading it on a miss.
    pub fn get(&self, block: &Block) -> Result<Arc<BlockIndex>, BlockError> {
        if let Ok(mut e) = self.entries.lock()
            && let Some(pos) = e.iter().position(|(p, _)| p == block.dir())
            && let Some(hit) = e.remove(pos)
        {
            let idx = hit.1.clone();
            e.push_front(hit);
            return Ok(idx);
        }
        // Loaded without the lock: concurrent misses may both read the file,
        // which is cheaper than serialising all queries behind one read.
        let idx = Arc::new(block.read_index()?);
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|(p, _)| p != block.dir());
            e.push_front((block.dir().to_owned(), idx.clone()));
            e.truncate(self.capacity);
        }
        Ok(idx)
    }

    /// Forgets a block (after it is deleted).
    pub fn evict(&self, dir: &Path) {
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|(p, _)| p != dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::XorAppender;

    fn head_chunk(start: i64, n: i64, v0: f64) -> HeadChunk {
        let mut a = XorAppender::new();
        for i in 0..n {
            a.append(start + i * 15_000, v0 + i as f64);
        }
        HeadChunk { mint: start, maxt: start + (n - 1) * 15_000, data: Arc::from(a.into_bytes()) }
    }

    fn labels(job: &str, i: usize) -> Labels {
        Labels::from_pairs([("__name__", "up".to_string()), ("job", job.to_string()), ("i", i.to_string())])
    }

    fn sample_block(dir: &Path) -> Block {
        let series = vec![
            (labels("b", 1), vec![head_chunk(0, 120, 0.0), head_chunk(1_800_000, 10, 5.0)]),
            (labels("a", 2), vec![head_chunk(15_000, 3, 1.0)]),
            (labels("c", 3), vec![]),
        ];
        Block::write(dir, 0, 7_200_000, series).unwrap()
    }

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = sample_block(dir.path());
        assert_eq!(b.dir(), dir.path().join("0-7200000"));
        let m = Block::open(b.dir()).unwrap();
        assert_eq!(m.meta(), b.meta());
        assert_eq!((m.meta().num_series, m.meta().num_chunks, m.meta().num_samples), (2, 3, 133));
        let idx = b.read_index().unwrap();
        assert_eq!(idx.series[0].labels, labels("b", 1), "series are sorted by labels");
        let got = b.select(&idx, &[Matcher::equal("job", "b")], 15_000, 1_800_000).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples.len(), 120);
        assert_eq!(got[0].samples[0], Sample { t: 15_000, v: 1.0 });
        assert_eq!(b.select(&idx, &[], 0, i64::MAX).unwrap().iter().map(|s| s.samples.len()).sum::<usize>(), 133);
        assert!(Block::write(dir.path(), 0, 7_200_000, vec![]).is_err(), "existing blocks are never overwritten");
    }

    #[test]
    fn damaged_files_are_errors_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let b = sample_block(dir.path());
        let idx = b.read_index().unwrap();
        let chunks = b.dir().join(CHUNKS_FILE);
        let mut bytes = fs::read(&chunks).unwrap();
        bytes[10] ^= 0xff;
        fs::write(&chunks, &bytes).unwrap();
        let got = b.select(&idx, &[], 0, i64::MAX).unwrap();
        assert_eq!(got.iter().map(|s| s.samples.len()).sum::<usize>(), 13, "only the damaged chunk is lost");

        let index = b.dir().join(INDEX_FILE);
        let mut bytes = fs::read(&index).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_index(&bytes[..cut]).is_err());
        }
        bytes[12] ^= 1;
        fs::write(&index, &bytes).unwrap();
        assert!(matches!(b.read_index(), Err(BlockError::Corrupt { .. })));
        fs::write(b.dir().join(META_FILE), b"{").unwrap();
        assert!(matches!(Block::open(b.dir()), Err(BlockError::Meta { .. })));
    }

    #[test]
    fn index_cache_keeps_recent_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let b = sample_block(dir.path());
        let cache = IndexCache::new(1);
        let a1 = cache.get(&b).unwrap();
        let a2 = cache.get(&b).unwrap();
        assert!(Arc::ptr_eq(&a1, &a2));
        cache.evict(b.dir());
        assert!(!Arc::ptr_eq(&a1, &cache.get(&b).unwrap()));
    }
}
