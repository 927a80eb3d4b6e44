//! The built-in notifier: Alertmanager's routing, grouping, inhibition and
//! silences for setups without an Alertmanager, delivering to webhooks.
