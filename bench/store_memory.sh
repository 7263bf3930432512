#!/usr/bin/env bash
# Resident memory of `hypnos store` vs Prometheus 2.42 serving the same 100 blocks of 1,000
# series each (promtool-written). Prints VmRSS / VmHWM of both after start-up and after a
# query touching every series of every block.
#
#   bench/store_memory.sh [WORKDIR]     (needs: promtool, prometheus, python3 + grpcio-tools, curl)
#
# Query-set mode: `hypnos store` on a dataset of bench/compare.py (its FILESYSTEM bucket, e.g.
# /tmp/hypnos-bench/data/gen-10k-1d) behind `hypnos query`, replaying compare.py's query set
# (instant, range 1h/15s, range 24h/5m) and printing the store's VmHWM / VmRSS after each query:
#
#   bench/store_memory.sh --query-set DATASET_DIR [WORKDIR]
#
# Env there: HYPNOS (the store binary), QUERIER (the querier binary, default HYPNOS), REPS
# (times the query set is replayed, 1), ONLY (only queries whose name contains it),
# STORE_WRAP (a command line prefix for the store, e.g. `heaptrack -o FILE`).
#
# Env: HYPNOS (default target/release/hypnos; target/release/examples/store_gateway, built with
# `cargo build --release -p hypnos-store --example store_gateway`, takes the same flags),
# BLOCKS (100), SERIES (1000), STEP_S (900).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HYPNOS="${HYPNOS:-$ROOT/target/release/hypnos}"

if [ "${1:-}" = "--query-set" ]; then
  DS="${2:?usage: store_memory.sh --query-set DATASET_DIR [WORKDIR]}"
  WORK="${3:-$(mktemp -d /tmp/store-memory-qs.XXXXXX)}"
  mkdir -p "$WORK"
  echo "date: $(date -u +%FT%TZ), load average: $(cut -d' ' -f1-3 /proc/loadavg), store: $HYPNOS"
  exec python3 - "$ROOT" "$DS" "$HYPNOS" "${QUERIER:-$HYPNOS}" "$WORK" <<'PY'
import json, os, signal, socket, subprocess, sys, time, urllib.parse, urllib.request

root, dsdir, hypnos, querier, work = sys.argv[1:6]
sys.path.insert(0, os.path.join(root, "bench"))
import compare  # noqa: E402  (stdlib only; its query set and modes are the benchmark's)

name = os.path.basename(dsdir.rstrip("/"))
queries = compare.OM_QUERIES if name.startswith("om") else compare.GEN_QUERIES
bucket = os.path.join(dsdir, "bucket")


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) / 1024
    return out


grpc, http, qhttp, qgrpc = port(), port(), port(), port()
data = os.path.join(work, "store-data")
subprocess.run(["rm", "-rf", data], check=True)
store = subprocess.Popen(
    os.environ.get("STORE_WRAP", "").split() + [hypnos, "store", f"--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {bucket}\n",
     f"--data-dir={data}", f"--grpc-address=127.0.0.1:{grpc}", f"--http-address=127.0.0.1:{http}",
     "--log.level=warn"] + os.environ.get("STORE_FLAGS", "").split(),
    stdout=open(os.path.join(work, "store.log"), "ab"), stderr=subprocess.STDOUT)
query = subprocess.Popen(
    [querier, "query", f"--endpoint=127.0.0.1:{grpc}", f"--http-address=127.0.0.1:{qhttp}",
     f"--grpc-address=127.0.0.1:{qgrpc}", "--log.level=warn"],
    stdout=open(os.path.join(work, "query.log"), "ab"), stderr=subprocess.STDOUT)
try:
    deadline = time.time() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/-/ready", timeout=2).read()
            break
        except Exception:
            if time.time() > deadline or store.poll() is not None:
                sys.exit("store did not become ready")
            time.sleep(0.2)
    # The querier learns the store's label sets and time range through Info: wait until the
    # probe query returns data.
    probe = "a_one" if name.startswith("om") else "up"
    while True:
        try:
            u = f"http://127.0.0.1:{qhttp}/api/v1/query?" + urllib.parse.urlencode(
                {"query": probe, "time": f"{compare.EVAL_END_MS / 1000:.3f}"})
            r = json.load(urllib.request.urlopen(u, timeout=60))
            if r.get("data", {}).get("result"):
                break
        except Exception:
            pass
        if time.time() > deadline:
            sys.exit("querier never answered the probe with data")
        time.sleep(0.5)
    st = status(store.pid)
    print(f"{name}: after sync + probe: VmRSS {st['VmRSS']:.1f} MiB, VmHWM {st['VmHWM']:.1f} MiB")
    print(f"| mode | query | s | store CPU s | store VmHWM after (MiB) | VmRSS after |")
    print("|---|---|---|---|---|---|")
    tck = os.sysconf("SC_CLK_TCK")

    def cpu(pid):
        with open(f"/proc/{pid}/stat") as f:
            fl = f.read().rsplit(")", 1)[1].split()
        return (int(fl[11]) + int(fl[12])) / tck

    only = os.environ.get("ONLY")
    for mode in compare.MODES * int(os.environ.get("REPS", "1")):
        for label, expr, _ in queries:
            if only and only not in label:
                continue
            if mode.range_s == 0:
                path = "/api/v1/query"
                params = {"query": expr, "time": f"{compare.EVAL_END_MS / 1000:.3f}"}
            else:
                path = "/api/v1/query_range"
                params = {"query": expr, "start": f"{(compare.EVAL_END_MS - mode.range_s * 1000) / 1000:.3f}",
                          "end": f"{compare.EVAL_END_MS / 1000:.3f}", "step": str(mode.step_s)}
            c0 = cpu(store.pid)
            t0 = time.perf_counter()
            body = urllib.request.urlopen(f"http://127.0.0.1:{qhttp}{path}?" + urllib.parse.urlencode(params),
                                          timeout=600).read()
            dt = time.perf_counter() - t0
            c1 = cpu(store.pid)
            r = json.loads(body)
            ok = r.get("status") == "success"
            st = status(store.pid)
            print(f"| {mode.name} | {label}{'' if ok else ' FAILED'} | {dt:.2f} | {c1 - c0:.2f} | {st['VmHWM']:.1f} | {st['VmRSS']:.1f} |",
                  flush=True)
    st = status(store.pid)
    print("threads:", len(os.listdir(f"/proc/{store.pid}/task")))
    print(f"{name}: end: VmRSS {st['VmRSS']:.1f} MiB, VmHWM {st['VmHWM']:.1f} MiB, "
          f"RssAnon {st['RssAnon']:.1f}, RssFile {st['RssFile']:.1f}; querier VmHWM {status(query.pid)['VmHWM']:.1f} MiB")
finally:
    for p in (query, store):
        p.send_signal(signal.SIGTERM)
    for p in (query, store):
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
PY
fi
BLOCKS="${BLOCKS:-100}"
SERIES="${SERIES:-1000}"
STEP_S="${STEP_S:-900}"
WORK="${1:-$(mktemp -d /tmp/store-memory.XXXXXX)}"
mkdir -p "$WORK"
echo "workdir: $WORK"
echo "date: $(date -u +%FT%TZ), load average: $(cut -d' ' -f1-3 /proc/loadavg), binary: $HYPNOS"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { grep -E '^(VmHWM|VmRSS|RssAnon|RssFile)' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo; }

# 1. Data: BLOCKS x 2h of SERIES gauges, one sample every STEP_S seconds, written by promtool.
if [ ! -d "$WORK/tsdb" ]; then
  python3 - "$WORK/input.om" "$BLOCKS" "$SERIES" "$STEP_S" <<'PY'
import sys
path, blocks, series, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start = 1_700_006_400  # aligned to 2h
end = start + blocks * 7200
with open(path, "w") as f:
    f.write("# TYPE bench_metric gauge\n")
    for s in range(series):
        lbl = 'bench_metric{instance="host-%04d",job="job-%d",zone="z%d"}' % (s, s % 10, s % 3)
        for t in range(start, end, step):
            f.write("%s %d %d\n" % (lbl, (t // step + s) % 1000, t))
    f.write("# EOF\n")
PY
  promtool tsdb create-blocks-from openmetrics "$WORK/input.om" "$WORK/tsdb" >/dev/null
  rm -f "$WORK/input.om"
fi
echo "blocks: $(ls -d "$WORK"/tsdb/*/ | wc -l), on disk: $(du -sh "$WORK/tsdb" | cut -f1)"

# 2. The same blocks in a FILESYSTEM bucket, meta.json with a thanos section.
if [ ! -d "$WORK/bucket" ]; then
  mkdir -p "$WORK/bucket"
  for b in "$WORK"/tsdb/*/; do
    id=$(basename "$b")
    cp -r "$b" "$WORK/bucket/$id"
    python3 - "$WORK/bucket/$id/meta.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
m["thanos"] = {"labels": {"cluster": "bench"}, "downsample": {"resolution": 0}, "source": "test"}
json.dump(m, open(p, "w"), indent="\t")
PY
  done
fi

# 3. hypnos store.
GRPC=$(free_port); HTTP=$(free_port)
rm -rf "$WORK/store-data"
"$HYPNOS" store --objstore.config="type: FILESYSTEM
config:
  directory: $WORK/bucket" --data-dir="$WORK/store-data" --grpc-address=127.0.0.1:$GRPC \
  --http-address=127.0.0.1:$HTTP --log.level=warn &
STORE=$!
trap 'kill $STORE 2>/dev/null || true; kill ${PROM:-} 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$HTTP/-/ready" >/dev/null; do sleep 0.2; done
echo "hypnos store after sync:        $(rss $STORE)"
python3 "$ROOT/crates/storepb/python/storeapi_client.py" --proto-dir "$ROOT/crates/storepb/proto" \
  --addr 127.0.0.1:$GRPC --timeout 600 series --matcher __name__ = bench_metric > "$WORK/store-series.json"
echo "hypnos store after full Series: $(rss $STORE)  ($(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['series']))" "$WORK/store-series.json") series)"
kill $STORE; wait $STORE 2>/dev/null || true

# 4. Prometheus 2.42 on the same blocks.
PORT=$(free_port)
rm -rf "$WORK/prom" && cp -r "$WORK/tsdb" "$WORK/prom"
printf 'global:\n  scrape_interval: 1h\n' > "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --storage.tsdb.retention.time=100y --web.listen-address=127.0.0.1:$PORT --log.level=warn &
PROM=$!
until curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null; do sleep 0.2; done
echo "prometheus after start:         $(rss $PROM)"
START=1700006400
END=$((START + BLOCKS * 7200))
curl -sf "http://127.0.0.1:$PORT/api/v1/query_range" --data-urlencode 'query=bench_metric' \
  --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "step=$((BLOCKS * 72))" -o /dev/null
echo "prometheus after full query:    $(rss $PROM)"
