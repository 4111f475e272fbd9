# Helpers for tests/suites/wordpress.sh: start servers on free loopback ports in $RUN, stop
# them on exit, and count results. Sourced, not run. Every server is ours: nothing system-wide
# is started or changed.

PASSED=0
FAILED=0
# MariaDB refuses to run as root: as root we run it as mysql and connect as root (unix_socket
# authentication); as anyone else it runs as that user, who is also its administrator.
if [ "$(id -u)" = 0 ]; then MYSQL_OS_USER=mysql DB_ADMIN=root; else MYSQL_OS_USER=$(id -un) DB_ADMIN=$(id -un); fi
export DB_ADMIN
PIDS=()          # Processes to stop on exit (servers started in the foreground of a subshell).
PG_DIRS=()       # PostgreSQL data folders to stop with pg_ctl.
FPM_EXTRA_INI=() # More -d directives for the php-fpm masters started from then on.
FPM_WRAP=()      # A command php-fpm runs under (bench/wordpress.sh: valgrind --tool=callgrind).
# The php-fpm binary: the one of the PHP that runs this script (php-fpm8.2 on Debian 12,
# php-fpm8.4 in the Debian 13 root), or $PHP_FPM.
PHP_FPM=${PHP_FPM:-php-fpm$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')}

# A free TCP port on 127.0.0.1 (and, most likely, on ::1).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_tls_certs DIR USER: a throw-away CA and a server certificate for 127.0.0.1, ::1 and
# localhost (ca.pem, server.pem, server-key.pem), plus a second CA that signed nothing
# (other-ca.pem), readable by USER.
make_tls_certs() {
  local dir=$1 user=$2
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ssm-db-config-test-ca \
      -keyout ca-key.pem -out ca.pem
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ssm-db-config-other-ca \
      -keyout other-ca-key.pem -out other-ca.pem
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server-key.pem -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
      -extfile san.ext -out server.pem
  ) >"$dir/openssl.log" 2>&1
  chmod 644 "$dir"/*.pem
  give "$user" "$dir"
}

# Runs a command as a non-root user when we are root (servers that refuse root).
as_user() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# The owner to give files a server writes (only when we are root).
give() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then chown -R "$user" "$@"; fi
}

pass() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }

# check NAME COMMAND...: one test: passes when the command succeeds.
check() {
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# Counts the "ok - " / "not ok - " lines a sub-suite printed into file $1.
count_tap() {
  local file=$1 ok bad
  ok=$(grep -c '^ok - ' "$file" || true)
  bad=$(grep -c '^not ok - ' "$file" || true)
  PASSED=$((PASSED + ok))
  FAILED=$((FAILED + bad))
}

wait_for() {  # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# start_mariadb NAME [BIND [MARIADBD_ARGS...]]: a MariaDB server in $RUN/NAME on a free port
# of BIND (127.0.0.1 by default; ::1 for IPv6); sets NAME_PORT and NAME_SOCK.
start_mariadb() {
  local name=$1 dir=$RUN/$1 port bind=${2:-127.0.0.1}
  shift; shift || true
  port=$(free_port)
  mkdir -p "$dir/data"
  give "$MYSQL_OS_USER" "$dir"
  mariadb-install-db --no-defaults --user="$MYSQL_OS_USER" --datadir="$dir/data" \
    --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1
  mariadbd --no-defaults --user="$MYSQL_OS_USER" --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --port="$port" --bind-address="$bind" --skip-name-resolve \
    --log-error="$dir/error.log" --innodb-buffer-pool-size=32M --skip-log-bin \
    --performance-schema=OFF "$@" >/dev/null 2>&1 &
  PIDS+=($!)
  eval "${name}_PORT=$port ${name}_SOCK=$dir/sock ${name}_PID=$!"
  wait_for 60 mariadb-admin --no-defaults --socket="$dir/sock" -u"$DB_ADMIN" ping
}

stop_mariadb() {  # stop_mariadb NAME
  local pid_var="${1}_PID"
  kill "${!pid_var}" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do kill -0 "${!pid_var}" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "${!pid_var}" 2>/dev/null || true
}

restart_mariadb() {  # restart_mariadb NAME: same data, same port
  local name=$1 dir=$RUN/$1 port_var="${1}_PORT"
  mariadbd --no-defaults --user="$MYSQL_OS_USER" --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --port="${!port_var}" --bind-address=127.0.0.1 --skip-name-resolve \
    --log-error="$dir/error.log" --innodb-buffer-pool-size=32M --skip-log-bin \
    --performance-schema=OFF >/dev/null 2>&1 &
  PIDS+=($!)
  eval "${name}_PID=$!"
  wait_for 60 mariadb-admin --no-defaults --socket="$dir/sock" -u"$DB_ADMIN" ping
}

mariadb_sql() {  # mariadb_sql NAME < SQL
  local sock_var="${1}_SOCK"
  mariadb --no-defaults --socket="${!sock_var}" -u"$DB_ADMIN" --batch --skip-column-names
}

# start_postgres NAME: a PostgreSQL primary in $RUN/NAME; sets NAME_PORT.
# Its dynamic shared memory is in files of the data folder (mmap), not in
# /dev/shm: a server killed or stopped with -m immediate (the failover checks
# and the cleanup do both) leaves nothing behind outside $RUN.
start_postgres() {
  local name=$1 dir=$RUN/$1 port
  port=$(free_port)
  mkdir -p "$dir"
  give postgres "$dir"
  as_user postgres initdb -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1
  write_pg_hba "$dir/data"
  as_user postgres pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c dynamic_shared_memory_type=mmap -c shared_buffers=16MB -c wal_level=replica -c max_wal_senders=4 -c fsync=off" \
    start >/dev/null
  PG_DIRS+=("$dir/data")
  eval "${name}_PORT=$port"
}

# start_pg_standby NAME PRIMARY: a streaming replica of PRIMARY, made with pg_basebackup.
start_pg_standby() {
  local name=$1 dir=$RUN/$1 primary_port_var="${2}_PORT" port
  port=$(free_port)
  mkdir -p "$dir"
  give postgres "$dir"
  as_user postgres pg_basebackup -h 127.0.0.1 -p "${!primary_port_var}" -U postgres \
    -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1
  as_user postgres pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c dynamic_shared_memory_type=mmap -c shared_buffers=16MB -c fsync=off" \
    start >/dev/null
  PG_DIRS+=("$dir/data")
  eval "${name}_PORT=$port"
}

stop_postgres() {  # stop_postgres NAME
  as_user postgres pg_ctl -D "$RUN/$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

write_pg_hba() {
  cat >"$1/pg_hba.conf" <<HBA
local all postgres trust
host replication postgres 127.0.0.1/32 trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA
}

pg_sql() {  # pg_sql NAME [DB] < SQL
  local port_var="${1}_PORT"
  as_user postgres psql -h "$RUN/$1" -p "${!port_var}" -U postgres -d "${2:-postgres}" \
    -v ON_ERROR_STOP=1 -qAt
}

# start_fpm NAME PARAMETER TTL CHILDREN: a php-fpm master with the extension, whose pool
# listens on a free port (sets NAME_PORT, NAME_PID). AWS settings come from the master's
# environment only (clear_env stays at its default), as in production. The pool's temporary
# folder (sys_temp_dir: the plugin's state files) and the extension's host-wide cache
# (ssm_db_config.shared_dir) are folders of this run, fresh at each start, so that nothing
# carries over from an earlier start or run.
FPM_STARTS=0
start_fpm() {
  local name=$1 parameter=$2 ttl=$3 children=$4 dir=$RUN/$1 port_var="${1}_PORT" port user_line=""
  port=${!port_var:-$(free_port)}
  FPM_STARTS=$((FPM_STARTS + 1))
  local tmp=$dir/tmp.$FPM_STARTS shared=$dir/shared.$FPM_STARTS
  mkdir -p "$dir" "$tmp" "$shared"
  chmod 700 "$shared"
  if [ "$(id -u)" = 0 ]; then user_line="user = www-data
group = www-data"; give www-data "$dir"; fi
  cat >"$dir/php-fpm.conf" <<CONF
[global]
pid = $dir/php-fpm.pid
error_log = $dir/php-fpm.log
daemonize = no

[$name]
$user_line
listen = 127.0.0.1:$port
pm = static
pm.max_children = $children
catch_workers_output = yes
env[AWS_EC2_METADATA_DISABLED] = true
php_admin_value[error_log] = $dir/php-error.log
php_admin_value[sys_temp_dir] = $tmp
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
CONF
  # SO empty: php-fpm without the extension (bench/wordpress.sh's baseline).
  "${FPM_WRAP[@]}" "$PHP_FPM" -F -y "$dir/php-fpm.conf" ${SO:+-d "extension=$SO"} -d "ssm_db_config.parameter=$parameter" \
    -d error_reporting=E_ALL -d "ssm_db_config.ttl=$ttl" -d "ssm_db_config.timeout_ms=1000" -d "ssm_db_config.shared_dir=$shared" \
    "${FPM_EXTRA_INI[@]}" >>"$dir/stdout.log" 2>&1 &
  PIDS+=($!)
  eval "${name}_PORT=$port ${name}_PID=$! ${name}_ARGS='$parameter $ttl $children'"
  wait_for 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

# restart_fpm NAME: new processes (empty caches) on the same port.
restart_fpm() {
  local pid_var="${1}_PID" args_var="${1}_ARGS" i
  kill "${!pid_var}" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "${!pid_var}" 2>/dev/null || break; sleep 0.05; done
  # shellcheck disable=SC2086
  start_fpm "$1" ${!args_var}
}

SUMMARY_PRINTED=
summary() {
  SUMMARY_PRINTED=1
  echo "$PASSED passed, $FAILED failed"
}

cleanup() {
  local status=$?
  set +e
  if [ -z "$SUMMARY_PRINTED" ]; then
    # Stopped by an error before the end: that is a failure, and the summary still comes last.
    echo "not ok - the suite ran to its end (stopped with status $status near line ${BASH_LINENO[0]})"
    FAILED=$((FAILED + 1))
    [ "$status" != 0 ] || status=1
    summary
  fi
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  local dir
  for dir in "${PG_DIRS[@]}"; do as_user postgres pg_ctl -D "$dir" -m immediate -w stop >/dev/null 2>&1; done
  for pid in "${PIDS[@]}"; do
    local i
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  if [ -n "${RUN:-}" ] && [ -z "${KEEP_RUN:-}" ]; then rm -rf "$RUN"; fi
  exit $status
}
