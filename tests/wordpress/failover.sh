# Failover through WordPress (sourced by tests/suites/wordpress.sh): two MariaDB servers, the
# parameter switched from one to the other and the first stopped. WordPress' php-fpm pool has
# one worker and a TTL of 300 s, so only the drop-ins can make it notice the change.

F=0
# page: GET the front page; sets CODE, BODY_FILE, HEADERS.
page() {
  F=$((F + 1))
  BODY_FILE=$RUN/bodies/failover-$F.body
  HEADERS=$RUN/bodies/failover-$F.headers
  CODE=$(curl -s -m 20 -o "$BODY_FILE" -D "$HEADERS" -w '%{http_code}' "$WP_URL/" || echo 000)
}
body_has() { grep -qF -- "$1" "$BODY_FILE"; }
header_is() { grep -qi "^$1: *$2" "$HEADERS"; }
dropin_src=$WP/wp-content/plugins/ssm-db-config/dropins

# Server B gets A's data (as a promoted replica would have) and its own site title, so that a
# page shows which server it came from.
mariadb-dump --no-defaults --socket="$MA_SOCK" -u"$DB_ADMIN" --single-transaction wp \
  | mariadb --no-defaults --socket="$MB_SOCK" -u"$DB_ADMIN" wp
echo "UPDATE wp.wp_options SET option_value = 'Site on server B' WHERE option_name = 'blogname';" | mariadb_sql MB

# --- db.php: the request that meets the dead server reconnects to the new one ---
if [ ! -f "$WP/wp-content/db.php" ]; then
  echo "# db.php was not installed by the browser test; copying it"
  install -m 644 "$dropin_src/db.php" "$WP/wp-content/db.php"
fi
rm -f "$WP/wp-content/db-error.php"
page
check "failover: before, the front page is served from server A" bash -c "[ $CODE = 200 ] && grep -qF 'SSM DB Config test site' '$BODY_FILE'"
before=$(ssm_count)
ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
stop_mariadb MA
page
check "failover with db.php: the next page view succeeds (HTTP $CODE)" test "$CODE" = 200
check "failover with db.php: it is served from server B" body_has "Site on server B"
after=$(ssm_count)
check "failover with db.php: one SSM fetch ($((after - before)))" test $((after - before)) = 1
page
check "failover with db.php: the page after that is served from B too" bash -c "[ $CODE = 200 ] && grep -qF 'Site on server B' '$BODY_FILE'"

# --- db-error.php only: the first request fails with 503, the next one succeeds ---
rm -f "$WP/wp-content/db.php"
install -m 644 "$dropin_src/db-error.php" "$WP/wp-content/db-error.php"
restart_mariadb MA
ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MA_PORT/wp"
stop_mariadb MB
sleep 1.1   # Past the rate limit's second since the last refresh.
before=$(ssm_count)
page
check "failover with db-error.php: the first request answers 503 (HTTP $CODE)" test "$CODE" = 503
check "failover with db-error.php: with Retry-After: 1" header_is Retry-After 1
check "failover with db-error.php: with Cache-Control: no-store" header_is Cache-Control no-store
page
check "failover with db-error.php: the next request succeeds (HTTP $CODE)" test "$CODE" = 200
check "failover with db-error.php: it is served from server A" body_has "SSM DB Config test site"
after=$(ssm_count)
check "failover with db-error.php: one SSM fetch ($((after - before)))" test $((after - before)) = 1

# --- the rate limit during an outage: many failing requests, few fetches ---
# Both servers down: every request fails, and each one would like to ask SSM again.
ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
stop_mariadb MA
sleep 1.1
before=$(ssm_count)
start=$(date +%s.%N)
codes=""
for i in $(seq 1 20); do page; codes="$codes $CODE"; done
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
after=$(ssm_count)
fetches=$((after - before))
max=$(awk -v e="$elapsed" 'BEGIN { print int(e) + 2 }')
check "outage: 20 failing requests in ${elapsed}s made $fetches SSM fetches (at least 1, at most $max)" \
  test "$fetches" -ge 1 -a "$fetches" -le "$max"
check "outage: every failing request answers 503 ($codes )" test "$(echo $codes | tr ' ' '\n' | sort -u)" = 503

# MariaDB stopped, for the health endpoint (B is down now).
point_health_at "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
hc /health/db
check "health db: MariaDB stopped answers 503" test "$CODE $BODY" = "503 NOT_WRITER connect_failed"
check "health db: MariaDB stopped answered within 1.5 s (took $TIME s)" under "$TIME" 1.5
hc /health/live
check "health live: 200 while MariaDB is down" test "$CODE $BODY" = "200 LIVE_OK"
