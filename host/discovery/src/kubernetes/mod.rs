//! Kubernetes: discovery with Prometheus' `kubernetes_sd_configs` roles and
//! labels, the object feed for kube-state plugins, leader election on a
//! Lease, and the RBAC rules each of them needs.

mod client;
mod config;
mod endpoints;
mod feed;
mod leader;
mod meta;
mod node;
mod pod;
pub mod rbac;
mod sd;
mod service;
mod watch;

pub use client::{ClientError, build_client, kube_config};
pub use config::{ClientConfig, ConfigError, KubernetesSdConfig, NamespaceDiscovery, Role, Selector};
pub use feed::{FeedError, FeedOptions, FeedResource, ObjectEvent, sanitize, watch_objects};
pub use leader::{LeaderElectionConfig, LeaderElector};
pub use sd::{SdError, run};

/// Pure group builders, for callers that already hold objects (tests, a
/// "why was this target dropped" view).
pub mod build {
    pub use super::endpoints::{Deps, build_endpoints, build_endpointslice};
    pub use super::node::build as build_node;
    pub use super::pod::PodInfo;
    pub use super::service::build as build_service;
}
