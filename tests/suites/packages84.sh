#!/usr/bin/env bash
# The Debian 13 packages in the Debian 13 root (scripts/debian13): builds
# php8.4-ssm-db-config (scripts/dist ext84: the extension built inside the
# root against its PHP 8.4) and, when dist/ lacks it, the monitor's .deb (the
# host's build; packages.sh makes it first in a full run), then runs
# tests/suites/packages.sh inside the root with PACKAGES_PHP=8.4: apt install
# ./<deb>, the PHPUnit suite against the installed extension, removal and
# purge, and the monitor's .deb installed, run and purged. The root is not
# changed: packages.sh installs inside overlays of its own.
#
# Run from the repository root, as root. Not root: says why and exits 0. The
# last line is "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "packages84: $*"; }

if [ "$(id -u)" != 0 ]; then
  say "skipped: the Debian 13 root needs root (debootstrap, chroot); CI runs as root"
  echo "0 passed, 0 failed"
  exit 0
fi

scripts/debian13
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
say "scripts/dist ext84"
scripts/dist ext84 >/dev/null || { echo "not ok - scripts/dist ext84 builds php8.4-ssm-db-config"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -f "dist/ssm-db-monitor_${version}-1_${arch}.deb" ]; then
  say "scripts/dist monitor"
  scripts/dist monitor >/dev/null || { echo "not ok - scripts/dist monitor builds ssm-db-monitor"; echo "0 passed, 1 failed"; exit 1; }
fi
scripts/debian13 run env PACKAGES_PHP=8.4 PACKAGES_BUILT=1 PYTHON=/opt/venv/bin/python \
  AWS_EC2_METADATA_DISABLED=true bash tests/suites/packages.sh
