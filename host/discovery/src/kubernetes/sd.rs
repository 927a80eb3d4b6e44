//! The discovery loop: runs the watches a role needs, keeps the little
//! state needed to rebuild groups, and sends only groups that changed.
//!
//! Memory: for roles without dependencies (node, service, and pod without
//! `attach_metadata`), only a fingerprint per source is kept. Roles that
//! must rebuild a group when another object changes keep compact copies
//! (`PodInfo`, label sets) or, for endpoints and slices, the objects.

use super::config::{ConfigError, KubernetesSdConfig, Role};
use super::endpoints::{self, Deps};
use super::meta;
use super::pod::PodInfo;
use super::watch::{Tagged, watch, watcher_config};
use super::{node, service};
use crate::{GroupSender, TargetGroup};
use futures::StreamExt;
use futures::stream::{BoxStream, select_all};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::Event;
use kube::{Api, Client};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// One object from any of the watched kinds.
#[derive(Debug)]
pub(crate) enum Obj {
    Pod(Box<Pod>),
    Node(Box<Node>),
    Service(Box<Service>),
    Endpoints(Box<Endpoints>),
    Slice(Box<EndpointSlice>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pod,
    Node,
    Service,
    Endpoints,
    Slice,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Node => "nodes",
            Kind::Service => "services",
            Kind::Endpoints => "endpoints",
            Kind::Slice => "endpointslices",
        }
    }
}

impl Obj {
    fn kind(&self) -> Kind {
        match self {
            Obj::Pod(_) => Kind::Pod,
            Obj::Node(_) => Kind::Node,
            Obj::Service(_) => Kind::Service,
            Obj::Endpoints(_) => Kind::Endpoints,
            Obj::Slice(_) => Kind::Slice,
        }
    }
    fn key(&self) -> String {
        match self {
            Obj::Pod(o) => meta::key(&o.metadata),
            Obj::Node(o) => meta::key(&o.metadata),
            Obj::Service(o) => meta::key(&o.metadata),
            Obj::Endpoints(o) => meta::key(&o.metadata),
            Obj::Slice(o) => meta::key(&o.metadata),
        }
    }
}

/// One watch: which kind, where, and its (re-)list progress.
#[derive(Debug)]
struct StreamInfo {
    kind: Kind,
    namespace: Option<String>,
    synced: bool,
    /// Keys listed since the last `Init`; `Some` while a (re-)list runs.
    listing: Option<HashSet<String>>,
}

impl StreamInfo {
    fn covers(&self, key: &str) -> bool {
        match &self.namespace {
            None => true,
            Some(ns) => key.split_once('/').is_some_and(|(k, _)| k == ns),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SdError {
    #[error("invalid kubernetes_sd_config: {0}")]
    Config(#[from] ConfigError),
}

fn fingerprint(g: &TargetGroup) -> u64 {
    let mut h = DefaultHasher::new();
    g.source.hash(&mut h);
    g.labels.hash(&mut h);
    g.targets.hash(&mut h);
    h.finish()
}

/// The state of one role's discovery.
struct Runner {
    role: Role,
    attach_node: bool,
    streams: Vec<StreamInfo>,
    /// Fingerprint of the last group sent per source.
    sent: HashMap<String, u64>,
    deps: Deps,
    endpoints: HashMap<String, Endpoints>,
    slices: HashMap<String, EndpointSlice>,
    /// Keys of primary objects (pods with attach, endpoints, slices) whose
    /// group must be rebuilt once every watch has synced.
    dirty: BTreeSet<String>,
    out: Vec<TargetGroup>,
}

impl Runner {
    fn new(config: &KubernetesSdConfig) -> Self {
        let mut deps = Deps::default();
        if config.attach_node_metadata {
            deps.nodes = Some(HashMap::new());
        }
        Self {
            role: config.role,
            attach_node: config.attach_node_metadata,
            streams: Vec::new(),
            sent: HashMap::new(),
            deps,
            endpoints: HashMap::new(),
            slices: HashMap::new(),
            dirty: BTreeSet::new(),
            out: Vec::new(),
        }
    }

    fn prefix(&self) -> &'static str {
        match self.role {
            Role::Pod => "pod/",
            Role::Node => "node/",
            Role::Service => "svc/",
            Role::Endpoints => "endpoints/",
            Role::EndpointSlice => "endpointslice/",
        }
    }

    /// Whether objects of `kind` are the role's own (their groups are sent
    /// straight from the event, with nothing kept but a fingerprint).
    fn direct(&self, kind: Kind) -> bool {
        matches!((self.role, kind), (Role::Node, Kind::Node) | (Role::Service, Kind::Service))
            || (self.role == Role::Pod && kind == Kind::Pod && !self.attach_node)
    }

    fn emit(&mut self, group: TargetGroup) {
        let fp = fingerprint(&group);
        if self.sent.get(&group.source) == Some(&fp) {
            return;
        }
        let empty = group.targets.is_empty();
        let known = self.sent.insert(group.source.clone(), fp).is_some();
        // An object that never had targets needs no removal sent; keeping
        // its fingerprint still lets a re-list notice it is gone.
        if empty && !known {
            return;
        }
        self.out.push(group);
    }

    fn remove(&mut self, source: String) {
        let empty = TargetGroup { source, ..Default::default() };
        if let Some(fp) = self.sent.remove(&empty.source)
            && fp != fingerprint(&empty)
        {
            self.out.push(empty);
        }
    }

    fn all_synced(&self) -> bool {
        self.streams.iter().all(|s| s.synced)
    }

    fn apply(&mut self, obj: Obj) {
        let key = obj.key();
        match obj {
            Obj::Pod(p) if self.direct(Kind::Pod) => self.emit(PodInfo::from_pod(&p).build(None)),
            Obj::Node(n) if self.direct(Kind::Node) => self.emit(node::build(&n)),
            Obj::Service(s) if self.direct(Kind::Service) => self.emit(service::build(&s)),
            Obj::Pod(p) => {
                let info = PodInfo::from_pod(&p);
                if self.deps.pods.get(&key) != Some(&info) {
                    self.deps.pods.insert(key.clone(), info);
                    self.pod_changed(&key);
                }
            }
            Obj::Node(n) => {
                let labels = node::attached_labels(&n);
                if let Some(nodes) = &mut self.deps.nodes
                    && nodes.get(&key) != Some(&labels)
                {
                    nodes.insert(key.clone(), labels);
                    self.node_changed(&key);
                }
            }
            Obj::Service(s) => {
                let labels = service::labels(&s);
                if self.deps.services.get(&key) != Some(&labels) {
                    self.deps.services.insert(key.clone(), labels);
                    self.service_changed(&key);
                }
            }
            Obj::Endpoints(e) => {
                self.endpoints.insert(key.clone(), *e);
                self.dirty.insert(key);
            }
            Obj::Slice(s) => {
                self.slices.insert(key.clone(), *s);
                self.dirty.insert(key);
            }
        }
    }

    fn delete(&mut self, kind: Kind, key: &str) {
        if self.direct(kind) {
            let source = format!("{}{key}", self.prefix());
            self.remove(source);
            return;
        }
        match kind {
            Kind::Pod => {
                if self.deps.pods.remove(key).is_some() {
                    self.pod_changed(key);
                }
            }
            Kind::Node => {
                if let Some(nodes) = &mut self.deps.nodes
                    && nodes.remove(key).is_some()
                {
                    self.node_changed(key);
                }
            }
            Kind::Service => {
                if self.deps.services.remove(key).is_some() {
                    self.service_changed(key);
                }
            }
            Kind::Endpoints => {
                self.endpoints.remove(key);
                self.dirty.insert(key.to_string());
            }
            Kind::Slice => {
                self.slices.remove(key);
                self.dirty.insert(key.to_string());
            }
        }
    }

    /// Keys of this kind the runner knows, for re-list reconciliation.
    fn known(&self, kind: Kind) -> Vec<String> {
        if self.direct(kind) {
            let prefix = self.prefix();
            return self.sent.keys().filter_map(|s| s.strip_prefix(prefix)).map(str::to_string).collect();
        }
        match kind {
            Kind::Pod => self.deps.pods.keys().cloned().collect(),
            Kind::Node => self.deps.nodes.iter().flat_map(|n| n.keys().cloned()).collect(),
            Kind::Service => self.deps.services.keys().cloned().collect(),
            Kind::Endpoints => self.endpoints.keys().cloned().collect(),
            Kind::Slice => self.slices.keys().cloned().collect(),
        }
    }

    fn pod_changed(&mut self, key: &str) {
        match self.role {
            Role::Pod => {
                self.dirty.insert(key.to_string());
            }
            Role::Endpoints => {
                let (ns, name) = key.split_once('/').unwrap_or(("", key));
                let hits = self.endpoints.iter().filter(|(_, e)| endpoints_ref(e, "Pod", ns, name));
                let keys: Vec<String> = hits.map(|(k, _)| k.clone()).collect();
                self.dirty.extend(keys);
            }
            Role::EndpointSlice => {
                let (ns, name) = key.split_once('/').unwrap_or(("", key));
                let hits = self.slices.iter().filter(|(_, s)| slice_ref(s, "Pod", ns, name));
                let keys: Vec<String> = hits.map(|(k, _)| k.clone()).collect();
                self.dirty.extend(keys);
            }
            _ => {}
        }
    }

    fn node_changed(&mut self, name: &str) {
        let keys: Vec<String> = match self.role {
            Role::Pod => self.deps.pods.iter().filter(|(_, p)| &*p.node_name == name).map(|(k, _)| k.clone()).collect(),
            Role::Endpoints => {
                self.endpoints.iter().filter(|(_, e)| endpoints_on_node(e, name)).map(|(k, _)| k.clone()).collect()
            }
            Role::EndpointSlice => {
                self.slices.iter().filter(|(_, s)| slice_on_node(s, name)).map(|(k, _)| k.clone()).collect()
            }
            _ => Vec::new(),
        };
        self.dirty.extend(keys);
    }

    fn service_changed(&mut self, key: &str) {
        match self.role {
            Role::Endpoints if self.endpoints.contains_key(key) => {
                self.dirty.insert(key.to_string());
            }
            Role::EndpointSlice => {
                let (ns, name) = key.split_once('/').unwrap_or(("", key));
                let keys: Vec<String> = self
                    .slices
                    .iter()
                    .filter(|(_, s)| {
                        s.metadata.namespace.as_deref() == Some(ns)
                            && s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name"))
                                == Some(&name.to_string())
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                self.dirty.extend(keys);
            }
            _ => {}
        }
    }

    /// Rebuild dirty groups, once every watch has listed at least once, so
    /// the first groups already carry service, pod and node labels.
    fn flush(&mut self) {
        if !self.all_synced() {
            return;
        }
        for key in std::mem::take(&mut self.dirty) {
            let (ns, name) = key.split_once('/').unwrap_or(("", key.as_str()));
            let group = match self.role {
                Role::Pod => self.deps.pods.get(&key).map(|p| {
                    let node = self.deps.nodes.as_ref().and_then(|n| n.get(&*p.node_name));
                    p.build(node)
                }),
                Role::Endpoints => self.endpoints.get(&key).map(|e| endpoints::build_endpoints(e, &self.deps)),
                Role::EndpointSlice => self.slices.get(&key).map(|s| endpoints::build_endpointslice(s, &self.deps)),
                _ => None,
            };
            match group {
                Some(g) => self.emit(g),
                None => {
                    let source = match self.role {
                        Role::Endpoints => endpoints::endpoints_source(ns, name),
                        Role::EndpointSlice => endpoints::endpointslice_source(ns, name),
                        _ => format!("{}{key}", self.prefix()),
                    };
                    self.remove(source);
                }
            }
        }
    }

    fn handle(&mut self, t: Tagged<Obj>) {
        let Some(info) = self.streams.get(t.stream) else { return };
        let (kind, ns) = (info.kind, info.namespace.clone());
        match t.event {
            Err(e) => super::watch::log_error(self.role.as_str(), kind.name(), ns.as_deref(), &e),
            Ok(Event::Init) => self.streams[t.stream].listing = Some(HashSet::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(listing) = &mut self.streams[t.stream].listing {
                    listing.insert(obj.key());
                }
                self.apply(obj);
            }
            Ok(Event::InitDone) => {
                let listed = self.streams[t.stream].listing.take().unwrap_or_default();
                // Objects deleted while the watch was down never get a
                // DELETED event: a re-list is the only way to learn of them.
                let gone: Vec<String> = self
                    .known(kind)
                    .into_iter()
                    .filter(|k| self.streams[t.stream].covers(k) && !listed.contains(k))
                    .collect();
                for key in gone {
                    self.delete(kind, &key);
                }
                if !self.streams[t.stream].synced {
                    self.streams[t.stream].synced = true;
                    if self.all_synced() {
                        // Everything the first lists built waited for this.
                        self.dirty.extend(self.endpoints.keys().cloned());
                        self.dirty.extend(self.slices.keys().cloned());
                        if self.role == Role::Pod {
                            self.dirty.extend(self.deps.pods.keys().cloned());
                        }
                    }
                }
            }
            Ok(Event::Apply(obj)) => self.apply(obj),
            Ok(Event::Delete(obj)) => {
                let key = obj.key();
                self.delete(obj.kind(), &key);
            }
        }
    }
}

fn endpoints_ref(e: &Endpoints, kind: &str, ns: &str, name: &str) -> bool {
    e.subsets.iter().flatten().any(|s| {
        s.addresses.iter().flatten().chain(s.not_ready_addresses.iter().flatten()).any(|a| {
            a.target_ref.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some(kind)
                    && r.name.as_deref() == Some(name)
                    && r.namespace.as_deref().unwrap_or(ns) == ns
            })
        })
    })
}

fn endpoints_on_node(e: &Endpoints, node: &str) -> bool {
    endpoints_ref(e, "Node", "", node)
        || e.subsets.iter().flatten().any(|s| {
            s.addresses
                .iter()
                .flatten()
                .chain(s.not_ready_addresses.iter().flatten())
                .any(|a| a.node_name.as_deref() == Some(node))
        })
}

fn slice_ref(s: &EndpointSlice, kind: &str, ns: &str, name: &str) -> bool {
    s.endpoints.iter().any(|ep| {
        ep.target_ref.as_ref().is_some_and(|r| {
            r.kind.as_deref() == Some(kind)
                && r.name.as_deref() == Some(name)
                && r.namespace.as_deref().unwrap_or(ns) == ns
        })
    })
}

fn slice_on_node(s: &EndpointSlice, node: &str) -> bool {
    slice_ref(s, "Node", "", node) || s.endpoints.iter().any(|ep| ep.node_name.as_deref() == Some(node))
}

/// Run Kubernetes discovery for one config until `sender` is closed (then
/// returns `Ok`), sending every changed group. Watch errors are logged and
/// retried with backoff; they never end the loop. Cancel by dropping the
/// future.
pub async fn run(client: Client, config: KubernetesSdConfig, sender: GroupSender) -> Result<(), SdError> {
    config.validate()?;
    let namespaces = config.resolved_namespaces()?;
    let mut runner = Runner::new(&config);
    let mut streams: Vec<BoxStream<'static, Tagged<Obj>>> = Vec::new();

    let mut add = |runner: &mut Runner, kind: Kind, sel_role: Role| {
        let sel = config.selector(sel_role);
        let cfg = watcher_config(sel.and_then(|s| s.label.as_deref()), sel.and_then(|s| s.field.as_deref()));
        let scopes: Vec<Option<String>> = match (&namespaces, kind) {
            (_, Kind::Node) | (None, _) => vec![None],
            (Some(names), _) => names.iter().cloned().map(Some).collect(),
        };
        for ns in scopes {
            let idx = runner.streams.len();
            let c = client.clone();
            let cfg = cfg.clone();
            let s = match (kind, ns.as_deref()) {
                (Kind::Pod, Some(n)) => watch(Api::<Pod>::namespaced(c, n), cfg, idx, |o| Obj::Pod(Box::new(o))),
                (Kind::Pod, None) => watch(Api::<Pod>::all(c), cfg, idx, |o| Obj::Pod(Box::new(o))),
                (Kind::Node, _) => watch(Api::<Node>::all(c), cfg, idx, |o| Obj::Node(Box::new(o))),
                (Kind::Service, Some(n)) => {
                    watch(Api::<Service>::namespaced(c, n), cfg, idx, |o| Obj::Service(Box::new(o)))
                }
                (Kind::Service, None) => watch(Api::<Service>::all(c), cfg, idx, |o| Obj::Service(Box::new(o))),
                (Kind::Endpoints, Some(n)) => {
                    watch(Api::<Endpoints>::namespaced(c, n), cfg, idx, |o| Obj::Endpoints(Box::new(o)))
                }
                (Kind::Endpoints, None) => watch(Api::<Endpoints>::all(c), cfg, idx, |o| Obj::Endpoints(Box::new(o))),
                (Kind::Slice, Some(n)) => {
                    watch(Api::<EndpointSlice>::namespaced(c, n), cfg, idx, |o| Obj::Slice(Box::new(o)))
                }
                (Kind::Slice, None) => watch(Api::<EndpointSlice>::all(c), cfg, idx, |o| Obj::Slice(Box::new(o))),
            };
            runner.streams.push(StreamInfo { kind, namespace: ns, synced: false, listing: None });
            streams.push(s);
        }
    };
    match config.role {
        Role::Node => add(&mut runner, Kind::Node, Role::Node),
        Role::Service => add(&mut runner, Kind::Service, Role::Service),
        Role::Pod => add(&mut runner, Kind::Pod, Role::Pod),
        Role::Endpoints => {
            add(&mut runner, Kind::Endpoints, Role::Endpoints);
            add(&mut runner, Kind::Service, Role::Service);
            add(&mut runner, Kind::Pod, Role::Pod);
        }
        Role::EndpointSlice => {
            add(&mut runner, Kind::Slice, Role::EndpointSlice);
            add(&mut runner, Kind::Service, Role::Service);
            add(&mut runner, Kind::Pod, Role::Pod);
        }
    }
    if config.attach_node_metadata {
        add(&mut runner, Kind::Node, Role::Node);
    }

    // Events that are ready together are handled together, and their
    // changed groups go out as one update.
    let mut events = select_all(streams).ready_chunks(1024);
    while let Some(batch) = events.next().await {
        for t in batch {
            runner.handle(t);
        }
        runner.flush();
        if runner.out.is_empty() {
            continue;
        }
        let out = std::mem::take(&mut runner.out);
        if sender.send(out).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
