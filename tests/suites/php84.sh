#!/usr/bin/env bash
# The PHPUnit suite on PHP 8.4 (Debian 13), from the same source as the PHP
# 8.2 build: makes or reuses the Debian 13 root (scripts/debian13), builds the
# extension inside it against its PHP 8.4 (PHP and PHP_CONFIG, which
# ext-php-rs reads) into target/php84, leaving target/release (PHP 8.2)
# alone, and runs php-tests/run there (PHPUnit, php-fpm 8.4, moto from the
# root's /opt/venv).
#
# Run from the repository root, as root (debootstrap, chroot, mount). Not
# root: says why and exits 0. The last line is the summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "php84: $*"; }

if [ "$(id -u)" != 0 ]; then
  say "skipped: the Debian 13 root needs root (debootstrap, chroot); CI runs as root"
  exit 0
fi

t0=$(date +%s)
scripts/debian13
t_root=$(( $(date +%s) - t0 ))

t0=$(date +%s)
say "building the extension for PHP 8.4 (scripts/debian13 build: cargo build --release, target/php84)"
so=$(scripts/debian13 build)
scripts/debian13 run php8.4 -d extension="$so" -m | grep -x ssm_db_config >/dev/null \
  || { say "FAIL: PHP 8.4 does not load $so"; exit 1; }
t_build=$(( $(date +%s) - t0 ))

version=$(scripts/debian13 run php8.4 -r 'echo PHP_VERSION;')
log=$(mktemp /tmp/php84-phpunit.XXXXXX)
trap 'rm -f "$log"' EXIT
t0=$(date +%s)
set +e
scripts/debian13 run env AWS_EC2_METADATA_DISABLED=true PYTHON=/opt/venv/bin/python SSM_DB_CONFIG_SO="$so" \
  php-tests/run 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
t_tests=$(( $(date +%s) - t0 ))

say "times: root ${t_root} s, build ${t_build} s, tests ${t_tests} s"
result=$(grep -E '^(OK \(|Tests: )' "$log" | tail -n 1)
if [ "$status" = 0 ]; then
  say "phpunit on PHP $version (Debian 13): $(sed -E 's/^OK \(([0-9]+) tests?.*/\1 tests OK/' <<<"$result")"
else
  say "phpunit on PHP $version (Debian 13): FAILED (${result:-exit status $status})"
  exit 1
fi
