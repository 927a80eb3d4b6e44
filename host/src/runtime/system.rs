//! The narrow system calls behind `wasmon:plugin/system`.

use std::path::Path;
use std::time::Duration;

/// How long a `statvfs` may take before we give up (a hung NFS server must
/// not stall the scrape), as node_exporter does with its mount timeout.
pub const STATFS_TIMEOUT: Duration = Duration::from_secs(5);

pub struct FsStats {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub read_only: bool,
}

type StatfsRequest = (std::path::PathBuf, std::sync::mpsc::Sender<nix::Result<nix::sys::statvfs::Statvfs>>);

/// One long-lived thread answers `statvfs` requests, so a scrape does not pay
/// for a thread per mount. If a request times out (a hung NFS server), that
/// thread is abandoned to its syscall and the next request starts a new one.
static STATFS_WORKER: std::sync::Mutex<Option<std::sync::mpsc::Sender<StatfsRequest>>> = std::sync::Mutex::new(None);

fn statfs_worker() -> Result<std::sync::mpsc::Sender<StatfsRequest>, String> {
    let mut worker = STATFS_WORKER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = worker.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = std::sync::mpsc::channel::<StatfsRequest>();
    std::thread::Builder::new()
        .name("wasmon-statfs".into())
        .stack_size(64 << 10)
        .spawn(move || {
            for (path, reply) in rx {
                let _ = reply.send(nix::sys::statvfs::statvfs(&path));
            }
        })
        .map_err(|e| format!("cannot start statfs thread: {e}"))?;
    *worker = Some(tx.clone());
    Ok(tx)
}

/// `statvfs` of `path`, with a timeout so a stuck mount does not stall the scrape.
pub fn statfs(path: &Path) -> Result<FsStats, String> {
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    let worker = statfs_worker()?;
    if worker.send((path.to_path_buf(), reply_tx)).is_err() {
        *STATFS_WORKER.lock().unwrap_or_else(|p| p.into_inner()) = None;
        return Err(format!("statvfs {}: worker thread gone", path.display()));
    }
    match reply_rx.recv_timeout(STATFS_TIMEOUT) {
        Ok(Ok(s)) => Ok(FsStats {
            block_size: s.fragment_size(),
            blocks: s.blocks(),
            blocks_free: s.blocks_free(),
            blocks_available: s.blocks_available(),
            files: s.files(),
            files_free: s.files_free(),
            read_only: s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        }),
        Ok(Err(errno)) => Err(format!("statvfs {}: {errno}", path.display())),
        Err(_) => {
            // Leave the stuck thread behind; later requests get a fresh one.
            *STATFS_WORKER.lock().unwrap_or_else(|p| p.into_inner()) = None;
            Err(format!("statvfs {}: timed out after {STATFS_TIMEOUT:?}", path.display()))
        }
    }
}

pub struct ClockState {
    pub offset_ns: i64,
    pub freq: i64,
    pub maxerror_us: i64,
    pub esterror_us: i64,
    pub status: i64,
    pub constant: i64,
    pub tick_us: i64,
    pub ppsfreq: i64,
    pub jitter_ns: i64,
    pub shift: i64,
    pub stabil: i64,
    pub jitcnt: i64,
    pub calcnt: i64,
    pub errcnt: i64,
    pub stbcnt: i64,
    pub tai: i64,
    pub synchronised: bool,
    /// STA_NANO: offsets and jitter are in ns instead of µs.
    pub nano: bool,
}

/// `adjtimex(2)` with `modes = 0`: reads the kernel clock state, changes nothing.
#[allow(unsafe_code)]
pub fn adjtimex() -> Result<ClockState, String> {
    // SAFETY: `timex` is plain old data; zeroed is a valid value and with
    // `modes == 0` the kernel only writes into the struct we pass.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(format!("adjtimex: {}", std::io::Error::last_os_error()));
    }
    const STA_NANO: i32 = 0x2000;
    Ok(ClockState {
        offset_ns: tx.offset,
        freq: tx.freq,
        maxerror_us: tx.maxerror,
        esterror_us: tx.esterror,
        status: tx.status as i64,
        constant: tx.constant,
        tick_us: tx.tick,
        ppsfreq: tx.ppsfreq,
        jitter_ns: tx.jitter,
        shift: tx.shift as i64,
        stabil: tx.stabil,
        jitcnt: tx.jitcnt,
        calcnt: tx.calcnt,
        errcnt: tx.errcnt,
        stbcnt: tx.stbcnt,
        tai: tx.tai as i64,
        synchronised: state != libc::TIME_ERROR,
        nano: tx.status & STA_NANO != 0,
    })
}
