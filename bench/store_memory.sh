#!/usr/bin/env bash
# Resident memory of `hypnos store` vs Prometheus 2.42 serving the same 100 blocks of 1,000
# series each (promtool-written). Prints VmRSS / VmHWM of both after start-up and after a
# query touching every series of every block.
#
#   bench/store_memory.sh [WORKDIR]     (needs: promtool, prometheus, python3 + grpcio-tools, curl)
#
# Env: HYPNOS (default target/release/hypnos; target/release/examples/store_gateway, built with
# `cargo build --release -p hypnos-store --example store_gateway`, takes the same flags),
# BLOCKS (100), SERIES (1000), STEP_S (900).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HYPNOS="${HYPNOS:-$ROOT/target/release/hypnos}"
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
