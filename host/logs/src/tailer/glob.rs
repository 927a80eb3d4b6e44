//! Expands path globs by walking only the directories a pattern can reach
//! (`/var/log/pods/*/*/*.log` reads three levels under `/var/log/pods`).

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use std::path::{Component, Path, PathBuf};

/// `**` patterns are walked this deep at most, so a symlink loop or a huge tree cannot stall the tailer.
const MAX_RECURSIVE_DEPTH: usize = 16;

struct Pattern {
    /// The longest leading part without glob characters: walked from here, and watched.
    base: PathBuf,
    /// Components below `base`; `None` when the pattern has `**`.
    depth: Option<usize>,
    matcher: GlobMatcher,
}

pub(crate) struct PathGlobs {
    include: Vec<Pattern>,
    exclude: GlobSet,
}

fn glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern).literal_separator(true).build().map_err(|e| format!("glob {pattern:?}: {e}"))
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

impl PathGlobs {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for p in include {
            let mut base = PathBuf::new();
            let mut rest = Vec::new();
            for c in Path::new(p).components() {
                let s = c.as_os_str().to_string_lossy();
                if rest.is_empty() && !has_meta(&s) {
                    base.push(c);
                } else {
                    rest.push(c);
                }
            }
            if rest.is_empty() {
                // A plain path: its parent is walked one level.
                let parent = base.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
                patterns.push(Pattern { base: parent, depth: Some(1), matcher: glob(p)?.compile_matcher() });
                continue;
            }
            let recursive =
                rest.iter().any(|c| matches!(c, Component::Normal(s) if s.to_string_lossy().contains("**")));
            patterns.push(Pattern {
                base,
                depth: if recursive { None } else { Some(rest.len()) },
                matcher: glob(p)?.compile_matcher(),
            });
        }
        let mut ex = GlobSetBuilder::new();
        for p in exclude {
            ex.add(glob(p)?);
        }
        Ok(Self { include: patterns, exclude: ex.build().map_err(|e| e.to_string())? })
    }

    /// The directories to watch for new files.
    pub fn roots(&self) -> impl Iterator<Item = &Path> {
        self.include.iter().map(|p| p.base.as_path())
    }

    /// Regular files (or symlinks to them) matching now, sorted.
    pub fn expand(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in &self.include {
            let depth = p.depth.unwrap_or(MAX_RECURSIVE_DEPTH);
            walk(&p.base, depth, p.depth.is_none(), &p.matcher, &mut out);
        }
        out.retain(|f| !self.exclude.is_match(f));
        out.sort();
        out.dedup();
        out
    }
}

fn walk(dir: &Path, depth_left: usize, recursive: bool, matcher: &GlobMatcher, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        // Directories are descended without following symlinks (loops);
        // files may be symlinks (`/var/log/containers/*.log`).
        if ft.is_dir() {
            if depth_left > 1 {
                walk(&path, depth_left - 1, recursive, matcher, out);
            }
            continue;
        }
        if (recursive || depth_left == 1)
            && matcher.is_match(&path)
            && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_walk_only_their_depth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in ["ns_a_1/c/0.log", "ns_a_1/c/0.log.2024", "ns_b_2/d/1.log", "x.log", "ns_b_2/d/deep/2.log"] {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let g = PathGlobs::new(&[format!("{}/*/*/*.log", root.display())], &[]).unwrap();
        let found: Vec<_> = g.expand().into_iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect();
        assert_eq!(found, vec![PathBuf::from("ns_a_1/c/0.log"), PathBuf::from("ns_b_2/d/1.log")]);
        let g = PathGlobs::new(&[format!("{}/**/*.log", root.display())], &[format!("{}/ns_b_2/**", root.display())])
            .unwrap();
        assert_eq!(g.expand().len(), 2); // x.log and ns_a_1/c/0.log
        let g = PathGlobs::new(&[format!("{}/x.log", root.display())], &[]).unwrap();
        assert_eq!(g.expand(), vec![root.join("x.log")]);
    }
}
