#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# start|stop|restart|status piemud on a machine with or without systemd as PID 1.
# Without systemd it runs as the dedicated piemu user (in the libvirt group),
# logging to /var/log/piemud.log, exactly as the unit would.
set -euo pipefail

PIEMUD=${PIEMUD:-/usr/sbin/piemud}
LOG=/var/log/piemud.log
PIDFILE=/run/piemud.pid

have_systemd() { [ -d /run/systemd/system ]; }

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
    if have_systemd; then
        systemctl daemon-reload
        systemctl start piemud.service
    else
        local user=piemu
        id -u "$user" >/dev/null 2>&1 || user=root
        : >>"$LOG"
        # setsid: piemud must outlive the shell that started it (and the test that restarts it).
        setsid setpriv --reuid="$user" --regid="$user" --init-groups \
            "$PIEMUD" ${PIEMUD_ARGS:-} >>"$LOG" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    fi
    wait_for_bus
    echo "piemud: running (log: $(have_systemd && echo 'journalctl -u piemud' || echo "$LOG"))"
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
    echo "piemud: stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) stop; start ;;
status) bus_has_piemu && echo running || { echo "not running"; exit 3; } ;;
*) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
