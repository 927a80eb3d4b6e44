//! A hostile log processor for isolation tests. A batch holding a record
//! whose body contains `trigger` (every batch when `trigger` is empty) makes
//! it misbehave as `mode` says; other batches pass with the attribute
//! `<attribute>=<instance's batch count>` (`attribute` defaults to `hostile.seen`).
//!
//! | mode | what it does on a triggered batch |
//! |---|---|
//! | `ok` | nothing special |
//! | `loop` | spins forever |
//! | `panic` | panics (a trap) |
//! | `memory-bomb` | allocates until something stops it |
//! | `error` | returns a plugin error |
//! | `bad-source` | returns a record naming a source the batch does not have |

use serde::Deserialize;
use wasmon_sdk::{Family, MetricFamily, PluginError, PluginInfo};
use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    #[serde(default)]
    trigger: String,
    /// The attribute set on records of batches passed.
    #[serde(default = "default_attribute")]
    attribute: String,
}

fn default_attribute() -> String {
    "hostile.seen".into()
}

struct Hostile {
    config: Config,
    batches: u64,
}

impl LogProcessor for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new("hostile-logs", "0.1.0", "Misbehaves on purpose, for isolation tests.")
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        let c: Config = wasmon_sdk::config::parse(config)?;
        match c.mode.as_str() {
            "ok" | "loop" | "panic" | "memory-bomb" | "error" | "bad-source" => Ok(()),
            other => Err(PluginError::config(format!("mode: unknown mode {other:?}"))),
        }
    }

    fn init(config: &str) -> Result<Self, PluginError> {
        Ok(Self { config: wasmon_sdk::config::parse(config)?, batches: 0 })
    }

    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        self.batches += 1;
        let trigger = self.config.trigger.as_bytes();
        let triggered =
            trigger.is_empty() || batch.records.iter().any(|r| r.body.windows(trigger.len()).any(|w| w == trigger));
        if triggered {
            match self.config.mode.as_str() {
                "loop" => {
                    let mut x: u64 = 0;
                    loop {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                "panic" => panic!("hostile log processor panics on purpose"),
                "memory-bomb" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "error" => return Err(PluginError::invalid_data("hostile log processor refuses this batch")),
                "bad-source" => {
                    let mut records = batch.records;
                    if let Some(r) = records.first_mut() {
                        r.source = batch.sources.len() as u32 + 7;
                    }
                    return Ok(records);
                }
                _ => {}
            }
        }
        let mut records = batch.records;
        for r in &mut records {
            r.set_attribute(self.config.attribute.clone(), self.batches.to_string());
        }
        Ok(records)
    }

    fn metrics(&mut self) -> Vec<MetricFamily> {
        let mut f = Family::counter("hostile_logs_batches_total", "Batches this instance processed.");
        f.sample(&[], self.batches as f64);
        vec![f.build()]
    }
}

wasmon_sdk_logs::export_log_processor!(Hostile);
