#!/usr/bin/env python3
"""Hypnos vs Prometheus 2.42 vs VictoriaMetrics on the same blocks, one run, one machine.

For every dataset (source-size-days, e.g. gen-10k-1d) this script
  1. builds TSDB blocks once (cached under --work): `gen` with `hypnos tools generate`
     (the seed's demo-app metrics), `om` with promtool's `create-blocks-from openmetrics`
     from an OpenMetrics file shaped like Prometheus's promql/bench_test.go (a_X, b_X, h_X);
  2. loads the same blocks into Prometheus (hard links in its data dir), a Hypnos FILESYSTEM
     bucket (store gateway + querier) and VictoriaMetrics (vmctl prometheus --prom-snapshot);
  3. starts the three systems, timing start-up until a probe query answers with data;
  4. runs the query set once per system for the equality check, then --reps times with the
     systems interleaved query by query (order shuffled per query) for the latency medians;
  5. records peak RSS (VmHWM), CPU time per query, bytes on disk and the load average.
Results go to --out (JSON) and --markdown (the tables of BENCHMARKS.part.md).

Stdlib only. Needs: prometheus + promtool (2.42), victoria-metrics + vmctl, script(1), a
release build of hypnos (--hypnos or $HYPNOS).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# End of the newest block: fixed so every run queries the same data (2h-aligned).
END_S = 1_763_596_800  # 2025-11-20T00:00:00Z
# Evaluation times are END - 10 ms - k * 15 s. The generator's scrape phases lie in
# [0, 14 980) ms and promtool's samples sit on whole 15 s, so no sample ever lies exactly on
# a range or lookback boundary: Prometheus 2.42 closes ranges on the left, 3.x (Hypnos)
# leaves them open, and boundary samples would make the equality check fail for that reason.
EVAL_END_MS = END_S * 1000 - 10
INTERVAL_S = 15
HOUR = 3600
# Longest a query may run, the same for all three systems (Prometheus's and Hypnos's
# --query.timeout, VictoriaMetrics's -search.maxQueryDuration); set by --query-timeout.
QUERY_TIMEOUT_S = 120
# promtool processes building `om` blocks at once; set by --build-jobs.
BUILD_JOBS = 2

# Metric names the seed profile writes as floats (VictoriaMetrics 1.79 cannot import the
# native histograms, so vmctl is told to skip them).
GEN_FLOAT_METRICS = (
    "up|total_http_requests|instances_active_session|request_duration_seconds_bucket|"
    "request_duration_seconds_sum|request_duration_seconds_count|request_error_counts"
)


# ---------------------------------------------------------------------------------------
# Query sets. Each entry: (name, expr, vm_reason). vm_reason is None when VictoriaMetrics
# must return the same result as Prometheus; otherwise it says why VM's semantics differ,
# and the VM comparison is still run and reported, just not counted as a failure.
# ---------------------------------------------------------------------------------------
VM_RATE = "VM's rate/increase do not extrapolate to the window edges and use the sample before the window"
VM_CHANGES = "VM's changes()/resets() also count against the sample before the window"
# Not an exclusion: VM's answer is compared with __name__ removed.
VM_NAME = "compared without __name__: VM keeps the metric name on *_over_time results, Prometheus drops it"

OM_QUERIES = [
    # Prometheus promql/bench_test.go shapes; X = "big" (scales with the dataset) or
    # "hundred" (fixed 100 series) where a [1d] window over every series would dominate.
    ("a_X", "a_big", None),
    ("rate(a_X[1m])", "rate(a_big[1m])", VM_RATE),
    ("rate(a_X[1d])", "rate(a_hundred[1d])", VM_RATE),
    ("changes(a_X[1d])", "changes(a_hundred[1d])", VM_CHANGES),
    ("-a_X", "-a_big", None),
    ("a_X - b_X", "a_big - b_big", None),
    ("a_X and b_X{l=~'.*[0-4]$'}", "a_big and b_big{l=~'.*[0-4]$'}", None),
    ("a_X or b_X{l=~'.*[0-4]$'}", "a_big or b_big{l=~'.*[0-4]$'}", None),
    ("a_X unless b_X{l=~'.*[0-4]$'}", "a_big unless b_big{l=~'.*[0-4]$'}", None),
    ("abs(a_X)", "abs(a_big)", None),
    ("label_replace(a_X, ...)", "label_replace(a_big, 'l2', '$1', 'l', '(.*)')", None),
    ("sum(a_X)", "sum(a_big)", None),
    ("sum without (l)(h_X)", "sum without (l)(h_big)", None),
    ("sum by (le)(h_X)", "sum by (le)(h_big)", None),
    ("topk(5, a_X)", "topk(5, a_big)", None),
    ("rate(a_X[1m]) + rate(b_X[1m])", "rate(a_big[1m]) + rate(b_big[1m])", VM_RATE),
    ("sum without (l)(rate(a_X[1m])) / ...", "sum without (l)(rate(a_big[1m])) / sum without (l)(rate(b_big[1m]))", VM_RATE),
    ("histogram_quantile(0.9, rate(h_X[5m]))", "histogram_quantile(0.9, rate(h_big[5m]))", VM_RATE),
    # Many-to-one join (upstream's `a_X + on(l) group_right a_one` matches nothing).
    ("h_X * on(l) group_left a_X", "h_big * on(l) group_left a_big", None),
    ('count({__name__!=""})', 'count({__name__!=""})', None),
]

GEN_QUERIES = [
    # Dashboard-style queries over the seed's demo-app metrics.
    ("sum(rate(requests[5m]))", "sum(rate(total_http_requests[5m]))", VM_RATE),
    ("sum by (status_code)(rate(errors[5m]))", "sum by (status_code)(rate(request_error_counts[5m]))", VM_RATE),
    ("p99 by le", "histogram_quantile(0.99, sum by (le)(rate(request_duration_seconds_bucket[5m])))", VM_RATE),
    (
        "p90 by le, status_code",
        "histogram_quantile(0.9, sum by (le, status_code)(rate(request_duration_seconds_bucket[5m])))",
        VM_RATE,
    ),
    (
        "mean latency by instance",
        "sum by (instance)(rate(request_duration_seconds_sum[5m])) / sum by (instance)(rate(request_duration_seconds_count[5m]))",
        VM_RATE,
    ),
    ("topk(5, rate(requests[5m]))", "topk(5, rate(total_http_requests[5m]))", VM_RATE),
    ("avg_over_time(sessions[1h])", "avg_over_time(instances_active_session[1h])", VM_NAME),
    (
        "max_over_time(sessions{regex}[6h])",
        'max_over_time(instances_active_session{instance_name=~"prod.*|stag.*"}[6h])',
        VM_NAME,
    ),
    ("quantile_over_time(0.9, sessions[1h])", "quantile_over_time(0.9, instances_active_session[1h])", VM_NAME),
    ("sum(up{instance=~regex})", 'sum by (job)(up{instance=~".*[0-4]"})', None),
    ("count by (le)(buckets)", "count by (le)(request_duration_seconds_bucket)", None),
    ("sum by (code)(bucket{le=0.5})", 'sum by (status_code)(request_duration_seconds_bucket{le="0.5"})', None),
]


@dataclass
class Mode:
    name: str
    range_s: int  # 0: instant query at EVAL_END_MS
    step_s: int


# About 240-290 points per series in every range mode, so latency growth across modes is the
# growth with the time range read, not with the output size.
MODES = [
    Mode("instant", 0, 0),
    Mode("range 1h/15s", HOUR, 15),
    Mode("range 24h/5m", 24 * HOUR, 300),
]
EXTRA_MODES = {"6h": Mode("range 6h/60s", 6 * HOUR, 60)}
LONG_MODE = Mode("range 14d/1h", 14 * 24 * HOUR, 3600)


# ---------------------------------------------------------------------------------------
# Small helpers.
# ---------------------------------------------------------------------------------------
def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def du_bytes(*paths: str) -> int:
    """Apparent bytes of files under paths, each inode counted once."""
    seen, total = set(), 0
    for p in paths:
        for dirpath, _, files in os.walk(p):
            for f in files:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except FileNotFoundError:
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def proc_status(pid: int, key: str) -> int:
    """A kB field of /proc/PID/status (VmHWM, VmRSS) in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all threads) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def human_s(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def parse_size(s: str) -> int:
    s = s.lower()
    mult = 1
    if s.endswith("k"):
        mult, s = 1000, s[:-1]
    elif s.endswith("m"):
        mult, s = 1_000_000, s[:-1]
    return int(float(s) * mult)


# ---------------------------------------------------------------------------------------
# Datasets.
# ---------------------------------------------------------------------------------------
@dataclass
class Dataset:
    source: str  # gen | om
    size: str
    days: int
    work: str

    @property
    def name(self) -> str:
        return f"{self.source}-{self.size}-{self.days}d"

    @property
    def dir(self) -> str:
        return os.path.join(self.work, "data", self.name)

    @property
    def blocks(self) -> str:
        return os.path.join(self.dir, "blocks")

    @property
    def series(self) -> int:
        return parse_size(self.size)

    @property
    def start_s(self) -> int:
        return END_S - self.days * 24 * HOUR

    def queries(self):
        return OM_QUERIES if self.source == "om" else GEN_QUERIES

    def probe(self) -> str:
        return "a_one" if self.source == "om" else "up"


def run(cmd, **kw):
    log("$", " ".join(cmd) if isinstance(cmd, list) else cmd)
    return subprocess.run(cmd, check=True, **kw)


def build_blocks(ds: Dataset, hypnos: str) -> float | None:
    """Builds the dataset's blocks once; returns the seconds the build took (kept in
    blocks.done, None for blocks built by an older version of this script)."""
    done = os.path.join(ds.dir, "blocks.done")
    if os.path.exists(done):
        with open(done) as f:
            text = f.read().strip()
        return float(text) if text else None
    shutil.rmtree(ds.dir, ignore_errors=True)
    os.makedirs(ds.blocks)
    t0 = time.time()
    if ds.source == "gen":
        run(
            [
                hypnos, "tools", "generate", "--profile", "seed", "--series", str(ds.series),
                "--duration", f"{ds.days}d", "--block-duration", "2h", "--interval", f"{INTERVAL_S}s",
                "--churn", "0s", "--max-time", str(END_S * 1000), "-o", ds.blocks, "-q",
            ]
        )
    else:
        # One OpenMetrics file per 2h block: promtool re-reads its whole input once per block
        # range, so one big file would cost (blocks x samples). promtool parses on one core, so
        # up to BUILD_JOBS of them run at once on different blocks while the next file is
        # written (at most BUILD_JOBS files on disk: 1.8 GB each at 100k series).
        running = []  # (promtool process, its input file)

        def reap_one():
            """Waits until one of the running promtools ends and removes its input file."""
            while True:
                for i, (p, path) in enumerate(running):
                    if p.poll() is not None:
                        running.pop(i)
                        os.remove(path)
                        if p.returncode != 0:
                            raise RuntimeError(f"promtool failed ({p.returncode}) on {path}")
                        return
                time.sleep(0.2)

        try:
            for i, lo in enumerate(range(ds.start_s, END_S, 2 * HOUR)):
                while len(running) >= BUILD_JOBS:
                    reap_one()
                om = os.path.join(ds.dir, f"input-{i}.om")
                n = write_openmetrics(om, ds, lo, lo + 2 * HOUR)
                cmd = ["promtool", "tsdb", "create-blocks-from", "openmetrics", om, ds.blocks]
                log("$", " ".join(cmd))
                running.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL), om))
            while running:
                reap_one()
        finally:
            for p, path in running:
                p.kill()
                p.wait()
                if os.path.exists(path):
                    os.remove(path)
        log(f"{ds.name}: {n} series")
    # Leave only complete blocks (no wal/chunks_head from the writers).
    for e in os.listdir(ds.blocks):
        if not os.path.exists(os.path.join(ds.blocks, e, "meta.json")):
            shutil.rmtree(os.path.join(ds.blocks, e), ignore_errors=True)
    took = time.time() - t0
    log(f"{ds.name}: blocks built in {took:.0f}s, {human_bytes(du_bytes(ds.blocks))}")
    with open(done, "w") as f:
        f.write(f"{took:.1f}\n")
    return took


def om_families(n: int):
    """bench_test.go's metric families, scaled: a_big/b_big with k series each and h_big with
    k/10 label values x 11 buckets, so that the total is about n; plus a_one/a_ten/a_hundred
    and b_hundred, h_hundred at upstream's fixed sizes."""
    k = max(10, round(n / 3.1 / 10) * 10)
    fams = []
    for name, count in (("a_one", 1), ("a_ten", 10), ("a_hundred", 100), ("b_hundred", 100), ("a_big", k), ("b_big", k)):
        fams.append((name, count, False))
    fams.append(("h_big", max(1, k // 10), True))
    return fams


def write_openmetrics(path: str, ds: Dataset, lo_s: int, hi_s: int) -> int:
    """Samples in [lo_s, hi_s) every 15 s on whole 15 s. Values grow like bench_test.go's
    (one step per sample plus a per-series offset); the histogram's buckets are cumulative in
    le. Returns the number of series."""
    first = (lo_s - ds.start_s) // INTERVAL_S
    steps = range(first, first + (hi_s - lo_s) // INTERVAL_S)
    # " value timestamp" strings per value class, joined below with the series' name: the
    # file is written at C speed rather than one Python format per sample.
    cache = {}

    def points(mult: int, offset: int):
        key = (mult, offset)
        if key not in cache:
            cache[key] = [f"{s * mult + offset} {ds.start_s + s * INTERVAL_S}" for s in steps]
        return cache[key]

    les = [str(j) for j in range(10)] + ["+Inf"]
    series = 0
    with open(path, "w", buffering=1 << 22) as f:
        for name, count, hist in om_families(ds.series):
            f.write(f"# TYPE {name} gauge\n")
            for i in range(count):
                lbl = f'l="{i}"' if count > 1 else ""
                if hist:
                    bases = [(f'{name}{{{lbl + "," if lbl else ""}le="{le}"}}', j + 1 + i % 7, 0) for j, le in enumerate(les)]
                    for base, mult, offset in bases:
                        f.write(base + " " + ("\n" + base + " ").join(points(mult, offset)) + "\n")
                        series += 1
                    continue
                # Distinct values at every step (offset i < mult) so topk has no ties to break.
                base = f"{name}{{{lbl}}}" if lbl else name
                mult = 100_000
                f.write("".join(f"{base} {s * mult + i} {ds.start_s + s * INTERVAL_S}\n" for s in steps))
                series += 1
        f.write("# EOF\n")
    return series


def prepare_prometheus_dir(ds: Dataset) -> str:
    d = os.path.join(ds.dir, "prom")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for b in sorted(os.listdir(ds.blocks)):
        run_quiet(["cp", "-al", os.path.join(ds.blocks, b), os.path.join(d, b)])
    return d


def run_quiet(cmd):
    subprocess.run(cmd, check=True)


def prepare_bucket(ds: Dataset) -> str:
    """The blocks as a Thanos FILESYSTEM bucket: chunks and index hard-linked, meta.json
    rewritten with a `thanos` section without external labels (so results carry the same
    labels as Prometheus's)."""
    d = os.path.join(ds.dir, "bucket")
    if os.path.exists(os.path.join(ds.dir, "bucket.done")):
        return d
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for b in sorted(os.listdir(ds.blocks)):
        src, dst = os.path.join(ds.blocks, b), os.path.join(d, b)
        os.makedirs(dst)
        for e in os.listdir(src):
            if e == "meta.json":
                continue
            run_quiet(["cp", "-al", os.path.join(src, e), os.path.join(dst, e)])
        with open(os.path.join(src, "meta.json")) as f:
            meta = json.load(f)
        meta["thanos"] = {"labels": {}, "downsample": {"resolution": 0}, "source": "bench"}
        with open(os.path.join(dst, "meta.json"), "w") as f:
            json.dump(meta, f, indent="\t")
    open(os.path.join(ds.dir, "bucket.done"), "w").close()
    return d


# ---------------------------------------------------------------------------------------
# Systems.
# ---------------------------------------------------------------------------------------
@dataclass
class System:
    name: str
    url: str = ""
    procs: list = field(default_factory=list)  # subprocess.Popen
    extra_params: dict = field(default_factory=dict)
    startup_s: float = 0.0
    disk_bytes: int = 0
    # The highest peak RSS (per process) seen during one query or at start-up, and where.
    peak_each: list = field(default_factory=list)
    peak_query: str = "start-up"

    def pids(self):
        return [p.pid for p in self.procs]

    def hwm(self) -> int:
        return sum(proc_status(p, "VmHWM") for p in self.pids())

    def hwm_each(self) -> list:
        return [proc_status(p, "VmHWM") for p in self.pids()]

    def reset_hwm(self):
        """Restarts VmHWM from the current RSS (Linux: `5` into /proc/PID/clear_refs), so
        that a peak can be measured per query."""
        for p in self.pids():
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def note_peak(self, query: str):
        """After a query: keeps the highest per-query peak (processes summed) and its query."""
        each = self.hwm_each()
        if sum(each) > sum(self.peak_each):
            self.peak_each, self.peak_query = each, query

    def rss(self) -> int:
        return sum(proc_status(p, "VmRSS") for p in self.pids())

    def cpu(self) -> float:
        return sum(proc_cpu_s(p) for p in self.pids())

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


RUNNING: list[System] = []


def stop_all():
    while RUNNING:
        RUNNING.pop().stop()


def spawn(cmd, logpath):
    log("start:", " ".join(cmd))
    out = open(logpath, "ab")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def http_query(sys_: System, expr: str, mode: Mode, timeout=None):
    """One API call; returns (seconds, parsed JSON or error string)."""
    if mode.range_s == 0:
        path = "/api/v1/query"
        params = {"query": expr, "time": f"{EVAL_END_MS / 1000:.3f}"}
    else:
        path = "/api/v1/query_range"
        params = {
            "query": expr,
            "start": f"{(EVAL_END_MS - mode.range_s * 1000) / 1000:.3f}",
            "end": f"{EVAL_END_MS / 1000:.3f}",
            "step": str(mode.step_s),
        }
    params.update(sys_.extra_params)
    url = sys_.url + path + "?" + urllib.parse.urlencode(params)
    # The servers give up after QUERY_TIMEOUT_S; the client waits a minute longer so that it
    # is their answer (an error) that ends a slow query.
    timeout = timeout or QUERY_TIMEOUT_S + 60
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
        dt = time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return time.perf_counter() - t0, f"HTTP {e.code}: {e.read()[:300]!r}"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return time.perf_counter() - t0, f"error: {e}"
    try:
        return dt, json.loads(body)
    except ValueError as e:
        return dt, f"bad JSON: {e}"


def timed_out(dt: float, res) -> bool:
    """An error answer after (about) the query timeout: the query was cut off, whichever of
    the three systems (or the client) gave up."""
    return isinstance(res, str) and dt >= 0.95 * QUERY_TIMEOUT_S


def wait_ready(sys_: System, probe: str, t_start: float, timeout=1800):
    mode = MODES[0]
    while time.time() - t_start < timeout:
        for p in sys_.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{sys_.name}: process {p.args[0]} exited with {p.returncode}")
        _, res = http_query(sys_, probe, mode, timeout=30)
        if isinstance(res, dict) and res.get("status") == "success" and res["data"]["result"]:
            sys_.startup_s = time.time() - t_start
            log(f"{sys_.name}: ready after {sys_.startup_s:.1f}s")
            return
        time.sleep(0.1)
    raise RuntimeError(f"{sys_.name}: not ready after {timeout}s")


def start_prometheus(ds: Dataset, logdir: str, name: str = "prometheus") -> System:
    data = prepare_prometheus_dir(ds)
    cfg = os.path.join(ds.work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    port = free_port()
    s = System(name, url=f"http://127.0.0.1:{port}")
    t0 = time.time()
    # min = max block duration: Prometheus must not compact the 2h blocks while we measure
    # (the store gateway serves the same uncompacted blocks).
    s.procs.append(
        spawn(
            [
                "prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=100y", "--storage.tsdb.min-block-duration=2h",
                "--storage.tsdb.max-block-duration=2h", f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn", f"--query.timeout={QUERY_TIMEOUT_S}s",
            ],
            os.path.join(logdir, f"{name}.log"),
        )
    )
    RUNNING.append(s)
    wait_ready(s, ds.probe(), t0)
    s.disk_bytes = du_bytes(data)
    return s


def start_hypnos(ds: Dataset, hypnos: str, logdir: str, name: str = "hypnos") -> System:
    bucket = prepare_bucket(ds)
    store_data = os.path.join(ds.dir, f"store-data-{name}")
    shutil.rmtree(store_data, ignore_errors=True)
    grpc, http, qhttp, qgrpc = free_port(), free_port(), free_port(), free_port()
    s = System(name, url=f"http://127.0.0.1:{qhttp}")
    t0 = time.time()
    s.procs.append(
        spawn(
            [
                hypnos, "store", f"--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {bucket}\n",
                f"--data-dir={store_data}", f"--grpc-address=127.0.0.1:{grpc}",
                f"--http-address=127.0.0.1:{http}", "--log.level=warn",
            ],
            os.path.join(logdir, f"{name}-store.log"),
        )
    )
    s.procs.append(
        spawn(
            [
                hypnos, "query", f"--endpoint=127.0.0.1:{grpc}", f"--http-address=127.0.0.1:{qhttp}",
                f"--grpc-address=127.0.0.1:{qgrpc}", "--log.level=warn", f"--query.timeout={QUERY_TIMEOUT_S}s",
            ],
            os.path.join(logdir, f"{name}-query.log"),
        )
    )
    RUNNING.append(s)
    wait_ready(s, ds.probe(), t0)
    s.disk_bytes = du_bytes(bucket, store_data)
    return s


def vm_cmd(data: str, port: int):
    # -search.maxQueryDuration: the same bound as Prometheus's and Hypnos's --query.timeout
    # (VM's default is 30 s). -search.maxSamplesPerQuery: VM's guard against heavy queries
    # (1e9 raw samples scanned) is lifted; the other two systems scan without such a limit and
    # a 14-day query over every series of a 10k dataset scans ~0.8e9.
    return [
        "victoria-metrics", f"-storageDataPath={data}", "-retentionPeriod=100y",
        f"-httpListenAddr=127.0.0.1:{port}", "-search.disableCache", "-loggerLevel=WARN",
        "-dedup.minScrapeInterval=1ms", f"-search.maxQueryDuration={QUERY_TIMEOUT_S}s",
        "-search.maxSamplesPerQuery=100000000000",
    ]


def block_metas(ds: Dataset) -> list[dict]:
    metas = []
    for b in sorted(os.listdir(ds.blocks)):
        with open(os.path.join(ds.blocks, b, "meta.json")) as f:
            metas.append(json.load(f))
    return sorted(metas, key=lambda m: m["minTime"])


def float_samples(meta: dict, ds: Dataset) -> int:
    """The float samples of a block: every sample for `om`; for `gen`, the seed profile's
    native histograms (16 of every target's 80 series, each with as many samples as the
    others, churn off) left out, as VictoriaMetrics 1.79 cannot import them."""
    n = meta["stats"]["numSamples"]
    return n * 64 // 80 if ds.source == "gen" else n


def block_window(meta: dict, vm: bool) -> tuple[str, str]:
    """(evaluation time, range) whose window holds exactly the block's samples, [minTime,
    maxTime - 1 ms]: Prometheus 2.42's windows are [t - r, t], VictoriaMetrics's (t - r, t]."""
    t = meta["maxTime"] - 1
    r = meta["maxTime"] - meta["minTime"] - (0 if vm else 1)
    return f"{t / 1000:.3f}", f"{r}ms"


def api_get(url: str, path: str, params: dict, timeout=600):
    with urllib.request.urlopen(url + path + "?" + urllib.parse.urlencode(params), timeout=timeout) as r:
        res = json.loads(r.read())
    if res.get("status") != "success":
        raise RuntimeError(f"{url}{path} {params}: {res}")
    return res["data"]


def vm_flush(url: str):
    """Makes every row VictoriaMetrics has acknowledged searchable and waits until it holds no
    pending rows (so a count taken afterwards is final)."""
    urllib.request.urlopen(url + "/internal/force_flush", timeout=600).read()
    for _ in range(600):
        text = urllib.request.urlopen(url + "/metrics", timeout=60).read().decode()
        pending = sum(float(v) for v in re.findall(r"^vm_pending_rows\{[^}]*\} (\S+)$", text, re.M))
        if pending == 0:
            return
        time.sleep(0.5)
        urllib.request.urlopen(url + "/internal/force_flush", timeout=600).read()
    raise RuntimeError(f"VictoriaMetrics still has {pending} pending rows")


def vm_block_sums(url: str, metas: list[dict]) -> list[int]:
    """VictoriaMetrics's sample count inside each block's time range (one query per block:
    a count over the whole dataset would exceed -search.maxSamplesPerQuery at 100k x 14d)."""
    out = []
    for meta in metas:
        t, r = block_window(meta, vm=True)
        data = api_get(url, "/api/v1/query", {"query": f'sum(count_over_time({{__name__=~".+"}}[{r}]))', "time": t, "nocache": "1"})
        out.append(int(float(data["result"][0]["value"][1])) if data["result"] else 0)
    return out


def series_counts(url: str, name: str, meta: dict, vm: bool) -> dict:
    """{label set without __name__: samples in the block's range} of one metric."""
    t, r = block_window(meta, vm)
    params = {"query": f'count_over_time({{__name__="{name}"}}[{r}])', "time": t} | ({"nocache": "1"} if vm else {})
    data = api_get(url, "/api/v1/query", params)
    return {
        tuple(sorted((k, v) for k, v in x["metric"].items() if k != "__name__")): int(float(x["value"][1]))
        for x in data["result"]
    }


def repair_vm_block(ds: Dataset, vm_url: str, prom_url: str, meta: dict, log_f) -> int:
    """Finds the series VictoriaMetrics holds fewer samples of than Prometheus (on the same
    blocks) in one block's range, and imports exactly those series' samples of that range,
    read raw from Prometheus, through VictoriaMetrics's /api/v1/import (JSON lines). Returns
    the number of series imported."""
    t, r = block_window(meta, vm=False)
    names = api_get(prom_url, "/api/v1/label/__name__/values", {"start": f"{meta['minTime'] / 1000:.3f}", "end": t})
    if ds.source == "gen":
        names = [n for n in names if re.fullmatch(GEN_FLOAT_METRICS, n)]
    lines = []
    for name in names:
        want = series_counts(prom_url, name, meta, vm=False)
        have = series_counts(vm_url, name, meta, vm=True)
        for labels, n in sorted(want.items()):
            if have.get(labels, 0) >= n:
                continue
            log_f.write(f"{meta['ulid']}: {name}{dict(labels)}: VictoriaMetrics {have.get(labels, 0)} of {n} samples\n")
            sel = ",".join([f"__name__={json.dumps(name)}"] + [f"{k}={json.dumps(v)}" for k, v in labels])
            data = api_get(prom_url, "/api/v1/query", {"query": f"{{{sel}}}[{r}]", "time": t})
            for x in data["result"]:
                lines.append(
                    json.dumps(
                        {
                            "metric": x["metric"],
                            "values": [float(v) for _, v in x["values"]],
                            "timestamps": [round(float(ts) * 1000) for ts, _ in x["values"]],
                        }
                    )
                )
    if lines:
        req = urllib.request.Request(vm_url + "/api/v1/import", data=("\n".join(lines) + "\n").encode(), method="POST")
        urllib.request.urlopen(req, timeout=600).read()
    return len(lines)


def import_vm(ds: Dataset, logdir: str) -> tuple[str, dict]:
    """Imports the blocks into a VictoriaMetrics data dir once (cached: vm.done holds the
    figures of the import) and verifies that it holds exactly the blocks' float samples."""
    data = os.path.join(ds.dir, "vm")
    done = os.path.join(ds.dir, "vm.done")
    if os.path.exists(done):
        with open(done) as f:
            text = f.read().strip()
        return data, (json.loads(text) if text else {})
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    s = System("vm-import", url=f"http://127.0.0.1:{port}")
    s.procs.append(spawn(vm_cmd(data, port), os.path.join(logdir, "vm-import.log")))
    RUNNING.append(s)
    for _ in range(600):
        try:
            urllib.request.urlopen(s.url + "/health", timeout=5).read()
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    stats = {}
    t0 = time.time()
    vmctl = f"vmctl prometheus -s --prom-snapshot={ds.blocks} --vm-addr={s.url} --prom-concurrency=2"
    if ds.source == "gen":
        vmctl += f" --prom-filter-label=__name__ --prom-filter-label-value='{GEN_FLOAT_METRICS}'"
    # vmctl draws a progress bar and wants a terminal.
    out = subprocess.run(["script", "-qec", vmctl, "/dev/null"], check=True, capture_output=True).stdout
    with open(os.path.join(logdir, "vmctl.log"), "ab") as f:
        f.write(out)
    sent = re.findall(r"total samples: (\d+)", out.decode(errors="replace"))
    stats["vmctl_s"] = time.time() - t0
    stats["vmctl_sent"] = int(sent[-1]) if sent else -1
    t1 = time.time()
    vm_flush(s.url)
    metas = block_metas(ds)
    want = [float_samples(m, ds) for m in metas]
    stats["want"] = sum(want)
    have = vm_block_sums(s.url, metas)
    stats["vmctl_missing"] = sum(want) - sum(have)
    log(f"{ds.name}: vmctl sent {stats['vmctl_sent']:,} samples in {stats['vmctl_s']:.0f}s; VictoriaMetrics holds "
        f"{sum(have):,} of {sum(want):,} (checked in {time.time() - t1:.0f}s)")
    # Debian's vmctl 1.79 loses the last few series it reads: its importer's workers return
    # as soon as Close() is signalled, and Go's select may take that signal while series
    # still wait in the buffered input channel (4 x --vm-concurrency of them), which are then
    # never sent (fixed upstream later by draining the channel on close). So the series at
    # the end of the index of the last block(s) read arrive short; they are imported again
    # from Prometheus's raw samples, series by series.
    stats["repaired_series"] = 0
    rounds, prom = 0, None
    while have != want:
        over = [m["ulid"] for m, h, w in zip(metas, have, want) if h > w]
        if over or rounds == 3:
            raise RuntimeError(
                f"{ds.name}: VictoriaMetrics holds {sum(have):,} samples, the blocks {sum(want):,}"
                f" (blocks with more: {over}); see {logdir}/vm-repair.log"
            )
        rounds += 1
        if prom is None:
            prom = start_prometheus(ds, logdir, name="prometheus-oracle")
        short = [m for m, h, w in zip(metas, have, want) if h < w]
        log(f"{ds.name}: {len(short)} block(s) short: {[m['ulid'] for m in short]}; importing the short series from Prometheus")
        with open(os.path.join(logdir, "vm-repair.log"), "a") as f:
            for meta in short:
                stats["repaired_series"] += repair_vm_block(ds, s.url, prom.url, meta, f)
        vm_flush(s.url)
        have = vm_block_sums(s.url, metas)
    if prom is not None:
        RUNNING.remove(prom)
        prom.stop()
    stats["vm_check_s"] = time.time() - t1
    stats["vm_import_s"] = time.time() - t0
    log(f"{ds.name}: VictoriaMetrics holds all {sum(want):,} float samples of the blocks "
        f"({stats['repaired_series']} series imported again); import took {stats['vm_import_s']:.0f}s")
    RUNNING.remove(s)
    s.stop()
    with open(done, "w") as f:
        json.dump(stats, f)
    return data, stats


def start_vm(ds: Dataset, logdir: str) -> System:
    data, _ = import_vm(ds, logdir)
    port = free_port()
    s = System("victoriametrics", url=f"http://127.0.0.1:{port}", extra_params={"nocache": "1"})
    t0 = time.time()
    s.procs.append(spawn(vm_cmd(data, port), os.path.join(logdir, "victoria-metrics.log")))
    RUNNING.append(s)
    wait_ready(s, ds.probe(), t0)
    s.disk_bytes = du_bytes(data)
    return s


# ---------------------------------------------------------------------------------------
# Equality.
# ---------------------------------------------------------------------------------------
def normalise(res) -> dict:
    """{sorted label tuple: [(t, value)]} of a query response."""
    data = res["data"]
    out = {}
    if data["resultType"] in ("scalar", "string"):
        t, v = data["result"]
        return {(): [(float(t), v)]}
    for s in data["result"]:
        key = tuple(sorted(s.get("metric", {}).items()))
        if "value" in s:
            pts = [s["value"]]
        else:
            pts = s.get("values", [])
        if "histogram" in s or "histograms" in s:
            pts = pts + [(t, json.dumps(h, sort_keys=True)) for t, h in ([s["histogram"]] if "histogram" in s else s["histograms"])]
        out[key] = [(round(float(t) * 1000), v) for t, v in pts]
    return out


def close(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))


def same_values_per_step(a, b) -> bool:
    """Whether, at every timestamp, both answers hold the same values (as a multiset, within
    1e-6) whatever series carry them."""
    def by_step(n):
        steps = {}
        for pts in n.values():
            for t, v in pts:
                steps.setdefault(t, []).append(v)
        return {t: sorted(vs, key=lambda v: (math.isnan(float(v)), float(v))) for t, vs in steps.items()}

    sa, sb = by_step(a), by_step(b)
    return sa.keys() == sb.keys() and all(
        len(sa[t]) == len(sb[t]) and all(close(x, y) for x, y in zip(sa[t], sb[t])) for t in sa
    )


# topk/bottomk keep the k largest (smallest) values; which of several series with the same
# value at the k-th place is kept depends on the heap's steps, which Prometheus changed after
# 2.42 (pop + push there; 3.x replaces the root and fixes the heap, and Hypnos follows 3.x).
# Their answers are therefore compared as the values kept at each step.
TIES_BREAK_DIFFERENTLY = re.compile(r"\b(topk|bottomk)\s*\(")


def compare(ref, other, ties: bool = False) -> str | None:
    """None if equal within 1e-6 (relative), else a short description of the first difference.
    With `ties`, answers that keep the same values at every step are equal."""
    diff = compare_series(ref, other)
    if diff and ties and not diff.startswith(("error", "status")):
        if same_values_per_step(normalise(ref), normalise(other)):
            return None
    return diff


def compare_series(ref, other) -> str | None:
    if isinstance(ref, str) or isinstance(other, str):
        return f"error: ref={ref if isinstance(ref, str) else 'ok'} other={other if isinstance(other, str) else 'ok'}"[:300]
    if ref.get("status") != "success" or other.get("status") != "success":
        return f"status ref={ref.get('status')} other={other.get('status')} {other.get('error', '')}"[:300]
    a, b = normalise(ref), normalise(other)
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        return f"series differ: {len(a)} vs {len(b)}; only in reference {only_a[:2]}, only in other {only_b[:2]}"[:300]
    for k in sorted(a):
        pa, pb = a[k], b[k]
        if len(pa) != len(pb):
            ta, tb = {t for t, _ in pa}, {t for t, _ in pb}
            return f"{dict(k)}: {len(pa)} vs {len(pb)} points; first extra t={sorted(ta ^ tb)[:2]}"[:300]
        for (ta, va), (tb, vb) in zip(pa, pb):
            if ta != tb:
                return f"{dict(k)}: timestamps {ta} vs {tb}"[:300]
            if not close(va, vb):
                return f"{dict(k)} t={ta}: {va} vs {vb}"[:300]
    return None


def without_name(res):
    if isinstance(res, dict) and res.get("status") == "success" and isinstance(res["data"]["result"], list):
        for s in res["data"]["result"]:
            if isinstance(s, dict):
                s.get("metric", {}).pop("__name__", None)
    return res


def result_size(res) -> tuple[int, int]:
    if not isinstance(res, dict) or res.get("status") != "success":
        return (0, 0)
    n = normalise(res)
    return len(n), sum(len(v) for v in n.values())


# ---------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------
def bench_dataset(ds: Dataset, args, hypnos: str) -> dict:
    logdir = os.path.join(args.work, "logs", ds.name)
    os.makedirs(logdir, exist_ok=True)
    t0 = time.time()
    built_s = build_blocks(ds, hypnos)
    phases = {"blocks_build_s": built_s, "blocks_build_now": time.time() - t0 > 1}
    t0 = time.time()
    _, phases["vm_import"] = import_vm(ds, logdir)
    phases["vm_import_now"] = time.time() - t0 > 1
    t0 = time.time()
    prepare_bucket(ds)
    phases["bucket_s"] = time.time() - t0
    blocks = [b for b in os.listdir(ds.blocks)]
    n_series = sum(json.load(open(os.path.join(ds.blocks, b, "meta.json")))["stats"]["numSeries"] for b in blocks) // max(
        1, len(blocks)
    )
    n_samples = sum(json.load(open(os.path.join(ds.blocks, b, "meta.json")))["stats"]["numSamples"] for b in blocks)
    out = {
        "dataset": ds.name,
        "series_per_block": n_series,
        "samples": n_samples,
        "blocks": len(blocks),
        "blocks_bytes": du_bytes(ds.blocks),
        "systems": {},
        "queries": [],
        "load": [],
        "phases": phases,
    }
    if args.prepare_only:
        log(f"{ds.name}: prepared ({json.dumps(phases)})")
        return out
    # Start one at a time so start-up times do not compete for the CPU.
    systems = []
    starts = [lambda: start_prometheus(ds, logdir), lambda: start_vm(ds, logdir)]
    for name, path in [("hypnos", hypnos)] + args.variants:
        starts.append(lambda name=name, path=path: start_hypnos(ds, path, logdir, name))
    for start in starts:
        systems.append(start())
        out["load"].append(loadavg())
    for s in systems:
        s.peak_each = s.hwm_each()
    hypnoses = [s.name for s in systems[2:]]
    out["hypnoses"] = hypnoses
    modes = sorted(list(MODES) + [EXTRA_MODES[m] for m in args.extra_modes], key=lambda m: m.range_s)
    if ds.days >= 14:
        modes.append(LONG_MODE)
    modes = [m for m in modes if m.range_s <= ds.days * 24 * HOUR]
    qre = re.compile(args.filter) if args.filter else None
    cases = [(q, m) for q in ds.queries() for m in modes if not qre or qre.search(q[0])]
    results = {}
    # Pass 0: results for the equality check (also warms page cache and index caches alike).
    t_pass = time.time()
    spent = {s.name: 0.0 for s in systems}
    for (qname, expr, vm_reason), mode in cases:
        row = {"query": qname, "expr": expr, "mode": mode.name, "vm_excluded": vm_reason, "lat": {}, "cpu": {}}
        row["timeouts"] = []
        answers = {}
        for s in systems:
            s.reset_hwm()
            dt, answers[s.name] = http_query(s, expr, mode)
            spent[s.name] += dt
            s.note_peak(f"{qname} [{mode.name}]")
            if timed_out(dt, answers[s.name]):
                log(f"TIMEOUT {s.name} {qname} [{mode.name}] after {dt:.0f}s")
                row["timeouts"].append(s.name)
        ref = answers["prometheus"]
        row["series"], row["points"] = result_size(ref)
        # A timed-out answer is reported as a timeout, not as a wrong answer; when Prometheus
        # (the reference) timed out, nothing is compared for that query.
        cut = lambda name: name in row["timeouts"] or "prometheus" in row["timeouts"]  # noqa: E731
        ties = bool(TIES_BREAK_DIFFERENTLY.search(expr))
        row["diffs"] = {h: None if cut(h) else compare(ref, answers[h], ties) for h in hypnoses}
        vm_answer = answers["victoriametrics"]
        if vm_reason == VM_NAME:
            vm_answer = without_name(vm_answer)
            row["vm_excluded"] = None
        row["vm_diff"] = None if cut("victoriametrics") else compare(ref, vm_answer, ties)
        for h, diff in row["diffs"].items():
            if diff:
                log(f"MISMATCH {h} {qname} [{mode.name}]: {diff}")
        if row["vm_diff"] and not vm_reason:
            log(f"MISMATCH victoriametrics {qname} [{mode.name}]: {row['vm_diff']}")
        for s in systems:
            row["lat"][s.name] = []
            row["cpu"][s.name] = []
        results[(qname, mode.name)] = row
        out["queries"].append(row)
    phases["pass0_s"] = time.time() - t_pass
    phases["pass0_per_system_s"] = spent
    log(f"{ds.name}: equality pass took {phases['pass0_s']:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in spent.items())})")
    # Timed passes: query by query, systems in shuffled order, repeated. A query that hit the
    # timeout in the equality pass is not run again on that system: its latency counts as the
    # timeout (a lower bound), flagged in the tables.
    rng = random.Random(1)
    phases["reps_s"] = []
    for rep in range(args.reps):
        t_pass = time.time()
        for (qname, expr, _), mode in cases:
            row = results[(qname, mode.name)]
            order = list(systems)
            rng.shuffle(order)
            for s in order:
                if s.name in row["timeouts"]:
                    row["lat"][s.name].append(float(QUERY_TIMEOUT_S))
                    row["cpu"][s.name].append(float("nan"))
                    continue
                c0 = s.cpu()
                s.reset_hwm()
                dt, res = http_query(s, expr, mode)
                row["cpu"][s.name].append(s.cpu() - c0)
                s.note_peak(f"{qname} [{mode.name}]")
                if timed_out(dt, res):
                    log(f"TIMEOUT {s.name} {qname} [{mode.name}] after {dt:.0f}s (rep {rep + 1})")
                    row["timeouts"].append(s.name)
                    dt = float(QUERY_TIMEOUT_S)
                row["lat"][s.name].append(dt if isinstance(res, dict) or s.name in row["timeouts"] else float("nan"))
        out["load"].append(loadavg())
        phases["reps_s"].append(time.time() - t_pass)
        log(f"{ds.name}: rep {rep + 1}/{args.reps} done in {phases['reps_s'][-1]:.0f}s, load {loadavg():.1f}")
    for s in systems:
        out["systems"][s.name] = {
            "startup_s": s.startup_s,
            "hwm_bytes": sum(s.peak_each),
            "hwm_bytes_each": s.peak_each,
            "peak_query": s.peak_query,
            "rss_bytes": s.rss(),
            "disk_bytes": s.disk_bytes,
        }
    stop_all()
    for row in out["queries"]:
        row["median"] = {k: statistics.median(v) for k, v in row["lat"].items()}
        row["cpu_median"] = {k: statistics.median(v) for k, v in row["cpu"].items()}
    return out


def geomean(xs):
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def ratios(d: dict, h: str, base: str, key: str = "median") -> list:
    """Per-query ratios h/base. A timed-out query's latency counts as the timeout (a lower
    bound: the ratio errs against whichever system timed out); queries where both timed out
    say nothing and are left out."""
    out = []
    for q in d["queries"]:
        timeouts = q.get("timeouts", [])
        if h in timeouts and base in timeouts:
            continue
        a, b = q[key][h], q[key][base]
        if b > 0 and math.isfinite(a) and math.isfinite(b):
            out.append(a / b)
    return out


def markdown(report: dict) -> str:
    L = []
    m = report["machine"]
    L.append(
        f"Machine: {m['cores']} cores, {m['mem_gib']:.0f} GiB RAM, {m['cpu']}; load average during the run "
        f"{m['load_min']:.1f}–{m['load_max']:.1f} (mean {m['load_mean']:.1f}). Run {m['started']} – {m['finished']} UTC."
    )
    L.append("")
    L.append(f"Command: `{report['command']}`")
    L.append("")
    if any(d.get("phases") for d in report["datasets"]):
        L.extend(phases_table(report))
    if report.get("prepare_only"):
        return "\n".join(L) + "\n"
    L.append("#### Summary: medians over the query set of per-query ratios (geometric mean in brackets)")
    L.append("")
    L.append(
        "| dataset | series | samples | queries | Hypnos variant | latency vs Prometheus | latency vs VM "
        "| server CPU vs Prometheus | server CPU vs VM | answers ≠ Prometheus | VM ≠ Prometheus (counted / excluded) |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    fm = lambda xs: f"{statistics.median(xs):.2f}x ({geomean(xs):.2f}x)" if xs else "–"  # noqa: E731
    for d in report["datasets"]:
        vd = sum(1 for q in d["queries"] if q["vm_diff"] and not q["vm_excluded"])
        vx = sum(1 for q in d["queries"] if q["vm_diff"] and q["vm_excluded"])
        for h in d["hypnoses"]:
            hd = sum(1 for q in d["queries"] if q["diffs"][h])
            L.append(
                f"| {d['dataset']} | {d['series_per_block']:,} | {d['samples']:,} | {len(d['queries'])} | {h} | "
                f"{fm(ratios(d, h, 'prometheus'))} | {fm(ratios(d, h, 'victoriametrics'))} | "
                f"{fm(ratios(d, h, 'prometheus', 'cpu_median'))} | {fm(ratios(d, h, 'victoriametrics', 'cpu_median'))} | "
                f"{hd} | {vd} / {vx} |"
            )
    L.append("")
    timeouts = [(d["dataset"], q, s) for d in report["datasets"] for q in d["queries"] for s in dict.fromkeys(q.get("timeouts", []))]
    if timeouts:
        L.append(
            f"Timed out (query timeout {report.get('query_timeout_s')} s for all three systems; the latency counts as the"
            " timeout, a lower bound, so each ratio errs against the system that timed out; not run again in the"
            " timed repetitions):"
        )
        L.append("")
        for ds_name, q, s in timeouts:
            L.append(f"- {ds_name} `{q['query']}` [{q['mode']}]: {s}")
    elif report.get("query_timeout_s"):
        L.append(f"No query hit the query timeout ({report['query_timeout_s']} s, the same for all three systems).")
    L.append("")
    L.append("#### Per system: start-up to first answer, peak memory, bytes on disk")
    L.append("")
    L.append(
        "Peak RSS: the highest VmHWM over start-up and each single query (VmHWM restarted before every"
        " query through /proc/PID/clear_refs; for Hypnos the store gateway's and the querier's peaks"
        " within the query are added, an upper bound of their peak together)."
    )
    L.append("")
    L.append(
        "| dataset | system | start-up | peak RSS (VmHWM) | per process | peak during | RSS at end | on disk"
        " | peak RSS vs Prometheus |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    for d in report["datasets"]:
        ph = d["systems"]["prometheus"]["hwm_bytes"]
        for name, s in d["systems"].items():
            each = " + ".join(human_bytes(x) for x in s.get("hwm_bytes_each", [])) if name in d["hypnoses"] else ""
            L.append(
                f"| {d['dataset']} | {name} | {s['startup_s']:.1f} s | {human_bytes(s['hwm_bytes'])} | {each} | "
                f"`{s.get('peak_query', '')}` | {human_bytes(s['rss_bytes'])} | {human_bytes(s['disk_bytes'])} | {s['hwm_bytes'] / ph:.2f}x |"
            )
    L.append("")
    L.append("#### Growth with series count and time range (median latency over the query set, per mode)")
    L.append("")
    systems = ["prometheus", "victoriametrics"] + report["datasets"][0]["hypnoses"] if report["datasets"] else []
    L.append("| dataset | mode | " + " | ".join(systems) + " |")
    L.append("|---|---|" + "---|" * len(systems))
    for d in report["datasets"]:
        for mode in dict.fromkeys(q["mode"] for q in d["queries"]):
            qs = [q for q in d["queries"] if q["mode"] == mode]
            cells = [human_s(statistics.median(q["median"][s] for q in qs)) for s in systems]
            L.append(f"| {d['dataset']} | {mode} | " + " | ".join(cells) + " |")
    for d in report["datasets"]:
        hs = d["hypnoses"]
        L.append("")
        L.append(f"#### {d['dataset']}: median latency per query ({report['reps']} interleaved repetitions)")
        L.append("")
        head = "| query | mode | series/points | Prometheus | VM | " + " | ".join(hs) + " | "
        head += " | ".join(f"{h}/P | {h}/VM" for h in hs) + " | equal (" + ", ".join(hs) + ", VM) |"
        L.append(head)
        L.append("|---|---|---|---|---|" + "---|" * (3 * len(hs)) + "---|")
        for q in d["queries"]:
            med = q["median"]
            tos = q.get("timeouts", [])
            eq_of = lambda name, diff: (  # noqa: E731
                "not compared (Prometheus timed out)" if "prometheus" in tos
                else "timed out" if name in tos
                else "yes" if not diff
                else "**NO**"
            )
            eqs = [eq_of(h, q["diffs"][h]) for h in hs]
            if "prometheus" in tos or "victoriametrics" in tos or not q["vm_diff"]:
                eqs.append(eq_of("victoriametrics", q["vm_diff"]))
            elif q["vm_excluded"]:
                eqs.append("differs (excluded)")
            else:
                eqs.append("**NO**")
            ratio = lambda h, base: (  # noqa: E731
                "–" if h in tos and base in tos else f"{med[h] / med[base]:.2f}"
            )
            ratios_ = " | ".join(f"{ratio(h, 'prometheus')} | {ratio(h, 'victoriametrics')}" for h in hs)
            lat = lambda name: (  # noqa: E731
                f"≥ {human_s(med[name])} (timeout)" if name in q.get("timeouts", []) else human_s(med[name])
            )
            L.append(
                f"| `{q['query']}` | {q['mode']} | {q['series']}/{q['points']} | {lat('prometheus')} | "
                f"{lat('victoriametrics')} | " + " | ".join(lat(h) for h in hs) + f" | {ratios_} | "
                + ", ".join(eqs) + " |"
            )
    diffs = [
        (d["dataset"], q) for d in report["datasets"] for q in d["queries"] if any(q["diffs"].values()) or q["vm_diff"]
    ]
    if diffs:
        L.append("")
        L.append("#### Differences found by the equality check")
        L.append("")
        for ds_name, q in diffs:
            for h, diff in q["diffs"].items():
                if diff:
                    L.append(f"- {ds_name} `{q['expr']}` [{q['mode']}] {h}: {diff}")
            if q["vm_diff"]:
                why = f" (excluded: {q['vm_excluded']})" if q["vm_excluded"] else ""
                L.append(f"- {ds_name} `{q['expr']}` [{q['mode']}] VictoriaMetrics{why}: {q['vm_diff']}")
    return "\n".join(L) + "\n"


def phases_table(report: dict) -> list:
    """How long each phase took: block build, VictoriaMetrics import (vmctl, then the check
    and the repair of what vmctl lost), start-up and the query passes."""
    fs = lambda x: "–" if x is None else f"{x:.0f} s"  # noqa: E731
    fn = lambda x: "–" if x is None else f"{x:,}"  # noqa: E731
    L = ["#### Phases (wall time; cached phases show the time they took when they ran)", ""]
    L.append(
        "| dataset | blocks | blocks built | VM import: vmctl | vmctl lost (samples) | VM check + repair | series"
        " imported again | start-up P / VM / H | equality pass | timed repetitions |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for d in report["datasets"]:
        ph = d.get("phases", {})
        vm = ph.get("vm_import", {})
        cached = lambda now: "" if now else " (cached)"  # noqa: E731
        ups = " / ".join(f"{s['startup_s']:.1f} s" for s in d["systems"].values()) if d["systems"] else "–"
        reps = ", ".join(fs(x) for x in ph.get("reps_s", [])) or "–"
        L.append(
            f"| {d['dataset']} | {d['blocks']} | {fs(ph.get('blocks_build_s'))}{cached(ph.get('blocks_build_now'))} | "
            f"{fs(vm.get('vmctl_s'))}{cached(ph.get('vm_import_now'))} | {fn(vm.get('vmctl_missing'))} | "
            f"{fs(vm.get('vm_check_s'))} | {vm.get('repaired_series', '–')} | {ups} | {fs(ph.get('pass0_s'))} | {reps} |"
        )
    L.append("")
    return L


def machine_info() -> dict:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return {"cores": os.cpu_count(), "cpu": cpu, "mem_gib": mem}


def write_report_only(paths: list, md_path: str):
    """Tables from one or more earlier runs' JSON (an interrupted run keeps the datasets it
    finished in its JSON); the machine line and command are the first run's."""
    reports = []
    for p in paths:
        with open(p) as f:
            reports.append(json.load(f))
    report = reports[0]
    for r in reports[1:]:
        report["datasets"] += r["datasets"]
    loads = [x for d in report["datasets"] for x in d["load"]] or [0.0]
    report["machine"].setdefault("finished", "?")
    report["machine"] |= {"load_min": min(loads), "load_max": max(loads), "load_mean": statistics.mean(loads)}
    report["prepare_only"] = all(r.get("prepare_only") for r in reports)
    md = markdown(report)
    with open(md_path, "w") as f:
        f.write(md)
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/hypnos-bench"), help="datasets, logs (reused)")
    ap.add_argument("--hypnos", default=os.environ.get("HYPNOS", os.path.join(ROOT, "target/release/hypnos")))
    ap.add_argument(
        "--datasets",
        default="gen-1k-1d,om-1k-1d,gen-10k-1d,om-10k-1d",
        help="comma-separated SOURCE-SIZE-DAYS (SOURCE gen|om, e.g. gen-100k-1d, gen-100k-14d)",
    )
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per query and system")
    ap.add_argument(
        "--hypnos-variant",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another hypnos binary measured in the same run (A/B of a change); repeatable",
    )
    ap.add_argument("--filter", help="only queries whose name matches this regex")
    ap.add_argument(
        "--query-timeout",
        type=int,
        default=120,
        metavar="SECONDS",
        help="longest a query may run, the same on all three systems (default 120, Prometheus's); a query cut off"
        " is reported as timed out and not repeated on that system",
    )
    ap.add_argument(
        "--build-jobs",
        type=int,
        default=2,
        metavar="N",
        help="promtool processes building an om dataset's blocks at once (each holds one 2h input file on disk)",
    )
    ap.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the datasets and load them (VictoriaMetrics import, bucket), report how long that took, run no query",
    )
    ap.add_argument("--extra-modes", default="", help="comma-separated extra range modes: 6h")
    ap.add_argument(
        "--report-only",
        metavar="JSON[,JSON]",
        help="write the tables (--markdown) again from earlier runs' JSON results, without running anything",
    )
    ap.add_argument("--out", default=None, help="JSON results (default WORK/results.json)")
    ap.add_argument("--markdown", default=None, help="tables (default WORK/results.md)")
    args = ap.parse_args()
    args.out = args.out or os.path.join(args.work, "results.json")
    global QUERY_TIMEOUT_S, BUILD_JOBS
    QUERY_TIMEOUT_S = args.query_timeout
    BUILD_JOBS = max(1, args.build_jobs)
    args.extra_modes = [m for m in args.extra_modes.split(",") if m]
    args.variants = []
    for v in args.hypnos_variant:
        name, _, path = v.partition("=")
        if not name or not os.access(path, os.X_OK) or name in ("hypnos", "prometheus", "victoriametrics"):
            sys.exit(f"bad --hypnos-variant {v!r}: want NAME=PATH of an executable")
        args.variants.append((name, path))
    args.markdown = args.markdown or os.path.join(args.work, "results.md")
    if args.report_only:
        write_report_only(args.report_only.split(","), args.markdown)
        return
    if not os.access(args.hypnos, os.X_OK):
        sys.exit(f"no hypnos binary at {args.hypnos}: build it with `cargo build --release -p hypnos` or pass --hypnos")
    for tool in ("prometheus", "promtool", "victoria-metrics", "vmctl", "script"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not on PATH (apt-get install -y prometheus victoria-metrics bsdutils)")
    os.makedirs(args.work, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    datasets = []
    for spec in args.datasets.split(","):
        try:
            source, size, days = spec.strip().split("-")
            assert source in ("gen", "om") and days.endswith("d")
            datasets.append(Dataset(source, size, int(days[:-1]), args.work))
        except (ValueError, AssertionError):
            sys.exit(f"bad dataset {spec!r}: want SOURCE-SIZE-DAYS like gen-10k-1d")
    report = {
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "reps": args.reps,
        "query_timeout_s": args.query_timeout,
        "prepare_only": args.prepare_only,
        "machine": machine_info() | {"started": time.strftime("%Y-%m-%d %H:%M", time.gmtime())},
        "datasets": [],
    }
    try:
        for ds in datasets:
            report["datasets"].append(bench_dataset(ds, args, args.hypnos))
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        stop_all()
    loads = [x for d in report["datasets"] for x in d["load"]] or [loadavg()]
    report["machine"] |= {
        "finished": time.strftime("%H:%M", time.gmtime()),
        "load_min": min(loads),
        "load_max": max(loads),
        "load_mean": statistics.mean(loads),
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    md = markdown(report)
    with open(args.markdown, "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
