#!/usr/bin/env bash
# Build release binaries and run the side-by-side benchmarks: the node plugin
# against prometheus-node-exporter, then the nginx, mysql and etcd plugins
# against their real exporters.
source "$(dirname "$0")/../scripts/lib.sh"
ensure_wasm_target
ensure_apt_packages prometheus-node-exporter nginx prometheus-nginx-exporter mariadb-server \
    prometheus-mysqld-exporter etcd-server openssl curl prometheus prometheus-alertmanager
build_plugins
cargo build --locked --release -p wasmon -p wasmon-test-servers
python3 bench/node.py "$@"
python3 bench/storage.py
python3 bench/rules.py
"${CARGO_TARGET_DIR:-target}"/release/bench-services
