#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The whole test suite, on a fresh Debian 12 machine as root: set-up (packages,
# build, install, services, guest image), unit and fuzz-replay tests, the same
# under ASan/UBSan, the integration suite against a sanitized piemud, and then
# the full end-to-end suite against the installed piemud.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
step() { printf '\n==> %s\n' "$*"; }
PY=/usr/bin/python3   # Debian's python, which has python3-gi and pytest

# The suite's own tools (browser, cockpit-ws, sshd, pytest, packaging): only here, never for the demo.
step "Installing the test suite's tools"
tools/install-deps.sh --tests
tools/setup.sh

step "Unit tests and fuzz-corpus replays (gcc, -Werror)"
meson test -C build --print-errorlogs

step "piemu's QEMU patches: their qtests and QEMU's other raspi qtests"
tools/build-qemu.sh --check

step "Unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
        -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true -Dshim=false
fi
ninja -C build-asan
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    meson test -C build-asan --print-errorlogs

export PIEMU_REQUIRE_DAEMON=1
# Screenshots of the Cockpit page (and of failures) land here, inside the checkout.
export PIEMU_ARTIFACTS_DIR=${PIEMU_ARTIFACTS_DIR:-$here/build/test-artifacts}
asan_log=/var/tmp/piemud-asan.log  # writable by the piemu user
step "Integration tests against piemud built with ASan/UBSan"
: >"$asan_log.asan"
PIEMUD="$here/build-asan/src/daemon/piemud" \
    ASAN_OPTIONS="detect_leaks=1:log_path=$asan_log.asan:abort_on_error=0" \
    UBSAN_OPTIONS="print_stacktrace=1:log_path=$asan_log.asan" \
    tools/piemud-service.sh restart
"$PY" -m pytest -q -p no:cacheprovider tests/integration -m "not boot" --ignore=tests/integration/test_polkit_probe.py \
    -k "not ctl_console" || { tools/piemud-service.sh stop; exit 1; }
# One real boot under the sanitizers too: the serial, libvirt and event paths.
"$PY" -m pytest -q -p no:cacheprovider tests/integration/test_lifecycle.py -k test_boot_console_and_stop \
    || { tools/piemud-service.sh stop; exit 1; }
tools/piemud-service.sh stop
if cat "$asan_log".asan* 2>/dev/null | grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:"; then
    echo "piemud reported sanitizer errors (see $asan_log.asan*)" >&2
    exit 1
fi
echo "no sanitizer reports from piemud"

step "End-to-end suite against the installed piemud"
echo "(screenshots of the Cockpit page, and of any failure there, go to $PIEMU_ARTIFACTS_DIR)"
tools/piemud-service.sh start
"$PY" -m pytest -p no:cacheprovider -v tests/integration --ignore=tests/integration/test_polkit_probe.py

# The packaged product on the hosts its users run, each after the host suite (never beside it: the
# container shares this host's loopback). Both build the packages with tools/build-debs.sh (cached
# by a hash of the tree) and cache their Debian roots under /var/cache/piemu.
step "Debian packages: build and lintian"
tools/build-debs.sh build/debs

step "The systemd path: the packages on a Debian 12 systemd container (systemd-nspawn)"
tests/system/systemd-host.sh --debs build/debs

step "AppArmor: the packages on a Debian 12 VM with AppArmor (TCG)"
tests/system/apparmor-vm.sh
