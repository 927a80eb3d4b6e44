//! Read positions that survive restarts. A position is only recorded after
//! every sink acknowledged the records before it, and the file is replaced
//! atomically, so a crash never leaves a half-written checkpoint.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Identifies a file independently of its name, so a rename (rotation) keeps its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub inode: u64,
}

impl FileKey {
    pub fn of(meta: &fs::Metadata) -> Self {
        Self { dev: meta.dev(), inode: meta.ino() }
    }
}

/// A checksum of a file's first `len` bytes: tells a reused inode, or a
/// truncated and rewritten file, from the file a position was recorded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprint {
    pub len: u32,
    pub crc32: u32,
}

impl Fingerprint {
    /// Reads up to `max` leading bytes of `file` (positioned reads: the file offset is untouched).
    pub fn read(file: &File, max: usize) -> std::io::Result<Self> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; max];
        let mut filled = 0;
        while filled < max {
            match file.read_at(&mut buf[filled..], filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(Self::of(&buf[..filled]))
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self { len: bytes.len() as u32, crc32: crc32fast::hash(bytes) }
    }

    /// Whether `file` still starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> std::io::Result<bool> {
        let now = Self::read(file, self.len as usize)?;
        Ok(now == *self)
    }
}

/// The acknowledged position of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub key: FileKey,
    /// The path the file had when the position was taken (for people reading the file).
    pub path: String,
    /// Every byte before this offset has been delivered.
    pub offset: u64,
    pub fingerprint: Fingerprint,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint file {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "checkpoint file {path} is corrupt at line {line}, column {column}: {message}; \
         move it aside to start over (files will then be read according to start_at)"
    )]
    Corrupt { path: PathBuf, line: usize, column: usize, message: String },
    #[error("checkpoint file {path}: unsupported version {version} (this agent writes version {CHECKPOINT_VERSION})")]
    Version { path: PathBuf, version: u32 },
    #[error("checkpoint file {path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const CHECKPOINT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    files: Vec<Position>,
}

#[derive(Default)]
struct State {
    positions: HashMap<FileKey, Position>,
    /// Changed since the last write.
    dirty: bool,
}

/// The positions of all tailed files, shared by the tailer (reads them), the
/// acknowledgement path (advances them) and the writer (persists them).
#[derive(Clone)]
pub struct CheckpointStore {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    /// One write at a time: the temp file name is fixed.
    write_lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl CheckpointStore {
    /// Loads `path` if it exists. A broken file is an error (never silently
    /// ignored: starting over would re-send or skip whole files).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let path = path.into();
        let mut state = State::default();
        match File::open(&path) {
            Ok(mut f) => {
                let mut text = String::new();
                f.read_to_string(&mut text).map_err(|source| CheckpointError::Read { path: path.clone(), source })?;
                let disk: OnDisk = serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
                    path: path.clone(),
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                })?;
                if disk.version != CHECKPOINT_VERSION {
                    return Err(CheckpointError::Version { path, version: disk.version });
                }
                state.positions = disk.files.into_iter().map(|p| (p.key, p)).collect();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(CheckpointError::Read { path, source }),
        }
        Ok(Self { path, state: Arc::new(Mutex::new(state)), write_lock: Arc::new(Mutex::new(())) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of a
        // plain map; the data is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: FileKey) -> Option<Position> {
        self.lock().positions.get(&key).cloned()
    }

    pub fn offset(&self, key: FileKey) -> Option<u64> {
        self.lock().positions.get(&key).map(|p| p.offset)
    }

    /// Records positions acknowledged by every sink, in batch order.
    pub fn apply(&self, positions: &[Position]) {
        if positions.is_empty() {
            return;
        }
        let mut s = self.lock();
        for p in positions {
            s.positions.insert(p.key, p.clone());
        }
        s.dirty = true;
    }

    /// Drops files that are closed for good (rotated away and fully delivered, or gone).
    pub fn forget(&self, keys: &[FileKey]) {
        let mut s = self.lock();
        for k in keys {
            if s.positions.remove(k).is_some() {
                s.dirty = true;
            }
        }
    }

    pub fn positions(&self) -> Vec<Position> {
        let mut v: Vec<_> = self.lock().positions.values().cloned().collect();
        v.sort_by_key(|p| p.key);
        v
    }

    /// Writes the positions if they changed: temp file, fsync, rename, fsync of the directory.
    pub fn persist(&self) -> Result<(), CheckpointError> {
        let _one_writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let files = {
            let mut s = self.lock();
            if !s.dirty {
                return Ok(());
            }
            s.dirty = false;
            let mut v: Vec<_> = s.positions.values().cloned().collect();
            v.sort_by_key(|p| p.key);
            v
        };
        let result = write_atomically(&self.path, &OnDisk { version: CHECKPOINT_VERSION, files });
        if result.is_err() {
            // Try again next time.
            self.lock().dirty = true;
        }
        result.map_err(|source| CheckpointError::Write { path: self.path.clone(), source })
    }
}

fn write_atomically(path: &Path, disk: &OnDisk) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let bytes = serde_json::to_vec_pretty(disk).map_err(std::io::Error::other)?;
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(inode: u64, offset: u64) -> Position {
        Position {
            key: FileKey { dev: 1, inode },
            path: format!("/x/{inode}.log"),
            offset,
            fingerprint: Fingerprint::of(b"abc"),
        }
    }

    #[test]
    fn positions_round_trip_and_later_acks_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let store = CheckpointStore::open(&path).unwrap();
        store.apply(&[pos(1, 10), pos(2, 5)]);
        store.apply(&[pos(1, 3)]); // after a truncation the offset goes back
        store.persist().unwrap();
        let again = CheckpointStore::open(&path).unwrap();
        assert_eq!(again.positions(), vec![pos(1, 3), pos(2, 5)]);
        again.forget(&[FileKey { dev: 1, inode: 2 }]);
        again.persist().unwrap();
        assert_eq!(CheckpointStore::open(&path).unwrap().positions(), vec![pos(1, 3)]);
    }

    #[test]
    fn a_broken_file_names_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        fs::write(&path, "{\"version\": 1,\n \"files\": [ {\"key\": 3 ]}").unwrap();
        let err = CheckpointStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("cp.json") && err.contains("line 2"), "{err}");
    }
}
