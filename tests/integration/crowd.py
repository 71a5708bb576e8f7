#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One user's share of a crowd, run as that user by test_crowd.py: opens N bus connections, calls
METHOD (Watch or GetPin) once on each, reports, and keeps them open until SIGTERM.

  crowd.py N PATH Watch|GetPin|mixed  -> {"ok": n, "errors": {name: n}} once all are answered,
                                         then {"signals": n} at SIGTERM
"""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
import piemu_bus as pb  # noqa: E402


def main():
    n, path, method = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    addr = pb.Gio.dbus_address_get_for_bus_sync(pb.Gio.BusType.SYSTEM, None)
    flags = pb.Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | pb.Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    conns, results, signals = [], {"ok": 0, "errors": {}}, [0]
    pending = [0]

    def on_signal(*args):
        signals[0] += 1

    def done(conn, res, _):
        pending[0] -= 1
        try:
            conn.call_finish(res)
            results["ok"] += 1
        except pb.GLib.Error as e:
            name = pb.dbus_error_name(e) or e.message
            results["errors"][name] = results["errors"].get(name, 0) + 1
            results.setdefault("messages", {})[name] = e.message

    for i in range(n):
        try:
            c = pb.Gio.DBusConnection.new_for_address_sync(addr, flags, None, None)
        except pb.GLib.Error as e:
            results["errors"]["connect: " + e.message] = results["errors"].get("connect: " + e.message, 0) + 1
            continue
        conns.append(c)
        m = method if method != "mixed" else ("Watch" if i % 2 == 0 else "GetPin")
        if m == "Watch":
            c.signal_subscribe("org.piemu", pb.BOARD_IFACE, None, path, None, pb.Gio.DBusSignalFlags.NONE, on_signal)
            args = None
        else:
            args = pb.GLib.Variant("(u)", (4,))
        pending[0] += 1
        c.call("org.piemu", path, pb.BOARD_IFACE, m, args, None, pb.Gio.DBusCallFlags.NONE, 60000, None, done, None)
    while pending[0] > 0:
        pb.GLib.MainContext.default().iteration(True)
    print(json.dumps(results), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        pb.pump(0.1)
    print(json.dumps({"signals": signals[0]}), flush=True)
    for c in conns:
        c.close_sync(None)


if __name__ == "__main__":
    main()
