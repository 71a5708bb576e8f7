#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs as another (unprivileged) user, started by test_security.py through setpriv.

  as_user.py call PATH IFACE METHOD [SIG JSON-ARGS]   -> {"ok": bool, "error": name, "result": ...}
  as_user.py listen SECONDS                            -> counts of org.piemu signals this
                                                          connection received (a plain match
                                                          on everything org.piemu sends)
  as_user.py watch PATH SECONDS                        -> Watch() and collect SerialOutput
  as_user.py watch-all PATH SECONDS                    -> Watch() (refused or not), then keep
                                                          listening to everything org.piemu sends:
                                                          the answer, the serial text, counts
  as_user.py listen-bodies SECONDS                     -> every org.piemu signal this connection
                                                          received, with its arguments as text
  as_user.py read-file PATH                            -> {"ok": bool, "error": errno name}: can
                                                          this user open PATH for reading?
  as_user.py connect-unix PATH                         -> can this user connect to the socket PATH
                                                          (and what does it answer)?
  as_user.py import NAME KERNEL DTB SD                 -> ImportImage from files this user opens
"""

import errno
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import piemu_bus as pb  # noqa: E402


def out(obj):
    print(json.dumps(obj), flush=True)


def variants(args):
    """JSON has no variants: a dict argument (a{sv}) gets its plain values wrapped, and
    {"__variant__": [SIG, VALUE]} is one variant of that type (a "v" argument)."""
    def wrap(v):
        return pb.GLib.Variant("b" if isinstance(v, bool) else "s", v)

    def one(a):
        if isinstance(a, dict) and list(a) == ["__variant__"]:
            return pb.GLib.Variant(*a["__variant__"])
        return {k: wrap(v) for k, v in a.items()} if isinstance(a, dict) else a
    return [one(a) for a in args]


def do_call(conn, path, iface, method, sig=None, args="[]"):
    try:
        res = pb.call(conn, path, iface, method, sig, variants(json.loads(args)), timeout_ms=30000)
        return {"ok": True, "result": res if not isinstance(res, tuple) else list(res)}
    except pb.GLib.Error as e:
        return {"ok": False, "error": pb.dbus_error_name(e), "message": e.message}


def main():
    conn = pb.private_system_bus()
    verb = sys.argv[1]
    if verb == "call":
        out(do_call(conn, *sys.argv[2:]))
    elif verb == "listen":
        seen = {}

        def on_signal(c, sender, path, iface, member, params):
            seen[member] = seen.get(member, 0) + 1

        conn.signal_subscribe("org.piemu", None, None, None, None, pb.Gio.DBusSignalFlags.NONE, on_signal)
        out({"listening": True})
        pb.pump(float(sys.argv[2]))
        out({"seen": seen})
    elif verb == "listen-bodies":
        got = []

        def on_body(c, sender, path, iface, member, params):
            got.append([path, member, str(params)])

        conn.signal_subscribe("org.piemu", None, None, None, None, pb.Gio.DBusSignalFlags.NONE, on_body)
        out({"listening": True})
        pb.pump(float(sys.argv[2]))
        out({"signals": got})
    elif verb == "read-file":
        try:
            os.close(os.open(sys.argv[2], os.O_RDONLY))
            out({"ok": True})
        except OSError as e:
            out({"ok": False, "error": errno.errorcode.get(e.errno, str(e.errno))})
    elif verb == "connect-unix":
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sys.argv[2])
        except OSError as e:
            out({"ok": False, "error": errno.errorcode.get(e.errno, str(e.errno))})
            sys.exit(0)
        got = b""
        try:
            s.settimeout(2)
            s.sendall(b"readl 0x3f200034\n")  # what an attacker would try first
            got = s.recv(100)
        except OSError:
            pass  # closed by the other end: nothing to read
        out({"ok": True, "got": got.decode(errors="replace")})
        s.close()
    elif verb == "watch":
        path, seconds = sys.argv[2], float(sys.argv[3])
        data = bytearray()
        gpio = []

        def on_signal(c, sender, p, iface, member, params):
            if member == "SerialOutput":
                data.extend(bytes(params.unpack()[0]))
            elif member == "GpioChanged":
                gpio.append(list(params.unpack()))

        conn.signal_subscribe("org.piemu", pb.BOARD_IFACE, None, path, None, pb.Gio.DBusSignalFlags.NONE, on_signal)
        r = do_call(conn, path, pb.BOARD_IFACE, "Watch")
        out({"watch": r})
        pb.pump(seconds)
        out({"serial": data.decode(errors="replace"), "gpio": gpio})
    elif verb == "watch-all":
        path, seconds = sys.argv[2], float(sys.argv[3])
        data = bytearray()
        seen = {}

        def on_any(c, sender, p, iface, member, params):
            seen[member] = seen.get(member, 0) + 1
            if member == "SerialOutput":
                data.extend(bytes(params.unpack()[0]))

        conn.signal_subscribe("org.piemu", None, None, None, None, pb.Gio.DBusSignalFlags.NONE, on_any)
        r = do_call(conn, path, pb.BOARD_IFACE, "Watch")
        out({"watch": r})
        pb.pump(seconds)
        out({"serial": data.decode(errors="replace"), "seen": seen})
    elif verb == "import":
        name, kernel, dtb, sd = sys.argv[2:6]
        fds = [os.open(p, os.O_RDONLY) for p in (kernel, dtb, sd)]
        try:
            pb.call(conn, pb.MANAGER_PATH, pb.MANAGER_IFACE, "ImportImage", "(shhha{sv})",
                    (name, 0, 1, 2, {"description": pb.GLib.Variant("s", "imported by test")}), fds=fds)
            out({"ok": True})
        except pb.GLib.Error as e:
            out({"ok": False, "error": pb.dbus_error_name(e), "message": e.message})
    else:
        sys.exit(f"unknown verb {verb}")


if __name__ == "__main__":
    main()
