//! `entropy`: the kernel entropy pool from `/proc/sys/kernel/random`.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, gauge, parse_f64, read_value};
use wasmon_sdk::Family;

fn read_number(path: &str) -> CollectResult<f64> {
    let text = read_value(path)?;
    parse_f64(&text).ok_or_else(|| CollectError::new(format!("{path}: not a number: {text:?}")))
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut available = gauge("node_entropy_available_bits", "Bits of available entropy.");
    available.sample(&[], read_number("/proc/sys/kernel/random/entropy_avail")?);
    let mut pool = gauge("node_entropy_pool_size_bits", "Bits of entropy pool.");
    pool.sample(&[], read_number("/proc/sys/kernel/random/poolsize")?);
    Ok(vec![available, pool])
}
