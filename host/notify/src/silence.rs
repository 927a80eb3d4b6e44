//! Silences: Alertmanager's create/update/expire rules, kept in a JSON file in
//! the state directory so they survive restarts. Expired silences stay listed
//! for five days (Alertmanager's default `--data.retention`).

use crate::matcher::{MatchOp, Matcher, valid_label_name};
use crate::model::{LabelSet, req_time};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How long expired silences are kept (Alertmanager's `--data.retention` default).
pub const RETENTION: chrono::Duration = chrono::Duration::days(5);

const FILE_NAME: &str = "silences.json";

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("silence invalid: {0}")]
    Invalid(String),
    #[error("cannot read silences from {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("cannot write silences to {path}: {reason}")]
    Store { path: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    fn rank(self) -> u8 {
        match self {
            SilenceState::Active => 0,
            SilenceState::Pending => 1,
            SilenceState::Expired => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    /// Absent means `true` (Alertmanager's default).
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as stored (and as the API reports it, minus `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    #[serde(rename = "startsAt", with = "req_time")]
    pub starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt", with = "req_time")]
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "updatedAt", with = "req_time")]
    pub updated_at: DateTime<Utc>,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if self.ends_at <= now {
            SilenceState::Expired
        } else if self.starts_at > now {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }
}

fn compile(ms: &[SilenceMatcher]) -> Result<Vec<Matcher>, SilenceError> {
    if ms.is_empty() {
        return Err(SilenceError::Invalid("at least one matcher required".into()));
    }
    let mut out = Vec::with_capacity(ms.len());
    for (i, m) in ms.iter().enumerate() {
        if !valid_label_name(&m.name) {
            return Err(SilenceError::Invalid(format!("invalid label matcher {i}: invalid label name {:?}", m.name)));
        }
        let op = MatchOp::from_flags(m.is_regex, m.is_equal);
        let c = Matcher::new(&m.name, op, &m.value)
            .map_err(|e| SilenceError::Invalid(format!("invalid label matcher {i}: {e}")))?;
        out.push(c);
    }
    // A silence whose every matcher matches "" would mute nearly everything.
    if out.iter().all(|m| m.matches("")) {
        return Err(SilenceError::Invalid("at least one matcher must not match the empty string".into()));
    }
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    silences: Vec<Silence>,
}

pub(crate) struct Silences {
    entries: BTreeMap<String, (Silence, Vec<Matcher>)>,
    path: PathBuf,
}

impl Silences {
    /// Loads `silences.json` from `dir` (a missing file is an empty store).
    pub fn load(dir: &Path) -> Result<Self, SilenceError> {
        let path = dir.join(FILE_NAME);
        let load_err = |reason: String| SilenceError::Load { path: path.display().to_string(), reason };
        let mut entries = BTreeMap::new();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: FileFormat = serde_json::from_slice(&bytes).map_err(|e| load_err(e.to_string()))?;
                for s in file.silences {
                    // One bad entry (e.g. a regex this build rejects) must not lose the others.
                    match compile(&s.matchers) {
                        Ok(ms) => {
                            entries.insert(s.id.clone(), (s, ms));
                        }
                        Err(e) => tracing::warn!(id = %s.id, error = %e, "dropping unreadable stored silence"),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(load_err(e.to_string())),
        }
        Ok(Silences { entries, path })
    }

    /// Writes the store atomically: a temp file, fsync, rename, fsync of the directory.
    pub fn persist(&self) -> Result<(), SilenceError> {
        let store_err = |reason: String| SilenceError::Store { path: self.path.display().to_string(), reason };
        let file = FileFormat { version: 1, silences: self.entries.values().map(|(s, _)| s.clone()).collect() };
        let body = serde_json::to_vec_pretty(&file).map_err(|e| store_err(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| store_err(e.to_string()))
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.entries.get(id).map(|(s, _)| s)
    }

    /// Sorted like Alertmanager's API: active (soonest end first), pending
    /// (soonest start first), expired (latest end first).
    pub fn list(&self, now: DateTime<Utc>) -> Vec<&Silence> {
        let mut out: Vec<&Silence> = self.entries.values().map(|(s, _)| s).collect();
        out.sort_by(|a, b| {
            let (sa, sb) = (a.state(now), b.state(now));
            sa.rank().cmp(&sb.rank()).then_with(|| match sa {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
        });
        out
    }

    pub fn count_active(&self, now: DateTime<Utc>) -> usize {
        self.entries.values().filter(|(s, _)| s.state(now) == SilenceState::Active).count()
    }

    /// Ids of active silences that match `labels`, sorted.
    pub fn mutes(&self, labels: &LabelSet, now: DateTime<Utc>) -> Vec<String> {
        self.entries
            .values()
            .filter(|(s, ms)| s.state(now) == SilenceState::Active && crate::matcher::matches_all(ms, labels))
            .map(|(s, _)| s.id.clone())
            .collect()
    }

    /// Alertmanager's `Silences.Set`: a new silence gets a fresh id; an
    /// existing one is updated in place when only allowed fields change,
    /// otherwise it is expired and replaced by a new silence.
    pub fn set(&mut self, mut sil: Silence, now: DateTime<Utc>) -> Result<String, SilenceError> {
        // The API reports milliseconds; storing no more precision than that lets a
        // client post a silence back unchanged (e.g. `amtool silence update`) and
        // have it updated in place rather than replaced.
        let now = now.trunc_subsecs(3);
        sil.starts_at = sil.starts_at.trunc_subsecs(3);
        sil.ends_at = sil.ends_at.trunc_subsecs(3);
        let matchers = compile(&sil.matchers)?;
        if sil.ends_at < sil.starts_at {
            return Err(SilenceError::Invalid("end time must not be before start time".into()));
        }
        sil.updated_at = now;
        if !sil.id.is_empty() {
            let Some((prev, _)) = self.entries.get(&sil.id) else {
                return Err(SilenceError::NotFound);
            };
            if can_update(prev, &sil, now) {
                self.entries.insert(sil.id.clone(), (sil.clone(), matchers));
                return Ok(sil.id);
            }
            if prev.state(now) != SilenceState::Expired {
                let id = sil.id.clone();
                self.expire(&id, now)?;
            }
        }
        sil.id = new_id();
        if sil.starts_at < now {
            sil.starts_at = now;
        }
        self.entries.insert(sil.id.clone(), (sil.clone(), matchers));
        Ok(sil.id)
    }

    /// Ends a silence now (a pending one gets start = end = now). Expiring an
    /// expired silence is a no-op, as in Alertmanager 0.25.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let now = now.trunc_subsecs(3);
        let Some((s, _)) = self.entries.get_mut(id) else {
            return Err(SilenceError::NotFound);
        };
        match s.state(now) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(())
    }

    /// Drops silences that expired more than [`RETENTION`] ago; true if any went.
    pub fn gc(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.entries.len();
        self.entries.retain(|_, (s, _)| s.ends_at.checked_add_signed(RETENTION).is_none_or(|t| t > now));
        self.entries.len() != before
    }
}

fn can_update(prev: &Silence, new: &Silence, now: DateTime<Utc>) -> bool {
    if prev.matchers != new.matchers {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => new.starts_at == prev.starts_at && new.ends_at >= now,
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// A random UUID v4 (the id format Alertmanager uses), from /dev/urandom,
/// falling back to a hash of time and a counter if that cannot be read.
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    if read.is_err() {
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(t);
            h.write_u64(n);
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_regex: bool) -> SilenceMatcher {
        SilenceMatcher { name: name.into(), value: value.into(), is_regex, is_equal: true }
    }

    fn sil(ms: Vec<SilenceMatcher>, start: DateTime<Utc>, end: DateTime<Utc>) -> Silence {
        Silence {
            id: String::new(),
            matchers: ms,
            starts_at: start,
            ends_at: end,
            updated_at: start,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn ids_are_uuid_v4() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(new_id(), id);
    }

    #[test]
    fn lifecycle_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::model::now();
        let h = chrono::Duration::hours(1);
        let mut s = Silences::load(dir.path()).unwrap();
        let err = s.set(sil(vec![m("a", ".*", true)], now, now + h), now).unwrap_err();
        assert_eq!(err.to_string(), "silence invalid: at least one matcher must not match the empty string");
        assert!(s.set(sil(vec![], now, now + h), now).is_err());
        let id = s.set(sil(vec![m("alertname", "Foo", false)], now - h, now + h), now).unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at, now.trunc_subsecs(3), "start moved to now");
        let labels: LabelSet = [("alertname".to_string(), "Foo".to_string())].into();
        assert_eq!(s.mutes(&labels, now), vec![id.clone()]);
        // Extending an active silence keeps its id; changing matchers replaces it.
        let mut upd = s.get(&id).unwrap().clone();
        upd.ends_at = now + h + h;
        assert_eq!(s.set(upd.clone(), now).unwrap(), id);
        upd.matchers.push(m("x", "y", false));
        let id2 = s.set(upd, now).unwrap();
        assert_ne!(id2, id);
        assert_eq!(s.get(&id).unwrap().state(now), SilenceState::Expired);
        s.persist().unwrap();
        let again = Silences::load(dir.path()).unwrap();
        assert_eq!(again.list(now).len(), 2);
        assert_eq!(again.list(now)[0].id, id2);
        assert_eq!(again.get(&id2), s.get(&id2));
        // Retention.
        let mut again = again;
        assert!(!again.gc(now + chrono::Duration::days(4)));
        assert!(again.gc(now + chrono::Duration::days(6)));
        assert!(again.list(now).is_empty());
        assert!(matches!(again.expire("nope", now), Err(SilenceError::NotFound)));
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let err = Silences::load(dir.path()).err().unwrap();
        assert!(err.to_string().starts_with("cannot read silences from"), "{err}");
    }
}
