//! One open file: its identity, read offset, and framing state.

use crate::checkpoint::{FileKey, Fingerprint};
use crate::framing::Framer;
use crate::framing::kubernetes::PodRef;
use crate::record::Attributes;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct TailedFile {
    pub key: FileKey,
    pub source: usize,
    pub path: PathBuf,
    pub path_str: Arc<str>,
    pub file: File,
    /// The next byte to read.
    pub read_offset: u64,
    pub fingerprint: Fingerprint,
    pub framer: Framer,
    /// Copied into every record: Kubernetes metadata and whatever the host adds.
    pub attributes: Arc<Attributes>,
    pub pod: Option<PodRef>,
    /// Commit offset of the last record put into a batch.
    pub emitted_commit: u64,
    /// The batch that holds this file's last record; the file may close once it is acknowledged.
    pub last_batch: u64,
    /// No matched path leads to this file any more (rotated away or deleted).
    pub gone_since: Option<Instant>,
    /// The last read found no new data.
    pub at_eof_since: Option<Instant>,
    /// Everything buffered was sent because the file is closing.
    pub flushed: bool,
}
