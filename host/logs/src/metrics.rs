//! The tailer's self-metrics: plain atomics the host exports as
//! `wasmon_logs_*` series; `snapshot()` gives a consistent-enough copy.

use crate::framing::FramingCounts;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($(#[$m:meta])* $name:ident / $snap:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $name { $($(#[$fm])* pub $field: std::sync::atomic::AtomicU64,)* }

        /// A copy of the counters at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct $snap { $($(#[$fm])* pub $field: u64,)* }

        impl $name {
            pub fn snapshot(&self) -> $snap {
                $snap { $($field: self.$field.load(std::sync::atomic::Ordering::Relaxed),)* }
            }
        }
    };
}
pub(crate) use counters;

counters! {
    /// Counters of one pipeline's tailer.
    TailerMetrics / TailerMetricsSnapshot {
        /// Gauge: files open now (including rotated-away files being drained).
        files_open,
        files_opened,
        /// Files resumed from a checkpoint.
        files_resumed,
        /// Expansions of the globs: one every `poll_interval`, and one per burst of file events other than writes
        /// (creations, renames, removals).
        scans,
        bytes_read,
        lines_read,
        records_emitted,
        batches_sent,
        /// A batch could not be queued because the sinks were behind: the tailer stopped reading.
        backpressure_waits,
        /// A file was renamed away from its path and a new file took it.
        rotations,
        /// A file shrank or its first bytes changed (copytruncate): read again from the start.
        truncations,
        /// An open file was deleted; it is read to its end before closing.
        files_deleted,
        invalid_utf8_lines,
        malformed_lines,
        /// Pieces cut at `max_line_bytes` (a 10 MiB line with a 1 MiB limit counts 10).
        long_lines_split,
        long_lines_truncated,
        partial_lines_joined,
        multiline_limited,
        read_errors,
        checkpoint_write_errors,
        processor_failures,
    }
}

impl TailerMetrics {
    pub(crate) fn add_framing(&self, c: &FramingCounts) {
        let add = |a: &AtomicU64, v: u64| {
            if v != 0 {
                a.fetch_add(v, Relaxed);
            }
        };
        add(&self.lines_read, c.lines);
        add(&self.records_emitted, c.records);
        add(&self.invalid_utf8_lines, c.invalid_utf8);
        add(&self.malformed_lines, c.malformed);
        add(&self.long_lines_split, c.long_lines_split);
        add(&self.long_lines_truncated, c.long_lines_truncated);
        add(&self.partial_lines_joined, c.partial_lines_joined);
        add(&self.multiline_limited, c.multiline_limited);
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
