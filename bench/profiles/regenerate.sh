#!/usr/bin/env bash
# Regenerates the profiles of this directory (see README.md) with the given hypnos binary:
#   bench/profiles/regenerate.sh /tmp/hypnos-me5 [DATA_DIR]
# DATA_DIR: where bench/compare.py built its buckets (default /tmp/hypnos-bench/data).
# Runs one profile after another on ports 36900-36903; takes about 10 minutes.
set -euo pipefail
HYPNOS=${1:?usage: $0 HYPNOS_BINARY [DATA_DIR]}
DATA=${2:-/tmp/hypnos-bench/data}
HERE=$(cd "$(dirname "$0")" && pwd)
P99='histogram_quantile(0.99, sum by (le)(rate(request_duration_seconds_bucket[5m])))'
COUNT='count by (le)(request_duration_seconds_bucket)'
"$HERE/../profile.sh" --hypnos "$HYPNOS" --bucket "$DATA/gen-10k-1d/bucket" --query "$P99" --range 24h --step 5m \
  --runs 10 --gzip --title "gen-10k-1d: p99 over 24h, step 5m (store gateway + querier)" --out "$HERE/gen-10k-1d-p99-24h"
"$HERE/../profile.sh" --hypnos "$HYPNOS" --bucket "$DATA/gen-10k-1d/bucket" --query "$COUNT" --range 24h --step 5m \
  --runs 10 --gzip --title "gen-10k-1d: count by (le) over 24h, step 5m (store gateway + querier)" \
  --out "$HERE/gen-10k-1d-count-24h"
"$HERE/../profile.sh" --hypnos "$HYPNOS" --bucket "$DATA/gen-10k-14d/bucket" --query "$P99" --range 14d --step 1h \
  --runs 2 --gzip --title "gen-10k-14d: p99 over 14d, step 1h (store gateway + querier)" --out "$HERE/gen-10k-14d-p99-14d"
