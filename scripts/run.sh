#!/usr/bin/env bash
# Set everything up and run the agent on its embedded default: the node plugin
# monitoring this machine, /metrics on http://127.0.0.1:9101/metrics.
# Extra arguments go to `wasmon run` (e.g. --config FILE).
source "$(dirname "$0")/lib.sh"
ensure_wasm_target
build_plugins
log "building wasmon (release)"
cargo build --locked --release -p wasmon
exec target/release/wasmon run "$@"
