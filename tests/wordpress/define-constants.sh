# WordPress with ssm_db_config.define_constants (sourced by tests/suites/wordpress.sh, after
# failover.sh): the pool's one worker defines DB_HOST ... once and keeps them across requests,
# with opcache on (Debian's default for php-fpm), and a failover reaches them: after the
# request that db.php reconnected, the next one is served from the new server by the kept
# constants alone, with no drop-in installed and no SSM fetch.

D=0
# dc_page: GET the front page; sets CODE and BODY_FILE.
dc_page() {
  D=$((D + 1))
  BODY_FILE=$RUN/bodies/define-constants-$D.body
  CODE=$(curl -s -m 20 -o "$BODY_FILE" -w '%{http_code}' "$WP_URL/" || echo 000)
}
# dc_state: what the worker's status says; sets STATE to "<state> <pid> <DB_HOST or ->".
dc_state() { STATE=$(curl -s -m 20 "$WP_URL/constants-state.php" || echo none); }

restart_mariadb MA
restart_mariadb MB
ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MA_PORT/wp"
rm -f "$WP/wp-content/db-error.php"
install -m 644 "$dropin_src/db.php" "$WP/wp-content/db.php"
cat >"$WP/constants-state.php" <<'PHP'
<?php
$s = ssm_db_config_status();
echo $s['define_constants_state'], ' ', $s['pid'], ' ', defined('DB_HOST') ? DB_HOST : '-';
if (isset($_GET['opcache'])) {
    $o = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
    echo ' opcache:', $o && $o['opcache_enabled'] ? 'on' : 'off';
}
PHP
FPM_EXTRA_INI=(-d ssm_db_config.define_constants=1)
restart_fpm FPMWP

dc_page
check "define_constants: the front page is served from server A (HTTP $CODE)" \
  bash -c "[ $CODE = 200 ] && grep -qF 'SSM DB Config test site' '$BODY_FILE'"
dc_state
worker=$(echo "$STATE" | cut -d' ' -f2)
check "define_constants: the worker keeps the constants, DB_HOST is server A ($STATE)" \
  test "$STATE" = "kept $worker 127.0.0.1:$MA_PORT"
before=$(ssm_count)
ok=0
for i in $(seq 1 20); do dc_page; [ "$CODE" = 200 ] && grep -qF 'SSM DB Config test site' "$BODY_FILE" && ok=$((ok + 1)); done
check "define_constants: 20 more pages from server A ($ok of 20), no SSM fetch ($(( $(ssm_count) - before )))" \
  test "$ok $(( $(ssm_count) - before ))" = "20 0"

ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
stop_mariadb MA
dc_page
check "define_constants: failover, db.php reconnects the request to server B (HTTP $CODE)" \
  bash -c "[ $CODE = 200 ] && grep -qF 'Site on server B' '$BODY_FILE'"
rm -f "$WP/wp-content/db.php"
before=$(ssm_count)
dc_page
check "define_constants: without any drop-in, the next page is served from server B (HTTP $CODE)" \
  bash -c "[ $CODE = 200 ] && grep -qF 'Site on server B' '$BODY_FILE'"
dc_state
check "define_constants: by the same worker, its kept DB_HOST now server B's ($STATE)" \
  test "$STATE" = "kept $worker 127.0.0.1:$MB_PORT"
check "define_constants: with no SSM fetch ($(( $(ssm_count) - before )))" test "$(ssm_count)" = "$before"
check "define_constants: with opcache on in the pool" bash -c "curl -s -m 20 '$WP_URL/constants-state.php?opcache=1' | grep -q ' opcache:on$'"
check "define_constants: no worker crashed" bash -c "! grep -qE 'SIGSEGV|SIGABRT|SIGBUS' '$RUN/FPMWP/php-fpm.log'"
