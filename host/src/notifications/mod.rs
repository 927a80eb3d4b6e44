//! Where alerts go once rules fire: Alertmanagers' v2 API, and the built-in
//! notifier (crate `wasmon-notify`) for setups without one.

pub mod alertmanager;
