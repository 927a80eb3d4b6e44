//! Narrow system calls the host offers where WASI has none (`statvfs`,
//! `adjtimex`). Each must be granted in the job's `capabilities`.

pub use crate::bindings::wasmon::plugin::system::{ClockState, FsStats};

/// Sizes of the filesystem mounted at `mount_point` (as seen under `/`).
pub fn fs_stats(mount_point: &str) -> Result<FsStats, String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmon::plugin::system::stat_fs(mount_point);
    #[cfg(not(target_arch = "wasm32"))]
    return Err(format!("fs-stats of {mount_point}: only available inside the wasmon host"));
}

/// The kernel clock state from `adjtimex(2)`.
pub fn clock_state() -> Result<ClockState, String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wasmon::plugin::system::read_clock();
    #[cfg(not(target_arch = "wasm32"))]
    return Err("clock-state: only available inside the wasmon host".into());
}
