//! The plugin components the agent has loaded, by file. A file is loaded
//! once and reused across reloads while it is unchanged; when it changes
//! (a drop-in replacement) the new version is validated and compiled, and
//! only a version that loads replaces the running one: a broken or
//! half-copied file never takes a working plugin down.

use crate::agent::PluginEntry;
use crate::config::PluginsConfig;
use crate::runtime::Runtime;
use crate::runtime::kube_state::LoadedKubeState;
use crate::runtime::log_processor::LoadedLogProcessor;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A loaded component, by the world it implements.
#[derive(Clone)]
pub enum Component {
    Exporter(PluginEntry),
    KubeState(LoadedKubeState),
    /// Validated here; the logs pipeline loads its own instances.
    LogProcessor(LoadedLogProcessor),
}

impl Component {
    pub fn world(&self) -> &'static str {
        match self {
            Component::Exporter(_) => "exporter",
            Component::KubeState(_) => "kube-state",
            Component::LogProcessor(_) => "log-processor",
        }
    }
}

/// A version of a plugin that loaded.
#[derive(Clone)]
pub struct Loaded {
    pub component: Component,
    /// SHA-256 of the file, hex: identifies the version.
    pub sha256: String,
    pub loaded_at: SystemTime,
}

/// What is known about one plugin file, for `/api/v1/plugins` and the page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PluginStatus {
    pub path: String,
    pub world: Option<&'static str>,
    pub version: Option<String>,
    pub sha256: Option<String>,
    /// Unix seconds at which the running version was loaded.
    #[serde(rename = "loadedAt")]
    pub loaded_at: Option<f64>,
    /// Why the file's current content is not running (rejected, removed).
    pub error: Option<String>,
}

/// Size, mtime and inode of a file: a cheap check that it is what we loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stat {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self { len: meta.len(), modified: meta.modified().ok(), inode: meta.ino() })
    }
}

/// The component file and its detached signature: a signature added or
/// changed later (signing a plugin that was refused) is a change too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    wasm: Stat,
    signature: Option<Stat>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        Some(Self { wasm: Stat::of(path)?, signature: Stat::of(&crate::signing::signature_path(path)) })
    }
}

struct FileEntry {
    /// The file as it was at the last attempt to load it.
    stamp: Option<FileStamp>,
    /// The last version that loaded, kept even when a later one did not.
    good: Option<Loaded>,
    /// Why the last attempt failed; `None` when `good` is the file's content.
    error: Option<String>,
}

#[derive(Default)]
pub struct PluginRegistry {
    files: Mutex<BTreeMap<PathBuf, FileEntry>>,
}

impl PluginRegistry {
    /// The component at `path`: the running version if the file did not
    /// change, otherwise the new one once it loads. When the new one does
    /// not load, the previous version keeps serving (and the error is kept
    /// for the status page); with no previous version, the error is
    /// returned. Blocks while compiling.
    pub fn get(
        &self,
        runtime: &Runtime,
        name: &str,
        path: &Path,
        plugins: &PluginsConfig,
    ) -> Result<(Loaded, Option<String>), String> {
        let stamp = FileStamp::of(path);
        {
            let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = files.get(path)
                && entry.stamp == stamp
                && stamp.is_some()
            {
                return match (&entry.good, &entry.error) {
                    (Some(good), error) => Ok((good.clone(), error.clone())),
                    (None, Some(error)) => Err(error.clone()),
                    (None, None) => Err(format!("{} did not load", path.display())),
                };
            }
        }
        // Compile outside the lock: other reload steps read statuses meanwhile.
        let attempt = match stamp {
            None => Err(format!("plugin file {} is gone", path.display())),
            Some(_) => load_any(runtime, name, path, plugins),
        };
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let entry = files.entry(path.to_path_buf()).or_insert(FileEntry { stamp: None, good: None, error: None });
        entry.stamp = stamp;
        match attempt {
            Ok(loaded) => {
                match &entry.good {
                    None => tracing::info!(plugin = %name, path = %path.display(), world = loaded.component.world(),
                        sha256 = %loaded.sha256, "plugin loaded"),
                    Some(g) if g.sha256 != loaded.sha256 => tracing::info!(plugin = %name, path = %path.display(),
                        sha256 = %loaded.sha256, previous = %g.sha256, "new plugin version loaded"),
                    Some(_) => {}
                }
                entry.good = Some(loaded.clone());
                entry.error = None;
                Ok((loaded, None))
            }
            Err(error) => {
                entry.error = Some(error.clone());
                match &entry.good {
                    Some(good) => {
                        tracing::error!(plugin = %name, path = %path.display(), error = %error,
                            running = %good.sha256, "new plugin version rejected; the previous version keeps running");
                        Ok((good.clone(), Some(error)))
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// Validate (and compile into the cache) every `.wasm` in `dirs`, so a
    /// dropped-in plugin is ready before a job names it and a bad one is
    /// reported at once. Forgets files that are gone and no job uses.
    pub fn scan(&self, runtime: &Runtime, dirs: &[PathBuf], plugins: &PluginsConfig) {
        let mut seen = Vec::new();
        for dir in dirs {
            let Ok(read) = std::fs::read_dir(dir) else { continue };
            for entry in read.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                    seen.push(path);
                }
            }
        }
        for path in &seen {
            let name = crate::plugins::name_of(path);
            if let Err(e) = self.get(runtime, &name, path, plugins) {
                tracing::error!(path = %path.display(), error = %e, "plugin rejected");
            }
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        for (path, entry) in files.iter_mut() {
            let in_scanned_dir = path.parent().is_some_and(|p| dirs.iter().any(|d| d == p));
            if in_scanned_dir && !seen.contains(path) && entry.stamp.is_some() {
                entry.stamp = None;
                entry.error = Some(format!("plugin file {} was removed", path.display()));
            }
        }
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files
            .iter()
            .map(|(path, entry)| {
                let good = entry.good.as_ref();
                PluginStatus {
                    path: path.display().to_string(),
                    world: good.map(|g| g.component.world()),
                    version: good.and_then(|g| match &g.component {
                        Component::Exporter(e) => Some(e.info.version.clone()),
                        Component::KubeState(_) | Component::LogProcessor(_) => None,
                    }),
                    sha256: good.map(|g| g.sha256.clone()),
                    loaded_at: good
                        .and_then(|g| g.loaded_at.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs_f64()),
                    error: entry.error.clone(),
                }
            })
            .collect()
    }
}

/// Load `path` as whichever of our worlds it implements, after its
/// signature check.
fn load_any(runtime: &Runtime, name: &str, path: &Path, plugins: &PluginsConfig) -> Result<Loaded, String> {
    // One read: the bytes checked are the bytes compiled, whatever happens
    // to the file meanwhile.
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    crate::signing::check_plugin_bytes(path, &bytes, plugins)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let component = match crate::agent::load_plugin_bytes(runtime, name, path, &bytes) {
        Ok(entry) => Component::Exporter(entry),
        // Not a world mismatch (unreadable, not a component, imports we
        // lack, describe failed): that is the error to show.
        Err(exporter_error) if !exporter_error.contains("is not a wasmon exporter component") => {
            return Err(exporter_error);
        }
        Err(exporter_error) => match runtime.load_kube_state_bytes(name, path, &bytes) {
            Ok(kube) => Component::KubeState(kube),
            Err(kube_error) => match runtime.load_log_processor_bytes(name, path, &bytes) {
                Ok(processor) => Component::LogProcessor(processor),
                Err(logs_error) => {
                    return Err(format!(
                        "{} implements none of wasmon's worlds (exporter, kube-state, log-processor): \
                         {exporter_error}; {kube_error}; {logs_error}",
                        path.display()
                    ));
                }
            },
        },
    };
    Ok(Loaded { component, sha256, loaded_at: SystemTime::now() })
}
