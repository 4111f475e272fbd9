#!/usr/bin/env bash
# A real WordPress front page (its default theme, a few posts, MariaDB), served
# by one php-fpm worker, three ways:
#   (h) wp-config.php with hard-coded define() lines, no extension loaded
#   (d) wp-config.php calling ssm_db_config_define() (TTL 3600 s)
#   (c) ssm_db_config.define_constants = 1, no DB_* line in wp-config.php
# and for each:
#   - instructions per request of the worker (valgrind's callgrind, dumped as
#     each request starts, so each dump is one request's whole cycle): the
#     median of REQUESTS requests after WARM, and (d) and (c) against (h) as a
#     share of the page (target: at most 0.1 %);
#   - private memory per worker of a pool of POOL workers (default 4, pm
#     static, no valgrind) after WARM rounds of POOL concurrent requests: the
#     mean over the workers of Private_Clean + Private_Dirty, and of
#     Private_Dirty alone (/proc/PID/smaps_rollup, kB), (d) and (c) against
#     (h) (target: 256 kB mean). As in production, the master loaded the
#     extension before the fork, so its relocated pages are shared; one
#     worker fetches, the others take the value from the host's shared entry.
#     Every worker must have served pages (its CPU time says so), or the run
#     fails.
# Counts are repeatable on a shared machine where times are not.
#
#   bench/wordpress.sh                         this machine's PHP and WordPress
#   WP_SOURCE=DIR bench/wordpress.sh           another WordPress tree
#   MEMORY_ONLY=1 bench/wordpress.sh           the memory figures alone (no valgrind)
# In the Debian 13 root (PHP 8.4, WordPress 6.8 and 7.1): bench/php84 runs it
# there. Needs valgrind. Servers on free loopback ports in a temporary folder,
# stopped on exit. Figures: docs/benchmarks-php.md.
# shellcheck disable=SC2034 # SO, FPM_WRAP and SUMMARY_PRINTED are read by tests/wordpress/lib.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T=$ROOT/tests/wordpress
SO_EXT=${SSM_DB_CONFIG_SO:-$ROOT/target/release/libssm_db_config.so}
PY=${PY:-$ROOT/.venv/bin/python}
WP_SOURCE=${WP_SOURCE:-/usr/share/wordpress}
WARM=${WARM:-5}
REQUESTS=${REQUESTS:-15}
POOL=${POOL:-4}
export AWS_EC2_METADATA_DISABLED=true
[ -n "${MEMORY_ONLY:-}" ] || command -v valgrind >/dev/null || { echo "bench/wordpress.sh: valgrind is not installed" >&2; exit 2; }
command -v cgi-fcgi >/dev/null || { echo "bench/wordpress.sh: cgi-fcgi is not installed (libfcgi-bin)" >&2; exit 2; }

RUN=$(mktemp -d /tmp/ssm-db-config-wpbench.XXXXXX)
chmod 755 "$RUN"
SO=$SO_EXT
# shellcheck source=../tests/wordpress/lib.sh
source "$T/lib.sh"
SUMMARY_PRINTED=1   # lib.sh's cleanup prints a test summary otherwise
trap cleanup EXIT
trap 'exit 143' TERM INT
ADMIN_PASS="admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
SUBSCRIBER_PASS="sub-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
DB_PASS="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
WP_URL=http://127.0.0.1:8080   # never requested: the requests go to php-fpm directly
export ADMIN_PASS SUBSCRIBER_PASS WP_URL RUN

mkdir -p "$RUN/aws"
TMPDIR=$RUN/aws "$PY" "$ROOT/tests/support/stack.py" --env-file "$RUN/aws.env" >"$RUN/stack.log" 2>&1 &
PIDS+=($!)
wait_for 60 test -s "$RUN/aws.env"
# shellcheck disable=SC1091
source "$RUN/aws.env"
start_mariadb MA
mariadb_sql MA <<SQL
CREATE DATABASE wp;
CREATE USER 'wp'@'%' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON wp.* TO 'wp'@'%';
SQL
SSM_VALUE="mysql://wp:$DB_PASS@127.0.0.1:$MA_PORT/wp" "$PY" "$T/ssm.py" put /bench/db

WP=$RUN/wordpress
cp -a "$WP_SOURCE" "$WP"
rm -f "$WP/.htaccess" "$WP/wp-config.php"
(cd "$WP_SOURCE" && find . -type l) | while read -r link; do
  if [ -e "$WP_SOURCE/$link" ]; then ln -sfn "$(readlink -f "$WP_SOURCE/$link")" "$WP/$link"; fi
done
cp -r "$ROOT/wp-plugin" "$WP/wp-content/plugins/ssm-db-config"   # install-wordpress.php activates it
WP_VERSION=$(sed -n "s/^\$wp_version = '\(.*\)';/\1/p" "$WP/wp-includes/version.php")
PHP_VERSION=$(php -r 'echo PHP_VERSION;')

# wp-config.php: the database lines of each case, then the same rest.
config() {
  case $1 in
    h) printf "define( 'DB_NAME', 'wp' );\ndefine( 'DB_USER', 'wp' );\ndefine( 'DB_PASSWORD', '%s' );\ndefine( 'DB_HOST', '127.0.0.1:%s' );\n" "$DB_PASS" "$MA_PORT" ;;
    d) echo "ssm_db_config_define();" ;;
    c) echo "// DB_* come from ssm_db_config.define_constants." ;;
  esac
  cat <<'PHP'
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'WP_HOME', 'http://127.0.0.1:8080' );
define( 'WP_SITEURL', 'http://127.0.0.1:8080' );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'DISABLE_WP_CRON', true );
$table_prefix = 'wp_';
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
PHP
}
{ echo "<?php"; config h; } >"$WP/wp-config.php"
give www-data "$WP/wp-content"
php "$T/install-wordpress.php" "$WP" >"$RUN/install.log" 2>&1 || { cat "$RUN/install.log"; exit 1; }
# The front page of a small blog: a few posts, the plugin off (what is measured is the
# extension, in wp-config.php).
php -r '
require $argv[1] . "/wp-load.php";
for ($i = 1; $i <= 4; $i++) {
    wp_insert_post(["post_title" => "Post $i", "post_content" => str_repeat("A paragraph of post $i. ", 40), "post_status" => "publish"]);
}
update_option("active_plugins", []);
' "$WP" >>"$RUN/install.log" 2>&1

# request PORT: GET / from the pool at PORT over FastCGI; fails unless it is the front page.
request() {
  local body
  body=$(env -i SCRIPT_FILENAME="$WP/index.php" SCRIPT_NAME=/index.php REQUEST_METHOD=GET REQUEST_URI=/ \
    QUERY_STRING= SERVER_NAME=127.0.0.1 SERVER_PORT=8080 HTTP_HOST=127.0.0.1:8080 SERVER_PROTOCOL=HTTP/1.1 \
    DOCUMENT_ROOT="$WP" GATEWAY_INTERFACE=CGI/1.1 cgi-fcgi -bind -connect "127.0.0.1:$1")
  grep -q 'Post 4' <<<"$body" || { echo "bench/wordpress.sh: the front page is not served: ${body:0:300}" >&2; return 1; }
}

# pool CASE NAME CHILDREN [-d X=Y...]: starts php-fpm for a case; sets NAME_PORT, NAME_PID.
pool() {
  { echo "<?php"; config "$1"; } >"$WP/wp-config.php"
  FPM_EXTRA_INI=("${@:4}")
  SO=$SO_EXT
  case $1 in
    h) SO= ;;
    c) FPM_EXTRA_INI+=(-d ssm_db_config.define_constants=1) ;;
  esac
  start_fpm "$2" /bench/db 3600 "$3"
}

worker_of() { local w=; for _ in $(seq 1 100); do w=$(pgrep -P "$1" | head -n 1) && [ -n "$w" ] && break; sleep 0.1; done; echo "$w"; }

declare -A instructions memory dirty
for c in h d c; do
  # Memory: a pool, no valgrind; POOL requests at a time so that every worker serves.
  FPM_WRAP=()
  pool "$c" "MEM$c" "$POOL"
  port_var=MEM${c}_PORT pid_var=MEM${c}_PID
  for _ in $(seq 1 "$WARM"); do
    jobs=()
    for _ in $(seq 1 "$POOL"); do request "${!port_var}" & jobs+=($!); done
    for j in "${jobs[@]}"; do wait "$j"; done
  done
  workers=$(pgrep -P "${!pid_var}")
  [ "$(wc -w <<<"$workers")" = "$POOL" ] || { echo "bench/wordpress.sh: $POOL workers expected, found: $workers" >&2; exit 1; }
  for w in $workers; do
    # utime + stime in clock ticks: a worker that served a WordPress page has used tens of ms.
    ticks=$(awk '{print $14 + $15}' "/proc/$w/stat")
    [ "$ticks" -ge 2 ] || { echo "bench/wordpress.sh: worker $w served no page ($ticks ticks); raise WARM" >&2; exit 1; }
  done
  read -r memory[$c] dirty[$c] < <(for w in $workers; do cat "/proc/$w/smaps_rollup"; done |
    awk -v n="$POOL" '/^Private_(Clean|Dirty):/ {s += $2} /^Private_Dirty:/ {d += $2} END {printf "%d %d\n", s / n, d / n}')
  kill "${!pid_var}"
  if [ -n "${MEMORY_ONLY:-}" ]; then instructions[$c]=0; continue; fi

  # Instructions: callgrind, a dump as each request starts.
  # The worker writes its counts, and runs as www-data when we are root.
  mkdir -p "$RUN/cg"
  give www-data "$RUN/cg"
  out=$RUN/cg/$c
  FPM_WRAP=(valgrind --tool=callgrind --separate-threads=yes --dump-instr=no --dump-before=php_request_startup
    "--callgrind-out-file=$out.%p")
  # The first fetch (the AWS SDK's set-up) takes longer than 1 s under valgrind.
  pool "$c" "CG$c" 1 -d ssm_db_config.timeout_ms=60000
  port_var=CG${c}_PORT pid_var=CG${c}_PID
  for _ in $(seq 1 $((WARM + REQUESTS + 1))); do request "${!port_var}"; done
  worker=$(worker_of "${!pid_var}")
  kill "${!pid_var}"
  # Dump n is taken as request n starts, so it holds request n - 1.
  instructions[$c]=$(for n in $(seq $((WARM + 2)) $((WARM + REQUESTS + 1))); do
      sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' "$out.$worker.$n-01" | head -n 1
    done | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
done

echo "== PHP $PHP_VERSION, WordPress $WP_VERSION: the front page (callgrind: one worker, median of $REQUESTS requests after $WARM; memory: mean of a pool of $POOL workers)"
printf '%-40s %12s %10s %9s %11s %8s %9s %8s\n' "" "instructions" "vs (h)" "share" "private kB" "vs (h)" "dirty kB" "vs (h)"
for c in h d c; do
  case $c in
    h) label="(h) hard-coded define(), no extension" ;;
    d) label="(d) ssm_db_config_define()" ;;
    c) label="(c) define_constants = 1" ;;
  esac
  awk -v l="$label" -v n="${instructions[$c]}" -v b="${instructions[h]}" -v m="${memory[$c]}" -v mb="${memory[h]}" \
    -v d="${dirty[$c]}" -v db="${dirty[h]}" \
    'BEGIN {share = b ? sprintf("%8.3f%%", (n - b) * 100 / b) : "-"
           printf "%-40s %12d %+10d %9s %11d %+8d %9d %+8d\n", l, n, n - b, share, m, m - mb, d, d - db}'
done
