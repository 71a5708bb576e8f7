#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot the RPi OS-shaped test image in plain QEMU (raspi3b) and check it.

Does what the Raspberry Pi firmware and piemu's import would do, without
libvirt or piemud: copies the image (the original stays untouched), takes
kernel8.img, initramfs8, bcm2710-rpi-3-b.dtb and cmdline.txt from its FAT
partition, adds /system/linux,revision (0xa02082, a Pi 3 B) to the dtb and
removes the bluetooth child of the PL011 (else there is no /dev/ttyAMA0),
turns console=serial0 into console=ttyAMA0, then boots

  qemu-system-aarch64 -M raspi3b -kernel ... -initrd ... -dtb ... -append ...
      -drive file=COPY,if=sd,format=raw -serial stdio -monitor unix:...

and, on the serial line: waits for the login prompt (timed), logs in as
root/raspberry and runs GPIO checks (gpiozero with the native pin factory,
RPi.GPIO, gpioget/gpioset, python3-libgpiod). Output levels are read back on
the host through the QEMU monitor (GPLEV0, "xp" on 0x3f200034).

RPi.GPIO and gpiozero's native pin factory mmap the GPIO block through
/dev/mem (Debian's kernel has no /dev/gpiomem); with Debian's STRICT_DEVMEM
and IO_STRICT_DEVMEM that needs iomem=relaxed on the kernel command line,
which the image's cmdline.txt does not have: pass --append iomem=relaxed to
see them work. libgpiod needs nothing.

Exit status: 0 if the image booted to a login prompt, the login worked and
every check passed; 1 if a check failed; 2 if it did not boot or log in.
"""

import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_IMAGE = "/var/cache/piemu/rpios/piemu-rpios-test.img"
GPLEV0 = 0x3F200034
GPFSEL0 = 0x3F200000


class Serial:
    """The guest's serial line (QEMU's stdio), with a small expect()."""

    def __init__(self, proc, log):
        self.proc = proc
        self.log = log
        self.buf = b""
        self.lock = threading.Condition()
        self.eof = False
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, 4096)
            with self.lock:
                if not data:
                    self.eof = True
                    self.lock.notify_all()
                    return
                self.buf += data
                self.log.write(data)
                self.log.flush()
                self.lock.notify_all()

    def mark(self):
        with self.lock:
            return len(self.buf)

    def expect(self, pattern, timeout, start=0):
        """Wait for regex (bytes) in the output after offset start; return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                m = rx.search(self.buf, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self.lock.wait(min(left, 1.0))

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()


class Monitor:
    """QEMU's human monitor on a unix socket: read guest physical memory."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(100):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("cannot connect to the QEMU monitor")
        self.sock.settimeout(10)
        self._read_until(b"(qemu) ")

    def _read_until(self, token):
        data = b""
        while not data.endswith(token):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("QEMU monitor closed")
            data += chunk
        return data

    def readl(self, addr):
        self.sock.sendall(b"xp /1wx 0x%x\n" % addr)
        out = self._read_until(b"(qemu) ").decode(errors="replace")
        m = re.search(r"%x:\s*0x([0-9a-fA-F]+)" % addr, out)
        if not m:
            raise RuntimeError("unexpected monitor answer: %r" % out)
        return int(m.group(1), 16)


def mbr_partition(image, number):
    """(offset, size) in bytes of MBR partition `number` (1-4)."""
    with open(image, "rb") as f:
        mbr = f.read(512)
    if mbr[510:512] != b"\x55\xaa":
        raise SystemExit("%s: no MBR partition table" % image)
    entry = mbr[446 + 16 * (number - 1): 446 + 16 * number]
    ptype = entry[4]
    start, count = struct.unpack("<II", entry[8:16])
    if ptype == 0 or count == 0:
        raise SystemExit("%s: no partition %d" % (image, number))
    return start * 512, count * 512


def cpu_seconds(pid):
    """User + system CPU time of a process so far (a slow boot on a busy host
    shows as CPU time well below the wall clock time)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, **kw)


def prepare(image, work, extra):
    disk = os.path.join(work, "disk.img")
    if image.endswith(".xz"):
        with open(disk, "wb") as out:
            run(["xz", "-dc", image], stdout=out)
    else:
        run(["cp", "--sparse=always", image, disk])
    size = os.path.getsize(disk)
    if size & (size - 1):
        raise SystemExit("%s: %d bytes is not a power of two (QEMU's SD card wants one)" % (image, size))
    off, _ = mbr_partition(disk, 1)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    files = {}
    for name in ("kernel8.img", "initramfs8", "bcm2710-rpi-3-b.dtb", "cmdline.txt"):
        dest = os.path.join(work, name)
        run(["mcopy", "-n", "-i", "%s@@%d" % (disk, off), "::" + name, dest], env=env)
        files[name] = dest
    dtb = os.path.join(work, "dtb")
    shutil.copyfile(files["bcm2710-rpi-3-b.dtb"], dtb)
    # What the firmware (revision) and piemu's import (no serdev under the PL011) do.
    subprocess.run(["fdtput", "-c", dtb, "/system"], stderr=subprocess.DEVNULL)
    run(["fdtput", "-t", "x", dtb, "/system", "linux,revision", "0xa02082"])
    nodes = subprocess.run(["fdtget", "-l", dtb, "/soc/serial@7e201000"], capture_output=True,
                           text=True).stdout.split()
    if "bluetooth" in nodes:
        run(["fdtput", "-r", dtb, "/soc/serial@7e201000/bluetooth"])
    with open(files["cmdline.txt"]) as f:
        cmdline = " ".join(f.read().split())
    cmdline = re.sub(r"\bconsole=serial0\b", "console=ttyAMA0", cmdline)
    if extra:
        cmdline += " " + extra
    return disk, files, dtb, cmdline


class Guest:
    def __init__(self, serial):
        self.s = serial
        self.n = 0

    def sh(self, command, timeout=120):
        """Run a shell command line; return (exit status or None, output)."""
        self.n += 1
        n = self.n
        # The markers are computed by the shell, so the echoed command line
        # never matches them.
        start = self.s.mark()
        self.s.send("echo __B$((%d+0))__; %s\necho __E$((%d+0))_$?__\n" % (n, command, n))
        b = self.s.expect(rb"__B%d__\r?\n" % n, timeout, start)
        if not b:
            return None, ""
        e = self.s.expect(rb"__E%d_(\d+)__" % n, timeout, b.end())
        if not e:
            return None, self.s.buf[b.end():].decode(errors="replace")
        out = self.s.buf[b.end():e.start()].decode(errors="replace").replace("\r", "")
        out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)      # colours, bracketed paste
        # Drop the prompt and the echo of the second line (if the terminal echoes).
        out = "\n".join(l for l in out.split("\n")
                        if not l.startswith("root@raspberrypi:") and "echo __E$((" not in l)
        return int(e.group(1)), out.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", nargs="?", default=DEFAULT_IMAGE,
                    help="the .img (or .img.xz) to boot (default %(default)s)")
    ap.add_argument("--append", default="",
                    help="extra kernel command line arguments, e.g. iomem=relaxed")
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds to wait for the login prompt (default %(default)s)")
    ap.add_argument("--log", help="write the serial console output here")
    ap.add_argument("--qemu", default="qemu-system-aarch64",
                    help="the QEMU binary (default %(default)s)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also show systemd-analyze blame/critical-chain and the loaded modules")
    args = ap.parse_args()

    for tool in (args.qemu, "mcopy", "fdtput", "fdtget", "xz", "cp"):
        if not shutil.which(tool):
            raise SystemExit("%s not found" % tool)
    work = tempfile.mkdtemp(prefix="check-rpios-")
    results = []
    proc = None
    try:
        disk, files, dtb, cmdline = prepare(os.path.abspath(args.image), work, args.append)
        mon_path = os.path.join(work, "monitor.sock")
        cmd = [args.qemu, "-M", "raspi3b", "-kernel", files["kernel8.img"],
               "-initrd", files["initramfs8"], "-dtb", dtb, "-append", cmdline,
               "-drive", "file=%s,if=sd,format=raw" % disk,
               "-serial", "stdio", "-monitor", "unix:%s,server=on,wait=off" % mon_path,
               "-display", "none"]
        print("cmdline: %s" % cmdline)
        log = open(args.log or os.path.join(work, "console.log"), "wb")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        serial = Serial(proc, log)
        mon = Monitor(mon_path)

        m = serial.expect(rb"raspberrypi login: ", args.timeout)
        if not m:
            print("FAIL boot: no login prompt within %.0f s" % args.timeout)
            tail = serial.buf[-3000:].decode(errors="replace")
            print(tail)
            return 2
        t_login = time.monotonic() - t0
        print("login prompt after %.1f s (wall clock from QEMU's start; QEMU used %.1f s of CPU)"
              % (t_login, cpu_seconds(proc.pid)))
        serial.send("root\n")
        if not serial.expect(rb"Password: ", 60, m.end()):
            print("FAIL login: no password prompt")
            return 2
        at = serial.mark()
        serial.send("raspberry\n")
        if not serial.expect(rb"root@raspberrypi:~# ", 120, at):
            print("FAIL login: no shell prompt after root/raspberry")
            return 2
        print("login as root/raspberry: ok (%.1f s after the prompt)" % (time.monotonic() - t0 - t_login))
        g = Guest(serial)
        g.sh("dmesg -n 1; stty -echo; export SYSTEMD_COLORS=0 SYSTEMD_PAGER=")

        def level(pin):
            return (mon.readl(GPLEV0) >> pin) & 1

        def fsel(pin):
            return (mon.readl(GPFSEL0 + 4 * (pin // 10)) >> (3 * (pin % 10))) & 7

        def check(name, command, pin=None, want=None, timeout=180):
            before = level(pin) if pin is not None else None
            t = time.monotonic()
            rc, out = g.sh(command, timeout)
            secs = time.monotonic() - t
            detail = ""
            ok = rc == 0
            if pin is not None:
                after, fs = level(pin), fsel(pin)
                detail = " [host: GPIO%d level %s -> %s, function %s]" % (
                    pin, before, after, "output" if fs == 1 else "input" if fs == 0 else "alt%d" % fs)
                if want is not None and after != want:
                    ok = False
            results.append((name, ok))
            print("%s %s (rc=%s, %.1f s)%s" % ("PASS" if ok else "FAIL", name, rc, secs, detail))
            for line in out.splitlines()[-12:]:
                print("     | " + line)
            return ok

        def info(command):
            rc, out = g.sh(command)
            print("info: %s\n     | %s" % (command, "\n     | ".join(out.splitlines())))

        for command in ("uname -r", "cat /proc/cmdline", "systemd-analyze time",
                        "systemctl is-system-running; systemctl --failed --no-legend --plain",
                        "ls -l /dev/gpiomem /dev/mem /dev/gpiochip* 2>&1",
                        "od -An -tx1 /proc/device-tree/system/linux,revision",
                        "findmnt -n -o SOURCE,TARGET,FSTYPE,OPTIONS /; "
                        "findmnt -n -o SOURCE,TARGET,FSTYPE,OPTIONS /boot/firmware"):
            info(command)

        check("gpioget gpiochip0 17", "gpioget gpiochip0 17")
        check("gpioset gpiochip0 24=1", "gpioset gpiochip0 24=1", pin=24, want=1)
        check("gpiozero LED(22).on(), native factory",
              "GPIOZERO_PIN_FACTORY=native python3 -c 'from gpiozero import LED; "
              "l = LED(22); l.on(); print(\"value\", l.value)'", pin=22, want=1)
        check("gpiozero InputDevice(17), native factory",
              "GPIOZERO_PIN_FACTORY=native python3 -c 'from gpiozero import InputDevice; "
              "print(\"value\", InputDevice(17).value)'")
        check("RPi.GPIO output(23, 1)",
              "python3 -c 'import RPi.GPIO as G; G.setmode(G.BCM); G.setup(23, G.OUT); "
              "G.output(23, 1); print(\"ok\")'", pin=23, want=1)
        check("python3-libgpiod line 25 = 1",
              "python3 -c 'import gpiod; l = gpiod.Chip(\"gpiochip0\").get_line(25); "
              "l.request(consumer=\"check\", type=gpiod.LINE_REQ_DIR_OUT, default_vals=[1]); "
              "print(\"value\", l.get_value())'", pin=25, want=1)
        if args.verbose:
            info("systemd-analyze blame --no-pager | head -n 15")
            info("systemd-analyze critical-chain --no-pager serial-getty@ttyAMA0.service")
            info("lsmod | wc -l; lsmod | awk 'NR > 1 {print $1}' | sort | tr '\\n' ' '; echo")
            info("systemctl show -p Id -p ConditionResult systemd-hwdb-update ldconfig "
                 "systemd-journal-catalog-update systemd-firstboot | paste -sd' '")
        failed = [n for n, ok in results if not ok]
        print("summary: %d checks, %d failed%s" % (len(results), len(failed),
                                                  (": " + "; ".join(failed)) if failed else ""))
        return 1 if failed else 0
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
