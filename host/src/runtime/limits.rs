//! Per-instance memory accounting: a cap and a high-water mark.

use wasmtime::ResourceLimiter;

/// Marker error so a call can tell "memory limit" apart from other traps.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (wanted {desired} bytes)")]
pub struct MemoryLimitHit {
    pub limit: u64,
    pub desired: u64,
}

#[derive(Debug)]
pub struct MemoryLimiter {
    pub limit: u64,
    pub high_water: u64,
}

impl MemoryLimiter {
    pub fn new(limit: u64) -> Self {
        Self { limit, high_water: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.limit {
            // An error (not `Ok(false)`) traps right here, so a memory bomb ends
            // with a clear reason instead of an allocator abort inside the guest.
            return Err(wasmtime::Error::new(MemoryLimitHit { limit: self.limit, desired }));
        }
        self.high_water = self.high_water.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
