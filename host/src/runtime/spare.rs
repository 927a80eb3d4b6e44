//! An instance made ahead of a job's next collect. Every collect still gets
//! an instance that has never run a call, but it no longer waits for the
//! instantiation (~8% of an nginx probe's CPU, all of it in the probe's
//! latency): right after a call, the job instantiates the next one in the
//! background, under the same limits a call has. The CPU that took is
//! charged to the call that takes the instance, against its `limits.cpu`.
//!
//! Only jobs without `capabilities.tcp` keep one: their store holds nothing
//! of the target that a call cannot set when it takes the instance (the
//! target's address for `wasi:http`, the deadline), while a TCP grant is
//! built into the WASI context for one address. A job makes one at a time,
//! and at most [`MAX_SPARES`] exist or are being made in the agent, so
//! spares never take the pooling allocator's last slots from calls.

use super::Sandbox;
use super::bindings::Exporter;
use super::call::PluginState;
use super::stdio::CappedOutput;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use wasmtime::Store;

/// Spares across all jobs, made or being made; the pool has 64 component instances.
pub const MAX_SPARES: usize = 16;

/// Spares alive or being made now, in all slots.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A job's place for its one spare instance.
#[derive(Default)]
pub struct SpareSlot {
    spare: Mutex<Option<Spare>>,
    /// A spare for this slot is being made.
    filling: AtomicBool,
}

impl std::fmt::Debug for SpareSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpareSlot").field("ready", &self.is_ready()).finish()
    }
}

/// The slot a call's own copy of the sandbox holds: always empty. A store
/// must not hold its job's slot, or a spare kept there would keep the slot,
/// and so itself, alive forever.
pub(super) static NO_SLOT: LazyLock<Arc<SpareSlot>> = LazyLock::new(Arc::default);

impl SpareSlot {
    /// Take the spare, if one of `plugin` is there (a reload gives a job a new
    /// plugin: a spare of the old one is dropped).
    pub(super) fn take(&self, plugin: &Arc<str>) -> Option<Spare> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        Arc::ptr_eq(&spare.plugin, plugin).then_some(spare)
    }

    /// Whether a spare is waiting for the next call.
    pub fn is_ready(&self) -> bool {
        self.spare.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Claim the right to make this job's next spare: none waits, none is
    /// being made for the job, and the agent has fewer than [`MAX_SPARES`].
    pub(super) fn reserve(self: &Arc<Self>, sandbox: &Sandbox) -> Option<Reservation> {
        if sandbox.tcp || self.is_ready() || self.filling.swap(true, Ordering::AcqRel) {
            return None;
        }
        let counted = LIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_SPARES).then_some(n + 1));
        if counted.is_err() {
            self.filling.store(false, Ordering::Release);
            return None;
        }
        Some(Reservation { slot: self.clone(), live: Some(Counted) })
    }
}

/// The claim to fill a slot, given up when dropped.
pub(super) struct Reservation {
    slot: Arc<SpareSlot>,
    live: Option<Counted>,
}

impl Reservation {
    /// Keep the instance made for the job's next call.
    pub(super) fn fill(
        mut self,
        plugin: Arc<str>,
        parts: (Store<PluginState>, Exporter, CappedOutput, CappedOutput),
        cpu: Duration,
    ) {
        let Some(live) = self.live.take() else { return };
        let (store, exporter, stdout, stderr) = parts;
        let spare = Spare { plugin, store, exporter, stdout, stderr, cpu, _live: live };
        *self.slot.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(spare);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.slot.filling.store(false, Ordering::Release);
    }
}

/// An instantiated store that has not run a call.
pub(super) struct Spare {
    plugin: Arc<str>,
    store: Store<PluginState>,
    exporter: Exporter,
    stdout: CappedOutput,
    stderr: CappedOutput,
    /// CPU time the instantiation took.
    cpu: Duration,
    _live: Counted,
}

impl Spare {
    /// The store, the instance, the stdout and stderr it writes to, and the
    /// CPU time making it took.
    pub(super) fn into_parts(self) -> (Store<PluginState>, Exporter, CappedOutput, CappedOutput, Duration) {
        let Spare { store, exporter, stdout, stderr, cpu, .. } = self;
        (store, exporter, stdout, stderr, cpu)
    }
}

/// One count in [`LIVE`], given back when it goes.
struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}
