#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot a piemu catalog image directly with QEMU (no libvirt) and check it.

Usage: images/boot-test.py [IMAGE_DIR] [--keep]   (default /var/lib/piemu/images/default)

Boots twice on one qcow2 overlay of sd.img and checks: the console reaches
"piemu: ready" and a prompt, echoes input (echo $((6*7)) -> 42), /mnt/sd is
/dev/mmcblk0 (ext4, rw), /dev/ttyAMA0 and /dev/ttyS1 exist, and a file written
to /mnt/sd (+ sync) in the first boot is there in the second. Prints the time
from QEMU start to "piemu: ready". Every QEMU run is under timeout(1).
"""
import os
import re
import select
import shutil
import subprocess
import sys
import socket
import tempfile
import threading
import time

BOOT_TIMEOUT = 60  # seconds to "piemu: ready"
QEMU_TIMEOUT = 120  # hard limit of one QEMU run (timeout -k)
# ash's line editor asks the terminal for the cursor position (ESC [ 6 n) after
# each prompt; a real terminal answers, this script does not need to.
PROMPT = re.compile(rb"piemu:[^\r\n#]*# (?:\x1b\[6n)?$")


class Guest:
    def __init__(self, image, overlay, log, serial1):
        meta = dict(
            line.split("=", 1) for line in open(os.path.join(image, "meta")).read().splitlines() if "=" in line
        )
        cmd = [
            "timeout", "-k", "5", str(QEMU_TIMEOUT),
            "qemu-system-aarch64", "-M", "raspi3b", "-m", "1G", "-no-reboot",
            "-kernel", os.path.join(image, "kernel"),
            "-dtb", os.path.join(image, "dtb"),
            "-initrd", os.path.join(image, "initrd"),
            "-append", meta["cmdline"],
            "-drive", f"file={overlay},if=sd,format=qcow2",
            "-display", "none", "-monitor", "none",
            "-serial", "stdio",
            "-chardev", f"socket,id=s1,path={serial1},server=on,wait=off", "-serial", "chardev:s1",
        ]  # fmt: skip
        self.log = log
        self.buf = b""
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # serial1 (the mini UART, guest ttyS1): what the host side of the shim sees
        self.s1 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(100):
            try:
                self.s1.connect(serial1)
                break
            except OSError:
                time.sleep(0.05)
        self.s1_buf = b""
        threading.Thread(target=self._read_s1, daemon=True).start()

    def _read_s1(self):
        while True:
            try:
                data = self.s1.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.s1_buf += data

    def s1_wait(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.s1_buf):
                return True
            time.sleep(0.05)
        return False

    def expect(self, pattern, timeout=20):
        """Wait for a regex in the output since the last match; return the match."""
        rx = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out waiting for {rx.pattern!r}; tail: {self.buf[-600:]!r}")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                data = os.read(self.p.stdout.fileno(), 65536)
                if not data:
                    raise EOFError(f"QEMU exited ({self.p.wait()}); tail: {self.buf[-600:]!r}")
                self.log.write(data)
                self.log.flush()
                self.buf += data

    def run(self, command, timeout=20):
        """Type a command line, return its output (without the echoed line)."""
        n = time.monotonic_ns()
        # The echo of the typed line (possibly wrapped by the line editor) holds
        # "<<S%s>>" and the number apart, so only the real output has "<<S<n>>>".
        self.p.stdin.write(f"printf '<<S%s>>\\n' {n}; {command}; printf '<<E%s>>\\n' {n}\n".encode())
        self.p.stdin.flush()
        self.expect(re.escape(f"<<S{n}>>".encode()) + rb"\r?\n", timeout)
        m = self.expect(rb"(?s)^(.*?)" + re.escape(f"<<E{n}>>".encode()) + rb"\r?\n", timeout)
        self.expect(PROMPT, timeout)
        return m.group(1).decode(errors="replace").replace("\r", "").rstrip("\n")

    def stop(self):
        # SIGTERM to timeout(1) is passed on to QEMU; SIGKILL would orphan QEMU.
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.p.wait()
        self.s1.close()


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        check.failed = True


check.failed = False


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep" in sys.argv
    image = args[0] if args else "/var/lib/piemu/images/default"
    tmp = tempfile.mkdtemp(prefix="piemu-boot-test.")
    overlay = os.path.join(tmp, "overlay.qcow2")
    size = os.path.getsize(os.path.join(image, "sd.img"))
    check(size & (size - 1) == 0, f"sd.img size {size} is a power of two")
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.abspath(os.path.join(image, "sd.img")),
         "-F", "raw", overlay, str(size)],
        check=True,
    )  # fmt: skip
    token = f"written-by-boot-test-{os.getpid()}-{time.time_ns()}"
    times = []
    try:
        for boot in (1, 2):
            serial1 = os.path.join(tmp, f"serial1-{boot}.sock")
            with open(os.path.join(tmp, f"console{boot}.log"), "wb") as log:
                g = Guest(image, overlay, log, serial1)
                try:
                    g.expect(rb"piemu: sd card mounted at /mnt/sd", BOOT_TIMEOUT)
                    shim = g.expect(rb"piemu: (gpio shim started|no gpio shim)", BOOT_TIMEOUT).group(1)
                    g.expect(rb"piemu: ready\r?\n", BOOT_TIMEOUT)
                    t = time.monotonic() - g.t0
                    times.append(t)
                    # "piemu: ready" is the last line before the first prompt
                    g.expect(rb"^" + PROMPT.pattern, 20)
                    print(f"boot {boot}: 'piemu: ready' after {t:.1f} s")
                    # exactly what the end-to-end tests type: the input is echoed, then 42
                    g.p.stdin.write(b"echo $((6*7))\n")
                    g.p.stdin.flush()
                    g.expect(rb"echo \$\(\(6\*7\)\)\r*\n", 10)
                    g.expect(rb"^42\r*\n", 10)
                    g.expect(PROMPT, 10)
                    check(True, f"boot {boot}: typed 'echo $((6*7))' is echoed and prints 42")
                    if shim == b"gpio shim started":
                        out = g.run("pidof piemu-gpio-shim")
                        check(out.strip().isdigit(), f"boot {boot}: piemu-gpio-shim is running (pid {out.strip()})")
                        ok = g.s1_wait(rb"(^|\n)HELLO piemu-shim [^\n]*\n")
                        check(ok, f"boot {boot}: shim said HELLO on a line of its own on serial1: {g.s1_buf[:60]!r}")
                        g.s1.sendall(b"SYNC\n")
                        ok = g.s1_wait(rb"\nPINS [0-9a-fA-F]+\n")
                        check(ok, f"boot {boot}: SYNC on serial1 is answered with PINS: {g.s1_buf[-40:]!r}")
                        # /dev/mem works (iomem=relaxed): drive a pin in the guest, the shim reports it
                        pin = 16 + boot
                        out = g.run(f"piemu-gpio-shim set {pin} 1 && piemu-gpio-shim get {pin}")
                        ok = g.s1_wait(rf"\nGPIO {pin} 1\n".encode())
                        check(out.strip() == "1" and ok, f"boot {boot}: GPIO {pin} set in the guest reaches serial1")
                    else:
                        print(f"boot {boot}: (no shim in this image)")
                    out = g.run("echo $((6*7))")
                    check(out.strip() == "42", f"boot {boot}: echo $((6*7)) -> {out.strip()!r}")
                    out = g.run("grep ' /mnt/sd ' /proc/mounts")
                    check(re.match(r"/dev/mmcblk0 /mnt/sd ext4 rw\b", out.strip()) is not None,
                          f"boot {boot}: /mnt/sd is /dev/mmcblk0 ext4 rw: {out.strip()!r}")  # fmt: skip
                    out = g.run("ls /dev/ttyAMA0 /dev/ttyS1 /dev/mem")
                    check(out.split() == ["/dev/mem", "/dev/ttyAMA0", "/dev/ttyS1"], f"boot {boot}: tty nodes: {out.split()}")
                    out = g.run("cut -d' ' -f7 /proc/1/stat")
                    check(out.strip() == "0", f"boot {boot}: PID 1 has no controlling tty (tty_nr {out.strip()})")
                    out = g.run("tty; readlink /proc/$$/fd/0")
                    check("/dev/ttyAMA0" in out, f"boot {boot}: the shell runs on ttyAMA0: {out.split()}")
                    out = g.run("cat /proc/tty/driver/serial 2>/dev/null | grep -c '^1: uart:16550'")
                    check(out.strip() == "1", f"boot {boot}: ttyS1 is a real 16550 port")
                    if boot == 1:
                        out = g.run("cat /mnt/sd/README | head -3")
                        check("Hello from the piemu default SD card" in out, "boot 1: README on the SD card")
                        g.run(f"echo {token} > /mnt/sd/boot-test.txt && sync")
                        # job control: a background job and ^C of a foreground one
                        out = g.run("sleep 30 & jobs")
                        check("sleep 30" in out, f"boot 1: job control ('jobs' shows the job): {out!r}")
                        g.p.stdin.write(b"sleep 30\n")
                        g.p.stdin.flush()
                        time.sleep(1)
                        g.p.stdin.write(b"\x03")
                        g.p.stdin.flush()
                        g.expect(PROMPT, 10)
                        check(True, "boot 1: ^C interrupts a foreground command")
                        # exit gives a new shell
                        g.p.stdin.write(b"exit\n")
                        g.p.stdin.flush()
                        g.expect(PROMPT, 20)
                        check(g.run("echo again").strip() == "again", "boot 1: exit gives a new shell")
                    else:
                        out = g.run("cat /mnt/sd/boot-test.txt")
                        check(out.strip() == token, f"boot 2: file written in boot 1 is on the SD card: {out.strip()!r}")
                        # poweroff: unmounts the SD card; QEMU exits (watchdog reset + -no-reboot)
                        g.p.stdin.write(b"poweroff\n")
                        g.p.stdin.flush()
                        g.expect(rb"unmounting /mnt/sd", 20)
                        try:
                            g.p.wait(30)
                            check(True, "boot 2: poweroff ends QEMU")
                        except subprocess.TimeoutExpired:
                            check(False, "boot 2: poweroff ends QEMU")
                finally:
                    g.stop()
        out = subprocess.run(["qemu-img", "info", overlay], capture_output=True, text=True).stdout
        m = re.search(r"disk size: (.*)", out)
        print(f"overlay: {m.group(1) if m else '?'} used")
        # Host side: the file is in the overlay, and sd.img itself is untouched.
        if shutil.which("debugfs"):
            flat = os.path.join(tmp, "flat.img")
            subprocess.run(["qemu-img", "convert", "-O", "raw", overlay, flat], check=True)
            got = subprocess.run(["debugfs", "-R", "cat /boot-test.txt", flat], capture_output=True, text=True).stdout
            check(got.strip() == token, "host: /boot-test.txt is in the overlay")
            base = subprocess.run(["debugfs", "-R", "ls /", os.path.join(image, "sd.img")],
                                  capture_output=True, text=True).stdout  # fmt: skip
            check("boot-test.txt" not in base, "host: sd.img itself is unchanged")
    except (TimeoutError, EOFError) as e:
        check(False, str(e))
    finally:
        if keep or check.failed:
            print(f"console logs kept in {tmp}")
        else:
            shutil.rmtree(tmp)
    if times:
        print("time to 'piemu: ready': " + ", ".join(f"{t:.1f} s" for t in times))
    print("RESULT: " + ("FAIL" if check.failed else "PASS"))
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
