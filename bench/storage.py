#!/usr/bin/env python3
"""Store and query side by side: wasmon and Debian's Prometheus 2.42, both
started on loopback with a remote-write receiver, get the same samples
pushed in the same requests; then every query of
host/tests/promql_compat/queries.txt runs against both as a range query.

Prints ingestion (samples/s over the pushes, CPU seconds of each server),
query latency (median and total over the suite) and bytes on disk after a
clean shutdown, with ratios wasmon / Prometheus.

usage: bench/storage.py [--series 10000] [--points 120] [--wasmon target/release/wasmon]
"""
import argparse, json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, time
import urllib.error, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMETHEUS = "/usr/bin/prometheus"
STEP_MS = 15_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def snappy_literal(data):
    """Snappy block format with literal chunks only: valid, uncompressed."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


def requests(series, points, start_ms, per_request=500):
    """Bodies of remote-write requests: every series, all its points, in
    groups of `per_request` series. Counters and gauges, 15 s apart."""
    bodies = []
    for first in range(0, series, per_request):
        ts = bytearray()
        for s in range(first, min(series, first + per_request)):
            labels = [("__name__", f"bench_metric_{s % 100}"), ("instance", f"host{s // 100}:9100"), ("job", "bench")]
            lab = b"".join(field(1, field(1, k.encode()) + field(2, v.encode())) for k, v in sorted(labels))
            samples = bytearray()
            for i in range(points):
                v = float(i * (s % 7)) if s % 2 == 0 else 1000.0 + (i // 10) * 0.5
                samples += field(2, b"\x09" + struct.pack("<d", v) + b"\x10" + varint(start_ms + i * STEP_MS))
            ts += field(1, lab + bytes(samples))
        bodies.append(snappy_literal(bytes(ts)))
    return bodies


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0"})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def get(url):
    # Some suite queries are errors on purpose (400/422): still timed.
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url, proc, name):
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited early")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{name} not ready")


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def start_pair(tmp, wasmon, extra_config=""):
    """Start Prometheus and wasmon on free loopback ports, each with a
    remote-write receiver and `extra_config` (e.g. `rule_files: [...]`).
    Returns the two processes and their base URLs, once both are ready."""
    pp, wp = free_port(), free_port()
    with open(f"{tmp}/prometheus.yml", "w") as f:
        f.write(f"global: {{}}\n{extra_config}")
    with open(f"{tmp}/wasmon.yaml", "w") as f:
        f.write(f"web: {{enable_remote_write_receiver: true}}\n{extra_config}")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/prom",
                             f"--web.listen-address=127.0.0.1:{pp}", "--web.enable-remote-write-receiver"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wm = subprocess.Popen([wasmon, "run", "--config", f"{tmp}/wasmon.yaml", "--web.listen-address",
                           f"127.0.0.1:{wp}", "--storage.tsdb.path", f"{tmp}/wasmon"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=dict(os.environ, WASMON_LOG="warn", WASMON_CACHE_DIR=f"{tmp}/cache"))
    try:
        wait_ready(f"http://127.0.0.1:{pp}/-/ready", prom, "prometheus")
        wait_ready(f"http://127.0.0.1:{wp}/-/ready", wm, "wasmon")
    except BaseException:
        stop(prom, wm)
        raise
    return prom, wm, f"http://127.0.0.1:{pp}", f"http://127.0.0.1:{wp}"


def stop(*procs):
    """SIGTERM, then SIGKILL after a minute: by PID, as everything here."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=120)
    ap.add_argument("--wasmon", default=os.path.join(ROOT, "target/release/wasmon"))
    args = ap.parse_args()
    if not os.path.exists(PROMETHEUS):
        sys.exit("install the Debian package prometheus (bench/run.sh does)")
    tmp = tempfile.mkdtemp(prefix="wasmon-bench-storage-")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp):
    prom, wm, prom_url, wasmon_url = start_pair(tmp, args.wasmon)
    try:
        now = int(time.time() * 1000)
        start = (now - args.points * STEP_MS - 60_000) // 60_000 * 60_000
        bodies = requests(args.series, args.points, start)
        samples = args.series * args.points
        sides = {"prometheus": (prom_url, prom.pid), "wasmon": (wasmon_url, wm.pid)}
        ingest = {}
        for name, (base, pid) in sides.items():
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            for body in bodies:
                post(f"{base}/api/v1/write", body)
            ingest[name] = (samples / (time.perf_counter() - t0), cpu_seconds(pid) - cpu0)

        queries = [l.strip() for l in open(os.path.join(ROOT, "host/tests/promql_compat/queries.txt"))
                   if l.strip() and not l.startswith("#")]
        mid = (start + args.points * STEP_MS // 2) / 1000
        end = (start + (args.points - 1) * STEP_MS) / 1000
        bench_queries = [
            "sum by (instance) (rate(bench_metric_2[5m]))", "count(bench_metric_3)",
            "topk(5, bench_metric_4)", "avg_over_time(bench_metric_1[10m])",
            'sum(rate({job="bench"}[5m]))', "quantile(0.9, bench_metric_5)",
        ]
        latencies = {name: [] for name in sides}
        for q in bench_queries + [q.replace("$MID", str(mid)) for q in queries]:
            params = urllib.parse.urlencode({"query": q, "start": start / 1000 + 300, "end": end, "step": 60})
            for name, (base, _) in sides.items():
                t0 = time.perf_counter()
                get(f"{base}/api/v1/query_range?{params}")
                latencies[name].append(time.perf_counter() - t0)
    finally:
        stop(prom, wm)
    disk = {"prometheus": du(f"{tmp}/prom"), "wasmon": du(f"{tmp}/wasmon")}

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    print(f"{args.series} series x {args.points} samples = {samples} samples pushed in {len(bodies)} requests; "
          f"{len(latencies['wasmon'])} range queries")
    print(f"{'measure':<34} {'prometheus':>14} {'wasmon':>14} {'ratio':>8}")
    rows = [
        ("ingest samples/s (higher is better)", ingest["prometheus"][0], ingest["wasmon"][0]),
        ("ingest CPU seconds", ingest["prometheus"][1], ingest["wasmon"][1]),
        ("query median latency ms", median(latencies["prometheus"]) * 1e3, median(latencies["wasmon"]) * 1e3),
        ("query total seconds", sum(latencies["prometheus"]), sum(latencies["wasmon"])),
        ("data dir bytes after shutdown", disk["prometheus"], disk["wasmon"]),
    ]
    for label, p, w in rows:
        print(f"{label:<34} {p:>14.2f} {w:>14.2f} {w / p if p else float('nan'):>7.2f}x")


if __name__ == "__main__":
    main()
