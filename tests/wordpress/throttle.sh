# A failover while SSM throttles (sourced by tests/suites/wordpress.sh, after failover.sh):
# WordPress' pool with 8 workers and the drop-ins, the parameter switched from MariaDB A to B
# and A stopped, while the proxy answers every GetParameter with ThrottlingException for 12 s.
# Every failing request asks for a refresh (db.php); the host must still ask SSM only as the
# policy allows (core::plan, core::policy): forced refreshes once per second per host from the
# last attempt, and none while the host backs off. A throttle is not retried inside a fetch,
# and the backoff after the n-th throttled fetch in a row is at least half of 5 s × 2^(n-1):
# attempts at 0, ≥ 2.5 s, ≥ 7.5 s, ≥ 17.5 s. So at most 3 requests fall in the 12 s window,
# and the first one after it succeeds: at most 4 requests until the host serves B.
# (Forced refreshes that skipped the backoff made one request a second: 12 or more.)
phase "a failover while SSM throttles, 8 php-fpm workers with the drop-ins"

TH_WINDOW_MS=12000
# th_round: 8 front-page requests at once; sets TH_CODES (the distinct HTTP codes) and
# TH_FROM_B (how many came from B), and adds the codes to $RUN/throttle.codes.
th_round() {
  rm -f "$RUN"/bodies/throttle-*.body
  seq 1 8 | xargs -P 8 -I{} curl -s -m 20 -o "$RUN/bodies/throttle-{}.body" -w '%{http_code}\n' "$WP_URL/" >"$RUN/throttle.round" || true
  cat "$RUN/throttle.round" >>"$RUN/throttle.codes"
  TH_CODES=$(sort -u "$RUN/throttle.round" | tr '\n' ' ')
  TH_FROM_B=$(cat "$RUN"/bodies/throttle-*.body 2>/dev/null | grep -cF "Site on server B</title>" || true)
}

for db in MA MB; do stop_mariadb $db; restart_mariadb $db; done
ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MA_PORT/wp"
install -m 644 "$dropin_src/db.php" "$WP/wp-content/db.php"
install -m 644 "$dropin_src/db-error.php" "$WP/wp-content/db-error.php"
kill "$FPMWP_PID" 2>/dev/null || true
wait_for 10 bash -c "! kill -0 $FPMWP_PID 2>/dev/null"
start_fpm FPMWP /wp/db 300 8

th_round
check "throttle: before, 8 requests at once are served from A ($TH_CODES)" \
  bash -c "[ '$TH_CODES' = '200 ' ] && [ $TH_FROM_B = 0 ]"

before=$(ssm_count)
faulted_before=$("$PY" "$T/ssm.py" faulted)
"$PY" "$T/ssm.py" fault throttle 0 "$TH_WINDOW_MS"
ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MB_PORT/wp"
stop_mariadb MA
start=$(date +%s.%N)
echo "# throttle: failover at $start"
rounds=0
: >"$RUN/throttle.codes"
# Until a whole round is served from B (every worker has the new value), at most 60 s.
while :; do
  th_round
  rounds=$((rounds + 1))
  elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  [ "$TH_FROM_B" = 8 ] && break
  awk -v e="$elapsed" 'BEGIN { exit !(e > 60) }' && break
done
attempts=$(( $(ssm_count) - before ))
throttled=$(( $("$PY" "$T/ssm.py" faulted) - faulted_before ))
"$PY" "$T/ssm.py" recent | awk -v t0="$start" '$2 ~ /GetParameter/ && $1 > t0 - 1 { printf "# throttle: %+.2f s %s %s\n", $1 - t0, $2, $3 }'
echo "# throttle: $rounds rounds of 8 requests in ${elapsed}s; $attempts GetParameter requests, $throttled of them throttled"
check "throttle: every worker serves B after the window (${elapsed}s, $rounds rounds)" test "$TH_FROM_B" = 8
check "throttle: at most 3 requests were throttled in the 12 s window ($throttled)" test "$throttled" -ge 1 -a "$throttled" -le 3
check "throttle: at most 4 GetParameter requests until every worker serves B ($attempts)" test "$attempts" -le 4
codes=$(sort "$RUN/throttle.codes" | uniq -c | tr -s ' \n' ' ')
check "throttle: meanwhile every request answered 200 or the drop-in's 503, none hung ($codes)" \
  bash -c "! grep -qv -e '^200\$' -e '^503\$' '$RUN/throttle.codes'"

# Back to the one worker the later scenarios expect.
"$PY" "$T/ssm.py" fault none
kill "$FPMWP_PID" 2>/dev/null || true
wait_for 10 bash -c "! kill -0 $FPMWP_PID 2>/dev/null"
start_fpm FPMWP /wp/db 300 1
