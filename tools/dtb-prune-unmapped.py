#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""dtb-prune-unmapped.py MODEL DTB [QEMU]: disable every enabled device-tree node whose first 'reg'
window (translated to a CPU address through the parents' 'ranges') is not backed by any region of
QEMU's machine MODEL (from 'info mtree -f' of a stopped QEMU). QEMU's raspi4b raises an external
abort for accesses to unmapped addresses (PCIe, GENET, HDMI, ...), which Debian's kernel turns into a
panic at probe time. From docs/research/pi-models; used by tools/build-image.sh."""
import re, subprocess, sys
model, dtb = sys.argv[1], sys.argv[2]
qemu = sys.argv[3] if len(sys.argv) > 3 else 'qemu-system-aarch64'
out = subprocess.run([qemu, '-M', model, '-S', '-display', 'none', '-monitor', 'stdio',
                      '-serial', 'null'], input='info mtree -f\nquit\n', capture_output=True, text=True,
                     timeout=60).stdout
regions, cur = [], None
for l in out.splitlines():
    if l.startswith('FlatView'):
        cur = None
    if 'Root memory region: system' in l:
        cur = True
    m = re.match(r'\s+([0-9a-f]+)-([0-9a-f]+) \(prio', l)
    if cur and m:
        regions.append((int(m.group(1), 16), int(m.group(2), 16)))
def fget(node, prop, t='x'):
    r = subprocess.run(['fdtget', '-t', t, dtb, node, prop], capture_output=True, text=True)
    return r.stdout.split() if r.returncode == 0 else None
def children(node):
    r = subprocess.run(['fdtget', '-l', dtb, node], capture_output=True, text=True)
    return r.stdout.split()
def cells(node, name, default):
    v = fget(node, name)
    return int(v[0], 16) if v else default
def num(words):
    n = 0
    for w in words: n = (n << 32) | int(w, 16)
    return n
def translate(path, addr):
    """translate a child-bus address of the node 'path' up to the root."""
    while path != '/':
        parent = path.rsplit('/', 1)[0] or '/'
        rng = fget(path, 'ranges')
        if rng is None:
            return None                     # no ranges: not memory-mapped (e.g. i2c/spi children)
        if rng:                             # empty ranges = identity
            ca, pa, sc = cells(path, '#address-cells', 2), cells(parent, '#address-cells', 2), cells(path, '#size-cells', 1)
            step = ca + pa + sc; ok = False
            for i in range(0, len(rng), step):
                c, p, s = num(rng[i:i+ca]), num(rng[i+ca:i+ca+pa]), num(rng[i+ca+pa:i+step])
                if c <= addr < c + s:
                    addr = addr - c + p; ok = True; break
            if not ok:
                return None
        path = parent
    return addr
disabled = []
def walk(node):
    for c in children(node):
        p = (node.rstrip('/') + '/' + c)
        st = fget(p, 'status', 's')
        if st and st[0] not in ('okay', 'ok'):
            continue
        reg = fget(p, 'reg')
        if reg and node != '/':
            ac = cells(node, '#address-cells', 2)
            a = translate(node, num(reg[:ac]))
            if a is not None and not any(lo <= a <= hi for lo, hi in regions):
                subprocess.run(['fdtput', '-t', 's', dtb, p, 'status', 'disabled'], check=True)
                disabled.append(f'{p} ({a:#x})')
                continue
        walk(p)
walk('/')
for d in disabled: print('prune-dtb: disabled', d)
