//! `timex`: kernel clock discipline state. `adjtimex(2)` is a system call
//! WASI lacks, so the host makes it (`wasmon_sdk::system::clock_state`,
//! capability `clock`) and hands over values already in seconds and ratios.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, counter, gauge};
use wasmon_sdk::Family;
use wasmon_sdk::system::ClockState;

pub fn families(c: &ClockState) -> Vec<Family> {
    let one = |family: Family, value: f64| {
        let mut family = family;
        family.sample(&[], value);
        family
    };
    vec![
        one(
            gauge("node_timex_offset_seconds", "Time offset in between local system and reference clock."),
            c.offset_seconds,
        ),
        one(
            gauge("node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment."),
            c.frequency_adjustment_ratio,
        ),
        one(gauge("node_timex_maxerror_seconds", "Maximum error in seconds."), c.max_error_seconds),
        one(gauge("node_timex_estimated_error_seconds", "Estimated error in seconds."), c.estimated_error_seconds),
        one(gauge("node_timex_status", "Value of the status array bits."), c.status as f64),
        one(gauge("node_timex_loop_time_constant", "Phase-locked loop time constant."), c.loop_time_constant as f64),
        one(gauge("node_timex_tick_seconds", "Seconds between clock ticks."), c.tick_seconds),
        one(gauge("node_timex_pps_frequency_hertz", "Pulse per second frequency."), c.pps_frequency_hertz),
        one(gauge("node_timex_pps_jitter_seconds", "Pulse per second jitter."), c.pps_jitter_seconds),
        one(gauge("node_timex_pps_shift_seconds", "Pulse per second interval duration."), c.pps_shift_seconds),
        one(
            gauge("node_timex_pps_stability_hertz", "Pulse per second stability, average of recent frequency changes."),
            c.pps_stability_hertz,
        ),
        one(
            counter("node_timex_pps_jitter_total", "Pulse per second count of jitter limit exceeded events."),
            c.pps_jitter_total as f64,
        ),
        one(
            counter("node_timex_pps_calibration_total", "Pulse per second count of calibration intervals."),
            c.pps_calibration_total as f64,
        ),
        one(
            counter("node_timex_pps_error_total", "Pulse per second count of calibration errors."),
            c.pps_error_total as f64,
        ),
        one(
            counter(
                "node_timex_pps_stability_exceeded_total",
                "Pulse per second count of stability limit exceeded events.",
            ),
            c.pps_stability_exceeded_total as f64,
        ),
        one(
            gauge("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset."),
            c.tai_offset_seconds as f64,
        ),
        one(
            gauge("node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no)."),
            if c.synchronised { 1.0 } else { 0.0 },
        ),
    ]
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    // Outside the host (native tests) or without the `clock` capability the
    // call fails; the collector then reports failure and nothing else.
    let state = wasmon_sdk::system::clock_state().map_err(CollectError::unavailable)?;
    Ok(families(&state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_seventeen_families() {
        let state = ClockState {
            offset_seconds: 0.0,
            frequency_adjustment_ratio: 1.0,
            max_error_seconds: 16.0,
            estimated_error_seconds: 16.0,
            status: 64,
            loop_time_constant: 2,
            tick_seconds: 0.01,
            pps_frequency_hertz: 0.0,
            pps_jitter_seconds: 0.0,
            pps_shift_seconds: 0.0,
            pps_stability_hertz: 0.0,
            pps_jitter_total: 0,
            pps_calibration_total: 0,
            pps_error_total: 0,
            pps_stability_exceeded_total: 0,
            tai_offset_seconds: 0,
            synchronised: false,
        };
        let families: Vec<_> = families(&state).into_iter().map(Family::build).collect();
        assert_eq!(families.len(), 17);
        let status = families.iter().find(|f| f.name == "node_timex_status").expect("status");
        assert_eq!(status.metrics[0].value, wasmon_sdk::MetricValue::Gauge(64.0));
    }
}
