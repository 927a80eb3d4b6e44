#!/usr/bin/env bash
# Build release binaries and run the side-by-side benchmarks.
source "$(dirname "$0")/../scripts/lib.sh"
ensure_wasm_target
ensure_apt_packages prometheus-node-exporter
build_plugins
cargo build --locked --release -p wasmon
python3 bench/node.py "$@"
