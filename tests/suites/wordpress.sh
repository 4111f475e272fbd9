#!/usr/bin/env bash
# End-to-end tests of the WordPress plugin (wp-plugin/), against real servers only:
# moto (tests/support/stack.py), two MariaDB servers, a MariaDB that requires TLS (a
# throw-away CA made with openssl), a MariaDB on ::1, a PostgreSQL primary and a
# pg_basebackup standby, php-fpm with the built extension, nginx serving a copy of Debian's
# WordPress (and a second copy turned into a multisite network, driven from the CLI), and
# Debian's chromium driven by Playwright. Every server runs in a temporary folder on a free
# loopback port and is stopped on exit.
#
# Assumes scripts/setup has run; run from the repository root:
#     tests/suites/wordpress.sh            run every test
#     tests/suites/wordpress.sh --serve    start the site, print its URL and admin login, wait
# The extension: ${SSM_DB_CONFIG_SO:-$PWD/target/release/libssm_db_config.so}.
# The WordPress: ${WP_SOURCE:-/usr/share/wordpress} (a Debian `wordpress` package's tree).
# The PHP: the `php` on PATH, with the php-fpm of its version (PHP_FPM overrides). Python
# with moto: ${PY:-.venv/bin/python}. The browser: .venv's Playwright, or, with
# BROWSER_BROKER=DIR, whoever answers on the FIFOs DIR/request and DIR/reply (inside the
# Debian 13 root, the host's Chromium: tests/suites/wordpress84.sh).
# error_reporting is E_ALL and WP_DEBUG is on (shown nowhere, logged): any deprecation
# notice from the plugin or its drop-ins fails the suite.
# Screenshots and saved pages: ${WP_ARTIFACTS:-tests/artifacts/wordpress}/. KEEP_RUN=1 keeps
# the run folder.
# The last line of output is "N passed, M failed"; the exit status is non-zero on any failure.
set -euo pipefail

ROOT=$PWD
[ -d "$ROOT/wp-plugin" ] && [ -f "$ROOT/tests/support/stack.py" ] || { echo "run from the repository root"; echo "0 passed, 1 failed"; exit 1; }
SO=${SSM_DB_CONFIG_SO:-$ROOT/target/release/libssm_db_config.so}
PY=${PY:-$ROOT/.venv/bin/python}
WP_SOURCE=${WP_SOURCE:-/usr/share/wordpress}
# Debian keeps PostgreSQL's server programs (initdb, pg_ctl) out of PATH.
if ! command -v initdb >/dev/null; then
  for pg_bin in /usr/lib/postgresql/*/bin; do PATH=$pg_bin:$PATH; done
fi
T=$ROOT/tests/wordpress
export AWS_EC2_METADATA_DISABLED=true

RUN=$(mktemp -d /tmp/ssm-db-config-wp.XXXXXX)
chmod 755 "$RUN"
ARTIFACTS=${WP_ARTIFACTS:-$ROOT/tests/artifacts/wordpress}
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS" "$RUN/bodies"
# shellcheck source=../wordpress/lib.sh
source "$T/lib.sh"
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that a signal runs the EXIT trap and stops every server
exec > >(tee "$RUN/output.log") 2>&1

if [ ! -f "$SO" ]; then
  echo "not ok - the extension is built ($SO is missing)"
  echo "0 passed, 1 failed"
  exit 1
fi

# The one database password of this run. It must never show up in a page, a log or this output.
CANARY="Canary-Pa55-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
ADMIN_PASS="admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
SUBSCRIBER_PASS="sub-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export CANARY ADMIN_PASS SUBSCRIBER_PASS RUN SO ARTIFACTS

phase() { echo "# $* ($(date -u +%H:%M:%S))"; }
WP_VERSION=$(sed -n "s/^\$wp_version = '\(.*\)';/\1/p" "$WP_SOURCE/wp-includes/version.php")
echo "# PHP $(php -r 'echo PHP_VERSION;'), WordPress $WP_VERSION ($WP_SOURCE), $(mariadbd --version | sed -e 's/ for .*//' -e 's/  */ /g'), $(postgres --version 2>/dev/null || "$(dirname "$(command -v initdb)")/postgres" --version)"

phase "AWS: moto and the counting proxy"
# TMPDIR: moto's folder (and its log) lands in $RUN, is searched for the canary, and is removed.
mkdir -p "$RUN/aws"
TMPDIR=$RUN/aws "$PY" "$ROOT/tests/support/stack.py" --env-file "$RUN/aws.env" >"$RUN/stack.log" 2>&1 &
PIDS+=($!)
wait_for 60 test -s "$RUN/aws.env"
# shellcheck disable=SC1091
source "$RUN/aws.env"
ssm_put() { SSM_VALUE=$2 "$PY" "$T/ssm.py" put "$1"; }
ssm_delete() { "$PY" "$T/ssm.py" delete "$1"; }
ssm_count() { "$PY" "$T/ssm.py" count; }

phase "databases: MariaDB A and B, PostgreSQL primary and standby"
start_mariadb MA
start_mariadb MB
for db in MA MB; do
  mariadb_sql "$db" <<SQL
CREATE DATABASE wp;
CREATE USER 'wp'@'%' IDENTIFIED BY '$CANARY';
GRANT ALL ON wp.* TO 'wp'@'%';
SQL
done
start_postgres PGP
pg_sql PGP <<SQL
CREATE ROLE app LOGIN PASSWORD '$CANARY';
CREATE DATABASE app OWNER app;
SQL
start_pg_standby PGS PGP

phase "databases: MariaDB that requires TLS, MariaDB on ::1"
TLS=$RUN/tls
make_tls_certs "$TLS" "$MYSQL_OS_USER"
start_mariadb MT 127.0.0.1 --ssl-ca="$TLS/ca.pem" --ssl-cert="$TLS/server.pem" \
  --ssl-key="$TLS/server-key.pem" --require-secure-transport=ON
start_mariadb M6 ::1
for db in MT M6; do
  mariadb_sql "$db" <<SQL
CREATE DATABASE wp;
CREATE USER 'wp'@'%' IDENTIFIED BY '$CANARY';
GRANT ALL ON wp.* TO 'wp'@'%';
SQL
done
CLOSED_PORT=$(free_port)   # Nothing listens here: "the parameter points at nowhere".
export MA_PORT MB_PORT PGP_PORT PGS_PORT CLOSED_PORT MA_SOCK MB_SOCK MT_PORT M6_PORT TLS

ssm_put /wp/db "mysql://wp:$CANARY@127.0.0.1:$MA_PORT/wp"

phase "WordPress: a copy of $WP_SOURCE with the plugin"
WP=$RUN/wordpress
cp -a "$WP_SOURCE" "$WP"
rm -f "$WP/.htaccess" "$WP/wp-config.php"
# Debian links some libraries relatively (wp-includes/js/underscore.min.js ->
# ../../../javascript/underscore/...): point the copies at the same files absolutely.
(cd "$WP_SOURCE" && find . -type l) | while read -r link; do
  if [ -e "$WP_SOURCE/$link" ]; then ln -sfn "$(readlink -f "$WP_SOURCE/$link")" "$WP/$link"; fi
done
cp -r "$ROOT/wp-plugin" "$WP/wp-content/plugins/ssm-db-config"
mkdir -p "$WP/wp-content/mu-plugins"
cp "$T/mu-test-site.php" "$WP/wp-content/mu-plugins/"
WP_PORT=$(free_port)
HC_PORT=$(free_port)
WP_URL=http://127.0.0.1:$WP_PORT
export WP WP_URL HC_PORT
sed_args=(-e "s#@WP_URL@#$WP_URL#g")
for i in 1 2 3 4 5 6 7 8; do sed_args+=(-e "s#@KEY$i@#$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')#"); done
sed "${sed_args[@]}" "$T/wp-config.php.in" >"$WP/wp-config.php"
give www-data "$WP/wp-content"
php -d error_reporting=E_ALL -d "extension=$SO" -d ssm_db_config.parameter=/wp/db "$T/install-wordpress.php" "$WP" >"$RUN/install.log" 2>&1 \
  || { cat "$RUN/install.log"; echo "not ok - WordPress installs"; echo "0 passed, 1 failed"; exit 1; }

phase "php-fpm and nginx"
start_fpm FPMWP /wp/db 300 1        # One worker: "the next request" is served by the same cache.
start_fpm FPMHC /health/db 60 4     # Health endpoints: restarted by each case (health.sh).
mkdir -p "$RUN/nginx/tmp"
# The health endpoints, allowed for 127.0.0.1 (SSM_DB_CONFIG_HEALTH_ALLOW) as the documented
# nginx recipe does; under /closed/ with no setting, /token/ with a token only, /elsewhere/
# for other addresses only, /typo/ with a malformed list: all of those must stay closed to
# this client unless it sends the token.
HEALTH_TOKEN="hc-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export HEALTH_TOKEN
health_location() {  # health_location PATH FILE PORT [FASTCGI_PARAM VALUE]...
  local path=$1 file=$2 port=$3 params=""
  shift 3
  while [ $# -ge 2 ]; do params="$params fastcgi_param $1 \"$2\";"; shift 2; done
  echo "    location = $path { include /etc/nginx/fastcgi_params; fastcgi_param HTTP_HOST \$host:\$server_port;$params fastcgi_param SCRIPT_FILENAME $WP/wp-content/plugins/ssm-db-config/health/$file; fastcgi_pass 127.0.0.1:$port; }"
}
health_locations() {
  local f
  for f in live db; do
    health_location "/health/$f" "$f.php" "$1" SSM_DB_CONFIG_HEALTH_ALLOW "127.0.0.1, ::1"
    health_location "/closed/$f" "$f.php" "$1"
    health_location "/token/$f" "$f.php" "$1" SSM_DB_CONFIG_HEALTH_TOKEN "$HEALTH_TOKEN"
    health_location "/elsewhere/$f" "$f.php" "$1" SSM_DB_CONFIG_HEALTH_ALLOW "10.0.0.0/8 2001:db8::/32 127.0.0.2"
    health_location "/typo/$f" "$f.php" "$1" SSM_DB_CONFIG_HEALTH_ALLOW "127.0.0.0/33"
  done
}
cat >"$RUN/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log;
$( [ "$(id -u)" = 0 ] && echo "user www-data;" )
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log $RUN/nginx/access.log;
  client_body_temp_path $RUN/nginx/tmp/body;
  fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
  proxy_temp_path $RUN/nginx/tmp/proxy;
  uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
  scgi_temp_path $RUN/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$WP_PORT;
    root $WP;
    index index.php;
$(health_locations "$FPMWP_PORT")
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params; fastcgi_param HTTP_HOST \$host:\$server_port;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass 127.0.0.1:$FPMWP_PORT;
    }
  }
  server {
    listen 127.0.0.1:$HC_PORT;
    root $RUN/nginx/empty;
$(health_locations "$FPMHC_PORT")
  }
}
NGX
mkdir -p "$RUN/nginx/empty"
nginx -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/error.log" &
PIDS+=($!)
wait_for 20 curl -sf -o /dev/null "$WP_URL/wp-login.php"

if [ "${1:-}" = --serve ]; then
  # For people: the same WordPress, left running until Ctrl-C. The admin password is this
  # throw-away site's; the database password stays in SSM and is never printed.
  echo "WordPress: $WP_URL/wp-admin/  (user admin, password $ADMIN_PASS)"
  echo "Tools → Database Config: $WP_URL/wp-admin/tools.php?page=ssm-db-config"
  echo "Health: $WP_URL/health/live  $WP_URL/health/db"
  echo "Press Ctrl-C to stop every server."
  SUMMARY_PRINTED=1
  sleep infinity &
  PIDS+=($!)
  wait $! || true
  exit 0
fi

phase "PHPUnit: the plugin's logic, with the extension loaded, in the installed WordPress"
php -d error_reporting=E_ALL -d "extension=$SO" -d ssm_db_config.parameter=/wp/db -d ssm_db_config.ttl=300 -d ssm_db_config.timeout_ms=1000 \
  /usr/bin/phpunit -c "$T/phpunit/phpunit.xml" --log-junit "$RUN/phpunit.xml" >"$RUN/phpunit.log" 2>&1 || true
cat "$RUN/phpunit.log"
"$PY" "$T/junit_tap.py" "$RUN/phpunit.xml" >"$RUN/phpunit.tap" || echo "not ok - PHPUnit wrote a report" >>"$RUN/phpunit.tap"
cat "$RUN/phpunit.tap"
count_tap "$RUN/phpunit.tap"

phase "the admin page without the extension"
php -d error_reporting=E_ALL "$T/without-extension.php" >"$RUN/noext.tap" 2>"$RUN/noext.err" || echo "not ok - the page renders without the extension (exit status)" >>"$RUN/noext.tap"
cat "$RUN/noext.tap" "$RUN/noext.err"
count_tap "$RUN/noext.tap"

phase "multisite: the admin page on a network"
cp -a "$WP" "$RUN/wpms"
if php -d "extension=$SO" -d ssm_db_config.parameter=/wp/db "$T/multisite.php" install "$RUN/wpms" >"$RUN/multisite-install.log" 2>&1; then
  php -d "extension=$SO" -d ssm_db_config.parameter=/wp/db "$T/multisite.php" test "$RUN/wpms" >"$RUN/multisite.tap" 2>"$RUN/multisite.err" \
    || echo "not ok - multisite: the test ran to its end (exit status)" >>"$RUN/multisite.tap"
else
  tail -20 "$RUN/multisite-install.log"
  echo "not ok - multisite: WordPress becomes a network" >"$RUN/multisite.tap"
fi
cat "$RUN/multisite.tap" "$RUN/multisite.err" 2>/dev/null
count_tap "$RUN/multisite.tap"

phase "health endpoints"
source "$T/health.sh"

phase "browser: Tools → Database Config in Chromium"
if [ -n "${BROWSER_BROKER:-}" ]; then
  # The browser runs outside this system: ask for it with what browser.py reads (each
  # NAME=value on a line, an empty line ends it), and wait for its exit status. The
  # passwords go through the FIFO, never into a file.
  {
    for name in WP_URL WP PROXY_URL ADMIN_PASS SUBSCRIBER_PASS CANARY ARTIFACTS RUN; do printf '%s=%s\n' "$name" "${!name}"; done
    echo
  } >"$BROWSER_BROKER/request"
  browser_status=
  read -r -t 900 browser_status <"$BROWSER_BROKER/reply" || true
  [ "$browser_status" = 0 ] || echo "not ok - the browser test ran to its end (status ${browser_status:-none})" >>"$RUN/browser.tap"
else
  "$PY" "$T/browser.py" >"$RUN/browser.tap" 2>&1 || echo "not ok - the browser test ran to its end" >>"$RUN/browser.tap"
fi
cat "$RUN/browser.tap"
count_tap "$RUN/browser.tap"

phase "a connection lost inside a request (db.php drop-in)"
source "$T/reconnect.sh"

phase "failover through WordPress"
source "$T/failover.sh"
source "$T/throttle.sh"

phase "WordPress with ssm_db_config.define_constants"
source "$T/define-constants.sh"

phase "deprecation notices from the plugin and its drop-ins (error_reporting=E_ALL)"
# Every PHP log of the run: the php-fpm pools' error logs, and what the PHP command lines
# printed. A notice counts as ours when it names a file of the plugin or a drop-in.
ours="$WP/wp-content/plugins/ssm-db-config/|$WP/wp-content/db\.php|$WP/wp-content/db-error\.php"
php_logs=("$RUN"/*/php-error.log "$RUN/install.log" "$RUN/phpunit.log" "$RUN/noext.err")
deprecated=$(cat "${php_logs[@]}" 2>/dev/null | grep -E 'Deprecated:' | grep -E "$ours" | sort | uniq -c || true)
check "no deprecation notice from the plugin or a drop-in on PHP $(php -r 'echo PHP_VERSION;')" test -z "$deprecated"
[ -z "$deprecated" ] || echo "$deprecated" | sed 's/^/# /'
others=$(cat "${php_logs[@]}" 2>/dev/null | grep -cE 'Deprecated:' || true)
echo "# deprecation notices in all: $others (WordPress's own and the tests' included)"

phase "the canary password"
leaks=$(grep -rlF --exclude-dir=data -- "$CANARY" "$RUN" "$ARTIFACTS" 2>/dev/null | grep -v '/output.log$' || true)
check "the canary password is in no page, body, log or artifact" test -z "$leaks"
[ -z "$leaks" ] || echo "# found in: $leaks"
# This output itself (everything printed so far).
sleep 0.2
check "the canary password is not in the test output" bash -c '! grep -qF -- "$CANARY" "$RUN/output.log"'

summary
[ "$FAILED" = 0 ]
