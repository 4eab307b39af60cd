#!/usr/bin/env bash
# Load run: the real server on loopback, wrk from Debian's packages
# (apt-get install -y wrk), one thread and 64 connections, the banner bundle
# and the consent POST measured side by side, alternating, in one run.
#
#   e2e/load/run.sh [seconds per run] [rounds]
#
# The server keeps its transparency log, and a witness (koekje witness)
# cosigns its checkpoints every 10 s, as in a deployment.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
rounds=${2:-3}
dir=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/koekje" ./cmd/koekje
go build -o "$dir/bare" ./e2e/load/bare
logkey=$("$dir/koekje" keys log-key --db "$dir/koekje.db" --public-url http://127.0.0.1:18181)
"$dir/koekje" witness --name load.witness --db "$dir/witness.db" --addr 127.0.0.1:18183 --log "$logkey" > "$dir/witness.out" 2>/dev/null &
pid=$!
for i in $(seq 50); do grep -q 'witness key' "$dir/witness.out" && break; sleep 0.1; done
wkey=$(sed -n 's/^witness key: //p' "$dir/witness.out")
"$dir/koekje" serve --db "$dir/koekje.db" --addr 127.0.0.1:18181 --rate-limit 0 --admin-token load-admin-token-0123456789abcdef \
  --witness "http://127.0.0.1:18183=$wkey" 2>/dev/null &
pid="$pid $!"
"$dir/bare" -addr 127.0.0.1:18182 2>/dev/null &
pid="$pid $!"
for i in $(seq 50); do curl -sf http://127.0.0.1:18181/healthz >/dev/null && curl -sf -o /dev/null http://127.0.0.1:18182/s/demo.js && break; sleep 0.1; done
base=http://127.0.0.1:18181
for r in $(seq "$rounds"); do
  echo "round $r"
  echo -n "  bare echo, same bytes: "; wrk -t1 -c64 -d"${secs}s" -s e2e/load/js.lua http://127.0.0.1:18182/s/demo.js | awk '/Requests\/sec/{printf "%s req/s, ", $2} /^p50/{print}'
  echo -n "  GET /s/demo.js (br):   "; wrk -t1 -c64 -d"${secs}s" -s e2e/load/js.lua "$base/s/demo.js" | awk '/Requests\/sec/{printf "%s req/s, ", $2} /^p50/{print}'
  echo -n "  POST /api/v1/consents: "; wrk -t1 -c64 -d"${secs}s" -s e2e/load/post.lua "$base/api/v1/consents" | awk '/Non-2xx/{printf "NON-2XX %s, ", $5} /Requests\/sec/{printf "%s req/s, ", $2} /^p50/{print}'
done
ls -l "$dir/koekje.db"* | awk '{s += $5} END {print "database and WAL:", s, "bytes"}'
echo -n "published (witnessed) checkpoint size: "; curl -sf http://127.0.0.1:18181/log/checkpoint | sed -n 2p
