# shellcheck shell=bash
# A throwaway PostgreSQL server from Debian's packages, on a free loopback
# port, in a folder of its own. Source this file, then:
#   pg_start DIR        # sets PG_PORT; creates user "wp" with password $PG_PASSWORD and database "shop"
#   pg_stop DIR
# As root, the server runs as the "postgres" user (it refuses to run as root).

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }

pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_start() {
  local dir=$1 bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  PG_PORT=$(pg_free_port)
  pg_as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c dynamic_shared_memory_type=mmap -c port=$PG_PORT -c unix_socket_directories=$dir" start >/dev/null
  pg_as "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE USER wp PASSWORD '$PG_PASSWORD'" -c "CREATE DATABASE shop OWNER wp" >/dev/null
  # From now on, passwords are required over TCP.
  sed -i 's/^\(host.*\)trust$/\1scram-sha-256/' "$dir/data/pg_hba.conf"
  pg_as "$bin/pg_ctl" -D "$dir/data" reload >/dev/null
}

pg_stop() {
  local dir=$1
  [ -d "$dir/data" ] && pg_as "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}
