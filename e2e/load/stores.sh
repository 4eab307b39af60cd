#!/usr/bin/env bash
# Load run of the two stores side by side: the real server on the SQLite
# store and on the PostgreSQL store (a throwaway cluster of Debian's
# postgresql, fsync and synchronous_commit on, Unix socket), wrk -t1 -c64
# (Debian's wrk) POSTing first choices (e2e/load/post.lua), the two runs
# alternating in each round. Prints durable POSTs/s, p50/p99 and the
# records per commit (from /metrics) of each run.
#
#   e2e/load/stores.sh [seconds per run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
rounds=${2:-3}
token=load-run-admin-token-0123456789
. e2e/load/pgcluster.sh 5499

go build -o "$dir/koekje" ./cmd/koekje
"$dir/koekje" serve --db "$dir/koekje.db" --addr 127.0.0.1:18181 --rate-limit 0 --admin-token $token 2>/dev/null &
pids="$pids $!"
# The same public URL for both: post.lua's page URL is on its origin.
"$dir/koekje" serve --db "$dsn" --key-file "$dir/pg.key" --addr 127.0.0.1:18183 --public-url http://127.0.0.1:18181 \
  --rate-limit 0 --admin-token $token 2>/dev/null &
pids="$pids $!"
for port in 18181 18183; do
  for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done

batches() { # sum and count of the batch-size histogram
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$1/metrics" |
    awk '/^koekje_store_batch_records_sum/{s=$2} /^koekje_store_batch_records_count/{c=$2} END{print s, c}'
}
load() { # name port
  read -r s0 c0 < <(batches "$2")
  printf '  %-10s ' "$1:"
  wrk -t1 -c64 -d"${secs}s" -s e2e/load/post.lua "http://127.0.0.1:$2/api/v1/consents" |
    awk '/Non-2xx/{printf "NON-2XX %s, ", $5} /Requests\/sec/{printf "%s req/s, ", $2} /^p50/{printf "%s", $0}'
  read -r s1 c1 < <(batches "$2")
  awk -v s="$s0" -v c="$c0" -v S="$s1" -v C="$c1" 'BEGIN{printf ", %.1f records per commit\n", (S-s)/(C-c)}'
}
for r in $(seq "$rounds"); do
  echo "round $r"
  load sqlite 18181
  load postgres 18183
done
