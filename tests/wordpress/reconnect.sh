# A connection lost inside a request, with the db.php drop-in (sourced by
# tests/suites/wordpress.sh): tests/wordpress/reconnect.php through two fault proxies in front
# of MariaDB A (tests/wordpress/mysql_fault_proxy.py), with B read-only. Its own parameter,
# /wp/reconnect, so the site's /wp/db is left alone.

for db in MA MB; do
  echo "CREATE TABLE wp.reconnect_orders (id bigint AUTO_INCREMENT PRIMARY KEY, client_id varchar(64) NOT NULL, KEY (client_id)) ENGINE=InnoDB;" | mariadb_sql "$db"
done
echo "SET GLOBAL read_only = ON;" | mariadb_sql MB
mkdir -p "$RUN/proxy-tokens"
for p in P1 P2; do
  python3 "$T/mysql_fault_proxy.py" "$MA_PORT" "$RUN/proxy-tokens" >"$RUN/proxy-$p.port" 2>"$RUN/proxy-$p.log" &
  PIDS+=($!)
  eval "${p}_PID=$!"
  wait_for 10 test -s "$RUN/proxy-$p.port"
  eval "${p}_PORT=$(cat "$RUN/proxy-$p.port")"
done
ssm_put /wp/reconnect "mysql://wp:$CANARY@127.0.0.1:$P1_PORT/wp"
P1_PORT=$P1_PORT P2_PORT=$P2_PORT php -d error_reporting=E_ALL -d "extension=$SO" -d ssm_db_config.parameter=/wp/reconnect \
  -d ssm_db_config.ttl=300 -d ssm_db_config.shared_dir=off "$T/reconnect.php" "$WP" >"$RUN/reconnect.tap" 2>"$RUN/reconnect.err" \
  || echo "not ok - reconnect: the test ran to its end (exit status)" >>"$RUN/reconnect.tap"
cat "$RUN/reconnect.tap" "$RUN/reconnect.err"
count_tap "$RUN/reconnect.tap"
echo "SET GLOBAL read_only = OFF;" | mariadb_sql MB
for p in P1 P2; do pid_var="${p}_PID"; kill "${!pid_var}" 2>/dev/null || true; done
