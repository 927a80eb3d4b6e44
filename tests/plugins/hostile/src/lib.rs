//! A hostile plugin for isolation tests. Its config picks one misbehaviour:
//!
//! | mode | what it does |
//! |---|---|
//! | `ok` | returns `hostile_ok 1` (the well-behaved control) |
//! | `loop` | spins forever |
//! | `memory-bomb` | allocates until something stops it |
//! | `stack-overflow` | recurses without end (small frames: the wasm stack) |
//! | `shadow-stack-overflow` | recurses with big frames (Rust's stack in linear memory) |
//! | `huge-result` | returns `series` series with long labels |
//! | `log-flood` | logs and prints without end for `millis`, then succeeds |
//! | `panic` | panics |
//! | `read-file` | reads `path` through the host's file interface |
//! | `std-read` | reads `path` with `std::fs` (WASI preopens only) |
//! | `list-dir` | lists `path` through the host's file interface |
//! | `connect` | opens a TCP connection to `address` |
//! | `connect-read` | connects to `address` and reads until the peer closes |
//! | `http-get` | sends `GET url` through `wasi:http`, optionally with an `authorization` header |
//! | `secret` | reads the secret `password` and puts it in a log line, stdout, stderr and its error |
//! | `env` | reports how many environment variables and args it sees |
//! | `bad-output` | returns invalid names, duplicates and mismatched types |

use serde::Deserialize;
use wasmon_sdk::{Exporter, Family, MetricFamily, MetricKind, PluginError, PluginInfo, Target};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostileConfig {
    mode: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    address: String,
    #[serde(default = "default_series")]
    series: usize,
    #[serde(default = "default_millis")]
    millis: u64,
    #[serde(default)]
    url: String,
    #[serde(default)]
    authorization: Option<String>,
}

fn default_series() -> usize {
    1_000_000
}
fn default_millis() -> u64 {
    2000
}

struct Hostile;

fn ok_family(name: &str) -> MetricFamily {
    let mut f = Family::gauge(name, "The hostile plugin got this far.");
    f.sample(&[], 1.0);
    f.build()
}

/// Small frames: exhausts the wasm call stack (a `StackOverflow` trap).
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_small(depth: u64) -> u64 {
    recurse_small(std::hint::black_box(depth + 1)).wrapping_add(depth)
}

/// Big frames: exhausts Rust's shadow stack in linear memory first (an
/// out-of-bounds trap below address 0).
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let mut next = [0u8; 256];
    next.copy_from_slice(pad);
    recurse(std::hint::black_box(depth + 1), std::hint::black_box(&mut next)) + next[0] as u64
}

impl Exporter for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new("hostile", "0.1.0", "Misbehaves on purpose, for isolation tests.")
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        wasmon_sdk::config::parse::<HostileConfig>(&config).map(|_| ())
    }

    fn collect(_target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let config: HostileConfig = wasmon_sdk::config::parse(&config)?;
        match config.mode.as_str() {
            "ok" => Ok(vec![ok_family("hostile_ok")]),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "stack-overflow" => {
                let mut depth = Family::gauge("hostile_depth", "Never reached.");
                depth.sample(&[], recurse_small(0) as f64);
                Ok(vec![depth.build()])
            }
            "shadow-stack-overflow" => {
                let mut pad = [0u8; 256];
                let mut depth = Family::gauge("hostile_depth", "Never reached.");
                depth.sample(&[], recurse(0, &mut pad) as f64);
                Ok(vec![depth.build()])
            }
            "huge-result" => {
                let mut f = Family::gauge("hostile_huge", "Very many series.");
                let padding = "x".repeat(64);
                for i in 0..config.series {
                    f.sample(&[("i", &i.to_string()), ("pad", &padding)], i as f64);
                }
                Ok(vec![f.build()])
            }
            "log-flood" => {
                let until = std::time::Instant::now() + std::time::Duration::from_millis(config.millis);
                let mut n: u64 = 0;
                while std::time::Instant::now() < until {
                    wasmon_sdk::log::warn(&format!("flood line {n} {}", "y".repeat(1000)));
                    println!("stdout flood {n}");
                    eprintln!("stderr flood {n}");
                    n += 1;
                }
                let mut f = Family::gauge("hostile_flood_lines", "Lines the plugin tried to log.");
                f.sample(&[], n as f64);
                Ok(vec![f.build()])
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "read-file" => match wasmon_sdk::fs::read(&config.path) {
                Ok(bytes) => {
                    let mut f = Family::gauge("hostile_read_bytes", "Bytes read.");
                    f.sample(&[], bytes.len() as f64);
                    Ok(vec![f.build()])
                }
                Err(e) => Err(PluginError::permission_denied(format!("{}: {e}", config.path))),
            },
            "list-dir" => match wasmon_sdk::fs::read_dir(&config.path) {
                Ok(entries) => {
                    let mut f = Family::gauge("hostile_dir_entries", "Entries listed.");
                    f.sample(&[], entries.len() as f64);
                    Ok(vec![f.build()])
                }
                Err(e) => Err(PluginError::permission_denied(format!("{}: {e}", config.path))),
            },
            "std-read" => match std::fs::read(&config.path) {
                Ok(bytes) => {
                    let mut f = Family::gauge("hostile_read_bytes", "Bytes read.");
                    f.sample(&[], bytes.len() as f64);
                    Ok(vec![f.build()])
                }
                Err(e) => Err(PluginError::permission_denied(format!("{}: {e}", config.path))),
            },
            "connect" => match std::net::TcpStream::connect(config.address.as_str()) {
                Ok(_) => Ok(vec![ok_family("hostile_connected")]),
                Err(e) => Err(PluginError::permission_denied(format!("connect {}: {e}", config.address))),
            },
            "connect-read" => {
                use std::io::Read;
                let mut stream = std::net::TcpStream::connect(config.address.as_str())
                    .map_err(|e| PluginError::unavailable(format!("connect {}: {e}", config.address)))?;
                let mut received = Vec::new();
                stream
                    .read_to_end(&mut received)
                    .map_err(|e| PluginError::unavailable(format!("read {}: {e}", config.address)))?;
                let mut f = Family::gauge("hostile_received_bytes", "Bytes read before the peer closed.");
                f.sample(&[], received.len() as f64);
                Ok(vec![f.build()])
            }
            "http-get" => {
                let mut request = wasmon_sdk::http::Request::get(&config.url);
                if let Some(value) = &config.authorization {
                    request = request.header("authorization", value);
                }
                let response =
                    request.send().map_err(|e| PluginError::unavailable(format!("GET {}: {e}", config.url)))?;
                let mut f = Family::gauge("hostile_http_status", "Status of the response; body size as a label.");
                let body = String::from_utf8_lossy(&response.body).into_owned();
                f.sample(&[("body", body.trim())], f64::from(response.status));
                Ok(vec![f.build()])
            }
            "secret" => {
                let secret = wasmon_sdk::secrets::get("password").unwrap_or_else(|| "<none>".into());
                wasmon_sdk::log::warn(&format!("the password is {secret}"));
                println!("stdout: the password is {secret}");
                eprintln!("stderr: the password is {secret}");
                Err(PluginError::internal(format!("refusing to work; the password is {secret}")))
            }
            "env" => {
                let mut f = Family::gauge("hostile_env_vars", "Environment variables visible.");
                f.sample(&[("what", "env")], std::env::vars().count() as f64);
                f.sample(&[("what", "args")], std::env::args().count() as f64);
                Ok(vec![f.build()])
            }
            "bad-output" => {
                let mut good = Family::gauge("hostile_good", "Valid.");
                good.sample(&[("a", "1")], 1.0);
                good.sample(&[("a", "1")], 2.0); // duplicate series
                good.sample(&[("bad-label", "1")], 3.0);
                let mut bad_name = Family::gauge("hostile bad name", "Invalid name.");
                bad_name.sample(&[], 1.0);
                let mut mismatch =
                    Family::new("hostile_mismatch", "Counter value in a gauge family.", MetricKind::Gauge).build();
                mismatch.metrics.push(wasmon_sdk::Metric {
                    labels: vec![],
                    value: wasmon_sdk::MetricValue::Counter(1.0),
                    timestamp_ms: None,
                });
                Ok(vec![good.build(), bad_name.build(), mismatch])
            }
            other => Err(PluginError::config(format!("unknown mode {other:?}"))),
        }
    }
}

wasmon_sdk::export!(Hostile);
