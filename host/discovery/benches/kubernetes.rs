//! Kubernetes discovery and object-feed throughput and memory, through the
//! real watch path against the in-process fake API server:
//! `cargo bench -p wasmon-discovery --bench kubernetes`.
//!
//! Memory is the agent side only: a counting allocator tags each
//! allocation with whether it was made on an agent thread, and the fake
//! server (its own runtime) and this harness's bookkeeping run untagged.
// The allocator below is the one place this crate needs unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wasmon_discovery::kubernetes::{
    ClientConfig, FeedOptions, FeedResource, KubernetesSdConfig, ObjectEvent, Role, build_client, run, watch_objects,
};
use wasmon_kube_fake::FakeApiServer;

const PODS: usize = 10_000;
const NODES: usize = 1_000;
const TARGET_BYTES_PER_POD: f64 = 4096.0;
const TARGET_RELIST: Duration = Duration::from_secs(2);

thread_local! {
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

static LIVE: AtomicI64 = AtomicI64::new(0);

/// Prepends a 16-byte (or alignment-sized) header holding whether the
/// allocation is counted, so a free on any thread undoes exactly its own
/// allocation's count.
struct Counting;

fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let off = header(layout);
        let Ok(full) = Layout::from_size_align(layout.size() + off, off) else { return std::ptr::null_mut() };
        // SAFETY: `full` has non-zero size (off >= 16).
        let base = unsafe { System.alloc(full) };
        if base.is_null() {
            return base;
        }
        let counted = !UNCOUNTED.try_with(Cell::get).unwrap_or(true);
        if counted {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: base is valid for `off` >= 1 bytes; the user part starts after.
        unsafe {
            *base = u8::from(counted);
            base.add(off)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let off = header(layout);
        // SAFETY: `ptr` came from `alloc` above with the same layout.
        unsafe {
            let base = ptr.sub(off);
            if *base == 1 {
                LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
            }
            System.dealloc(base, Layout::from_size_align_unchecked(layout.size() + off, off));
        }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `f` with this thread's allocations uncounted.
fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    let was = UNCOUNTED.with(|c| c.replace(true));
    let r = f();
    UNCOUNTED.with(|c| c.set(was));
    r
}

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// The fake server's runtime (uncounted) and, per scenario, a fresh agent
/// runtime, dropped at the end so one scenario's leftovers do not skew the
/// next one's count.
struct Bench {
    fake_rt: tokio::runtime::Runtime,
    agent_rt: tokio::runtime::Runtime,
}

fn agent_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("agent runtime")
}

impl Bench {
    fn new() -> Self {
        let fake_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .on_thread_start(|| UNCOUNTED.with(|c| c.set(true)))
            .build()
            .expect("fake runtime");
        let agent_rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("agent runtime");
        Self { fake_rt, agent_rt }
    }

    fn server(&self) -> FakeApiServer {
        uncounted(|| self.fake_rt.block_on(FakeApiServer::start())).expect("fake server")
    }

    fn client(&self, server: &FakeApiServer) -> kube::Client {
        let cfg = ClientConfig { api_server: Some(server.url()), ..Default::default() };
        self.agent_rt.block_on(build_client(&cfg)).expect("client")
    }
}

fn wait(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn report(name: &str, events: usize, took: Duration, bytes: i64, objects: usize, relist: Duration) {
    let per = bytes as f64 / objects as f64;
    println!("{name}:");
    println!(
        "  watch path:   {events} events in {:.3} s = {:.0} events/s",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    println!(
        "  memory:       {per:.0} B per object ({:.1} MiB for {objects})   target <= {TARGET_BYTES_PER_POD:.0} B/pod  {}",
        bytes as f64 / 1048576.0,
        if per <= TARGET_BYTES_PER_POD { "ok" } else { "OVER" }
    );
    println!(
        "  full re-list: {:.3} s for {objects} objects   target <= {:.1} s  {}",
        relist.as_secs_f64(),
        TARGET_RELIST.as_secs_f64(),
        if relist <= TARGET_RELIST { "ok" } else { "OVER" }
    );
}

/// How long listing every pod takes on its own (pages of 500, as the
/// watcher lists), to tell the fake server's and client's share of a
/// re-list from discovery's.
async fn list_all_pods(client: kube::Client) -> Duration {
    use kube::api::ListParams;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
    let t = Instant::now();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(c) = &token {
            lp = lp.continue_token(c);
        }
        let page = api.list(&lp).await.expect("list");
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            return t.elapsed();
        }
    }
}

/// Pod role discovery: 10,000 pods arrive as watch events, then a 410
/// forces a full re-list.
fn pod_role(b: &mut Bench, attach_node: bool) {
    b.agent_rt = agent_runtime();
    let server = b.server();
    uncounted(|| {
        server.set_bookmark_interval(None);
        server.load_synthetic_nodes(NODES).expect("nodes");
        server
            .apply("pods", wasmon_kube_fake::fixtures::pod("bench", "marker", "node-0", "10.255.0.1"))
            .expect("marker");
    });
    let client = b.client(&server);
    let (tx, rx) = mpsc::channel(1024);
    let mut cfg = KubernetesSdConfig::new(Role::Pod);
    cfg.attach_node_metadata = attach_node;
    let task = b.agent_rt.spawn(async move { run(client, cfg, tx).await });
    // The harness's own bookkeeping is not the agent's memory.
    let rx = std::sync::Mutex::new(rx);
    let seen = std::sync::Mutex::new(HashSet::<String>::new());
    let pump = |until: &dyn Fn(&HashSet<String>) -> bool| {
        uncounted(|| {
            let mut rx = rx.lock().expect("rx");
            let mut seen = seen.lock().expect("seen");
            let deadline = Instant::now() + Duration::from_secs(300);
            while !until(&seen) {
                assert!(Instant::now() < deadline, "timed out");
                match rx.try_recv() {
                    Ok(batch) => {
                        for g in batch {
                            if g.targets.is_empty() {
                                seen.remove(&g.source);
                            } else {
                                seen.insert(g.source);
                            }
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => panic!("discovery ended: {e}"),
                }
            }
        })
    };
    pump(&|s| s.contains("pod/bench/marker"));
    // Per-pod memory is what the pods add to a running discovery.
    let base = live();

    let t0 = Instant::now();
    uncounted(|| server.load_synthetic_pods(PODS, NODES)).expect("pods");
    pump(&|s| s.len() == PODS + 1);
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let bytes = live() - base;

    // Outage + compaction: the watch gets 410 and must re-list all pods.
    let lists = server.list_requests("pods");
    uncounted(|| {
        server.pause_watches();
        server.delete("pods", "ns-0", "pod-0");
        server.compact();
        server.resume_watches();
    });
    wait("the re-list to start", || server.list_requests("pods") > lists);
    let t1 = Instant::now();
    pump(&|s| !s.contains("pod/ns-0/pod-0"));
    let relist = t1.elapsed();
    task.abort();
    let name = if attach_node { "pod role + attach_metadata.node (1,000 nodes)" } else { "pod role" };
    report(name, PODS, took, bytes, PODS, relist);
    let baseline = b.agent_rt.block_on(list_all_pods(b.client(&server)));
    println!(
        "  (context: a bare paged list of the same pods, kube client + typed decode, no discovery: {:.3} s)",
        baseline.as_secs_f64()
    );
}

/// The object feed for pods and nodes.
fn feed(b: &mut Bench) {
    b.agent_rt = agent_runtime();
    let server = b.server();
    uncounted(|| server.set_bookmark_interval(None));
    let client = b.client(&server);
    let (tx, mut rx) = mpsc::channel::<Vec<ObjectEvent>>(1024);
    let resources =
        vec![FeedResource::new("", "v1", "pods", "Pod", true), FeedResource::new("", "v1", "nodes", "Node", false)];
    let task = b.agent_rt.spawn(async move { watch_objects(client, resources, FeedOptions::default(), tx).await });
    let mut drain = |want_applied: usize, want_deleted: usize| {
        uncounted(|| {
            let (mut applied, mut deleted) = (0, 0);
            let deadline = Instant::now() + Duration::from_secs(300);
            while applied < want_applied || deleted < want_deleted {
                assert!(Instant::now() < deadline, "timed out: {applied} applied, {deleted} deleted");
                match rx.try_recv() {
                    Ok(batch) => {
                        for e in batch {
                            match e {
                                ObjectEvent::Applied { .. } => applied += 1,
                                ObjectEvent::Deleted { .. } => deleted += 1,
                            }
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => panic!("feed ended: {e}"),
                }
            }
        })
    };
    wait("the feed's watches", || server.watch_requests("pods") > 0 && server.watch_requests("nodes") > 0);
    std::thread::sleep(Duration::from_millis(100));
    let base = live();
    let t0 = Instant::now();
    uncounted(|| {
        server.load_synthetic_nodes(NODES).expect("nodes");
        server.load_synthetic_pods(PODS, NODES).expect("pods");
    });
    drain(PODS + NODES, 0);
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let bytes = live() - base;

    let lists = server.list_requests("pods");
    uncounted(|| {
        server.pause_watches();
        server.delete("pods", "ns-0", "pod-0");
        server.compact();
        server.resume_watches();
    });
    wait("the re-list to start", || server.list_requests("pods") > lists);
    let t1 = Instant::now();
    // Every pod re-applied, then the vanished one deleted (nodes re-list
    // too, in parallel; only the pods are timed).
    drain(PODS - 1, 1);
    let relist = t1.elapsed();
    task.abort();
    report("object feed (pods + nodes)", PODS + NODES, took, bytes, PODS + NODES, relist);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // we need; both just run everything.
    let mut b = Bench::new();
    println!("wasmon Kubernetes benchmark: {PODS} pods, {NODES} nodes, fake API server in-process (uncounted)");
    pod_role(&mut b, false);
    pod_role(&mut b, true);
    feed(&mut b);
}
