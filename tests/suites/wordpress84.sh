#!/usr/bin/env bash
# The WordPress suite (tests/suites/wordpress.sh, every test) on PHP 8.4 in the Debian 13
# root (scripts/debian13), once per WordPress: Debian 13's package (/usr/share/wordpress)
# and the newest from Debian unstable (/opt/wordpress-unstable, unpacked, not installed).
# Inside the root: the extension built for PHP 8.4 (scripts/debian13 build), php-fpm 8.4,
# nginx, MariaDB and PostgreSQL of Debian 13, moto from the root's /opt/venv. Outside: the
# browser, the host's Chromium driven by the host's Playwright (.venv, or $HOST_PY); the
# suite inside asks for it through two FIFOs (BROWSER_BROKER) and the chroot shares the
# host's loopback, so it reaches the site.
#
#   tests/suites/wordpress84.sh            both WordPress versions
#   WP84_SOURCES=unstable tests/suites/wordpress84.sh   one (debian13 or unstable)
#
# Run from the repository root, as root (debootstrap, chroot, mount). Not root: says why and
# exits 0. Screenshots: tests/artifacts/wordpress84-<which>/. One summary line per
# WordPress, then the last line: "N passed, M failed" over both.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
say() { echo "wordpress84: $*"; }

if [ "$(id -u)" != 0 ]; then
  say "skipped: the Debian 13 root needs root (debootstrap, chroot); CI runs as root"
  exit 0
fi
HOST_PY=${HOST_PY:-$ROOT/.venv/bin/python}
[ -x "$HOST_PY" ] || { say "no Python with Playwright at $HOST_PY (scripts/setup makes .venv)"; echo "0 passed, 1 failed"; exit 1; }

t0=$(date +%s)
scripts/debian13
so=$(scripts/debian13 build)
say "root and build: $(( $(date +%s) - t0 )) s"
chroot_root=$ROOT/.debian13/root

# The browser's side of BROWSER_BROKER: waits for one request (NAME=value lines, then an
# empty line), runs browser.py with those settings, the site folder seen from outside the
# root, its TAP output into the run folder the suite reads, and answers with the exit status.
serve_browser() {
  local dir=$1 line status
  local -a settings=()
  local run=
  while IFS= read -r line && [ -n "$line" ]; do
    case $line in
      WP=*) settings+=("WP=$chroot_root${line#WP=}") ;;
      RUN=*) run=${line#RUN=} ;;
      *) settings+=("$line") ;;
    esac
  done <"$chroot_root$dir/request"
  status=0
  env "${settings[@]}" "$HOST_PY" "$ROOT/tests/wordpress/browser.py" >"$chroot_root$run/browser.tap" 2>&1 || status=$?
  echo "$status" >"$chroot_root$dir/reply"
}

total_passed=0 total_failed=0 lines=()
broker_pid=
trap '[ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null; rm -rf "$chroot_root"/tmp/wp-browser.*' EXIT
for which in ${WP84_SOURCES:-debian13 unstable}; do
  case $which in
    debian13) source_dir=/usr/share/wordpress ;;
    unstable) source_dir=/opt/wordpress-unstable/usr/share/wordpress ;;
    *) say "unknown WordPress source '$which' (debian13 or unstable)"; exit 1 ;;
  esac
  broker=$(mktemp -d "$chroot_root/tmp/wp-browser.XXXXXX")
  broker=${broker#"$chroot_root"}
  mkfifo -m 600 "$chroot_root$broker/request" "$chroot_root$broker/reply"
  serve_browser "$broker" &
  broker_pid=$!
  log=$(mktemp /tmp/wordpress84.XXXXXX)
  t0=$(date +%s)
  set +e
  scripts/debian13 run env AWS_EC2_METADATA_DISABLED=true PY=/opt/venv/bin/python SSM_DB_CONFIG_SO="$so" \
    PHP_FPM=php-fpm8.4 WP_SOURCE="$source_dir" BROWSER_BROKER="$broker" \
    WP_ARTIFACTS="$ROOT/tests/artifacts/wordpress84-$which" \
    bash tests/suites/wordpress.sh 2>&1 | tee "$log"
  set -e
  # A suite that stopped before its browser test leaves the broker waiting: stop it.
  kill "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=
  rm -rf "${chroot_root:?}$broker"
  versions=$(grep -m1 '^# PHP ' "$log" | sed 's/^# //')
  # The summary line ("N passed, M failed"); bash may print a job's "Killed" after it.
  result=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [[ $result =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    total_passed=$((total_passed + BASH_REMATCH[1]))
    total_failed=$((total_failed + BASH_REMATCH[2]))
  else
    total_failed=$((total_failed + 1))
    result="no summary line"
  fi
  lines+=("wordpress84: $which: ${versions:-versions unknown} (Debian 13): $result in $(( $(date +%s) - t0 )) s")
done

printf '%s\n' "${lines[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ]
