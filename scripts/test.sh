#!/usr/bin/env bash
# Set up and run the whole test suite: unit, integration and end-to-end tests
# against real servers, after clippy with warnings as errors.
source "$(dirname "$0")/lib.sh"
# A test run builds everything once: incremental caches would only take disk
# (2.4 GB of the target dir), and CI's disk is not large.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
ensure_wasm_target
ensure_apt_packages prometheus-node-exporter nginx prometheus-nginx-exporter mariadb-server prometheus-mysqld-exporter etcd-server openssl prometheus prometheus-alertmanager
# kubectl (for `kubectl kustomize` in host/tests/deploy.rs) on its own: not every
# machine's package sources have it, and it must not hold up the others.
ensure_apt_packages kubectl || true
command -v kubectl >/dev/null || log "kubectl is not installed and not in this machine's package sources: host/tests/deploy.rs will fail"
build_plugins
log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked --target wasm32-wasip2 "${PLUGIN_PACKAGES[@]}" -p wasmon-sdk --features wasmon-sdk/bump-allocator -- -D warnings
# Tests last, so the run ends with the test runner's summary.
log "cargo test --workspace"
cargo test --locked --workspace
