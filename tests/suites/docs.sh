#!/usr/bin/env bash
# The documentation against the code: every relative link (and #anchor) in the
# repository's Markdown files resolves; README.md's directives table names
# exactly the directives the built extension registers, each with its default;
# its troubleshooting table names exactly SsmDbConfigException's constants with
# their codes; and no tracked file carries an issue number, a work-session or
# round heading, or a dated run log (history lives in git).
# The extension: ${SSM_DB_CONFIG_SO:-$PWD/target/release/libssm_db_config.so}.
# The last line is "N passed, M failed"; the exit status is non-zero on any failure.
# shellcheck disable=SC2016 # PHP code and sed patterns in single quotes, $ and ` meant literally
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${SSM_DB_CONFIG_SO:-$PWD/target/release/libssm_db_config.so}

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
# check NAME COMMAND...: passes when COMMAND succeeds (its output explains a failure).
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

links() {
  python3 - <<'PY'
import re, subprocess, sys, os
files = [f for f in subprocess.run(["git", "ls-files", "*.md"], capture_output=True, text=True, check=True).stdout.split()]
files = [f for f in files if os.path.exists(f)]

def slugs(path):
    """GitHub's anchors for the headings of a Markdown file."""
    out, seen, fence = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        if fence or not re.match(r"#{1,6} ", line):
            continue
        text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", line.lstrip("#").strip())
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out

bad = 0
for f in files:
    text = re.sub(r"```.*?```", "", open(f, encoding="utf-8").read(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(dest):
            print(f"{f}: {target}: no such file", file=sys.stderr); bad += 1
        elif anchor and dest.endswith(".md") and anchor not in slugs(dest):
            print(f"{f}: {target}: no heading with that anchor", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
PY
}
check "relative links and anchors in the Markdown files resolve" links

if [ -f "$SO" ]; then
  php_json() { php -n -d extension="$SO" -r "$1"; }
  directives() {
    diff -u \
      <(php_json 'foreach (ini_get_all("ssm_db_config") as $k => $v) echo $k, " ", $v["global_value"] === "" ? "(none)" : $v["global_value"], "\n";' | sort) \
      <(sed -nE 's/^\| `(ssm_db_config\.[a-z_]+)` \| `?([^`|]*)`? \|.*/\1 \2/p' README.md | sed -E 's/ +$//' | sort)
  }
  check "README.md's directives table: every directive the extension registers, with its default (diff: extension, README)" directives
  codes() {
    diff -u \
      <(php_json 'foreach ((new ReflectionClass("SsmDbConfigException"))->getConstants() as $k => $v) echo $v, " ", $k, "\n";' | sort -n) \
      <(sed -nE 's/^\| ([0-9]+) \| `([A-Z_]+)` \|.*/\1 \2/p' README.md | sort -n)
  }
  check "README.md's troubleshooting table: every SsmDbConfigException code and constant (diff: extension, README)" codes
else
  not_ok "the extension is built ($SO; cargo build --release, or set SSM_DB_CONFIG_SO)"
fi

history_free() {
  # AWS API versions ("Version": "2012-10-17") are dates that belong in the files.
  ! git ls-files -z -- '*.rs' '*.php' '*.py' '*.sh' '*.md' '*.toml' '*.txt' '*.in' '*.yml' '*.ini' \
      'scripts/*' '*/run' '.ci/*' 'Makefile' 'docker/*' 'packaging/*' ':!tests/suites/docs.sh' |
    xargs -0 grep -nE '(^|[^A-Za-z&])#[0-9]{1,4}\b|\b[Ii]ssues? #?[0-9]+|\b[Ss]essions? [0-9]+|(^|[^-A-Za-z])[Rr]ounds? [0-9]+\b|\b20[0-9]{2}-[0-9]{2}-[0-9]{2}\b' |
    grep -vE 'Argument #[0-9]|"Version": "2012-10-17"|'\''Version'\'' => '\''2010-05-08'\''|"Version": "2012-10-17", "Statement"'
}
check "no issue numbers, session or round headings, or dated logs in tracked files (hits above)" history_free

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
