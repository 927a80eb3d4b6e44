//! File access for plugins. Inside wasm every call goes through the host's
//! allowlist (see `wit/host.wit`, interface `files`); in native builds the
//! same functions use `std::fs`, so plugin logic can be tested with
//! `cargo test`.
//!
//! Errors are [`std::io::Error`]s, with `PermissionDenied` when the host
//! refused the path, so code reads like ordinary Rust.

use std::io;

#[cfg(target_arch = "wasm32")]
use crate::bindings::wasmon::plugin::files as host;

/// One entry of [`read_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

#[cfg(target_arch = "wasm32")]
fn to_io(e: host::FileError) -> io::Error {
    match e {
        host::FileError::Denied(m) => io::Error::new(io::ErrorKind::PermissionDenied, m),
        host::FileError::NotFound(m) => io::Error::new(io::ErrorKind::NotFound, m),
        host::FileError::TooLarge(m) => io::Error::new(io::ErrorKind::InvalidData, m),
        host::FileError::Io(m) => io::Error::other(m),
    }
}

/// Read a whole file as bytes.
pub fn read(path: &str) -> io::Result<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    return host::read_file(path).map_err(to_io);
    #[cfg(not(target_arch = "wasm32"))]
    return std::fs::read(path);
}

/// Read a whole file as UTF-8 text.
pub fn read_to_string(path: &str) -> io::Result<String> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: not valid UTF-8")))
}

/// List a directory, sorted by name.
pub fn read_dir(path: &str) -> io::Result<Vec<DirEntry>> {
    #[cfg(target_arch = "wasm32")]
    return host::read_dir(path)
        .map(|v| v.into_iter().map(|e| DirEntry { name: e.name, is_dir: e.is_dir }).collect())
        .map_err(to_io);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let is_dir = std::fs::metadata(entry.path()).map(|m| m.is_dir()).unwrap_or(false);
            out.push(DirEntry { name: entry.file_name().to_string_lossy().into_owned(), is_dir });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Read the target of a symbolic link.
pub fn read_link(path: &str) -> io::Result<String> {
    #[cfg(target_arch = "wasm32")]
    return host::read_link(path).map_err(to_io);
    #[cfg(not(target_arch = "wasm32"))]
    return std::fs::read_link(path).map(|p| p.to_string_lossy().into_owned());
}

/// Read a file holding one trimmed value, as sysfs attributes do.
pub fn read_trimmed(path: &str) -> io::Result<String> {
    read_to_string(path).map(|s| s.trim().to_string())
}
