//! The file allowlist. A plugin names paths as on a normal host (`/proc/stat`);
//! the host maps them onto its configured roots, resolves every symbolic link,
//! and allows the read only when both the requested path and the resolved
//! path are granted. Nothing of `/proc` or `/sys` is ever preopened, so a
//! plugin cannot reach `/proc/self/mem` or `/proc/self/environ` by walking.

use crate::config::PathsConfig;
use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Largest file one `read-file` call returns.
pub const MAX_READ_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FilePolicyError {
    #[error("invalid file glob {glob:?}: {source}")]
    Glob {
        glob: String,
        #[source]
        source: globset::Error,
    },
}

/// Why a path was refused or could not be read; shown to the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Denied(String),
    NotFound(String),
    TooLarge(String),
    Io(String),
}

#[derive(Debug)]
pub struct FilePolicy {
    allow: GlobSet,
    /// Each glob split into per-component matchers (and whether that
    /// component is a pattern), to decide which directories may be listed on
    /// the way to an allowed file.
    prefixes: Vec<Vec<(Option<GlobMatcher>, bool)>>,
    procfs: PathBuf,
    sysfs: PathBuf,
    rootfs: PathBuf,
    /// `/proc/self` of this process under `procfs` (e.g. `1234`), so the
    /// kernel's own aliases `/proc/net -> self/net` and `/proc/mounts ->
    /// self/mounts` resolve to something we can still match.
    self_pid: Option<String>,
}

fn component_glob(text: &str) -> Option<GlobMatcher> {
    if text == "**" {
        return None; // matches any depth
    }
    GlobBuilder::new(text).literal_separator(true).build().ok().map(|g| g.compile_matcher())
}

impl FilePolicy {
    pub fn new(paths: &PathsConfig, globs: &[String]) -> Result<Self, FilePolicyError> {
        let mut builder = GlobSetBuilder::new();
        let mut prefixes = Vec::new();
        for glob in globs {
            let compiled = GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|source| FilePolicyError::Glob { glob: glob.clone(), source })?;
            builder.add(compiled);
            prefixes.push(
                glob.trim_start_matches('/')
                    .split('/')
                    .map(|part| (component_glob(part), part.contains(['*', '?', '[', '{'])))
                    .collect(),
            );
        }
        let allow = builder.build().map_err(|source| FilePolicyError::Glob { glob: globs.join(","), source })?;
        let self_pid = std::fs::read_link(paths.procfs.join("self")).ok().map(|p| p.to_string_lossy().into_owned());
        // Resolved paths come back canonical; compare them with canonical roots.
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(Self {
            allow,
            prefixes,
            procfs: canonical(&paths.procfs),
            sysfs: canonical(&paths.sysfs),
            rootfs: canonical(&paths.rootfs),
            self_pid,
        })
    }

    pub fn deny_all(paths: &PathsConfig) -> Self {
        let mut policy = Self::new(paths, &[]).unwrap_or_else(|_| unreachable!("empty glob set always builds"));
        policy.allow = GlobSet::empty();
        policy
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
    }

    /// Check a guest path lexically: absolute, no `.`/`..`, no NUL.
    fn normalize(guest: &str) -> Result<String, Refusal> {
        if !guest.starts_with('/') {
            return Err(Refusal::Denied(format!("{guest}: paths must be absolute")));
        }
        if guest.contains('\0') {
            return Err(Refusal::Denied(format!("{guest:?}: path contains NUL")));
        }
        let mut out = String::with_capacity(guest.len());
        for component in Path::new(guest).components() {
            match component {
                Component::RootDir => {}
                Component::Normal(part) => {
                    out.push('/');
                    out.push_str(&part.to_string_lossy());
                }
                Component::ParentDir | Component::CurDir | Component::Prefix(_) => {
                    return Err(Refusal::Denied(format!("{guest}: '..' and '.' are not allowed in paths")));
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(out)
    }

    /// Map a normalized guest path onto the host's roots.
    fn to_host(&self, guest: &str) -> PathBuf {
        let under = |root: &Path, rest: &str| root.join(rest.trim_start_matches('/'));
        if guest == "/proc" || guest.starts_with("/proc/") {
            under(&self.procfs, &guest["/proc".len()..])
        } else if guest == "/sys" || guest.starts_with("/sys/") {
            under(&self.sysfs, &guest["/sys".len()..])
        } else {
            under(&self.rootfs, guest)
        }
    }

    /// Map a resolved host path back into the guest namespace, or `None` when
    /// it left every root.
    fn to_guest(&self, host: &Path) -> Option<String> {
        let rel = |root: &Path, prefix: &str| {
            host.strip_prefix(root).ok().map(|rest| {
                let rest = rest.to_string_lossy();
                if rest.is_empty() { prefix.to_string() } else { format!("{}/{rest}", prefix.trim_end_matches('/')) }
            })
        };
        let guest =
            rel(&self.procfs, "/proc").or_else(|| rel(&self.sysfs, "/sys")).or_else(|| rel(&self.rootfs, "/"))?;
        // The kernel makes /proc/net and /proc/mounts links into /proc/self;
        // map our own pid back so `/proc/net/*` grants keep working, while
        // `/proc/<pid>/mem` and friends stay unmatched.
        if let Some(pid) = &self.self_pid {
            let own = format!("/proc/{pid}/");
            if let Some(rest) = guest.strip_prefix(&own)
                && (rest == "net" || rest.starts_with("net/") || rest == "mounts")
            {
                return Some(format!("/proc/{rest}"));
            }
        }
        Some(guest)
    }

    fn allowed(&self, guest: &str) -> bool {
        self.allow.is_match(guest) && !self.always_denied(guest)
    }

    /// Paths no grant can open, whatever the globs say: this agent's own
    /// process entries (its memory, environment and open files hold every
    /// secret the host has) and any process's memory or environment.
    fn always_denied(&self, guest: &str) -> bool {
        if let Some(pid) = &self.self_pid
            && let Some(rest) = guest.strip_prefix("/proc/").and_then(|r| r.strip_prefix(pid.as_str()))
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return true;
        }
        if guest == "/proc/kcore" || guest == "/proc/kmem" {
            return true;
        }
        let parts: Vec<&str> = guest.split('/').collect();
        let sensitive = |name: &str| matches!(name, "mem" | "environ" | "pagemap" | "map_files");
        // /proc/<pid>/<file> and /proc/<pid>/task/<tid>/<file>
        parts.len() >= 4
            && parts[1] == "proc"
            && (sensitive(parts[3]) || (parts.len() >= 6 && parts[3] == "task" && sensitive(parts[5])))
    }

    /// May this directory be listed: is it allowed itself, or on the way to
    /// an allowed glob?
    fn listable(&self, guest: &str) -> bool {
        if self.always_denied(guest) {
            return false;
        }
        if self.allowed(guest) {
            return true;
        }
        let parts: Vec<&str> = guest.trim_start_matches('/').split('/').filter(|p| !p.is_empty()).collect();
        // Listing is needed only where the glob has a pattern right below the
        // directory: `/proc/*/stat` lets you list `/proc`, `/proc/net/*` lets
        // you list `/proc/net` but not `/proc` (which would reveal pids).
        self.prefixes.iter().any(|glob| {
            for (i, part) in parts.iter().enumerate() {
                match glob.get(i) {
                    None => return false,
                    Some((None, _)) => return true, // `**`
                    Some((Some(m), _)) if m.is_match(part) => {}
                    Some(_) => return false,
                }
            }
            matches!(glob.get(parts.len()), Some((_, true)))
        })
    }

    /// Open a granted path without reading it (`O_PATH`: no side effects even
    /// on devices or FIFOs), learn where it really is from the kernel
    /// (`/proc/self/fd/N`), and check that place against the allowlist too.
    /// Reads then go through the same descriptor, so nothing can swap a link
    /// between the check and the read. This is one path walk per file, where
    /// `canonicalize` costs a `readlink` for every component.
    fn open_checked(&self, guest: &str, listing: bool) -> Result<(OwnedFd, String), Refusal> {
        let guest = Self::normalize(guest)?;
        let granted = if listing { self.listable(&guest) } else { self.allowed(&guest) };
        if !granted {
            return Err(Refusal::Denied(format!("{guest}: not in this plugin's file allowlist")));
        }
        let host = self.to_host(&guest);
        let fd = nix::fcntl::open(&host, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| io_refusal(&guest, std::io::Error::from(errno)))?;
        let magic = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let resolved = std::fs::read_link(&magic).map_err(|e| io_refusal(&guest, e))?;
        let Some(resolved_guest) = self.to_guest(&resolved) else {
            return Err(Refusal::Denied(format!("{guest}: resolves outside the granted roots")));
        };
        let still_granted = if listing { self.listable(&resolved_guest) } else { self.allowed(&resolved_guest) };
        if !still_granted {
            return Err(Refusal::Denied(format!(
                "{guest}: resolves to {resolved_guest}, which is not in this plugin's file allowlist"
            )));
        }
        Ok((fd, magic))
    }

    /// Read a whole granted file.
    pub fn read(&self, guest: &str) -> Result<Vec<u8>, Refusal> {
        let (fd, magic) = self.open_checked(guest, false)?;
        let kind = nix::sys::stat::fstat(&fd).map_err(|errno| io_refusal(guest, std::io::Error::from(errno)))?;
        if kind.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Refusal::Denied(format!("{guest}: not a regular file")));
        }
        // Re-open the very inode we checked, now for reading.
        let file = std::fs::File::open(&magic).map_err(|e| io_refusal(guest, e))?;
        drop(fd);
        read_capped(guest, file)
    }

    /// Like [`read`](Self::read), reusing directories already opened and
    /// checked during this call: a plugin reading twenty attributes of
    /// `/sys/class/net/eth0` walks that long path once, not twenty times.
    pub fn read_cached(&self, guest: &str, cache: &mut DirCache) -> Result<Vec<u8>, Refusal> {
        let normalized = Self::normalize(guest)?;
        if !self.allowed(&normalized) {
            return Err(Refusal::Denied(format!("{normalized}: not in this plugin's file allowlist")));
        }
        if let Some((parent, name)) = normalized.rsplit_once('/')
            && !name.is_empty()
            && let Some((dir, resolved_dir)) = cache.dir(self, if parent.is_empty() { "/" } else { parent })
        {
            // The directory is resolved; if `name` is not a link (O_NOFOLLOW
            // refuses links), the file is exactly `resolved_dir/name`, which
            // we check before opening anything.
            let candidate = format!("{}/{name}", resolved_dir.trim_end_matches('/'));
            if self.allowed(&candidate) {
                let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
                match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
                    // No file-type check here: the path opened is exactly a
                    // granted one (no link followed), O_NONBLOCK keeps a FIFO
                    // from blocking, and reads are capped.
                    Ok(fd) => return read_capped(guest, std::fs::File::from(fd)),
                    Err(nix::errno::Errno::ELOOP) => {} // a link: resolve it the slow way
                    Err(errno) => return Err(io_refusal(guest, std::io::Error::from(errno))),
                }
            }
        }
        self.read(guest)
    }

    /// List a granted directory, sorted by name.
    pub fn list(&self, guest: &str) -> Result<Vec<(String, bool)>, Refusal> {
        let (_fd, magic) = self.open_checked(guest, true)?;
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&magic).map_err(|e| io_refusal(guest, e))? {
            let entry = entry.map_err(|e| io_refusal(guest, e))?;
            let is_dir = match entry.file_type() {
                Ok(t) if t.is_dir() => true,
                Ok(t) if t.is_symlink() => std::fs::metadata(entry.path()).map(|m| m.is_dir()).unwrap_or(false),
                _ => false,
            };
            entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        entries.sort();
        Ok(entries)
    }

    /// Read a granted symbolic link's target text.
    pub fn link(&self, guest: &str) -> Result<String, Refusal> {
        let normalized = Self::normalize(guest)?;
        if !self.allowed(&normalized) {
            return Err(Refusal::Denied(format!("{normalized}: not in this plugin's file allowlist")));
        }
        let host = self.to_host(&normalized);
        let name = host.file_name().ok_or_else(|| Refusal::NotFound(normalized.clone()))?.to_owned();
        // Resolve the parent, never the link itself, and keep it inside the roots.
        let parent = host.parent().unwrap_or(Path::new("/"));
        let dir = nix::fcntl::open(parent, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| io_refusal(guest, std::io::Error::from(errno)))?;
        let magic = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let real_parent = std::fs::read_link(&magic).map_err(|e| io_refusal(guest, e))?;
        if self.to_guest(&real_parent).is_none() {
            return Err(Refusal::Denied(format!("{normalized}: resolves outside the granted roots")));
        }
        std::fs::read_link(magic.join(name)).map(|t| t.to_string_lossy().into_owned()).map_err(|e| io_refusal(guest, e))
    }
}

/// Read an opened file to its end, up to [`MAX_READ_BYTES`]. procfs and
/// sysfs report size 0, so cap what is read, not the size.
fn read_capped(guest: &str, file: std::fs::File) -> Result<Vec<u8>, Refusal> {
    use std::io::Read;
    thread_local! {
        /// Reused between reads so each read allocates only its exact result,
        /// not a growing buffer (sysfs attributes are a few bytes each).
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        file.take(MAX_READ_BYTES + 1).read_to_end(scratch).map_err(|e| io_refusal(guest, e))?;
        if scratch.len() as u64 > MAX_READ_BYTES {
            scratch.clear();
            scratch.shrink_to(1 << 20);
            return Err(Refusal::TooLarge(format!("{guest}: larger than {MAX_READ_BYTES} bytes")));
        }
        let bytes = scratch.to_vec();
        // Do not keep a huge buffer around after an unusually large file.
        scratch.shrink_to(1 << 20);
        Ok(bytes)
    })
}

/// Most directories one call keeps open.
const MAX_CACHED_DIRS: usize = 128;

/// Directories opened (`O_PATH`) and resolved during one plugin call; dropped,
/// and so closed, when the call ends.
#[derive(Debug, Default)]
pub struct DirCache {
    /// guest directory -> its descriptor and resolved guest path, or `None`
    /// when it could not be opened or lies outside the roots.
    dirs: std::collections::HashMap<String, Option<(OwnedFd, String)>>,
}

impl DirCache {
    fn dir(&mut self, policy: &FilePolicy, guest_dir: &str) -> Option<(std::os::fd::BorrowedFd<'_>, &str)> {
        if !self.dirs.contains_key(guest_dir) {
            if self.dirs.len() >= MAX_CACHED_DIRS {
                self.dirs.clear();
            }
            let opened = nix::fcntl::open(
                &policy.to_host(guest_dir),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
            .and_then(|fd| {
                let resolved = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
                Some((fd, policy.to_guest(&resolved)?))
            });
            self.dirs.insert(guest_dir.to_string(), opened);
        }
        use std::os::fd::AsFd;
        self.dirs.get(guest_dir)?.as_ref().map(|(fd, resolved)| (fd.as_fd(), resolved.as_str()))
    }
}

fn io_refusal(guest: &str, e: std::io::Error) -> Refusal {
    match e.kind() {
        std::io::ErrorKind::NotFound => Refusal::NotFound(format!("{guest}: no such file or directory")),
        std::io::ErrorKind::PermissionDenied => Refusal::Denied(format!("{guest}: permission denied by the OS")),
        _ => Refusal::Io(format!("{guest}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(globs: &[&str]) -> FilePolicy {
        FilePolicy::new(&PathsConfig::default(), &globs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn allows_granted_proc_files() {
        let p = policy(&["/proc/stat", "/proc/net/*"]);
        assert!(!p.read("/proc/stat").unwrap().is_empty());
        // /proc/net is a link to /proc/self/net; still readable through the alias.
        assert!(p.read("/proc/net/dev").is_ok());
    }

    #[test]
    fn refuses_self_memory_environ_and_other_pids() {
        let p = policy(&["/proc/stat", "/proc/net/*"]);
        for path in [
            "/proc/self/mem",
            "/proc/self/environ",
            "/proc/thread-self/environ",
            "/proc/1/environ",
            "/proc/self/root/etc/shadow",
        ] {
            assert!(matches!(p.read(path), Err(Refusal::Denied(_))), "{path} must be denied");
        }
        // Even through the granted /proc/net alias, climbing out is refused lexically.
        assert!(matches!(p.read("/proc/net/../environ"), Err(Refusal::Denied(_))));
        // A wildcard that matches /proc/<pid> lexically still cannot reach mem
        // unless that exact file is granted.
        let broad = policy(&["/proc/*/stat"]);
        assert!(broad.read("/proc/1/stat").is_ok());
        assert!(matches!(broad.read("/proc/self/mem"), Err(Refusal::Denied(_))));
        // Even a wholesale grant never opens this agent's own process entries
        // or any process's memory and environment.
        let everything = policy(&["/proc/**"]);
        assert!(everything.read("/proc/stat").is_ok());
        for path in [
            "/proc/self/mem",
            "/proc/self/environ",
            "/proc/self/stat",
            "/proc/thread-self/environ",
            "/proc/1/environ",
            "/proc/1/mem",
            "/proc/kcore",
        ] {
            assert!(matches!(everything.read(path), Err(Refusal::Denied(_))), "{path} must be denied");
        }
    }

    /// A temp dir with `granted/ok.prom` and `granted/escape.prom`, a link to
    /// `secret` outside `granted/`.
    fn granted_dir_with_escape() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("granted");
        std::fs::create_dir(&granted).unwrap();
        std::fs::write(granted.join("ok.prom"), "x 1\n").unwrap();
        std::fs::write(dir.path().join("secret"), "s3cret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), granted.join("escape.prom")).unwrap();
        (dir, granted)
    }

    #[test]
    fn refuses_symlinks_out_of_a_granted_directory() {
        let (_dir, granted) = granted_dir_with_escape();
        let glob = format!("{}/*", granted.display());
        let p = policy(&[glob.as_str()]);
        assert_eq!(p.read(&format!("{}/ok.prom", granted.display())).unwrap(), b"x 1\n");
        let refused = p.read(&format!("{}/escape.prom", granted.display())).unwrap_err();
        assert!(matches!(&refused, Refusal::Denied(m) if m.contains("resolves to")), "{refused:?}");
    }

    #[test]
    fn cached_reads_refuse_what_uncached_reads_refuse() {
        let (_dir, granted) = granted_dir_with_escape();
        let glob = format!("{}/*", granted.display());
        let p = policy(&[glob.as_str(), "/proc/net/*", "/proc/*/stat"]);
        let mut cache = DirCache::default();
        let g = granted.display();
        assert_eq!(p.read_cached(&format!("{g}/ok.prom"), &mut cache).unwrap(), b"x 1\n");
        assert!(matches!(p.read_cached(&format!("{g}/escape.prom"), &mut cache), Err(Refusal::Denied(_))));
        assert!(matches!(p.read_cached(&format!("{g}/missing.prom"), &mut cache), Err(Refusal::NotFound(_))));
        assert!(p.read_cached("/proc/net/dev", &mut cache).is_ok());
        assert!(p.read_cached("/proc/1/stat", &mut cache).is_ok());
        for path in ["/proc/self/stat", "/proc/self/mem", "/proc/thread-self/stat", "/proc/net/../self/environ"] {
            assert!(matches!(p.read_cached(path, &mut cache), Err(Refusal::Denied(_))), "{path}");
        }
        // Same answers as the uncached path.
        for path in [format!("{g}/ok.prom"), "/proc/net/dev".into(), "/proc/self/stat".into()] {
            assert_eq!(p.read_cached(&path, &mut cache).is_ok(), p.read(&path).is_ok(), "{path}");
        }
    }

    #[test]
    fn lists_directories_on_the_way_to_granted_globs() {
        let p = policy(&["/sys/class/net/*/mtu", "/proc/stat", "/proc/net/*"]);
        assert!(p.listable("/sys/class/net"));
        assert!(!p.listable("/sys/class"), "nothing below /sys/class is a pattern");
        assert!(p.listable("/proc/net"));
        assert!(!p.listable("/proc"));
        assert!(!p.listable("/sys/kernel"));
        assert!(!p.listable("/proc/self"));
        assert!(p.list("/proc").is_err(), "listing /proc would reveal pids");
        let all = policy(&["/sys/devices/**"]);
        assert!(all.listable("/sys/devices/system/cpu"));
    }

    #[test]
    fn maps_roots_like_path_procfs() {
        let dir = tempfile::tempdir().unwrap();
        let fake_proc = dir.path().join("proc");
        std::fs::create_dir(&fake_proc).unwrap();
        std::fs::write(fake_proc.join("loadavg"), "0.01 0.02 0.03 1/2 3\n").unwrap();
        let paths = PathsConfig { procfs: fake_proc, ..PathsConfig::default() };
        let p = FilePolicy::new(&paths, &["/proc/loadavg".to_string()]).unwrap();
        assert_eq!(p.read("/proc/loadavg").unwrap(), b"0.01 0.02 0.03 1/2 3\n");
    }

    #[test]
    fn relative_and_dotted_paths_are_refused() {
        let p = policy(&["/proc/**"]);
        for path in ["proc/stat", "/proc/../etc/shadow", "/proc/stat\0", "/proc/net/../../etc/shadow"] {
            assert!(matches!(p.read(path), Err(Refusal::Denied(_))), "{path:?}");
        }
    }
}
