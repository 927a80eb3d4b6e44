//! Noticing that files changed (rule files now, the config and plugin
//! directory later): inotify through `notify`, on the parent directories,
//! because editors and ConfigMap updates replace files by rename rather
//! than writing them in place. Events are coalesced so one save is one
//! reload.

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait for more events after the first before reloading.
const SETTLE: Duration = Duration::from_millis(200);

/// Keeps the watch alive; dropping it stops watching.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
}

/// Watch the directories holding `files` (existing ones) and send `()` on
/// `changed` after any event in them settles. Returns `None` (with a warning)
/// when the platform watcher cannot start; reloads then need `/-/reload`.
pub fn watch_files(files: &[PathBuf], changed: mpsc::Sender<()>) -> Option<FileWatch> {
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d })
        .filter(|d| d.is_dir())
        .collect();
    if dirs.is_empty() {
        return None;
    }
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !e.kind.is_access()
        {
            let _ = raw_tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch files for changes; use POST /-/reload or SIGHUP");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; use POST /-/reload or SIGHUP");
        }
    }
    tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            // Coalesce the burst a save or a ConfigMap swap produces.
            tokio::time::sleep(SETTLE).await;
            while raw_rx.try_recv().is_ok() {}
            if changed.send(()).await.is_err() {
                return;
            }
        }
    });
    Some(FileWatch { _watcher: watcher })
}
