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

# Connections MariaDB server $1 has accepted so far (counting the one asking).
mariadb_connections() {
  echo "SHOW GLOBAL STATUS LIKE 'Connections';" | mariadb_sql "$1" | awk '{print $2}'
}
# connections_since NAME BEFORE: connections since mariadb_connections printed BEFORE, other
# than the one that asks now.
connections_since() { echo $(($(mariadb_connections "$1") - $2 - 1)); }
# hc_url URL [CURL_ARGS...]: as hc, for any URL.
hc_url() {
  local url=$1
  shift
  N=$((N + 1))
  local out
  out=$(curl -s -m 10 -o "$RUN/bodies/health-$N.body" -D "$RUN/bodies/health-$N.headers" \
    -w '%{http_code} %{time_total}' "$@" "$url" || echo "000 10")
  CODE=${out% *}
  TIME=${out#* }
  BODY=$(head -c 5120 "$RUN/bodies/health-$N.body")
  HEADERS=$RUN/bodies/health-$N.headers
}
# A refusal says nothing: 404, a fixed body, no X-Health-Cache, no state word.
refused_bare() {
  [ "$CODE" = 404 ] && [ "$BODY" = "Not Found" ] && ! grep -qi '^X-Health-Cache' "$HEADERS" \
    && ! grep -qE 'WRITER|LIVE|in_recovery|read_only|connect_failed' "$RUN/bodies/health-$N.body"
}

# --- Who may ask ---
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
# Through the site's ordinary PHP location, where every WordPress install serves the plugin's
# files: closed, and neither SSM nor the database hears of it.
conn_before=$(mariadb_connections MA)
ssm_before=$(ssm_count)
for f in db live; do
  hc_url "$WP_URL/wp-content/plugins/ssm-db-config/health/$f.php"
  check "health access: health/$f.php through the site's PHP location answers a bare 404 ($CODE $BODY)" refused_bare
done
conns=$(connections_since MA "$conn_before")
check "health access: ... and opened no database connection ($conns)" test "$conns" = 0
check "health access: ... and made no SSM request" test "$(ssm_count)" = "$ssm_before"
conn_before=$(mariadb_connections MB)
for f in db live; do
  hc "/closed/$f"
  check "health access: $f with no setting answers a bare 404" refused_bare
  hc "/elsewhere/$f"
  check "health access: $f from an address off the list answers a bare 404" refused_bare
  hc "/typo/$f"
  check "health access: $f with a malformed list (127.0.0.0/33) answers a bare 404" refused_bare
  hc "/token/$f"
  check "health access: $f without the token answers a bare 404" refused_bare
  hc_url "$HC/token/$f" -H "X-Health-Token: ${HEALTH_TOKEN}x"
  check "health access: $f with a wrong token answers a bare 404" refused_bare
done
conns=$(connections_since MB "$conn_before")
check "health access: refused requests opened no connection to the database ($conns)" test "$conns" = 0
check "health access: the malformed list is logged with the setting's name" \
  grep -q 'SSM_DB_CONFIG_HEALTH_ALLOW: "127.0.0.0/33" is not an IP address or CIDR block' "$RUN/FPMHC/php-error.log"
hc_url "$HC/token/db" -H "X-Health-Token: $HEALTH_TOKEN"
check "health access: db with the token in X-Health-Token answers 200 WRITER_OK" test "$CODE ${BODY:0:9}" = "200 WRITER_OK"
hc_url "$HC/token/live?token=$HEALTH_TOKEN"
check "health access: live with the token in the query string answers 200 LIVE_OK" test "$CODE $BODY" = "200 LIVE_OK"
hc /health/db
check "health access: db from an allowed address answers 200 WRITER_OK" test "$CODE ${BODY:0:9}" = "200 WRITER_OK"
check "health access: the token is in no log" bash -c "! grep -rqF -- '$HEALTH_TOKEN' '$RUN/FPMHC' '$RUN/nginx/error.log'"

# --- The state folder ---
state_dir() {  # The health pool's private state folder (its workers run as www-data when we are root).
  local uid
  if [ "$(id -u)" = 0 ]; then uid=$(id -u www-data); else uid=$(id -u); fi
  echo "$RUN/FPMHC/tmp.$FPM_STARTS/ssm-db-config-$uid"
}
hc /health/db
check "health state: the result lives in a private folder (mode $(stat -c %a "$(state_dir)" 2>/dev/null))" \
  test "$(stat -c %a "$(state_dir)" 2>/dev/null)" = 700
check "health state: ... not in the shared temporary folder" \
  bash -c "! ls '$RUN/FPMHC/tmp.$FPM_STARTS' | grep -q '\.json$'"
# A temporary folder the workers cannot write: no state, so no check at all (not one per request).
restart_fpm FPMHC
chmod 555 "$RUN/FPMHC/tmp.$FPM_STARTS"
conn_before=$(mariadb_connections MB)
codes=""
for i in 1 2 3 4 5; do hc /health/db; codes="$codes $CODE:${BODY// /_}"; done
check "health state: without a usable state folder, 5 requests answer 503 state_unavailable ($codes )" \
  test "$(echo $codes | tr ' ' '\n' | sort -u)" = "503:NOT_WRITER_state_unavailable"
conns=$(connections_since MB "$conn_before")
check "health state: ... and open no database connection ($conns)" test "$conns" = 0
chmod 755 "$RUN/FPMHC/tmp.$FPM_STARTS"

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

# While one worker checks a database that never answers, the others do not wait for it: they
# answer at once from the last result (here there is none: 503 busy).
point_health_at "mysql://wp:$CANARY@127.0.0.1:$SILENT_PORT/wp"
curl -s -m 5 -o /dev/null "$HC/health/db" &
slow_pid=$!
health_lock="$(state_dir)/health-$(printf %s /health/db | md5sum | cut -d' ' -f1).lock"
if wait_for 5 bash -c "[ -f '$health_lock' ] && ! flock -n '$health_lock' true"; then
  busy=""
  for i in 1 2 3; do
    hc /health/db
    busy="$busy $CODE:${BODY// /_}:$TIME"
    under "$TIME" 0.3 || break
  done
  check "health db: requests during another worker's check answer at once, 503 busy ($busy )" \
    bash -c "[ \$(echo '$busy' | tr ' ' '\n' | grep -c '^503:NOT_WRITER_busy:0\.[0-2]') = 3 ]"
else
  fail "health db: requests during another worker's check answer at once (no worker held the check's lock)"
fi
wait "$slow_pid" || true
hc /health/db
check "health db: ... and the next one after it sees its result, timeout or connect_failed ($BODY)" \
  bash -c "[[ '$CODE $BODY' =~ ^503\ NOT_WRITER\ (timeout|connect_failed)$ ]]"

# MariaDB that requires TLS (require_secure_transport=ON): the probe uses TLS as the value says.
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MT_PORT/wp?ssl-mode=REQUIRED"
hc /health/db
check "health db: MariaDB requiring TLS, ssl-mode=REQUIRED, answers 200 WRITER_OK ($CODE $BODY)" test "$CODE ${BODY:0:9}" = "200 WRITER_OK"
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MT_PORT/wp?ssl-mode=VERIFY_IDENTITY&ssl-ca=$TLS/ca.pem"
hc /health/db
check "health db: MariaDB requiring TLS, verified against ssl-ca, answers 200 WRITER_OK ($CODE $BODY)" test "$CODE ${BODY:0:9}" = "200 WRITER_OK"
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MT_PORT/wp?ssl-mode=VERIFY_CA&ssl-ca=$TLS/other-ca.pem"
hc /health/db
check "health db: MariaDB requiring TLS, certificate from another CA, answers 503 connect_failed" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MT_PORT/wp"
hc /health/db
check "health db: MariaDB requiring TLS, no TLS option, answers 503 connect_failed" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"
# MariaDB listening on ::1 only.
point_health_at "mysql://wp:$CANARY@[::1]:$M6_PORT/wp"
hc /health/db
check "health db: MariaDB on [::1] answers 200 WRITER_OK ($CODE $BODY)" test "$CODE ${BODY:0:9}" = "200 WRITER_OK"

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

# --- live: a value past max_stale is not "live" ---
# ttl 1 s, max_stale 1 s: once SSM refuses, the value this host holds is served for 2 s, then
# every page of the host would fail, and live must say so.
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
FPM_EXTRA_INI=(-d ssm_db_config.max_stale=1)
FPMHC_ARGS="/health/db 1 4"
restart_fpm FPMHC
hc /health/live
check "health live: 200 LIVE_OK with a value just fetched (ttl 1 s, max_stale 1 s)" test "$CODE $BODY" = "200 LIVE_OK"
"$PY" "$T/ssm.py" fault refuse
live_too_old() { hc /health/live; [ "$CODE" = 503 ]; }
wait_for 15 live_too_old || true
"$PY" "$T/ssm.py" fault none
check "health live: SSM refusing past ttl + max_stale answers 503 NOT_LIVE config_too_old ($CODE $BODY)" \
  test "$CODE $BODY" = "503 NOT_LIVE config_too_old"
FPM_EXTRA_INI=()
FPMHC_ARGS="/health/db 60 4"
restart_fpm FPMHC
