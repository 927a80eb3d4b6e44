#!/usr/bin/env python3
"""Instructions a log processor's guest code executes, by guest function.

Runs the `logs_wasm` bench binary under valgrind's callgrind on a small input
(2 MiB, one round) with wasmtime's perf map on, then names the JIT-compiled
code callgrind saw by the map. Instruction counts are the same on every run
of the same binary and component, whatever else the machine is doing, so two
builds of a plugin can be compared by one run each, where timings on this
machine drift by 1.5x within minutes. (They count instructions, not cycles:
cache misses and slow instructions such as divisions do not show.)

Also prints the host's native JSON step (`JsonBodyProcessor::process`,
inclusive) for the same input, the reference the ratio is taken against.

Usage: python3 bench/guest_instructions.py [--wasm PATH] [--top N]
  (build first: cargo build --release --target wasm32-wasip2 -p wasmon-logs-json
   and cargo bench -p wasmon --bench logs_wasm --no-run)
"""
import argparse
import bisect
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
PLUGIN = os.path.join(TARGET, "wasm32-wasip2/release/wasmon_logs_json.wasm")


def bench_binary():
    found = sorted(glob.glob(os.path.join(TARGET, "release/deps/logs_wasm-*")), key=os.path.getmtime)
    found = [f for f in found if os.access(f, os.X_OK) and not f.endswith(".d")]
    if not found:
        sys.exit("no logs_wasm bench binary: cargo bench -p wasmon --bench logs_wasm --no-run")
    return found[-1]


def perf_map(pid):
    path = f"/tmp/perf-{pid}.map"
    entries = []
    with open(path) as f:
        for line in f:
            start, size, name = line.split(" ", 2)
            entries.append((int(start, 16), int(size, 16), re.sub(r"::h[0-9a-f]{16}$", "", name.strip())))
    os.remove(path)
    entries.sort()
    return entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wasm", help="component to profile instead of the built one")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--host", type=int, default=0, metavar="N",
                    help="also print the N host functions with the most instructions of their own "
                         "(wasmtime's libcalls and the lifting and lowering of the call's arguments show there)")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        plugin_saved = None
        if args.wasm:
            plugin_saved = os.path.join(tmp, "saved.wasm")
            shutil.copy(PLUGIN, plugin_saved)
            shutil.copy(args.wasm, PLUGIN)
        out = os.path.join(tmp, "callgrind.out")
        try:
            proc = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
                 bench_binary(), "--mib", "2", "--rounds", "1"],
                env={**os.environ, "WASMON_WASM_PERFMAP": "1"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if proc.wait() != 0:
                sys.exit(f"the bench under valgrind exited with {proc.returncode}")
        finally:
            if plugin_saved:
                shutil.copy(plugin_saved, PLUGIN)
        entries = perf_map(proc.pid)
        starts = [e[0] for e in entries]
        flat = subprocess.run(["callgrind_annotate", "--threshold=100", out], capture_output=True, text=True).stdout
        inclusive = subprocess.run(["callgrind_annotate", "--inclusive=yes", out],
                                   capture_output=True, text=True).stdout
    by_function = {}
    host = []
    for line in flat.splitlines():
        m = re.match(r"\s*([\d,]+) .*\?\?\?:0x([0-9a-f]+)", line)
        if not m:
            h = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)", line)
            if h and not h.group(2).startswith("PROGRAM TOTALS"):
                host.append((int(h.group(1).replace(",", "")), h.group(2)))
            continue
        count, address = int(m.group(1).replace(",", "")), int(m.group(2), 16)
        i = bisect.bisect_right(starts, address) - 1
        inside = i >= 0 and address < entries[i][0] + entries[i][1]
        name = re.sub(r"^wasm\[0\]::function\[\d+\]::", "", entries[i][2]) if inside else "(unnamed JIT code)"
        by_function[name] = by_function.get(name, 0) + count
    total = sum(by_function.values())
    native = re.search(r"([\d,]+) .*JsonBodyProcessor as wasmon_logs::processor::Processor>::process", inclusive)
    print(f"guest code: {total:,} instructions (2 MiB of CRI lines, one process call per 2000)")
    if native:
        print(f"native JSON step: {native.group(1)} instructions (inclusive), the same input")
    for name, count in sorted(by_function.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{count:>14,} {100 * count / max(total, 1):5.1f}%  {name[:110]}")
    if args.host:
        print("host functions (own instructions, whole run: the native and the wasm pipeline):")
        for count, name in sorted(host, reverse=True)[: args.host]:
            print(f"{count:>14,}  {name[:130]}")


if __name__ == "__main__":
    main()
