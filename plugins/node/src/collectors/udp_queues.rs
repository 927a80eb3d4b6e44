//! `udp_queues`: memory queued in UDP sockets, summed from `/proc/net/udp`
//! and `/proc/net/udp6`.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, gauge, parse_hex_u64, read_text};
use wasmon_sdk::Family;

/// Sum of the `tx_queue:rx_queue` column (hex) over all sockets.
pub fn sum_queues(text: &str, source: &str, skipped: &mut Skipped) -> (u64, u64) {
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1) {
        let queues = line.split_whitespace().nth(4).and_then(|q| q.split_once(':'));
        match queues.and_then(|(t, r)| Some((parse_hex_u64(t)?, parse_hex_u64(r)?))) {
            Some((t, r)) => {
                tx = tx.saturating_add(t);
                rx = rx.saturating_add(r);
            }
            None if line.trim().is_empty() => {}
            None => skipped.line(source, line),
        }
    }
    (tx, rx)
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut queues = gauge("node_udp_queues", "Number of allocated memory in the kernel for UDP datagrams in bytes.");
    let mut found = false;
    for (ip, path) in [("v4", "/proc/net/udp"), ("v6", "/proc/net/udp6")] {
        match read_text(path) {
            Ok(text) => {
                found = true;
                let (tx, rx) = sum_queues(&text, path, skipped);
                queues.sample(&[("queue", "tx"), ("ip", ip)], tx as f64);
                queues.sample(&[("queue", "rx"), ("ip", ip)], rx as f64);
            }
            Err(e) if e.unavailable => {}
            Err(e) => return Err(e),
        }
    }
    if !found {
        return Err(CollectError::unavailable("neither /proc/net/udp nor /proc/net/udp6 exists"));
    }
    Ok(vec![queues])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_hex_queues() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  226: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000 0\n\
  227: 0100007F:0035 00000000:0000 07 00000010:00000200 00:00000000 00000000     0        0 1 2 0000 0\n";
        assert_eq!(sum_queues(text, "/proc/net/udp", &mut Skipped::default()), (16, 512));
    }
}
