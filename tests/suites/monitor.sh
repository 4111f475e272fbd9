#!/usr/bin/env bash
# The failover monitor's tests: unit tests of core's rewrite and the monitor's
# library, then the monitor against moto servers that each test starts on free
# loopback ports (tests/support/stack.py). Run from the repository root after
# scripts/setup has made .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto.server' 2>/dev/null; then
  echo "monitor.sh: .venv with moto[server] is missing: run scripts/setup" >&2
  exit 1
fi

# Loopback only, fake credentials, no instance metadata lookups.
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
unset AWS_ENDPOINT_URL AWS_PROFILE

cargo test -p ssm-db-config-core --lib rewrite
cargo test -p ssm-db-monitor

# The failover drills (synchronous replication, an Aurora cluster, a long
# WordPress request, with their targets checked): they need root for the
# network namespace and the extension built in release mode.
so="${SSM_DB_CONFIG_SO:-target/release/libssm_db_config.so}"
if [ "$(id -u)" = 0 ] && [ -f "$so" ]; then
  cargo build -q -p ssm-db-monitor
  SSM_DB_CONFIG_SO="$so" bench/drill.sh sync --check --out "tests/artifacts/drill"
  # A long WordPress request (db.php drop-in) through a MySQL failover: no order twice.
  SSM_DB_CONFIG_SO="$so" bench/drill.sh wordpress --check --out "tests/artifacts/drill"
  # The Aurora cluster, writer-instance then cluster-endpoint (its DNS move modelled).
  SSM_DB_CONFIG_SO="$so" bench/drill.sh cluster --check --out "tests/artifacts/drill"
else
  echo "monitor.sh: failover drill skipped: needs root and $so (cargo build --release)" >&2
fi
