#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A local user who goes after another user's board lines. Run as that user by test_tls_lines.py.
Prints one JSON object when done.

  stranger.py hold PORT...              raw TCP to every port, reconnecting whenever dropped, typing
                                        a console command and a GPIO SET; until SIGTERM
                                        -> {"received": bytes, "connects": n, "sample": hex}
  stranger.py tls PORT none|DIR         a TLS client without a certificate, or with DIR's client
                                        certificate (another CA) -> {"handshake": bool,
                                        "app_bytes": n, "error": str}
  stranger.py stall PORT COUNT SECONDS  COUNT connections that send half a ClientHello and wait
                                        -> {"closed_after": [seconds or null, ...]}
  stranger.py squat PORT SECONDS        binds the port and listens (while piemud is away), records
                                        what whoever connects sends -> {"connects": n,
                                        "received": bytes, "tls_records_only": bool}
"""

import json
import os
import select
import signal
import socket
import ssl
import sys
import time

TYPED_CONSOLE = b"echo HIJACK-$((2+2))\n"
TYPED_GPIO = b"SET 5 1\n"


def out(obj):
    print(json.dumps(obj), flush=True)


def hold(ports):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    socks = {p: None for p in ports}
    received = bytearray()
    connects = 0
    while not stop:
        for p in ports:
            if socks[p] is None:
                try:
                    s = socket.create_connection(("127.0.0.1", p), timeout=0.5)
                    s.setblocking(False)
                    socks[p] = s
                    connects += 1
                    try:
                        s.send(TYPED_CONSOLE if p == ports[0] else TYPED_GPIO)
                    except OSError:
                        pass
                except OSError:
                    pass
        live = [s for s in socks.values() if s is not None]
        try:
            ready, _, _ = select.select(live, [], [], 0.05) if live else ([], [], time.sleep(0.05))
        except InterruptedError:
            continue
        for s in ready:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if d:
                received.extend(d)
            else:
                for p, v in socks.items():
                    if v is s:
                        socks[p] = None
                s.close()
    out({"received": len(received), "connects": connects, "sample": received[:64].hex()})


def tls_client(port, mode):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a stranger does not care who answers
    if mode != "none":
        ctx.load_cert_chain(os.path.join(mode, "client-cert.pem"), os.path.join(mode, "client-key.pem"))
    res = {"handshake": False, "app_bytes": 0, "error": ""}
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        res["handshake"] = True  # from the client's side; TLS 1.3 servers refuse the certificate after this
        s.settimeout(3)
        try:
            s.sendall(TYPED_CONSOLE)
        except OSError:
            pass
        while True:
            d = s.recv(65536)
            if not d:
                break
            res["app_bytes"] += len(d)
    except (OSError, ssl.SSLError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        raw.close()
    out(res)


# The first bytes of a TLS ClientHello, and then nothing: a handshake that never finishes.
HALF_HELLO = bytes.fromhex("16030100c8010000c40303")


def stall(port, count, seconds):
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(HALF_HELLO)
        socks.append([s, time.monotonic(), None])
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(c is None for _, _, c in socks):
        live = [e[0] for e in socks if e[2] is None]
        ready, _, _ = select.select(live, [], [], 0.05)
        for s in ready:
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if not d:
                for e in socks:
                    if e[0] is s:
                        e[2] = time.monotonic() - e[1]
    out({"closed_after": [e[2] for e in socks]})
    for e in socks:
        e[0].close()


def tls_records_only(data):
    """True if data is a sequence of TLS records (handshake/alert/ccs headers), i.e. no plaintext."""
    i = 0
    while i + 5 <= len(data):
        if data[i] not in (0x14, 0x15, 0x16, 0x17) or data[i + 1] != 3:
            return False
        i += 5 + int.from_bytes(data[i + 3:i + 5], "big")
    return True


def squat(port, seconds):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)
    out({"listening": True})
    ls.settimeout(0.1)
    conns, received, n = [], bytearray(), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            c, _ = ls.accept()
            c.setblocking(False)
            conns.append(c)
            n += 1
        except socket.timeout:
            pass
        for c in list(conns):
            try:
                d = c.recv(65536)
                if d:
                    received.extend(d)
                else:
                    conns.remove(c)
                    c.close()
            except BlockingIOError:
                pass
            except OSError:
                conns.remove(c)
    ls.close()
    for c in conns:
        c.close()
    out({"connects": n, "received": len(received), "tls_records_only": tls_records_only(bytes(received)),
         "plain_console": b"piemu" in received or b"Linux" in received})


def main():
    verb = sys.argv[1]
    if verb == "hold":
        hold([int(p) for p in sys.argv[2:]])
    elif verb == "tls":
        tls_client(int(sys.argv[2]), sys.argv[3])
    elif verb == "stall":
        stall(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif verb == "squat":
        squat(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(f"unknown verb {verb}")


if __name__ == "__main__":
    main()
