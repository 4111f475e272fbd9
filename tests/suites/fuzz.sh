#!/usr/bin/env bash
# The value grammar's fuzz targets (fuzz/), a short run each: parsing never
# panics, a value rendered from known parts parses back to them, and a
# rewrite changes only host and port. FUZZ_SECONDS per target (default 20).
# Longer runs: scripts/fuzz SECONDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec scripts/fuzz "${FUZZ_SECONDS:-20}"
