#!/usr/bin/env python3
"""wasmon's node plugin against Debian's prometheus-node-exporter, side by side.

Both run at once on loopback. Every request makes each of them collect from
/proc and /sys and render the exposition text: node_exporter's GET /metrics,
and wasmon's GET /probe?job=node (a fresh plugin instance and one collect
call per request). Requests alternate between the two so both see the same
machine conditions. Printed: CPU seconds per scrape, median and p90 latency,
RSS, each with the ratio wasmon / node_exporter, plus the cost of one collect
call across the component boundary per series.

Usage: bench/run.sh (builds release binaries first), or
       python3 bench/node.py [--scrapes N]
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WASMON = os.path.join(ROOT, "target/release/wasmon")
PLUGINS = os.path.join(ROOT, "target/wasm32-wasip2/release")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get(url):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - start, body


def wait_for(url, proc, what):
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited early")
        try:
            get(url)
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{what} not ready at {url}")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def boundary_cost():
    """Median collect time of the hostile plugin's huge-result mode per series."""
    rows = []
    hostile = os.path.join(PLUGINS, "wasmon_hostile.wasm")
    for series in (1_000, 10_000, 100_000):
        out = subprocess.run(
            [WASMON, "plugin", "test", hostile, "--config", json.dumps({"mode": "huge-result", "series": series}),
             "--memory", "1GiB", "--repeat", "10"],
            capture_output=True, text=True, check=True)
        m = re.search(r"collect median ([0-9.]+) ms", out.stderr)
        median_ms = float(m.group(1))
        rows.append((series, median_ms, median_ms * 1000 / series))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=100)
    args = parser.parse_args()
    for path in (WASMON, NODE_EXPORTER, os.path.join(PLUGINS, "wasmon_node.wasm")):
        if not os.path.exists(path):
            sys.exit(f"{path} missing: run bench/run.sh (it builds and installs what is needed)")

    tmp = tempfile.mkdtemp(prefix="wasmon-bench-")
    ne_port, wm_port = free_port(), free_port()
    config = os.path.join(tmp, "wasmon.yaml")
    with open(config, "w") as f:
        # A long interval: the scheduler's own scrapes stay out of the measurement.
        f.write("global: {scrape_interval: 1h, scrape_timeout: 10s}\n"
                "scrape_configs:\n  - job_name: node\n    plugin: node\n"
                "    static_configs: [{targets: [localhost]}]\n"
                "    capabilities: {files: default, fs_stats: true, clock: true}\n")
    env = dict(os.environ, WASMON_CACHE_DIR=os.path.join(tmp, "cache"), WASMON_LOG="warn")
    ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wm = subprocess.Popen([WASMON, "run", "--config", config, "--web.listen-address", f"127.0.0.1:{wm_port}",
                           "--storage.tsdb.path", os.path.join(tmp, "data")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        ne_url = f"http://127.0.0.1:{ne_port}/metrics"
        wm_url = f"http://127.0.0.1:{wm_port}/probe?job=node"
        wait_for(ne_url, ne, "node_exporter")
        wait_for(f"http://127.0.0.1:{wm_port}/-/ready", wm, "wasmon")
        for _ in range(5):  # warm up both
            get(ne_url)
            get(wm_url)
        lat = {"ne": [], "wm": []}
        cpu0 = {"ne": cpu_seconds(ne.pid), "wm": cpu_seconds(wm.pid)}
        series = {}
        for _ in range(args.scrapes):
            for key, url in (("ne", ne_url), ("wm", wm_url)):
                seconds, body = get(url)
                lat[key].append(seconds)
                series[key] = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        cpu = {k: (cpu_seconds(p.pid) - cpu0[k]) / args.scrapes for k, p in (("ne", ne), ("wm", wm))}
        rss = {"ne": rss_kib(ne.pid), "wm": rss_kib(wm.pid)}
    finally:
        for p in (ne, wm):
            p.terminate()
            p.wait()

    def row(name, ne_v, wm_v, fmt, target):
        ratio = wm_v / ne_v if ne_v else float("inf")
        verdict = "" if target is None else ("meets" if ratio <= target else "MISSES") + f" target <= {target}x"
        print(f"| {name:<22} | {fmt.format(ne_v):>14} | {fmt.format(wm_v):>14} | {ratio:>6.2f}x | {verdict}")

    print(f"\nnode plugin vs prometheus-node-exporter, {args.scrapes} interleaved scrapes each, "
          f"series: node_exporter {series['ne']}, wasmon {series['wm']}")
    print(f"| {'measure':<22} | {'node_exporter':>14} | {'wasmon':>14} | ratio   |")
    row("CPU seconds / scrape", cpu["ne"], cpu["wm"], "{:.5f}", 0.5)
    row("median latency (ms)", statistics.median(lat["ne"]) * 1000, statistics.median(lat["wm"]) * 1000, "{:.2f}", 1.0)
    row("p90 latency (ms)", percentile(lat["ne"], 0.9) * 1000, percentile(lat["wm"], 0.9) * 1000, "{:.2f}", None)
    row("RSS (KiB)", rss["ne"], rss["wm"], "{:.0f}", 1.5)
    print("\ncollect call across the component boundary (hostile plugin, huge-result mode; "
          "includes building the series inside the guest):")
    print("| series  | median ms | µs / series |")
    for n, ms, per in boundary_cost():
        print(f"| {n:>7} | {ms:>9.2f} | {per:>11.3f} |")


if __name__ == "__main__":
    main()
