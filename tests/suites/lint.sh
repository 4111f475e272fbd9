#!/usr/bin/env bash
# The lint gates: rustfmt, clippy with warnings as errors, `php -l` on every
# PHP file of the repository, and phpcs with the project's ruleset (phpcs.xml:
# PSR-12, and WordPress's layout in wp-plugin/ and tests/wordpress/).
# Run from the repository root (scripts/setup installs php-codesniffer):
#     bash tests/suites/lint.sh
# `cargo fmt --all` and `phpcbf` fix most of what it reports.
# The last line of output is "N passed, M failed"; the exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0 failed=0
check() {
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}

php_lint() {
  local f bad=0
  while IFS= read -r -d '' f; do
    php -l "$f" >/dev/null || bad=1
  done < <(git ls-files -z '*.php')
  return $bad
}

check "cargo fmt --all --check" cargo fmt --all --check
check "cargo clippy --workspace --all-targets -- -D warnings" cargo clippy --quiet --workspace --all-targets -- -D warnings
check "php -l on every PHP file" php_lint
check "phpcs (phpcs.xml)" phpcs -q --no-colors --report=emacs

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
