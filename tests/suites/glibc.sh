#!/usr/bin/env bash
# Where each built .so loads beyond Debian: the highest glibc symbol version
# it needs (scripts/glibc-floor reads the ELF version needs; weak ones, which
# the loader does not require, are shown apart) is at most GLIBC_FLOOR, 2.34
# by default: Amazon Linux 2023's glibc, the usual WordPress host OS on AWS,
# which packages PHP 8.2, 8.3 and 8.4.
#   the PHP 8.2 extension, target/release (Debian 12's toolchain)
#   the PHP 8.4 extension, target/php84/release (built in the Debian 13 root
#     by scripts/debian13 build, as root; skipped when not root)
#   the monitor, target/release/ssm-db-monitor, when it is built
# Run from the repository root. The last line is "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
floor=${GLIBC_FLOOR:-2.34}
passed=0 failed=0
check_file() {  # check_file LABEL FILE
  local line need
  line=$(scripts/glibc-floor "$2")
  need=${line#* needs GLIBC_}
  need=${need%%,*}
  if [ "$(printf '%s\n%s\n' "$need" "$floor" | sort -V | tail -n 1)" = "$floor" ]; then
    echo "ok - $1 needs glibc $need <= $floor ($line)"; passed=$((passed + 1))
  else
    echo "not ok - $1 needs glibc $need > $floor ($line)"; failed=$((failed + 1))
  fi
}

so82=target/release/libssm_db_config.so
[ -f "$so82" ] || cargo build --release --quiet -p ssm-db-config
check_file "the PHP 8.2 extension ($so82)" "$so82"
if [ "$(id -u)" = 0 ]; then
  so84=$(scripts/debian13 build)
  check_file "the PHP 8.4 extension (${so84#"$PWD/"})" "$so84"
else
  echo "# the PHP 8.4 extension: skipped (building it in the Debian 13 root needs root)"
fi
[ ! -f target/release/ssm-db-monitor ] || check_file "the monitor (target/release/ssm-db-monitor)" target/release/ssm-db-monitor
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
