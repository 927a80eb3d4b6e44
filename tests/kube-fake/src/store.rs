//! The fake's object store: objects per resource, one global
//! resourceVersion counter (like etcd's revision), and the event history
//! that watches replay from. History older than the compaction point is
//! gone, and a watch asking for it gets `410 Gone`, as from a real server.

use crate::resources::{RESOURCES, ResourceDef};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A change as watches see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One entry of the history: the object after the change (before it, for a
/// deletion) and, for a modification, the previous state, which a watch
/// with a selector needs to turn a change into ADDED or DELETED.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub resource: usize,
    pub kind: EventType,
    pub object: Arc<Value>,
    pub previous: Option<Arc<Value>>,
}

/// Why a write failed, with the HTTP status a real server answers.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    Conflict(String),
    AlreadyExists(String),
    NotFound(String),
    Invalid(String),
}

impl WriteError {
    pub fn code(&self) -> u16 {
        match self {
            Self::Conflict(_) | Self::AlreadyExists(_) => 409,
            Self::NotFound(_) => 404,
            Self::Invalid(_) => 422,
        }
    }
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Conflict(_) => "Conflict",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::NotFound(_) => "NotFound",
            Self::Invalid(_) => "Invalid",
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Self::Conflict(m) | Self::AlreadyExists(m) | Self::NotFound(m) | Self::Invalid(m) => m,
        }
    }
}

/// (namespace, name); namespace empty for cluster-scoped objects.
pub type Key = (String, String);

#[derive(Debug, Default)]
pub struct Store {
    pub rv: u64,
    pub objects: Vec<BTreeMap<Key, Arc<Value>>>,
    pub history: VecDeque<Change>,
    /// Watches from a resourceVersion below this get 410.
    pub compacted: u64,
    uid_counter: u64,
}

pub fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem / 60) % 60, rem % 60)
}

pub fn key_of(obj: &Value) -> Key {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    (s("/metadata/namespace"), s("/metadata/name"))
}

impl Store {
    pub fn new() -> Self {
        Self {
            objects: vec![BTreeMap::new(); RESOURCES.len()],
            // Start well above zero so "0" (any version) is never a real one.
            rv: 100,
            compacted: 0,
            ..Default::default()
        }
    }

    fn normalise(&mut self, def: &ResourceDef, obj: &mut Value, rv: u64) -> Result<(), WriteError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(WriteError::Invalid("object is not a JSON object".into()));
        };
        // A real server converts to the version it serves: fixtures written
        // for older versions (batch/v1beta1 CronJob) come out as this one.
        map.insert("apiVersion".into(), json!(def.api_version()));
        map.insert("kind".into(), json!(def.kind));
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(WriteError::Invalid("metadata is not an object".into()));
        };
        if meta.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
            return Err(WriteError::Invalid("metadata.name: Required value".into()));
        }
        if def.namespaced {
            if meta.get("namespace").and_then(Value::as_str).unwrap_or("").is_empty() {
                meta.insert("namespace".into(), json!("default"));
            }
        } else {
            meta.remove("namespace");
        }
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.remove("selfLink");
        Ok(())
    }

    fn record(&mut self, resource: usize, kind: EventType, object: Arc<Value>, previous: Option<Arc<Value>>) -> Change {
        let change = Change { rv: self.rv, resource, kind, object, previous };
        self.history.push_back(change.clone());
        change
    }

    /// Create or replace. With `expect_rv`, a replace whose stored
    /// resourceVersion differs is a conflict (optimistic concurrency);
    /// `must_create` fails if the object exists.
    pub fn write(
        &mut self,
        resource: usize,
        mut obj: Value,
        expect_rv: Option<&str>,
        must_create: bool,
        must_exist: bool,
    ) -> Result<Change, WriteError> {
        let def = &RESOURCES[resource];
        let key = key_of(&obj);
        let key = if def.namespaced && key.0.is_empty() { ("default".to_string(), key.1) } else { key };
        let existing = self.objects[resource].get(&key).cloned();
        match (&existing, must_create, must_exist) {
            (Some(_), true, _) => {
                return Err(WriteError::AlreadyExists(format!("{} \"{}\" already exists", def.plural, key.1)));
            }
            (None, _, true) => {
                return Err(WriteError::NotFound(format!("{} \"{}\" not found", def.plural, key.1)));
            }
            _ => {}
        }
        if let (Some(want), Some(old)) = (expect_rv.filter(|v| !v.is_empty()), &existing) {
            let have = old.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
            if have != want {
                return Err(WriteError::Conflict(format!(
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    if def.group.is_empty() { def.plural.to_string() } else { format!("{}.{}", def.plural, def.group) },
                    key.1
                )));
            }
        }
        let rv = self.rv + 1;
        self.normalise(def, &mut obj, rv)?;
        let meta = obj.pointer_mut("/metadata").and_then(Value::as_object_mut);
        if let Some(meta) = meta {
            match &existing {
                Some(old) => {
                    // uid and creationTimestamp belong to the server.
                    for field in ["uid", "creationTimestamp"] {
                        if let Some(v) = old.pointer(&format!("/metadata/{field}")) {
                            meta.insert(field.into(), v.clone());
                        }
                    }
                }
                None => {
                    if meta.get("uid").and_then(Value::as_str).unwrap_or("").is_empty() {
                        self.uid_counter += 1;
                        meta.insert("uid".into(), json!(format!("00000000-0000-4000-8000-{:012x}", self.uid_counter)));
                    }
                    if !meta.contains_key("creationTimestamp") {
                        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
                    }
                }
            }
        }
        self.rv = rv;
        let obj = Arc::new(obj);
        self.objects[resource].insert(key, obj.clone());
        let kind = if existing.is_some() { EventType::Modified } else { EventType::Added };
        Ok(self.record(resource, kind, obj, existing))
    }

    pub fn delete(&mut self, resource: usize, namespace: &str, name: &str) -> Result<Change, WriteError> {
        let def = &RESOURCES[resource];
        let key = (if def.namespaced { namespace.to_string() } else { String::new() }, name.to_string());
        let Some(old) = self.objects[resource].remove(&key) else {
            return Err(WriteError::NotFound(format!("{} \"{}\" not found", def.plural, name)));
        };
        self.rv += 1;
        // The DELETED event carries the last state with the deletion's rv.
        let mut last = (*old).clone();
        if let Some(meta) = last.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
        }
        Ok(self.record(resource, EventType::Deleted, Arc::new(last), None))
    }

    /// Forget all history up to now: watches from any earlier version get 410.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
    }
}
