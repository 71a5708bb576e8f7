#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""End-to-end check of piemu-gpio-shim in a real raspi3b guest (manual; needs QEMU and an image).

Boots an image built with `tools/build-image.sh --shim <aarch64 shim> --output DIR` straight
with qemu-system-aarch64 (no libvirt, no piemud), talks to the console on serial0 and plays
piemud on serial1:
  - HELLO arrives; `piemu-gpio-shim set 23 1` on the console gives `GPIO 23 1`;
  - `SET 17 1` makes `piemu-gpio-shim get 17` print 1; SYNC is answered with PINS;
  - garbage from the host is dropped and the next line still works; bad CLI use exits 2;
  - SET → GPIO echo latency; SIGTERM makes the shim exit 0.
With --measure SECONDS it also measures what the shim costs an idle board (guest CPU from
/proc/PID/schedstat, QEMU's host CPU) for each --plan entry of daemon options; "none" is the
baseline without a shim.

The host sockets re-arm TCP_QUICKACK after every read: QEMU's socket chardev does not set
TCP_NODELAY, and without quick ACKs every reply of more than one segment waits ~40 ms for
delayed ACK (Nagle on QEMU's side), whatever the guest does.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--image", required=True, help="image directory (kernel, dtb, initrd, sd.img, meta)")
ap.add_argument("--ports", default="45231,45232", help="TCP ports for serial0,serial1 on 127.0.0.1")
ap.add_argument("--measure", type=int, default=0, metavar="SECONDS", help="CPU measurement per plan entry")
ap.add_argument("--plan", default="none;;--idle-interval-ms 0",
                help="';'-separated daemon option sets to measure ('none' = no shim, '' = defaults)")
args = ap.parse_args()

P0, P1 = (int(p) for p in args.ports.split(","))
plan = args.plan.split(";") if args.measure else []
meta = dict(l.split("=", 1) for l in open(f"{args.image}/meta").read().splitlines() if "=" in l)
work = tempfile.mkdtemp(prefix="piemu-shim-guest-")
overlay = f"{work}/sd.qcow2"
subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.abspath(f"{args.image}/sd.img"),
                "-F", "raw", overlay], check=True)
budget = 180 + len(plan) * (args.measure + 20)
qemu = subprocess.Popen(["timeout", str(budget), "qemu-system-aarch64", "-M", "raspi3b", "-m", "1G",
                         "-kernel", f"{args.image}/kernel", "-dtb", f"{args.image}/dtb",
                         "-initrd", f"{args.image}/initrd", "-append", meta["cmdline"],
                         "-drive", f"file={overlay},if=sd,format=qcow2", "-nographic", "-monitor", "none",
                         "-serial", f"tcp:127.0.0.1:{P0},server=on,wait=off",
                         "-serial", f"tcp:127.0.0.1:{P1},server=on,wait=off"],
                        stdin=subprocess.DEVNULL, stdout=open(f"{work}/qemu.out", "wb"), stderr=subprocess.STDOUT)


def connect(port):
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            time.sleep(0.1)
    sys.exit(f"cannot connect to 127.0.0.1:{port}")


con, gpio = connect(P0), connect(P1)
logs = {con: open(f"{work}/console.log", "wb"), gpio: open(f"{work}/serial1.log", "wb")}
buf = {con: b"", gpio: b""}


def wait_for(sock, pattern, timeout):
    end = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        m = rx.search(buf[sock])
        if m:
            buf[sock] = buf[sock][m.end():]
            return m
        left = end - time.monotonic()
        if left <= 0:
            sys.exit(f"timeout waiting for {pattern!r}; last bytes: {buf[sock][-300:]!r}")
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        if not d:
            sys.exit("connection closed")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        logs[sock].write(d)
        buf[sock] += d


def line(timeout=5):
    return wait_for(gpio, rb"([^\n]*)\n", timeout).group(1).decode(errors="replace")


n_cmd = 0


def sh(cmd, timeout=30):
    """Runs cmd in the console shell, returns its output (marker split so the echo can't match)."""
    global n_cmd
    n_cmd += 1
    con.sendall(f'{cmd}; echo "__E""ND_{n_cmd}__"\n'.encode())
    return wait_for(con, rb"(?s)(.*?)__END_%d__" % n_cmd, timeout).group(1).decode(errors="replace")


def last(out):
    return out.strip().splitlines()[-1].strip()


def expect(got, want):
    if got != want:
        sys.exit(f"FAIL: expected {want!r}, got {got!r}")
    print(f"ok: {got}", flush=True)


try:
    t0 = time.monotonic()
    m = wait_for(gpio, rb"HELLO piemu-shim ([A-Za-z0-9._+-]+)\r?\n", 120)
    print(f"ok: HELLO piemu-shim {m.group(1).decode()} after {time.monotonic() - t0:.1f} s", flush=True)
    wait_for(con, rb"piemu: ready", 120)
    time.sleep(1)
    sh("dmesg -n 1")

    sh("piemu-gpio-shim set 23 1"); expect(line(), "GPIO 23 1")
    sh("piemu-gpio-shim set 23 0"); expect(line(), "GPIO 23 0")
    gpio.sendall(b"SET 17 1\n"); expect(line(), "GPIO 17 1")
    expect(last(sh("piemu-gpio-shim get 17")), "1")
    gpio.sendall(b"SET 17 0\n"); expect(line(), "GPIO 17 0")
    expect(last(sh("piemu-gpio-shim get 17")), "0")
    gpio.sendall(b"SET 5 1\nSYNC\n"); expect(line(), "GPIO 5 1")
    pins = line()
    m = re.fullmatch(r"PINS ([0-9a-f]+)", pins)
    if not m or not int(m.group(1), 16) & (1 << 5) or int(m.group(1), 16) & (1 << 17):
        sys.exit(f"FAIL: bad snapshot {pins!r}")
    print(f"ok: {pins}")
    gpio.sendall(b"X" * 300 + b"\nGPIO 3 1\nsync\n\x00\xff\nSET 6 1\n"); expect(line(), "GPIO 6 1")
    expect(last(sh("piemu-gpio-shim set 54 1; echo rc=$?")), "rc=2")
    expect(last(sh("piemu-gpio-shim get 1x; echo rc=$?")), "rc=2")

    lat = []
    for i in range(40):
        t = time.monotonic()
        gpio.sendall(b"SET 12 %d\n" % (i % 2 == 0))
        expect_line = f"GPIO 12 {int(i % 2 == 0)}"
        got = line()
        lat.append((time.monotonic() - t) * 1000)
        if got != expect_line:
            sys.exit(f"FAIL: {got!r} != {expect_line!r}")
    print("latencies", " ".join(f"{x:.1f}" for x in lat))
    lat.sort()
    print(f"SET→GPIO echo over 40: median {statistics.median(lat):.2f} ms, max {lat[-1]:.2f} ms", flush=True)

    # The QEMU the wrapper shell started: the child of the PID we started (not looked up by name).
    qemu_pid = int(open(f"/proc/{qemu.pid}/task/{qemu.pid}/children").read().split()[0])
    hz = os.sysconf("SC_CLK_TCK")

    def host_cpu():
        f = open(f"/proc/{qemu_pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / hz

    for step in plan:
        sh("kill $(pidof piemu-gpio-shim) 2>/dev/null; sleep 1")
        if step.strip() == "none":
            time.sleep(2)
            h0 = host_cpu()
            sh(f"sleep {args.measure}", timeout=args.measure + 20)
            host = host_cpu() - h0
            print(f"[none] qemu host CPU {host / args.measure * 100:.2f} % of a core", flush=True)
            continue
        buf[gpio] = b""
        sh(f"piemu-gpio-shim daemon {step} </dev/null >/dev/null 2>&1 & true")
        wait_for(gpio, rb"HELLO piemu-shim [^\n]*\n", 10)
        time.sleep(3)  # past the initial fast phase
        pid = last(sh("pidof piemu-gpio-shim"))
        h0 = host_cpu()
        out = sh(f"cat /proc/{pid}/schedstat; sleep {args.measure}; cat /proc/{pid}/schedstat",
                 timeout=args.measure + 20)
        host = host_cpu() - h0
        st = re.findall(r"^(\d+) (\d+) (\d+)\s*$", out, re.M)
        ns, slices = int(st[1][0]) - int(st[0][0]), int(st[1][2]) - int(st[0][2])
        print(f"[{step or 'defaults'}] shim {ns / 1e9 / args.measure * 100:.3f} % of a guest CPU, "
              f"{slices / args.measure:.1f} wakeups/s, {ns / max(1, slices) / 1e3:.0f} us each; "
              f"qemu host CPU {host / args.measure * 100:.2f} % of a core", flush=True)

    sh("kill $(pidof piemu-gpio-shim) 2>/dev/null; sleep 1")
    sh("piemu-gpio-shim daemon </dev/null >/dev/null 2>&1 & SHIM=$!")
    wait_for(gpio, rb"HELLO piemu-shim [^\n]*\n", 10)
    expect(last(sh("kill -TERM $SHIM; wait $SHIM; echo rc=$?")), "rc=0")
    print("ALL GUEST CHECKS PASSED")
finally:
    if qemu.poll() is None:
        qemu.terminate()
        qemu.wait(10)
    print(f"logs in {work}", file=sys.stderr)
