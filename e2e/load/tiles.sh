#!/usr/bin/env bash
# Durable POSTs under a flood of banner requests and under a flood of log
# tiles at the same steady rate, alternating in one run: the real server on
# loopback with its log and a witness, as in run.sh, wrk from Debian's
# packages (apt-get install -y wrk).
#
#   e2e/load/tiles.sh [seconds per run] [rounds] [flood connections] [pause ms]
#
# The flood (e2e/load/flood.lua) sends about connections × 1000 / (pause +
# latency) requests a second: by default about 3,500/s, the rate at which
# tiles once raised the POSTs' p99 from 20 to 556 ms. The tile flood asks in turn
# for 16 full hash tiles, 16 entry bundles (gzip accepted) and a level-1
# partial tile, all in the witnessed tree. KOEKJE=path runs a prebuilt binary
# instead of building this tree's; PORT moves the server off 18191 (and the
# witness off PORT+2).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
rounds=${2:-3}
conns=${3:-42}
pause=${4:-10}
port=${PORT:-18191} # and PORT+2 for the witness: beside run.sh's
if curl -s -o /dev/null "http://127.0.0.1:$port/" || curl -s -o /dev/null "http://127.0.0.1:$((port + 2))/"; then
  echo "port $port or $((port + 2)) is taken: set PORT" >&2
  exit 1
fi
dir=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
if [ -n "${KOEKJE:-}" ]; then cp "$KOEKJE" "$dir/koekje"; else go build -o "$dir/koekje" ./cmd/koekje; fi
logkey=$("$dir/koekje" keys log-key --db "$dir/koekje.db" --public-url http://127.0.0.1:$port)
"$dir/koekje" witness --name load.witness --db "$dir/witness.db" --addr 127.0.0.1:$((port + 2)) --log "$logkey" > "$dir/witness.out" 2>/dev/null &
pid=$!
for i in $(seq 50); do grep -q 'witness key' "$dir/witness.out" && break; sleep 0.1; done
wkey=$(sed -n 's/^witness key: //p' "$dir/witness.out")
"$dir/koekje" serve --db "$dir/koekje.db" --addr 127.0.0.1:$port --rate-limit 0 --admin-token load-admin-token-0123456789abcdef \
  --witness "http://127.0.0.1:$((port + 2))=$wkey" 2>/dev/null &
pid="$pid $!"
base=http://127.0.0.1:$port
for i in $(seq 50); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

# A log of some thousands of leaves, cosigned (the witness signs every 10 s).
wrk -t1 -c64 -d2s -s e2e/load/post.lua "$base/api/v1/consents" >/dev/null
for i in $(seq 300); do
  size=$(curl -sf "$base/log/checkpoint" | sed -n 2p || true)
  [ "${size:-0}" -ge 4352 ] && break
  sleep 0.1
done
echo "witnessed checkpoint: ${size:-none} leaves"
tiles=()
for n in $(seq -f %03g 0 15); do tiles+=("/log/tile/0/$n" "/log/tile/entries/$n"); done
tiles+=("/log/tile/1/000.p/17")
for t in /s/demo.js "${tiles[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip, br' "$base$t")
  [ "$code" = 200 ] || { echo "$t: $code" >&2; exit 1; }
done

flood() { # name, paths…: the POST run under that flood
  local name=$1; shift
  wrk -t1 -c"$conns" -d"$((secs + 2))s" -s e2e/load/flood.lua "$base" -- "$pause" "$@" > "$dir/flood.out" &
  local fpid=$!
  sleep 1
  local post
  post=$(wrk -t1 -c64 -d"${secs}s" -s e2e/load/post.lua "$base/api/v1/consents" |
    awk '/Non-2xx/{printf "NON-2XX %s, ", $5} /Requests\/sec/{printf "%s req/s, ", $2} /^p50/{print}')
  wait "$fpid"
  printf '  %-14s %6s req/s; POST: %s\n' "$name flood:" "$(awk '/Requests\/sec/{printf "%d", $2}' "$dir/flood.out")" "$post"
}
for r in $(seq "$rounds"); do
  echo "round $r"
  flood bundle /s/demo.js
  flood tile "${tiles[@]}"
done
