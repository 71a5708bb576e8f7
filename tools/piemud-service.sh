#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# start|stop|restart|status piemud on a machine with or without systemd as PID 1.
# Without systemd it runs as the dedicated piemu user (in the libvirt group),
# logging to /var/log/piemud.log, exactly as the unit would.
#
# PIEMUD=PATH runs another piemud binary (the test suite's sanitizer build). Under systemd the unit
# would run /usr/sbin/piemud whatever PIEMUD says, so then the unit is masked for this boot
# (systemctl mask --runtime: D-Bus activation cannot bring the installed piemud in between) and
# PATH runs as the piemu user as without systemd; stop unmasks it. Either way, start fails loudly
# if the piemud on the bus is not the binary asked for.
set -euo pipefail

INSTALLED=/usr/sbin/piemud
PIEMUD=${PIEMUD:-$INSTALLED}
LOG=/var/log/piemud.log
PIDFILE=/run/piemud.pid
MASK_STAMP=/run/piemud-service.masked

have_systemd() { [ -d /run/systemd/system ]; }
# The unit runs the installed binary: anything else runs beside it, by hand.
use_unit() { have_systemd && [ "$(readlink -f "$PIEMUD")" = "$(readlink -f "$INSTALLED")" ]; }

bus_has_piemu() {
    busctl --system status org.piemu >/dev/null 2>&1
}

wait_for_bus() {
    for _ in $(seq 1 100); do
        bus_has_piemu && return 0
        sleep 0.1
    done
    echo "piemud did not appear on the system bus; last log lines:" >&2
    tail -n 20 "$LOG" >&2 || true
    return 1
}

start() {
    if bus_has_piemu; then
        echo "piemud: already running"
        return 0
    fi
    if use_unit; then
        systemctl daemon-reload
        systemctl start piemud.service
    else
        [ -x "$PIEMUD" ] || { echo "piemud-service: $PIEMUD is not an executable" >&2; return 1; }
        if have_systemd; then
            systemctl stop piemud.service || true
            systemctl mask --runtime piemud.service >/dev/null
            touch "$MASK_STAMP"
        fi
        local user=piemu
        id -u "$user" >/dev/null 2>&1 || user=root
        : >>"$LOG"
        # setsid: piemud must outlive the shell that started it (and the test that restarts it).
        setsid setpriv --reuid="$user" --regid="$user" --init-groups \
            "$PIEMUD" ${PIEMUD_ARGS:-} >>"$LOG" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    fi
    wait_for_bus
    check_binary
    echo "piemud: running (log: $(use_unit && echo 'journalctl -u piemud' || echo "$LOG"))"
}

# The piemud that owns org.piemu must be the one asked for: a test stage that meant to check a
# sanitizer build must not pass on the installed binary.
check_binary() {
    local pid exe
    pid=$(busctl --system status org.piemu 2>/dev/null | sed -n 's/^PID=//p' || true)
    exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)
    if [ -z "$pid" ] || [ "$exe" != "$(readlink -f "$PIEMUD")" ]; then
        echo "piemud-service: org.piemu is served by pid ${pid:-?} ($exe), not by $PIEMUD" >&2
        return 1
    fi
}

stop() {
    if have_systemd; then
        systemctl stop piemud.service || true
    fi
    local pid
    pid=$(busctl --system status org.piemu 2>/dev/null | sed -n 's/^PID=//p' || true)
    [ -n "$pid" ] || pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
    if [ -e "$MASK_STAMP" ]; then
        systemctl unmask --runtime piemud.service >/dev/null || true
        rm -f "$MASK_STAMP"
    fi
    echo "piemud: stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) stop; start ;;
status) bus_has_piemu && echo running || { echo "not running"; exit 3; } ;;
*) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
