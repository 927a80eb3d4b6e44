//! wasmon: a monitoring agent whose exporters are sandboxed WebAssembly
//! components. This crate is the host: config, sandbox, scheduler and HTTP.

pub mod agent;
pub mod alerting;
pub mod api;
pub mod cli;
pub mod config;
pub mod exposition;
pub mod ingest;
pub mod notifications;
pub mod plugins;
pub mod remote;
pub mod runtime;
pub mod scheduler;
pub mod telemetry;
pub mod tsdb_cmd;
pub mod watch;
