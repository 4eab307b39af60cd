# Sourced by the load scripts that use PostgreSQL: makes $dir (a temporary
# directory, removed on exit with everything in it), starts a throwaway
# cluster of Debian's postgresql in $dir/pg on port $1 (fsync and
# synchronous_commit on, Unix socket only; as the postgres user when run as
# root), sets $dsn, and on exit stops the cluster and kills $pids.
pg_port=$1
dir=$(mktemp -d)
chmod 755 "$dir"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as=()
mkdir "$dir/pg"
if [ "$(id -u)" = 0 ]; then
  as=(runuser -u postgres --)
  chown postgres "$dir/pg"
fi
pids=
cleanup() {
  kill $pids 2>/dev/null || true
  wait $pids 2>/dev/null || true
  "${as[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as[@]}" "$pgbin/initdb" -D "$dir/pg/data" -A trust -U koekje -E UTF8 --locale C >/dev/null
"${as[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -o \
  "-c listen_addresses='' -c unix_socket_directories=$dir/pg -p $pg_port -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB -c max_connections=200" start >/dev/null
dsn="postgres://koekje@/postgres?host=$dir/pg&port=$pg_port&sslmode=disable"
