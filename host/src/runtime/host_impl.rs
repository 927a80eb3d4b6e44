//! The host side of `wasmon:plugin/{host,files,system}`: logging, the file
//! allowlist and the narrow system calls, each checked against the sandbox.

use super::bindings::wasmon::plugin::{files, host, secrets, system, types};
use super::call::PluginState;
use super::files::Refusal;

/// Longest log line kept; the rest is cut.
const MAX_LOG_LINE: usize = 4096;

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        if self.log_lines_left == 0 {
            self.log_lines_dropped += 1;
            return;
        }
        self.log_lines_left -= 1;
        let message: String = message.chars().take(MAX_LOG_LINE).collect();
        let message = super::call::SecretMasker(self.revealed_secrets.clone()).mask(&message);
        let (plugin, target) = (&*self.plugin, self.target.as_str());
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, target, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin, target, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin, target, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin, target, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin, target, "{message}"),
        }
    }
}

impl secrets::Host for PluginState {
    fn get(&mut self, name: String) -> Option<String> {
        let source = self.sandbox.secrets.get(&name)?;
        match source.read() {
            Ok(value) => {
                if !self.revealed_secrets.contains(&value) {
                    self.revealed_secrets.push(value.clone());
                }
                Some(value)
            }
            Err(e) => {
                tracing::warn!(plugin = &*self.plugin, target = %self.target, secret = name, "{e}");
                None
            }
        }
    }
}

fn to_file_error(refusal: Refusal) -> files::FileError {
    match refusal {
        Refusal::Denied(m) => files::FileError::Denied(m),
        Refusal::NotFound(m) => files::FileError::NotFound(m),
        Refusal::TooLarge(m) => files::FileError::TooLarge(m),
        Refusal::Io(m) => files::FileError::Io(m),
    }
}

impl PluginState {
    fn note_denied(&self, what: &str, refusal: &Refusal) {
        if let Refusal::Denied(message) = refusal {
            tracing::debug!(plugin = &*self.plugin, target = %self.target, what, "{message}");
        }
    }
}

impl files::Host for PluginState {
    fn read_file(&mut self, path: String) -> Result<Vec<u8>, files::FileError> {
        self.sandbox
            .files
            .read_cached(&path, &mut self.dir_cache)
            .inspect_err(|r| self.note_denied("read-file", r))
            .map_err(to_file_error)
    }

    fn read_dir(&mut self, path: String) -> Result<Vec<files::DirEntry>, files::FileError> {
        self.sandbox
            .files
            .list(&path)
            .map(|entries| entries.into_iter().map(|(name, is_dir)| files::DirEntry { name, is_dir }).collect())
            .inspect_err(|r| self.note_denied("read-dir", r))
            .map_err(to_file_error)
    }

    fn read_link(&mut self, path: String) -> Result<String, files::FileError> {
        self.sandbox.files.link(&path).inspect_err(|r| self.note_denied("read-link", r)).map_err(to_file_error)
    }
}

impl system::Host for PluginState {
    fn stat_fs(&mut self, mount_point: String) -> Result<system::FsStats, String> {
        if !self.sandbox.fs_stats {
            return Err("fs-stats is not granted to this plugin (capabilities.fs_stats)".into());
        }
        if !mount_point.starts_with('/') || mount_point.split('/').any(|p| p == "..") {
            return Err(format!("{mount_point}: mount point must be an absolute path without '..'"));
        }
        let host_path = self.paths.rootfs.join(mount_point.trim_start_matches('/'));
        super::system::statfs(&host_path).map(|s| system::FsStats {
            block_size: s.block_size,
            blocks: s.blocks,
            blocks_free: s.blocks_free,
            blocks_available: s.blocks_available,
            files: s.files,
            files_free: s.files_free,
            read_only: s.read_only,
        })
    }

    fn read_clock(&mut self) -> Result<system::ClockState, String> {
        if !self.sandbox.clock {
            return Err("clock is not granted to this plugin (capabilities.clock)".into());
        }
        let t = super::system::adjtimex()?;
        // Units as node_exporter's timex collector reports them.
        let divisor = if t.nano { 1e9 } else { 1e6 };
        let ppm16 = 65536.0 * 1e6;
        Ok(system::ClockState {
            offset_seconds: t.offset_ns as f64 / divisor,
            frequency_adjustment_ratio: 1.0 + t.freq as f64 / ppm16,
            max_error_seconds: t.maxerror_us as f64 / 1e6,
            estimated_error_seconds: t.esterror_us as f64 / 1e6,
            status: t.status,
            loop_time_constant: t.constant,
            tick_seconds: t.tick_us as f64 / 1e6,
            pps_frequency_hertz: t.ppsfreq as f64 / ppm16,
            pps_jitter_seconds: t.jitter_ns as f64 / divisor,
            pps_shift_seconds: t.shift as f64,
            pps_stability_hertz: t.stabil as f64 / ppm16,
            pps_jitter_total: t.jitcnt,
            pps_calibration_total: t.calcnt,
            pps_error_total: t.errcnt,
            pps_stability_exceeded_total: t.stbcnt,
            tai_offset_seconds: t.tai,
            synchronised: t.synchronised,
        })
    }
}

pub fn error_kind_label(kind: &types::ErrorKind) -> &'static str {
    match kind {
        types::ErrorKind::Config => "config",
        types::ErrorKind::Unavailable => "unavailable",
        types::ErrorKind::PermissionDenied => "permission denied",
        types::ErrorKind::InvalidData => "invalid data",
        types::ErrorKind::Internal => "internal",
    }
}
