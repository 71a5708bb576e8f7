#!/usr/bin/env python3
"""Boot one QEMU raspi machine, time the marker, exercise GPIO over qtest, dump info qtree.
usage: boot.py LOGDIR GPIOBASE -- qemu-cmd...   (the command must contain -qtest unix:LOGDIR/q.sock
and -monitor unix:LOGDIR/mon.sock, both server=on,wait=off)"""
import os, socket, subprocess, sys, threading, time

logdir, gpiobase = sys.argv[1], int(sys.argv[2], 16)
cmd = sys.argv[sys.argv.index('--') + 1:]
timeout = float(os.environ.get('BOOT_TIMEOUT', '300'))
out = open(os.path.join(logdir, 'console.log'), 'wb')
res = open(os.path.join(logdir, 'result.txt'), 'w')
def note(s):
    line = f'[{time.monotonic()-t0:7.2f}s] {s}'
    print(line, flush=True); res.write(line + '\n'); res.flush()

def connect(path):
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); return s
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('cannot connect ' + path)

class QT:
    def __init__(self, path):
        self.s = connect(path); self.f = self.s.makefile('rb')
    def cmd(self, c):
        self.s.sendall((c + '\n').encode())
        while True:
            l = self.f.readline().decode().strip()
            if l.startswith('OK') or l.startswith('FAIL') or l.startswith('ERR'):
                return l

def monitor(path, command):
    s = connect(path); s.settimeout(5); buf = b''
    def readuntil():
        nonlocal buf
        while b'(qemu) ' not in buf:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d: break
            buf += d
        r, buf = buf, b''
        return r
    readuntil(); s.sendall((command + '\n').encode()); r = readuntil(); s.close()
    return r.decode(errors='replace')

t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
note('started: ' + ' '.join(cmd))
events = {}
def gpio_test():
    qt = QT(os.path.join(logdir, 'q.sock'))
    lev, gpset, gpclr = gpiobase + 0x34, gpiobase + 0x1c, gpiobase + 0x28
    note(f'qtest readl GPLEV0 {lev:#x} -> {qt.cmd(f"readl {lev:#x}")}')
    note(f'qtest readl GPFSEL1 {gpiobase+4:#x} -> {qt.cmd(f"readl {gpiobase+4:#x}")}')
    time.sleep(2.5)
    note(f'qtest writel GPSET0 {gpset:#x} 0x20000 -> {qt.cmd(f"writel {gpset:#x} 0x20000")}')
    note(f'qtest readl GPLEV0 -> {qt.cmd(f"readl {lev:#x}")}')
    time.sleep(4)
    note(f'qtest writel GPCLR0 {gpclr:#x} 0x20000 -> {qt.cmd(f"writel {gpclr:#x} 0x20000")}')
    note(f'qtest readl GPLEV0 -> {qt.cmd(f"readl {lev:#x}")}')
buf = b''; done = False
def killer():
    time.sleep(timeout)
    if p.poll() is None:
        note('TIMEOUT, killing'); p.kill()
threading.Thread(target=killer, daemon=True).start()
qtree_done = False
while True:
    d = p.stdout.read1(4096) if hasattr(p.stdout, 'read1') else os.read(p.stdout.fileno(), 4096)
    if not d: break
    out.write(d); out.flush(); buf += d
    while b'\n' in buf:
        line, buf = buf.split(b'\n', 1)
        l = line.decode(errors='replace').rstrip('\r')
        if 'PIEMU-MARKER-UP' in l:
            note('MARKER ' + l)
            if not qtree_done:
                qtree_done = True
                with open(os.path.join(logdir, 'qtree.txt'), 'w') as f:
                    f.write(monitor(os.path.join(logdir, 'mon.sock'), 'info qtree'))
                with open(os.path.join(logdir, 'mtree.txt'), 'w') as f:
                    f.write(monitor(os.path.join(logdir, 'mon.sock'), 'info mtree -f'))
        elif l.startswith('GPIOLOOP') or l.startswith('MODEL:') or 'Kernel panic' in l or 'PIEMU-DONE' in l:
            note('guest: ' + l)
            if l.startswith('GPIOLOOP-START'):
                threading.Thread(target=gpio_test, daemon=True).start()
            if 'end Kernel panic' in l:
                time.sleep(1); note('kernel panic; killing qemu'); p.kill()
            if 'PIEMU-DONE' in l:
                time.sleep(2)
                if p.poll() is None:
                    note('guest done; killing qemu'); p.kill()
p.wait()
note(f'qemu exit {p.returncode}')
