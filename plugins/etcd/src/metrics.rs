//! The plugin's own families, all in the `etcd_endpoint_` namespace, which etcd itself does
//! not use; etcd's families are passed through unchanged next to them.

use crate::status::Status;
use wasmon_sdk::{Family, MetricFamily};

/// `etcd_endpoint_up`: 1 when etcd's own metrics were read.
pub fn up(value: bool) -> MetricFamily {
    single(Family::gauge("etcd_endpoint_up", "Whether etcd's metrics endpoint could be scraped (1) or not (0)."), value)
}

/// `etcd_endpoint_health`: 1 when `/health` says `"health":"true"`.
pub fn health(healthy: bool) -> MetricFamily {
    single(
        Family::gauge(
            "etcd_endpoint_health",
            "Whether the member's /health endpoint reports it healthy (1) or not (0).",
        ),
        healthy,
    )
}

/// The families from `/v3/maintenance/status`.
pub fn status(s: &Status) -> Vec<MetricFamily> {
    let gauge = |name: &str, help: &str, value: f64| {
        let mut family = Family::gauge(name, help);
        family.sample(&[], value);
        family.build()
    };
    let mut info = Family::gauge(
        "etcd_endpoint_info",
        "Member and cluster of the endpoint, from the maintenance status; ids in hex as etcdctl shows them.",
    );
    let (member, leader, cluster) = (hex(s.member_id), hex(s.leader), hex(s.cluster_id));
    info.sample(
        &[("version", &s.version), ("member_id", &member), ("leader_id", &leader), ("cluster_id", &cluster)],
        1.0,
    );
    vec![
        gauge(
            "etcd_endpoint_db_size_bytes",
            "Size of the backend database physically allocated, in bytes, from the maintenance status.",
            s.db_size as f64,
        ),
        gauge(
            "etcd_endpoint_db_size_in_use_bytes",
            "Size of the backend database logically in use, in bytes, from the maintenance status.",
            s.db_size_in_use as f64,
        ),
        info.build(),
        gauge(
            "etcd_endpoint_is_leader",
            "Whether this member is the Raft leader (1) or not (0), from the maintenance status.",
            f64::from(u8::from(s.is_leader())),
        ),
        gauge(
            "etcd_endpoint_is_learner",
            "Whether this member is a Raft learner (1) or not (0), from the maintenance status.",
            f64::from(u8::from(s.is_learner)),
        ),
        gauge("etcd_endpoint_raft_applied_index", "Raft index the member has applied.", s.raft_applied_index as f64),
        gauge("etcd_endpoint_raft_index", "Raft index the member has committed.", s.raft_index as f64),
        gauge("etcd_endpoint_raft_term", "Raft term of the member.", s.raft_term as f64),
        gauge("etcd_endpoint_revision", "Revision of the member's key-value store.", s.revision as f64),
        gauge(
            "etcd_endpoint_status_errors",
            "Errors (alarms such as NOSPACE) the member reports in its maintenance status.",
            s.errors.len() as f64,
        ),
    ]
}

/// Member and cluster ids as etcdctl and `etcd_server_id` write them.
fn hex(id: u64) -> String {
    format!("{id:x}")
}

fn single(mut family: Family, value: bool) -> MetricFamily {
    family.sample(&[], f64::from(u8::from(value)));
    family.build()
}
