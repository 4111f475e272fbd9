# Health endpoint tests (sourced by tests/suites/wordpress.sh). Each case points the
# parameter /health/db somewhere, then restarts the health php-fpm pool: its new workers fetch
# the value at their first request, whatever the extension's cache policy (TTL, refresh-ahead,
# stale-if-error), and the endpoint's shared one-second result starts empty.

HC=http://127.0.0.1:$HC_PORT
N=0
# hc PATH: GET, saves body and headers; sets CODE, TIME (seconds), BODY, HEADERS (file).
hc() {
  N=$((N + 1))
  local out
  out=$(curl -s -m 10 -o "$RUN/bodies/health-$N.body" -D "$RUN/bodies/health-$N.headers" \
    -w '%{http_code} %{time_total}' "$HC$1" || echo "000 10")
  CODE=${out% *}
  TIME=${out#* }
  BODY=$(head -c 5120 "$RUN/bodies/health-$N.body")
  HEADERS=$RUN/bodies/health-$N.headers
}
point_health_at() { ssm_put /health/db "$1"; restart_fpm FPMHC; }
under() { awk -v t="$1" -v max="$2" 'BEGIN { exit !(t < max) }'; }
header_is() { grep -qi "^$1: *$2" "$HEADERS"; }
no_host_or_user() { ! grep -qE "127\.0\.0\.1|$MA_PORT|$MB_PORT|$PGP_PORT|$PGS_PORT|app|wp@" "$RUN/bodies/health-$N.body"; }

# --- PostgreSQL ---
point_health_at "postgresql://app:$CANARY@127.0.0.1:$PGP_PORT/app"
hc /health/db
check "health db: PostgreSQL primary answers 200" test "$CODE" = 200
check "health db: PostgreSQL primary body begins with WRITER_OK" test "${BODY:0:9}" = WRITER_OK
check "health db: answer is Cache-Control: no-store" header_is Cache-Control no-store
check "health db: PostgreSQL primary answered within 1.5 s" under "$TIME" 1.5
check "health db: body names no host, port or user" no_host_or_user

# A burst (Route 53's checkers arrive together): one check, the others share its answer.
burst_dir=$RUN/bodies/burst
mkdir -p "$burst_dir"
sleep 1.1
burst_pids=()
for i in $(seq 1 12); do
  curl -s -m 5 -o "$burst_dir/$i.body" -D "$burst_dir/$i.headers" "$HC/health/db" &
  burst_pids+=($!)
done
wait "${burst_pids[@]}" || true
burst_ok=$(cat "$burst_dir"/*.body | grep -c '^WRITER_OK' || true)
burst_miss=$(cat "$burst_dir"/*.headers | grep -ci '^X-Health-Cache: miss' || true)
check "health db: a burst of 12 all get WRITER_OK ($burst_ok)" test "$burst_ok" = 12
check "health db: a burst shares one check ($burst_miss checks for 12 requests)" test "$burst_miss" -le 2

hc /health/live
check "health live: 200 LIVE_OK with PostgreSQL" test "$CODE $BODY" = "200 LIVE_OK"

point_health_at "postgresql://app:$CANARY@127.0.0.1:$PGS_PORT/app"
hc /health/db
check "health db: PostgreSQL standby (pg_basebackup) answers 503" test "$CODE" = 503
check "health db: PostgreSQL standby body says in_recovery" test "$BODY" = "NOT_WRITER in_recovery"
check "health db: 503 carries Retry-After" header_is Retry-After '[0-9]'
check "health db: 503 is Cache-Control: no-store" header_is Cache-Control no-store

point_health_at "postgresql://app:$CANARY@127.0.0.1:$CLOSED_PORT/app"
hc /health/db
check "health db: PostgreSQL parameter pointing at nowhere answers 503" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"

# A server that accepts TCP connections but never answers: the deadline, not libpq's 2 s minimum.
SILENT_PORT=$(free_port)
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(64); time.sleep(600)" &
PIDS+=($!)
sleep 0.3
point_health_at "postgresql://app:$CANARY@127.0.0.1:$SILENT_PORT/app"
hc /health/db
check "health db: PostgreSQL server that never answers gives 503 ($BODY)" test "$CODE" = 503
check "health db: ... within 1.5 s (took $TIME s)" under "$TIME" 1.5
point_health_at "mysql://wp:$CANARY@127.0.0.1:$SILENT_PORT/wp"
hc /health/db
check "health db: MariaDB server that never answers gives 503 ($BODY)" test "$CODE" = 503
check "health db: ... within 1.5 s (took $TIME s)" under "$TIME" 1.5

stop_postgres PGP
point_health_at "postgresql://app:$CANARY@127.0.0.1:$PGP_PORT/app"
hc /health/db
check "health db: PostgreSQL stopped answers 503" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"
check "health db: PostgreSQL stopped answered within 1.5 s (took $TIME s)" under "$TIME" 1.5
hc /health/live
check "health live: stays 200 while the database is down" test "$CODE $BODY" = "200 LIVE_OK"

# --- MariaDB (server B; A serves WordPress) ---
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
hc /health/db
check "health db: MariaDB writer answers 200 WRITER_OK" test "$CODE ${BODY:0:9}" = "200 WRITER_OK"
check "health db: MariaDB writer answered within 1.5 s" under "$TIME" 1.5
check "health db: MariaDB body names no host, port or user" no_host_or_user

echo "SET GLOBAL read_only = 1;" | mariadb_sql MB
restart_fpm FPMHC
hc /health/db
check "health db: MariaDB with read_only on answers 503 read_only" test "$CODE $BODY" = "503 NOT_WRITER read_only"
echo "SET GLOBAL read_only = 0;" | mariadb_sql MB

point_health_at "mysql://wp:$CANARY@127.0.0.1:$CLOSED_PORT/wp"
hc /health/db
check "health db: MariaDB parameter pointing at nowhere answers 503" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"

point_health_at "mysql://wp:wrong-password@127.0.0.1:$MB_PORT/wp"
hc /health/db
check "health db: MariaDB with a wrong password answers 503" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"

# SSM itself hangs (new workers, nothing cached): still an answer within 1.5 s.
"$PY" "$T/ssm.py" fault hang 10000
restart_fpm FPMHC
hc /health/db
"$PY" "$T/ssm.py" fault none
check "health db: SSM hanging answers 503 ($BODY)" test "$CODE" = 503
check "health db: ... within 1.5 s (took $TIME s)" under "$TIME" 1.5

ssm_delete /health/db
restart_fpm FPMHC
hc /health/db
check "health db: SSM parameter missing answers 503 config_unavailable" test "$CODE $BODY" = "503 NOT_WRITER config_unavailable"
check "health db: ... within 1.5 s (took $TIME s)" under "$TIME" 1.5
