//! The API permissions each part needs, as data, so the deploy manifests
//! can be tested against what the code actually calls (see `RBAC.md`).
//!
//! Watches run through kube-runtime's watcher, which only lists and
//! watches; leader election reads, creates and updates one Lease.

use super::config::Role;
use super::feed::FeedResource;

/// One RBAC `rules` entry: verbs on resources of one API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RbacRule {
    /// `""` for the core group.
    pub api_group: String,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

const WATCH: &[&str] = &["list", "watch"];

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> RbacRule {
    RbacRule {
        api_group: group.into(),
        resources: resources.iter().map(|r| r.to_string()).collect(),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    }
}

/// What `kubernetes_sd_configs` with this role needs. Namespaced
/// resources need it in every watched namespace (a Role per namespace when
/// `namespaces.names` is set, else a ClusterRole); nodes are cluster-scoped
/// and always need a ClusterRole.
pub fn sd_rules(role: Role, attach_node_metadata: bool) -> Vec<RbacRule> {
    let mut rules = match role {
        Role::Node => vec![rule("", &["nodes"], WATCH)],
        Role::Pod => vec![rule("", &["pods"], WATCH)],
        Role::Service => vec![rule("", &["services"], WATCH)],
        Role::Endpoints => vec![rule("", &["endpoints", "pods", "services"], WATCH)],
        Role::EndpointSlice => {
            vec![rule("discovery.k8s.io", &["endpointslices"], WATCH), rule("", &["pods", "services"], WATCH)]
        }
    };
    if attach_node_metadata && role != Role::Node {
        rules.push(rule("", &["nodes"], WATCH));
    }
    rules
}

/// What the object feed for these resources needs (list and watch each).
pub fn feed_rules(resources: &[FeedResource]) -> Vec<RbacRule> {
    let mut by_group: Vec<RbacRule> = Vec::new();
    for r in resources {
        match by_group.iter_mut().find(|g| g.api_group == r.group) {
            Some(g) if !g.resources.contains(&r.plural) => g.resources.push(r.plural.clone()),
            Some(_) => {}
            None => by_group.push(rule(&r.group, &[r.plural.as_str()], WATCH)),
        }
    }
    by_group.sort();
    by_group
}

/// What leader election needs on its Lease, in its own namespace only
/// (a Role, and it may be restricted with `resourceNames` to the lease).
pub fn leader_election_rules() -> Vec<RbacRule> {
    vec![rule("coordination.k8s.io", &["leases"], &["get", "create", "update"])]
}

/// One RBAC `rules` entry on non-resource URLs (`nonResourceURLs`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NonResourceRule {
    pub urls: Vec<String>,
    pub verbs: Vec<String>,
}

/// What scraping a target found by `role` at `metrics_path` needs when the
/// agent authenticates with its service-account token and the target asks
/// the API server whether that token may read it (kubelets and the
/// control-plane components do; a target that checks nothing needs
/// nothing). Verbs follow the HTTP method, so a scrape (GET) needs `get`.
///
/// - `node` (kubelets): the kubelet maps `/metrics` and everything below it
///   (`/metrics/cadvisor`, `/metrics/probes`, `/metrics/resource`) to the
///   `nodes/metrics` subresource.
/// - any other role (kube-scheduler, kube-controller-manager, kube-proxy,
///   anything using the apiserver's delegated authorization): the
///   non-resource URL itself, `metrics_path`.
pub fn token_scrape_rules(role: Role, metrics_path: &str) -> (Vec<RbacRule>, Vec<NonResourceRule>) {
    match role {
        Role::Node => (vec![rule("", &["nodes/metrics"], &["get"])], Vec::new()),
        _ => (Vec::new(), vec![NonResourceRule { urls: vec![metrics_path.to_string()], verbs: vec!["get".into()] }]),
    }
}

/// Whether `granted` (e.g. parsed from a ClusterRole) allows every rule of
/// `needed`; `*` matches any group, resource or verb.
pub fn covers(granted: &[RbacRule], needed: &[RbacRule]) -> bool {
    let any = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
    needed.iter().all(|n| {
        n.resources.iter().all(|res| {
            n.verbs.iter().all(|verb| {
                granted.iter().any(|g| {
                    (g.api_group == "*" || g.api_group == n.api_group) && any(&g.resources, res) && any(&g.verbs, verb)
                })
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_role_needs_its_dependencies() {
        let r = sd_rules(Role::Endpoints, true);
        assert!(covers(&r, &[rule("", &["pods", "services", "endpoints", "nodes"], &["watch"])]));
        assert!(!covers(&sd_rules(Role::Pod, false), &[rule("", &["nodes"], &["list"])]));
    }

    #[test]
    fn feed_rules_group_by_api_group() {
        let r = feed_rules(&[
            FeedResource::new("apps", "v1", "deployments", "Deployment", true),
            FeedResource::new("", "v1", "pods", "Pod", true),
            FeedResource::new("apps", "v1", "daemonsets", "DaemonSet", true),
        ]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].resources, ["deployments", "daemonsets"]);
    }

    #[test]
    fn token_scrapes_of_kubelets_use_the_metrics_subresource() {
        let (kubelet, none) = token_scrape_rules(Role::Node, "/metrics/cadvisor");
        assert_eq!(kubelet, vec![rule("", &["nodes/metrics"], &["get"])]);
        assert!(none.is_empty());
        let (none, urls) = token_scrape_rules(Role::Pod, "/metrics");
        assert!(none.is_empty());
        assert_eq!(urls[0].urls, ["/metrics"]);
        assert_eq!(urls[0].verbs, ["get"]);
    }

    #[test]
    fn wildcards_cover() {
        let admin = vec![rule("*", &["*"], &["*"])];
        assert!(covers(&admin, &leader_election_rules()));
        assert!(!covers(&sd_rules(Role::Node, false), &leader_election_rules()));
    }
}
