//! File-based discovery (Prometheus' `file_sd_configs`): JSON or YAML files
//! holding a list of `{targets: [...], labels: {...}}`, re-read when their
//! directory changes (inotify through `notify`) and every refresh interval
//! as a fallback for file systems that send no events (NFS, some
//! ConfigMap mounts).
//!
//! A file that fails to read or parse keeps its last good targets: a bad
//! edit must not empty a job. The error is kept in [`FileStatus`] for the
//! targets view and logged once per change of the error.

use crate::{ADDRESS_LABEL, GroupSender, LabelSet, TargetGroup};
use globset::{Glob, GlobMatcher};
use notify::{RecursiveMode, Watcher};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The label holding the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// How long to wait for more events after the first before re-reading.
const SETTLE: Duration = Duration::from_millis(100);

/// One `file_sd_configs` entry.
#[derive(Debug, Clone)]
pub struct FileSdSpec {
    /// Paths whose last element may be a glob (`targets/*.json`).
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

/// A problem with one `files` pattern, found before any file is read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatternError {
    #[error("{0:?}: only the last path element may hold a glob")]
    GlobInDirectory(String),
    #[error("{0:?}: {1}")]
    Invalid(String, String),
    #[error("{0:?}: files must end in .json, .yml or .yaml")]
    Extension(String),
}

/// One pattern, split into the directory to list and the name glob.
#[derive(Debug, Clone)]
struct Pattern {
    dir: PathBuf,
    name: GlobMatcher,
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Check `files` patterns the way Prometheus does at config load.
pub fn check_patterns(files: &[String]) -> Result<(), PatternError> {
    compile(files).map(|_| ())
}

fn compile(files: &[String]) -> Result<Vec<Pattern>, PatternError> {
    files
        .iter()
        .map(|text| {
            let path = Path::new(text);
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if has_glob(&dir.to_string_lossy()) {
                return Err(PatternError::GlobInDirectory(text.clone()));
            }
            if ![".json", ".yml", ".yaml"].iter().any(|ext| name.ends_with(ext)) {
                return Err(PatternError::Extension(text.clone()));
            }
            let glob = Glob::new(name).map_err(|e| PatternError::Invalid(text.clone(), e.kind().to_string()))?;
            let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
            Ok(Pattern { dir, name: glob.compile_matcher() })
        })
        .collect()
}

/// What the provider knows about each file it read, for the targets view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStatus {
    /// Per file: the number of targets read, or why the last read failed.
    pub files: BTreeMap<PathBuf, Result<usize, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parse one file's text into its groups; the error says what and where.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<TargetGroup>, String> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    let entries: Vec<FileEntry> = if is_json {
        serde_json::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_yaml_ng::from_str::<Option<Vec<FileEntry>>>(text)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .unwrap_or_default()
    };
    let filepath = path.display().to_string();
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            for name in entry.labels.keys() {
                if !wasmon_storage::is_valid_label_name(name) {
                    return Err(format!("{filepath}: group {index}: {name:?} is not a valid label name"));
                }
            }
            for (i, target) in entry.targets.iter().enumerate() {
                if target.is_empty() {
                    return Err(format!("{filepath}: group {index}: target {i} is empty"));
                }
            }
            let mut labels: LabelSet = entry.labels;
            labels.insert(FILEPATH_LABEL.into(), filepath.clone());
            let targets = entry
                .targets
                .into_iter()
                .map(|address| LabelSet::from([(ADDRESS_LABEL.to_string(), address)]))
                .collect();
            Ok(TargetGroup { source: format!("{filepath}:{index}"), targets, labels })
        })
        .collect()
}

/// Runs one `file_sd_configs` entry.
pub struct FileProvider {
    patterns: Vec<Pattern>,
    refresh: Duration,
    status: Arc<Mutex<FileStatus>>,
    /// Groups last sent, per file.
    sent: BTreeMap<PathBuf, Vec<TargetGroup>>,
}

impl FileProvider {
    pub fn new(spec: &FileSdSpec) -> Result<Self, PatternError> {
        Ok(Self {
            patterns: compile(&spec.files)?,
            refresh: spec.refresh_interval.max(Duration::from_secs(1)),
            status: Arc::default(),
            sent: BTreeMap::new(),
        })
    }

    /// Shared view of the files read and their errors.
    pub fn status(&self) -> Arc<Mutex<FileStatus>> {
        self.status.clone()
    }

    /// Files matching the patterns now, sorted.
    fn matching_files(&self) -> BTreeSet<PathBuf> {
        let mut files = BTreeSet::new();
        for pattern in &self.patterns {
            let Ok(entries) = std::fs::read_dir(&pattern.dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if pattern.name.is_match(&name) && entry.path().is_file() {
                    files.insert(entry.path());
                }
            }
        }
        files
    }

    /// Re-read every file and return the groups that changed, including
    /// emptied groups for sources that went away.
    pub fn refresh(&mut self) -> Vec<TargetGroup> {
        let files = self.matching_files();
        let mut changed = Vec::new();
        let mut status = FileStatus::default();
        for path in &files {
            let read = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| parse_file(path, &text));
            match read {
                Ok(groups) => {
                    status.files.insert(path.clone(), Ok(groups.iter().map(|g| g.targets.len()).sum()));
                    let before = self.sent.remove(path).unwrap_or_default();
                    changed.extend(diff(&before, &groups));
                    self.sent.insert(path.clone(), groups);
                }
                Err(error) => {
                    let previous = self.status.lock().unwrap_or_else(|p| p.into_inner()).files.get(path).cloned();
                    if previous.as_ref().and_then(|p| p.as_ref().err()) != Some(&error) {
                        tracing::warn!(%error, "file_sd: cannot use file; keeping its last good targets");
                    }
                    status.files.insert(path.clone(), Err(error));
                }
            }
        }
        // A file that no longer exists (or no longer matches) takes its targets with it.
        let gone: Vec<PathBuf> = self.sent.keys().filter(|p| !files.contains(*p)).cloned().collect();
        for path in gone {
            for group in self.sent.remove(&path).unwrap_or_default() {
                changed.push(TargetGroup { source: group.source, ..Default::default() });
            }
        }
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
        changed
    }

    /// Send the initial groups, then re-read on every change and refresh
    /// tick until the receiver goes away.
    pub async fn run(mut self, tx: GroupSender) {
        let (event_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = event_tx.send(());
            }
        });
        let _watcher = match watcher {
            Ok(mut w) => {
                let dirs: BTreeSet<&PathBuf> = self.patterns.iter().map(|p| &p.dir).collect();
                for dir in dirs {
                    if let Err(e) = w.watch(dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %dir.display(), error = %e, "file_sd: cannot watch; re-reading on refresh_interval only");
                    }
                }
                Some(w)
            }
            Err(e) => {
                tracing::warn!(error = %e, "file_sd: cannot watch files; re-reading on refresh_interval only");
                None
            }
        };
        let mut ticker = tokio::time::interval(self.refresh);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(()) = events.recv() => {
                    // Coalesce the burst one save or a ConfigMap swap produces.
                    tokio::time::sleep(SETTLE).await;
                    while events.try_recv().is_ok() {}
                }
            }
            let before = self.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let changed = self.refresh();
            let status_changed = *self.status.lock().unwrap_or_else(|p| p.into_inner()) != before;
            // The first update goes out even when empty, so the job knows
            // discovery has run; an update with no groups also tells the
            // job to show a new file error.
            if (first || status_changed || !changed.is_empty()) && tx.send(changed).await.is_err() {
                return;
            }
            first = false;
        }
    }
}

/// Groups of `after` that differ from `before`, plus emptied groups for
/// sources only `before` has.
fn diff(before: &[TargetGroup], after: &[TargetGroup]) -> Vec<TargetGroup> {
    let old: BTreeMap<&str, &TargetGroup> = before.iter().map(|g| (g.source.as_str(), g)).collect();
    let new_sources: BTreeSet<&str> = after.iter().map(|g| g.source.as_str()).collect();
    let mut out: Vec<TargetGroup> = after.iter().filter(|g| old.get(g.source.as_str()) != Some(g)).cloned().collect();
    out.extend(
        before
            .iter()
            .filter(|g| !new_sources.contains(g.source.as_str()))
            .map(|g| TargetGroup { source: g.source.clone(), ..Default::default() }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(dir: &Path, pattern: &str) -> FileProvider {
        let spec = FileSdSpec {
            files: vec![dir.join(pattern).display().to_string()],
            refresh_interval: Duration::from_secs(60),
        };
        FileProvider::new(&spec).unwrap()
    }

    #[test]
    fn reads_json_and_yaml_with_filepath_and_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}}, {"targets": ["h3:1"]}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['y:1']\n  labels: {team: db}\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "ignored").unwrap();
        let mut p = FileProvider::new(&FileSdSpec {
            files: vec![
                dir.path().join("*.json").display().to_string(),
                dir.path().join("*.yml").display().to_string(),
            ],
            refresh_interval: Duration::from_secs(60),
        })
        .unwrap();
        let groups = p.refresh();
        let a = dir.path().join("a.json").display().to_string();
        let sources: Vec<&str> = groups.iter().map(|g| g.source.as_str()).collect();
        assert_eq!(
            sources,
            vec![format!("{a}:0"), format!("{a}:1"), format!("{}:0", dir.path().join("b.yml").display())]
        );
        let first: Vec<LabelSet> = groups[0].merged_targets().collect();
        assert_eq!(first[1]["__address__"], "h2:9100");
        assert_eq!(first[1]["env"], "prod");
        assert_eq!(first[1][FILEPATH_LABEL], a);
        assert_eq!(groups[2].labels["team"], "db");
        // Nothing changed: nothing to send.
        assert!(p.refresh().is_empty());
    }

    #[test]
    fn a_bad_edit_keeps_the_last_good_targets_and_reports_where() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        std::fs::write(&file, r#"[{"targets": ["a:1"]}]"#).unwrap();
        let mut p = provider(dir.path(), "*.json");
        assert_eq!(p.refresh().len(), 1);
        std::fs::write(&file, r#"[{"targets": ["a:1"], "labls": {}}]"#).unwrap();
        assert!(p.refresh().is_empty(), "a broken file changes nothing");
        let status = p.status().lock().unwrap().clone();
        let err = status.files[&file].clone().unwrap_err();
        assert!(err.contains("t.json") && err.contains("unknown field `labls`") && err.contains("line 1"), "{err}");
        std::fs::write(&file, r#"[{"targets": ["a:1"], "labels": {"bad-name": "x"}}]"#).unwrap();
        assert!(p.refresh().is_empty());
        let err = p.status().lock().unwrap().files[&file].clone().unwrap_err();
        assert!(err.contains("\"bad-name\" is not a valid label name"), "{err}");
        // Fixed: the new targets go out.
        std::fs::write(&file, r#"[{"targets": ["b:2"]}]"#).unwrap();
        let groups = p.refresh();
        assert_eq!(groups[0].targets[0]["__address__"], "b:2");
        assert_eq!(p.status().lock().unwrap().files[&file], Ok(1));
    }

    #[test]
    fn removed_groups_and_files_empty_their_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.yaml");
        std::fs::write(&file, "- targets: [a:1]\n- targets: [b:1]\n").unwrap();
        let mut p = provider(dir.path(), "t.yaml");
        assert_eq!(p.refresh().len(), 2);
        std::fs::write(&file, "- targets: [a:1]\n").unwrap();
        let changed = p.refresh();
        assert_eq!(changed.len(), 1);
        assert!(changed[0].source.ends_with(":1") && changed[0].targets.is_empty());
        std::fs::remove_file(&file).unwrap();
        let changed = p.refresh();
        assert_eq!(changed.len(), 1);
        assert!(changed[0].source.ends_with(":0") && changed[0].targets.is_empty());
        // An empty YAML file is an empty list, not an error.
        std::fs::write(&file, "").unwrap();
        assert!(p.refresh().is_empty());
        assert_eq!(p.status().lock().unwrap().files[&file], Ok(0));
    }

    #[test]
    fn patterns_are_checked() {
        assert_eq!(check_patterns(&["/a/*/t.json".into()]), Err(PatternError::GlobInDirectory("/a/*/t.json".into())));
        assert_eq!(check_patterns(&["/a/t.txt".into()]), Err(PatternError::Extension("/a/t.txt".into())));
        assert!(check_patterns(&["/a/t[.json".into()]).is_err());
        assert!(check_patterns(&["/a/tg_*.json".into(), "rel.yml".into()]).is_ok());
    }

    #[tokio::test]
    async fn run_notices_a_new_file_without_waiting_for_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let p = provider(dir.path(), "*.json");
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let task = tokio::spawn(p.run(tx));
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert!(first.is_empty());
        // Written by rename, as editors and ConfigMap updates do.
        let tmp = dir.path().join(".new");
        std::fs::write(&tmp, r#"[{"targets": ["n:1"]}]"#).unwrap();
        std::fs::rename(&tmp, dir.path().join("new.json")).unwrap();
        let update = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!(update[0].targets[0]["__address__"], "n:1");
        task.abort();
    }
}
