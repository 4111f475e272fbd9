#!/usr/bin/env bash
# The release artefacts, as an operator gets them: builds dist/ (make dist),
# installs the extension's .deb with apt install ./<deb> and runs the PHPUnit suite against
# the installed extension (no -d extension= anywhere), removes and purges it
# and checks that no file of it is left; installs the monitor's .deb, runs it,
# removes it the same way; checks the plugin zip; validates docker/compose.yml
# with Debian's docker-compose (there is no Docker engine in CI).
#
# Run from the repository root after scripts/setup, as root (dpkg). Not root:
# says why and exits 0. About a minute on top of existing release builds of
# the extension and the monitor; scripts/setup builds only the extension, and
# the monitor's first release build (make dist) takes about 8 minutes on 2 cores.
#
# The packages are installed inside a private mount namespace whose /etc, /usr
# and /var are overlays on the real ones (unshare, overlayfs): the test sees a
# real dpkg -i, and nothing else on the machine (another test run using
# -d extension=, an operator) sees the extension appear in php.ini. When the
# kernel refuses that, or with PACKAGES_ISOLATE=0, it installs for real and
# still removes everything at the end.
#
# PACKAGES_PHP=8.4 PACKAGES_BUILT=1: the same checks of php8.4-ssm-db-config
# and the monitor's .deb, already in dist/, in the Debian 13 root
# (tests/suites/packages84.sh runs it there); the plugin zip and docker/ are
# checked once, by the run on the host.
#
# The last line is "N passed, M failed"; the exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if [ "$(id -u)" != 0 ]; then
  echo "packages.sh: skipped: dpkg -i and dpkg -r need root (CI runs as root)"
  echo "0 passed, 0 failed"
  exit 0
fi

PHP_V=${PACKAGES_PHP:-8.2}
EXT_PKG=php$PHP_V-ssm-db-config
MON_PKG=ssm-db-monitor

# --- isolation ---------------------------------------------------------------
if [ -z "${PACKAGES_IN_NAMESPACE:-}" ] && [ "${PACKAGES_ISOLATE:-1}" = 1 ]; then
  if [ -n "$(findmnt -rn -o TARGET | grep -E '^/(etc|usr|var)/' || true)" ]; then
    echo "packages.sh: mounts under /etc, /usr or /var: installing without isolation"
  elif command -v unshare >/dev/null; then
    layers=$(mktemp -d /tmp/packages-overlay.XXXXXX)
    # The inner run mounts the overlays; they vanish with its namespace.
    # In a chroot whose / is no mount point (the Debian 13 root), / cannot be
    # made private: there the mounts stay as they are, and scripts/debian13
    # runs everything in a private namespace of its own already.
    propagation=private
    unshare --mount --propagation private true 2>/dev/null || propagation=unchanged
    set +e
    PACKAGES_IN_NAMESPACE="$layers" unshare --mount --propagation "$propagation" bash "$0" "$@"
    status=$?
    set -e
    rm -rf "$layers"
    if [ "$status" != 97 ]; then exit "$status"; fi
    echo "packages.sh: no overlay in a private mount namespace here: installing without isolation"
  fi
fi
if [ -n "${PACKAGES_IN_NAMESPACE:-}" ]; then
  for dir in /etc /usr /var; do
    mkdir -p "$PACKAGES_IN_NAMESPACE/upper$dir" "$PACKAGES_IN_NAMESPACE/work$dir"
    mount -t overlay overlay \
      -o "lowerdir=$dir,upperdir=$PACKAGES_IN_NAMESPACE/upper$dir,workdir=$PACKAGES_IN_NAMESPACE/work$dir" "$dir" \
      2>/dev/null || exit 97
  done
  echo "packages.sh: installing inside a private mount namespace (overlays on /etc, /usr, /var)"
fi

# --- helpers -----------------------------------------------------------------
passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
# check NAME COMMAND...: passes when COMMAND succeeds.
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
finish() {
  echo "$passed passed, $failed failed"
  if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}
work=$(mktemp -d)
cleanup() {
  # Whatever failed above, leave no package installed.
  dpkg -P "$EXT_PKG" "$MON_PKG" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
known() { dpkg-query -W -f='${Status}' "$1" >/dev/null 2>&1; }
# Files (not directories) of a `dpkg -L` list that still exist.
left_over() { while read -r f; do if [ -e "$f" ] && [ ! -d "$f" ]; then echo "$f"; fi; done < "$1"; }
links_to_ini() { find /etc/php -type l -lname '*ssm_db_config.ini' 2>/dev/null; }
php_quiet_startup() { [ -z "$(php -r '' 2>&1)" ]; }
# apt install ./DEB, as an operator installs a downloaded package: apt checks
# its dependencies (PHP's API, php-common) against what is installed, and
# fetches nothing when they are there.
apt_install() { apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "./$1"; }
EXT_DIR=$(php-config$PHP_V --extension-dir)
PHP_API=$(basename "$EXT_DIR")

# --- build -------------------------------------------------------------------
if [ -z "${PACKAGES_BUILT:-}" ]; then
  echo "packages.sh: make dist"
  if ! make -s dist >"$work/dist.log" 2>&1; then
    cat "$work/dist.log"
    not_ok "make dist builds the packages"
    finish
  fi
  ok "make dist builds the packages"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
EXT_DEB=dist/${EXT_PKG}_${version}-1_${arch}.deb
MON_DEB=dist/${MON_PKG}_${version}-1_${arch}.deb
ZIP=dist/ssm-db-config-$(sed -n 's/^ \* Version: *\([0-9][^ ]*\).*/\1/p' wp-plugin/ssm-db-config.php).zip
check "dist/ has the extension's .deb ($EXT_DEB)" test -f "$EXT_DEB"
check "dist/ has the monitor's .deb ($MON_DEB)" test -f "$MON_DEB"
[ -n "${PACKAGES_BUILT:-}" ] || check "dist/ has the plugin zip ($ZIP)" test -f "$ZIP"
[ -f "$EXT_DEB" ] && [ -f "$MON_DEB" ] && { [ -f "$ZIP" ] || [ -n "${PACKAGES_BUILT:-}" ]; } || finish

# --- the extension's package -------------------------------------------------
for pkg in "$EXT_PKG" "$MON_PKG"; do
  if known "$pkg"; then echo "packages.sh: $pkg was installed before the test: purging it"; dpkg -P "$pkg" >/dev/null; fi
done

dpkg-deb -c "$EXT_DEB" | awk '{print $6}' | sed 's#^\./#/#' > "$work/ext-contents"
check "the .deb puts the .so in php-config$PHP_V --extension-dir" \
  grep -qx "$(php-config$PHP_V --extension-dir)/ssm_db_config.so" "$work/ext-contents"
check "the .deb has /etc/php/$PHP_V/mods-available/ssm_db_config.ini" \
  grep -qx /etc/php/$PHP_V/mods-available/ssm_db_config.ini "$work/ext-contents"
dpkg-deb -e "$EXT_DEB" "$work/ext-control"
check "the .ini is a conffile" grep -qx /etc/php/$PHP_V/mods-available/ssm_db_config.ini "$work/ext-control/conffiles"
check "the .deb depends on PHP $PHP_V's API (phpapi-$PHP_API) and php-common (phpenmod)" \
  bash -c "dpkg-deb -f '$EXT_DEB' Depends | grep -q phpapi-$PHP_API && dpkg-deb -f '$EXT_DEB' Depends | grep -q php-common"
dpkg-deb --fsys-tarfile "$EXT_DEB" | tar -xO ".$EXT_DIR/ssm_db_config.so" > "$work/ext.so"
check "the packaged .so is stripped (release profile)" bash -c "! readelf -S '$work/ext.so' | grep -q '\.symtab'"
dpkg-deb --fsys-tarfile "$EXT_DEB" | tar -xO ./etc/php/$PHP_V/mods-available/ssm_db_config.ini > "$work/ext.ini"
expected_ini='extension=ssm_db_config.so
;ssm_db_config.parameter = ""
;ssm_db_config.region = ""
;ssm_db_config.endpoint_url = ""
;ssm_db_config.ttl = 60
;ssm_db_config.timeout_ms = 2000
;ssm_db_config.max_stale = 86400
;ssm_db_config.shared_dir = "auto"
;ssm_db_config.credentials_parameter = ""
;ssm_db_config.define_constants = 0
;ssm_db_config.fleet_hosts = 1
;ssm_db_config.ssm_throughput = 40
;ssm_db_config.max_parameters = 8'
check "the .ini loads the extension and lists every directive, commented, with its default" \
  diff <(grep -E '^;?(extension|ssm_db_config\.)' "$work/ext.ini") <(echo "$expected_ini")
registered=$(grep -o '"ssm_db_config\.[a-z_]*"' ext/src/ini.rs | tr -d '"' | sort -u)
check "the .ini names exactly the directives ext/src/ini.rs registers" \
  diff <(echo "$registered") <(grep -o '^;ssm_db_config\.[a-z_]*' "$work/ext.ini" | tr -d ';' | sort -u)

check "php -m does not list ssm_db_config before apt install" bash -c "! php -m | grep -qx ssm_db_config"
if apt_install "$EXT_DEB" >"$work/dpkg-i.log" 2>&1; then ok "apt install ./$EXT_DEB"; else cat "$work/dpkg-i.log"; not_ok "apt install ./$EXT_DEB"; finish; fi
check "php -m lists ssm_db_config (no -d flag)" bash -c "php -m | grep -qx ssm_db_config"
check "php -n -m does not (so php.ini's conf.d loads it)" bash -c "! php -n -m | grep -qx ssm_db_config"
check "phpenmod enabled it for the cli SAPI (conf.d link)" test -L /etc/php/$PHP_V/cli/conf.d/20-ssm_db_config.ini
check "phpenmod enabled it for php-fpm (conf.d link)" test -L /etc/php/$PHP_V/fpm/conf.d/20-ssm_db_config.ini
check "php-fpm$PHP_V -m lists ssm_db_config" bash -c "php-fpm$PHP_V -m 2>/dev/null | grep -qx ssm_db_config"
check "PHP starts without a warning" php_quiet_startup
check "the directives have their defaults" \
  test "$(php -r 'foreach (["ttl","timeout_ms","max_stale","shared_dir"] as $d) echo ini_get("ssm_db_config.$d"), " ";')" = "60 2000 86400 auto "
dpkg -L "$EXT_PKG" > "$work/ext-files"

echo "packages.sh: PHPUnit against the installed extension (SSM_DB_CONFIG_INSTALLED=1 php-tests/run)"
set +e
SSM_DB_CONFIG_INSTALLED=1 SSM_DB_CONFIG_SO= php-tests/run > "$work/phpunit.log" 2>&1
phpunit_status=$?
set -e
tail -n 4 "$work/phpunit.log"
mkdir -p tests/artifacts/packages && cp "$work/phpunit.log" "tests/artifacts/packages/phpunit-php$PHP_V.log"
if [ "$phpunit_status" = 0 ]; then ok "PHPUnit passes against the installed extension"; else
  { grep -E '^[0-9]+\)|FAIL|Error' "$work/phpunit.log" || true; } | head -20; not_ok "PHPUnit passes against the installed extension"; fi
check "PHPUnit ran tests" grep -qE '^(OK \(|Tests: )[0-9]+' "$work/phpunit.log"
check "no process loaded the extension twice (no -d extension= on top of php.ini)" \
  bash -c "! grep -q 'already loaded' '$work/phpunit.log'"

if dpkg -r "$EXT_PKG" >"$work/dpkg-r.log" 2>&1; then ok "dpkg -r $EXT_PKG"; else cat "$work/dpkg-r.log"; not_ok "dpkg -r $EXT_PKG"; fi
check "after dpkg -r: the .so is gone" test ! -e "$EXT_DIR/ssm_db_config.so"
check "after dpkg -r: no conf.d link to the .ini is left" test -z "$(links_to_ini)"
check "after dpkg -r: php -m does not list it, and PHP starts without a warning" \
  bash -c "! php -m | grep -qx ssm_db_config && [ -z \"\$(php -r '' 2>&1)\" ]"
check "after dpkg -r: the .ini stays (a conffile) until purge" test -f /etc/php/$PHP_V/mods-available/ssm_db_config.ini
if dpkg -P "$EXT_PKG" >"$work/dpkg-p.log" 2>&1; then ok "dpkg -P $EXT_PKG"; else cat "$work/dpkg-p.log"; not_ok "dpkg -P $EXT_PKG"; fi
check "after dpkg -P: dpkg no longer knows $EXT_PKG" bash -c "! dpkg-query -W $EXT_PKG >/dev/null 2>&1"
left=$(left_over "$work/ext-files")
check "after dpkg -P: no file of dpkg -L is left${left:+ (left: $left)}" test -z "$left"
check "after dpkg -P: its doc folder is gone" test ! -e /usr/share/doc/$EXT_PKG
check "after dpkg -P: no link to the .ini anywhere in /etc/php" test -z "$(links_to_ini)"
check "after dpkg -P: phpenmod's state for it is gone (/var/lib/php/modules)" \
  test -z "$(find /var/lib/php/modules -name ssm_db_config 2>/dev/null)"

# --- the monitor's package ---------------------------------------------------
check "the packaged unit is packaging/monitor's" \
  diff <(dpkg-deb --fsys-tarfile "$MON_DEB" | tar -xO ./lib/systemd/system/ssm-db-monitor.service) packaging/monitor/ssm-db-monitor.service
dpkg-deb -e "$MON_DEB" "$work/mon-control"
check "the monitor's example configuration is a conffile" grep -qx /etc/ssm-db-monitor/monitor.toml "$work/mon-control/conffiles"
if apt_install "$MON_DEB" >"$work/dpkg-i-mon.log" 2>&1; then ok "apt install ./$MON_DEB"; else cat "$work/dpkg-i-mon.log"; not_ok "apt install ./$MON_DEB"; finish; fi
check "ssm-db-monitor --help works" bash -c "ssm-db-monitor --help | grep -q -- --config"
check "the systemd unit is installed and runs /usr/bin/ssm-db-monitor" \
  grep -q '^ExecStart=/usr/bin/ssm-db-monitor --config /etc/ssm-db-monitor/monitor.toml' /lib/systemd/system/ssm-db-monitor.service
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify accepts the unit" bash -c "systemd-analyze verify /lib/systemd/system/ssm-db-monitor.service 2>&1 | grep -v -e 'Failed to connect' -e 'Cannot find unit' | (! grep -q ssm-db-monitor.service)"
fi
# The example configuration parses: --plan gets as far as calling AWS (a closed
# port: a transient failure, exit 3) instead of rejecting the file (exit 2).
set +e
AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_MAX_ATTEMPTS=1 \
  timeout 60 ssm-db-monitor --config /etc/ssm-db-monitor/monitor.toml --plan --endpoint-url http://127.0.0.1:9 >"$work/plan.log" 2>&1
plan_status=$?
set -e
check "the example configuration parses (--plan against a closed port exits 3, not 2; got $plan_status)" test "$plan_status" = 3
dpkg -L "$MON_PKG" > "$work/mon-files"
if dpkg -r "$MON_PKG" >/dev/null 2>&1; then ok "dpkg -r $MON_PKG"; else not_ok "dpkg -r $MON_PKG"; fi
check "after dpkg -r: the binary and the unit are gone, the configuration stays" \
  bash -c "[ ! -e /usr/bin/ssm-db-monitor ] && [ ! -e /lib/systemd/system/ssm-db-monitor.service ] && [ -f /etc/ssm-db-monitor/monitor.toml ]"
if dpkg -P "$MON_PKG" >/dev/null 2>&1; then ok "dpkg -P $MON_PKG"; else not_ok "dpkg -P $MON_PKG"; fi
left=$(left_over "$work/mon-files")
check "after dpkg -P: no file of dpkg -L is left${left:+ (left: $left)}" test -z "$left"
check "after dpkg -P: /etc/ssm-db-monitor and its doc folder are gone" \
  bash -c "[ ! -e /etc/ssm-db-monitor ] && [ ! -e /usr/share/doc/$MON_PKG ]"

[ -z "${PACKAGES_BUILT:-}" ] || finish

# --- the plugin zip ----------------------------------------------------------
unzip -Z1 "$ZIP" | grep -v '/$' | sort > "$work/zip-files"
(cd wp-plugin && find . -type f | sed 's#^\./#ssm-db-config/#' | sort) > "$work/plugin-files"
check "every zip entry is under ssm-db-config/" bash -c "! unzip -Z1 '$ZIP' | grep -v '^ssm-db-config/'"
check "the zip holds every file of wp-plugin/ and nothing else" diff "$work/plugin-files" "$work/zip-files"
for f in ssm-db-config.php readme.txt uninstall.php health/live.php health/db.php dropins/db.php dropins/db-error.php templates/admin-page.php; do
  check "the zip has ssm-db-config/$f" grep -qx "ssm-db-config/$f" "$work/zip-files"
done
unzip -q "$ZIP" -d "$work/plugin"
readme=$work/plugin/ssm-db-config/readme.txt
check "readme.txt is in WordPress's format (=== name ===, headers, sections)" bash -c "
  head -1 '$readme' | grep -q '^=== .* ===\$' &&
  for h in 'Requires at least' 'Tested up to' 'Requires PHP' 'Stable tag' 'License'; do grep -q \"^\$h: \" '$readme' || exit 1; done &&
  for s in Description Installation Changelog; do grep -q \"^== \$s ==\$\" '$readme' || exit 1; done"
check "readme.txt's Stable tag is the plugin's Version" \
  test "$(sed -n 's/^Stable tag: //p' "$readme")" = "$(sed -n 's/^ \* Version: *//p' "$work/plugin/ssm-db-config/ssm-db-config.php")"
lint_failures=$(find "$work/plugin" -name '*.php' -exec php -n -l {} \; 2>&1 | grep -v '^No syntax errors' || true)
check "every PHP file in the zip parses (php -l)" test -z "$lint_failures"

# --- docker/ (no engine in CI: what can be checked without one) ------------------
if [ -f docker/compose.yml ]; then
  if command -v docker-compose >/dev/null; then
    check "docker-compose config accepts docker/compose.yml" \
      bash -c "docker-compose -f docker/compose.yml config -q"
    check "compose has the services wordpress, mariadb, postgres, moto, monitor and phpunit" bash -c "
      services=\$(docker-compose -f docker/compose.yml config --services | sort | tr '\n' ' ')
      for s in wordpress mariadb postgres moto monitor phpunit; do case \" \$services \" in *\" \$s \"*) ;; *) echo \"missing \$s in: \$services\"; exit 1;; esac; done"
  else
    not_ok "docker-compose (apt package, .ci/apt-packaging.txt) is installed"
  fi
  # The images build with the scripts CI runs: every scripts/ or make call in a
  # Dockerfile names a script or target that exists.
  check "docker/Dockerfile calls only make targets and scripts that exist" bash -c '
    for f in docker/*Dockerfile*; do
      for s in $(grep -oE "scripts/[a-z_-]+|php-tests/run" "$f" | sort -u); do [ -x "$s" ] || { echo "$f: $s missing"; exit 1; }; done
      for t in $(grep -oE "^RUN make [a-z-]+" "$f" | awk "{print \$3}" | sort -u); do grep -qE "(^|[ ])$t( |:|\$)" Makefile || { echo "$f: make $t missing"; exit 1; }; done
    done'
fi

finish
