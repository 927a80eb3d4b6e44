//! Retention: which whole blocks to drop, by age and by total size.

use crate::block::BlockMeta;

/// Retention limits; zero disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Milliseconds a block is kept after its end.
    pub time_ms: i64,
    /// Maximum total bytes of all blocks (the WAL is not counted, as in
    /// Prometheus' `retention.size`).
    pub size_bytes: u64,
}

/// Indices into `blocks` (sorted oldest first) of blocks to delete: those
/// ending at or before `now_ms - time_ms`, then the oldest remaining ones
/// until the total size fits.
pub fn expired(blocks: &[BlockMeta], now_ms: i64, r: Retention) -> Vec<usize> {
    let mut out = Vec::new();
    if r.time_ms > 0 {
        let cutoff = now_ms.saturating_sub(r.time_ms);
        out.extend(blocks.iter().enumerate().filter(|(_, b)| b.maxt <= cutoff).map(|(i, _)| i));
    }
    if r.size_bytes > 0 {
        let mut total: u64 = blocks.iter().enumerate().filter(|(i, _)| !out.contains(i)).map(|(_, b)| b.bytes).sum();
        for (i, b) in blocks.iter().enumerate() {
            if total <= r.size_bytes {
                break;
            }
            if !out.contains(&i) {
                out.push(i);
                total -= b.bytes;
            }
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mint: i64, bytes: u64) -> BlockMeta {
        BlockMeta { version: 1, mint, maxt: mint + 10, num_series: 1, num_chunks: 1, num_samples: 1, bytes }
    }

    #[test]
    fn by_time_and_by_size() {
        let blocks = [meta(0, 100), meta(10, 100), meta(20, 100), meta(30, 100)];
        assert_eq!(expired(&blocks, 45, Retention { time_ms: 20, size_bytes: 0 }), vec![0, 1]);
        assert_eq!(expired(&blocks, 45, Retention { time_ms: 0, size_bytes: 250 }), vec![0, 1]);
        assert_eq!(expired(&blocks, 45, Retention { time_ms: 25, size_bytes: 150 }), vec![0, 1, 2]);
        assert!(expired(&blocks, 45, Retention { time_ms: 0, size_bytes: 0 }).is_empty());
    }
}
