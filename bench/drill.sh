#!/usr/bin/env bash
# The failover drill (see bench/failover_drill.py and docs/benchmarks.md):
#   bench/drill.sh            # every mode: sync, async, then cluster
#   bench/drill.sh sync       # one mode; extra arguments go to the drill
#   bench/drill.sh wordpress  # a long WordPress request through a MySQL failover (bench/wp_drill.py)
#   bench/drill.sh cluster    # an Aurora cluster, publish = writer-instance then cluster-endpoint
# Needs root (network namespace, runuser postgres), the packages in
# .ci/apt-monitor.txt, .venv from scripts/setup, the extension built in release
# mode (cargo build --release) and the monitor (cargo build -p ssm-db-monitor).
# It runs in a network namespace of its own whose hosts file maps moto's fake
# RDS endpoint names to 127.0.0.2 and 127.0.0.3; /etc/hosts is never touched
# (the cluster mode adds its members' and cluster endpoint's names to the
# namespace's file, and moves the cluster endpoint there).
set -euo pipefail
cd "$(dirname "$0")/.."

modes=(sync async cluster)
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then modes=("$1"); shift; fi

[ "$(id -u)" = 0 ] || { echo "drill.sh: needs root (ip netns, runuser)" >&2; exit 1; }
so="${SSM_DB_CONFIG_SO:-target/release/libssm_db_config.so}"
[ -f "$so" ] || { echo "drill.sh: $so is missing: cargo build --release (or set SSM_DB_CONFIG_SO)" >&2; exit 1; }
[ -x target/debug/ssm-db-monitor ] || cargo build -q -p ssm-db-monitor

ns="ssm-drill-$$"
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns"
}
trap cleanup EXIT
mkdir -p "/etc/netns/$ns"
cat > "/etc/netns/$ns/hosts" <<HOSTS
127.0.0.1 localhost
127.0.0.2 shop-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com
127.0.0.3 shop-db-standby.aaaaaaaaaa.us-west-2.rds.amazonaws.com
HOSTS
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

drill() { SSM_DB_CONFIG_SO="$(realpath "$so")" ip netns exec "$ns" .venv/bin/python bench/failover_drill.py "$@"; }
for mode in "${modes[@]}"; do
  if [ "$mode" = wordpress ]; then
    SSM_DB_CONFIG_SO="$(realpath "$so")" ip netns exec "$ns" .venv/bin/python bench/wp_drill.py "$@"
  elif [ "$mode" = cluster ]; then
    for publish in writer-instance cluster-endpoint; do
      drill --mode cluster --publish "$publish" "$@"
    done
  else
    drill --mode "$mode" "$@"
  fi
done
