#!/usr/bin/env python3
"""Rule evaluation side by side: wasmon and Debian's Prometheus 2.42 get the
same 100,000 series pushed by remote write and the same 1,000 rules (10
groups of 100: recording rules aggregating rates and alerting rules with
`for`), then both evaluate for a while. Per group round, the evaluation time
each reports in /api/v1/rules (`evaluationTime`, the same field in both) is
collected; printed are the median total per round and the ratio.

usage: bench/rules.py [--series 100000] [--rules 1000] [--rounds 6] [--wasmon target/release/wasmon]
"""
import argparse, json, os, shutil, struct, sys, tempfile, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storage import field, varint, snappy_literal, post, start_pair, stop  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = 100       # metric names; series are spread over them
STEP_MS = 15_000
POINTS = 40         # 10 minutes of history, so rate()[5m] has data


def bodies(series, start_ms):
    out = []
    per_request = 1000
    for first in range(0, series, per_request):
        ts = bytearray()
        for s in range(first, min(series, first + per_request)):
            labels = sorted([("__name__", f"app_requests_total_{s % METRICS}"), ("instance", f"pod{s // METRICS % 100}"),
                             ("job", f"svc{s // (METRICS * 100)}"), ("code", str(200 + s % 5))])
            lab = b"".join(field(1, field(1, k.encode()) + field(2, v.encode())) for k, v in labels)
            samples = bytearray()
            for i in range(POINTS):
                samples += field(2, b"\x09" + struct.pack("<d", float(i * (1 + s % 3))) + b"\x10" +
                                 varint(start_ms + i * STEP_MS))
            ts += field(1, lab + bytes(samples))
        out.append(snappy_literal(bytes(ts)))
    return out


def rule_file(rules, path):
    groups = 10
    per_group = rules // groups
    lines = ["groups:"]
    n = 0
    for g in range(groups):
        lines += [f"  - name: bench{g}", "    interval: 10s", "    rules:"]
        for r in range(per_group):
            m = n % METRICS
            if r % 2 == 0:
                lines += [f"      - record: job_code:app_requests:rate5m_{n}",
                          f"        expr: sum by (job, code) (rate(app_requests_total_{m}[5m]))"]
            else:
                lines += [f"      - alert: HighRate{n}",
                          f"        expr: sum by (job) (rate(app_requests_total_{m}[5m])) > {0.5 + (n % 7)}",
                          "        for: 1m",
                          "        labels: {severity: warning}",
                          "        annotations: {summary: 'rate {{ $value }} on {{ $labels.job }}'}"]
            n += 1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def group_times(base):
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=60) as r:
        data = json.loads(r.read())
    return {g["name"]: (g["lastEvaluation"], g["evaluationTime"]) for g in data["data"]["groups"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--wasmon", default=os.path.join(ROOT, "target/release/wasmon"))
    args = ap.parse_args()
    if not os.path.exists(PROMETHEUS):
        sys.exit("install the Debian package prometheus (bench/run.sh does)")
    tmp = tempfile.mkdtemp(prefix="wasmon-bench-rules-")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp):
    rule_file(args.rules, f"{tmp}/rules.yaml")
    prom, wm, prom_url, wasmon_url = start_pair(tmp, args.wasmon, f"rule_files: [{tmp}/rules.yaml]\n")
    sides = {"prometheus": prom_url, "wasmon": wasmon_url}
    try:
        now = int(time.time() * 1000)
        start = now - POINTS * STEP_MS
        reqs = bodies(args.series, start)
        for base in sides.values():
            for body in reqs:
                post(f"{base}/api/v1/write", body)
        # Collect one evaluationTime per group per round (a new lastEvaluation).
        seen = {name: {} for name in sides}
        deadline = time.time() + 10 * (args.rounds + 3)
        while time.time() < deadline and min(
                min((len(v) for v in seen[n].values()), default=0) for n in sides) < args.rounds + 1:
            for name, base in sides.items():
                for group, (last, took) in group_times(base).items():
                    if last.startswith("0001"):
                        continue
                    seen[name].setdefault(group, {})[last] = took
            time.sleep(1)
    finally:
        stop(prom, wm)

    def rounds(per_group):
        # Drop each group's first round (cold caches), then sum per round index.
        series = [sorted(v.items())[1:] for v in per_group.values()]
        n = min((len(s) for s in series), default=0)
        return [sum(s[i][1] for s in series) for i in range(n)]

    result = {name: rounds(seen[name]) for name in sides}
    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else float("nan")
    p, w = median(result["prometheus"]), median(result["wasmon"])
    print(f"{args.rules} rules in 10 groups over {args.series} series; "
          f"rounds measured: prometheus {len(result['prometheus'])}, wasmon {len(result['wasmon'])}")
    print(f"{'measure':<40} {'prometheus':>12} {'wasmon':>12} {'ratio':>8}")
    print(f"{'evaluation seconds per round (median)':<40} {p:>12.4f} {w:>12.4f} {w / p if p else float('nan'):>7.2f}x")


if __name__ == "__main__":
    main()
