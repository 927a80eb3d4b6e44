# Shared setup for scripts/run.sh and scripts/test.sh. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Plugins every command needs, built once into the shared target dir.
PLUGIN_PACKAGES=(-p wasmon-node -p wasmon-nginx -p wasmon-mysql -p wasmon-etcd -p wasmon-kube-state -p wasmon-example-plugin -p wasmon-hostile -p wasmon-hostile-logs -p wasmon-logs-json -p wasmon-logs-logfmt -p wasmon-logs-regex -p wasmon-logs-nginx -p wasmon-logs-redact)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_wasm_target() {
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        log "rustup target add wasm32-wasip2"
        rustup target add wasm32-wasip2
    fi
}

# Install Debian packages that are missing, once. Services are not started
# (tests start their own on loopback).
ensure_apt_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt-get install ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Keep package scripts from starting the services on all interfaces.
    local added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ -n "$added_policy" ] && $sudo rm -f /usr/sbin/policy-rc.d
    return 0
}

build_plugins() {
    log "building plugins (wasm32-wasip2, release)"
    cargo build --locked --release --target wasm32-wasip2 "${PLUGIN_PACKAGES[@]}"
}
