//! wasmon: a monitoring agent whose exporters are sandboxed WebAssembly
//! components. This crate is the host: config, sandbox, scheduler and HTTP.

pub mod agent;
pub mod alerting;
pub mod api;
pub mod cli;
pub mod config;
pub mod exposition;
pub mod ingest;
pub mod kube_state;
pub mod kubernetes;
pub mod logs;
pub mod notifications;
pub mod plugin_registry;
pub mod plugins;
pub mod relabel;
pub mod reload;
pub mod remote;
pub mod runtime;
pub mod scaffold;
pub mod scheduler;
pub mod scrape;
pub mod signing;
pub mod targets;
pub mod targets_cmd;
pub mod telemetry;
pub mod tsdb_cmd;
