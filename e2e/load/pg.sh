#!/usr/bin/env bash
# Load run of the PostgreSQL store, with the SQLite store beside it for
# comparison (one instance each): a throwaway cluster of Debian's
# postgresql (fsync and synchronous_commit on, Unix socket), a config of
# 1,000 sites (copies of the demo site named s0 … s999), and durable first
# choices POSTed with Debian's wrk to the site-addressed route:
#   - one instance, 16 and 64 connections, one hot site and 1,000 sites;
#   - two instances on the same database, 32 connections each (64 in all),
#     one hot site and 1,000 sites, with the batches retried because the
#     other instance moved a chain's head first (per 1,000 records); and
#     1,000 sites routed by site, as a load balancer hashing the site in
#     the path would (s0 … s499 to one instance, s500 … s999 to the other).
# Prints POSTs/s, p50/p99, records per commit and retries of each run.
#
#   e2e/load/pg.sh [seconds per run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
rounds=${2:-2}
token=load-run-admin-token-0123456789
. e2e/load/pgcluster.sh 5498

# 1,000 small sites, s0 … s999, each with the demo's four categories (the
# demo site itself is too long to repeat 1,000 times under the 1 MB limit).
for i in $(seq 0 999); do cat <<SITE
  - id: s$i
    name: Site $i
    controller: {organisation: S$i B.V., email: p@s$i.example, privacy_policy: "https://s$i.example/p"}
    origins: [self]
    languages: [nl]
    categories:
      - {id: necessary, required: true, title: {nl: Noodzakelijk}, description: {nl: Zonder deze werkt de site niet.}}
      - {id: functional, title: {nl: Functioneel}, description: {nl: Onthoudt het formulier.}}
      - {id: analytics, title: {nl: Statistieken}, description: {nl: Telt bezoeken.}}
      - {id: embeds, title: {nl: Ingesloten inhoud}, description: {nl: Video's van YouTube.}}
    services:
      - {id: koekje, name: Koekje, category: necessary, provider: S$i B.V., privacy_policy: "https://s$i.example/p", cookies: [{name: koekje, duration: 6mo, purpose: {nl: Je cookiekeuze}}]}
      - {id: ga, name: Google Analytics, category: analytics, provider: Google Ireland Ltd., privacy_policy: "https://policies.google.com/privacy", cookies: [{name: _ga, duration: 2y, purpose: {nl: Herkent je browser}}]}
SITE
done | sed '1i sites:' >"$dir/sites.yaml"

go build -o "$dir/koekje" ./cmd/koekje
start() { # port
  "$dir/koekje" serve --db "$dsn" --key-file "$dir/pg.key" --config "$dir/sites.yaml" --addr "127.0.0.1:$1" \
    --public-url http://127.0.0.1:18181 --rate-limit 0 --admin-token $token 2>>"$dir/serve.log" &
  pids="$pids $!"
  for i in $(seq 1800); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done
  echo "koekje on $1 did not start"; cat "$dir/serve.log"; exit 1
}
start 18185 # first alone: it makes the key file and the schema
start 18186
# The SQLite store beside it, same sites, same binary, the log on as well.
"$dir/koekje" serve --db "$dir/koekje.db" --config "$dir/sites.yaml" --addr 127.0.0.1:18187 \
  --public-url http://127.0.0.1:18181 --rate-limit 0 --admin-token $token 2>>"$dir/serve.log" &
pids="$pids $!"
for i in $(seq 1800); do curl -sf "http://127.0.0.1:18187/healthz" >/dev/null && break; sleep 0.1; done

stats() { # port: batch records sum, batch count, retries, commit seconds
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$1/metrics" |
    awk '/^koekje_store_batch_records_sum/{s=$2} /^koekje_store_batch_records_count/{c=$2}
      /^koekje_store_batch_retries_total/{r=$2} /^koekje_store_commit_duration_seconds_sum/{t=$2}
      END{print s, c, r+0, t}'
}
wrkrun() { # port connections sites [first site]
  wrk -t1 -c"$2" -d"${secs}s" -s e2e/load/sites.lua "http://127.0.0.1:$1" -- "$3" "${4:-0}" |
    awk '/Non-2xx/{printf "NON-2XX %s, ", $5} /Requests\/sec/{printf "%s req/s, ", $2} /^p50/{printf "%s", $0}'
}
one() { # label connections sites [port]
  local port=${4:-18185}
  read -r s0 c0 r0 t0 < <(stats $port)
  printf '  %-34s ' "$1:"
  wrkrun $port "$2" "$3"
  read -r s1 c1 r1 t1 < <(stats $port)
  # The writer's time in commits over the run's: near 1, the commit
  # (its fsync) is what limits the rate.
  awk -v s="$s0" -v c="$c0" -v S="$s1" -v C="$c1" -v t="$t0" -v T="$t1" -v d="$secs" \
    'BEGIN{printf ", %.1f records per commit, %.1f ms a commit, writer in commits %.0f%% of the time\n", (S-s)/(C-c), 1000*(T-t)/(C-c), 100*(T-t)/d}'
}
two() { # label sites [routed: each instance gets half the sites]
  read -r sa ca ra _ < <(stats 18185)
  read -r sb cb rb _ < <(stats 18186)
  printf '  %-34s ' "$1:"
  out=$(mktemp)
  if [ "${3:-}" = routed ]; then
    wrkrun 18185 32 $(($2 / 2)) 0 >"$out.a" &
  else
    wrkrun 18185 32 "$2" >"$out.a" &
  fi
  local first=$!
  if [ "${3:-}" = routed ]; then
    wrkrun 18186 32 $(($2 / 2)) $(($2 / 2)) >"$out.b"
  else
    wrkrun 18186 32 "$2" >"$out.b"
  fi
  wait "$first"
  awk '{gsub(/ req\/s.*/, ""); t+=$1} END{printf "%.0f req/s in all, ", t}' "$out.a" "$out.b"
  read -r sa1 ca1 ra1 _ < <(stats 18185)
  read -r sb1 cb1 rb1 _ < <(stats 18186)
  awk -v s="$((0))" -v S0="$sa" -v S1="$sa1" -v T0="$sb" -v T1="$sb1" -v C0="$ca" -v C1="$ca1" -v D0="$cb" -v D1="$cb1" \
      -v R0="$ra" -v R1="$ra1" -v Q0="$rb" -v Q1="$rb1" 'BEGIN{rec=(S1-S0)+(T1-T0); b=(C1-C0)+(D1-D0); r=(R1-R0)+(Q1-Q0);
      printf "%.1f records per commit, %d retried batches (%.1f per 1,000 records)\n", rec/b, r, 1000*r/rec}'
  rm -f "$out" "$out.a" "$out.b"
}
for r in $(seq "$rounds"); do
  echo "round $r"
  one "1 instance, 16 conns, 1 hot site" 16 1
  one "1 instance, 64 conns, 1 hot site" 64 1
  one "1 instance, 16 conns, 1,000 sites" 16 1000
  one "1 instance, 64 conns, 1,000 sites" 64 1000
  one "SQLite, 16 conns, 1 hot site" 16 1 18187
  one "SQLite, 64 conns, 1 hot site" 64 1 18187
  one "SQLite, 16 conns, 1,000 sites" 16 1000 18187
  one "SQLite, 64 conns, 1,000 sites" 64 1000 18187
  two "2 instances, 2x32 conns, 1 hot site" 1
  two "2 instances, 2x32 conns, 1,000 sites" 1000
  two "2 instances, routed by site" 1000 routed
done
