#!/usr/bin/env bash
# Profiles one query against `hypnos store` + `hypnos query` serving a FILESYSTEM bucket:
# starts both on 127.0.0.1, warms up with the query once, then records both processes with
# `perf record -F 999 --call-graph dwarf,16384` while running the query N times, and folds the
# recording with bench/flamegraph.py into OUT.svg, OUT.folded and OUT.summary.txt (the root frame
# of every stack is the process role: store-gateway or querier). perf's frames: inlined ones
# get the suffix _[i], kernel ones _[k].
#
# Usage: bench/profile.sh --hypnos BIN --bucket DIR --query EXPR --out PREFIX
#                         [--range DUR --step DUR] [--runs N] [--port-base P] [--min-width PCT]
#                         [--title TEXT] [--gzip] [--no-inline] [--keep]
#   --range/--step   a range query over the DUR before the end of the data (e.g. 24h, 5m, 14d);
#                    without --range an instant query
#   --runs N         query runs while recording (default 5)
#   --port-base P    the four ports P..P+3 on 127.0.0.1 (default 36900)
#   --min-width PCT  frames narrower than PCT % are left out of the SVG (default 0.1)
#   --gzip           write OUT.folded.gz instead of OUT.folded (Rust stacks fold to MBs of text)
#   --no-inline      leave inlined frames out (perf script resolves them with addr2line: slow,
#                    about a minute per few thousand distinct addresses)
#   --keep           keep the work dir (perf.data, logs) instead of removing it
# The data of bench/compare.py ends at 2025-11-20T00:00:00Z; queries are evaluated at that end
# minus 10 ms, as compare.py does (no sample lies on a range boundary).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
END_MS=$((1763596800 * 1000 - 10))
HYPNOS="" BUCKET="" QUERY="" OUT="" RANGE="" STEP="" RUNS=5 PORT_BASE=36900 MIN_WIDTH=0.1 TITLE="" KEEP=0
FOLDED_EXT=folded INLINE=--inline

die() { echo "profile.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --hypnos) HYPNOS=$2; shift 2 ;;
    --bucket) BUCKET=$2; shift 2 ;;
    --query) QUERY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --range) RANGE=$2; shift 2 ;;
    --step) STEP=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    --min-width) MIN_WIDTH=$2; shift 2 ;;
    --title) TITLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --gzip) FOLDED_EXT=folded.gz; shift ;;
    --no-inline) INLINE=--no-inline; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[ -x "$HYPNOS" ] || die "--hypnos: not an executable: '$HYPNOS'"
[ -d "$BUCKET" ] || die "--bucket: not a directory: '$BUCKET'"
[ -n "$QUERY" ] || die "--query is required"
[ -n "$OUT" ] || die "--out is required"
[ -z "$RANGE" ] || [ -n "$STEP" ] || die "--range needs --step"
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"

seconds() {  # 90s, 5m, 24h, 14d -> seconds
  local v=$1 n=${1%[smhd]}
  [[ "$n" =~ ^[0-9]+$ ]] || die "bad duration: $v"
  case "$v" in
    *d) echo $((n * 86400)) ;; *h) echo $((n * 3600)) ;; *m) echo $((n * 60)) ;; *) echo "$n" ;;
  esac
}

fmt_ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
if [ -n "$RANGE" ]; then
  RANGE_S=$(seconds "$RANGE") STEP_S=$(seconds "$STEP")
  API=query_range
  PARAMS=(--data-urlencode "query=$QUERY" --data-urlencode "start=$(fmt_ms $((END_MS - RANGE_S * 1000)))"
          --data-urlencode "end=$(fmt_ms $END_MS)" --data-urlencode "step=$STEP_S")
  MODE="range ${RANGE}/${STEP}"
else
  API=query
  PARAMS=(--data-urlencode "query=$QUERY" --data-urlencode "time=$(fmt_ms $END_MS)")
  MODE="instant"
fi

GRPC=$PORT_BASE HTTP=$((PORT_BASE + 1)) QHTTP=$((PORT_BASE + 2)) QGRPC=$((PORT_BASE + 3))
WORK=$(mktemp -d /tmp/hypnos-profile.XXXXXX)
STORE_PID="" QUERY_PID="" PERF_PID=""
cleanup() {
  local rc=$?
  # perf first (SIGINT makes it write a complete file), then the servers it watches.
  [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null || true
  for p in $QUERY_PID $STORE_PID; do kill "$p" 2>/dev/null || true; done
  for p in $QUERY_PID $STORE_PID; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HYPNOS" store --objstore.config="$(printf 'type: FILESYSTEM\nconfig:\n  directory: %s\n' "$BUCKET")" \
  --data-dir="$WORK/store-data" --grpc-address="127.0.0.1:$GRPC" --http-address="127.0.0.1:$HTTP" \
  --log.level=warn >"$WORK/store.log" 2>&1 &
STORE_PID=$!
"$HYPNOS" query --endpoint="127.0.0.1:$GRPC" --http-address="127.0.0.1:$QHTTP" --grpc-address="127.0.0.1:$QGRPC" \
  --log.level=warn --query.timeout=600s >"$WORK/query.log" 2>&1 &
QUERY_PID=$!

run_query() {  # prints seconds taken; fails unless the answer is a success
  local t0 t1 body
  t0=$(date +%s.%N)
  body=$(curl -sS -G --max-time 900 "http://127.0.0.1:$QHTTP/api/v1/$API" "${PARAMS[@]}")
  t1=$(date +%s.%N)
  case "$body" in
    '{"status":"success"'*) ;;
    *) echo "query failed: ${body:0:300}" >&2; return 1 ;;
  esac
  echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}'
}

# Ready when the querier answers with data from the store (the store loads its blocks first).
t_start=$(date +%s)
until curl -sS -G "http://127.0.0.1:$QHTTP/api/v1/query" --data-urlencode 'query=count({__name__=~".+"})' \
    --data-urlencode "time=$(fmt_ms $END_MS)" 2>/dev/null | grep -q '"result":\[{'; do
  kill -0 "$STORE_PID" 2>/dev/null || { cat "$WORK/store.log" >&2; die "store exited"; }
  kill -0 "$QUERY_PID" 2>/dev/null || { cat "$WORK/query.log" >&2; die "querier exited"; }
  [ $(($(date +%s) - t_start)) -lt 600 ] || die "not ready after 600 s"
  sleep 0.2
done
echo "ready after $(($(date +%s) - t_start)) s; warm-up run..." >&2
warm=$(run_query)
echo "warm-up: ${warm} s" >&2

perf record -F 999 --call-graph dwarf,16384 -p "$STORE_PID,$QUERY_PID" -o "$WORK/perf.data" 2>"$WORK/perf.log" &
PERF_PID=$!
sleep 1  # perf attaches to every thread first
times=()
for i in $(seq 1 "$RUNS"); do
  t=$(run_query)
  times+=("$t")
  echo "run $i: ${t} s" >&2
done
kill -INT "$PERF_PID"
wait "$PERF_PID" || true
PERF_PID=""
lost=$(grep -E 'lost' "$WORK/perf.log" || true)
grep -E 'lost|Captured' "$WORK/perf.log" >&2 || true

mkdir -p "$(dirname "$OUT")"
commit=$(git -C "$HERE/.." log -1 --format=%h 2>/dev/null || echo unknown)
load=$(cut -d' ' -f1-3 /proc/loadavg)
build_id=$(readelf -n "$HYPNOS" 2>/dev/null | awk '/Build ID/ { print $3 }')
[ -n "$TITLE" ] || TITLE="hypnos store + query: $MODE"
{
  echo "query:   $QUERY"
  echo "mode:    $MODE (evaluated up to $(fmt_ms $END_MS), end of data - 10 ms)"
  echo "bucket:  $BUCKET"
  echo "binary:  $HYPNOS (build id $build_id, modified $(date -u -r "$HYPNOS" +%FT%TZ);" \
    "repo HEAD at $commit when profiled)"
  echo "runs:    $RUNS recorded (${times[*]} s), after a warm-up run of $warm s"
  echo "load:    $load (1/5/15 min) at the end of recording; $(nproc) cores"
  echo "perf:    perf record -F 999 --call-graph dwarf,16384 -p STORE,QUERIER; perf script $INLINE${lost:+; $lost}"
  echo
} >"$OUT.summary.txt"
perf script $INLINE -i "$WORK/perf.data" -F comm,pid,tid,time,event,ip,sym,dso 2>"$WORK/perf-script.log" |
  python3 "$HERE/flamegraph.py" --label "$STORE_PID=store-gateway" --label "$QUERY_PID=querier" \
    --folded "$OUT.$FOLDED_EXT" --svg "$OUT.svg" --min-width "$MIN_WIDTH" --title "$TITLE" \
    --subtitle "$QUERY  [$MODE, ${RUNS} runs: ${times[*]} s]" -q --summary "$OUT.summary.part" \
    --callers __memcpy --callers __memcmp --callers _int_malloc --callers _int_free --callers finish_task_switch
cat "$OUT.summary.part" >>"$OUT.summary.txt"
rm -f "$OUT.summary.part"
cat "$OUT.summary.txt"
ls -l "$OUT.svg" "$OUT.$FOLDED_EXT" >&2
