#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The README's main command: set everything up, then show a board booting, its
# console, a GPIO input driven from the host and read in the guest, and a GPIO
# output toggled in the guest and seen on the host. Leaves piemud running.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
BOARD=${PIEMU_DEMO_BOARD:-demo}
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
watch_pid=

cleanup() {
    [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (the first run installs packages and services)" >&2
    exit 1
fi

say "Setting up piemu (packages, build, services, guest image). The first run takes a few minutes."
tools/setup.sh

say "piemud is running. Images in the catalog:"
piemuctl --no-pager images

if piemuctl --quiet status "$BOARD" >/dev/null 2>&1; then
    say "Removing the board '$BOARD' left by an earlier demo."
    piemuctl --quiet delete "$BOARD"
fi

say "Creating board '$BOARD' on the default image and powering it on."
piemuctl create "$BOARD"
piemuctl start "$BOARD"
piemuctl --no-pager status "$BOARD" | sed -n '1,12p'

say "Its serial console, live (the emulated Pi boots in a few seconds):"
piemuctl watch "$BOARD" &
watch_pid=$!
piemuctl wait "$BOARD" --serial='piemu: ready' --timeout=3min
piemuctl wait "$BOARD" --ready --timeout=1min
sleep 2
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=

say "The guest's GPIO shim said hello (GuestReady). Driving input pin 17 high from the host:"
echo "\$ piemuctl set-pin $BOARD 17 1"
piemuctl set-pin "$BOARD" 17 1
piemuctl wait "$BOARD" --pin=17=1 --timeout=30s
say "...and the guest reads it:"
piemuctl send "$BOARD" 'echo "guest sees pin 17 = $(piemu-gpio-shim get 17)"'
piemuctl wait "$BOARD" --since-now --serial='guest sees pin 17 = 1' --timeout=30s || \
    piemuctl wait "$BOARD" --serial='guest sees pin 17 = 1' --timeout=30s
piemuctl --no-pager status "$BOARD" | grep -a 'guest sees pin 17' | tail -n 1 || true

say "Now the guest toggles output pin 23; the host sees GpioChanged events:"
piemuctl watch "$BOARD" | grep --line-buffered -E 'gpio 23' &
watch_pid=$!
sleep 1
piemuctl send "$BOARD" 'for i in 1 2 3; do piemu-gpio-shim set 23 1; sleep 0.5; piemu-gpio-shim set 23 0; sleep 0.5; done; echo toggled'
piemuctl wait "$BOARD" --since-now --serial='^toggled' --timeout=1min || true
piemuctl wait "$BOARD" --pin=23=0 --timeout=30s
sleep 1
kill "$watch_pid" 2>/dev/null || true
watch_pid=

say "All 54 pins as the host sees them (17 driven high):"
piemuctl --no-pager pins "$BOARD" | head -n 25

say "Stopping and deleting the board."
piemuctl stop "$BOARD"
piemuctl delete "$BOARD"
piemuctl --no-pager list

say "Done. piemud keeps running: try 'piemuctl create b1 && piemuctl start b1 && piemuctl console b1'."
