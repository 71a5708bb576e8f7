# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 9: the README's quick start as written. `tools/demo.sh` runs to its end as root, also
with the limits sudo 1.9 imposes (a core-size hard limit of 0, which once left libvirtd unable to
start any QEMU), and with libvirtd started by the script itself under those limits."""

import os
import subprocess
import time

import pytest

import piemu_bus as pb
from test_lifecycle import kill_libvirtd, libvirtd_pid

DEMO = os.path.join(pb.REPO, "tools", "demo.sh")


def libvirtd_core_limit():
    pid = libvirtd_pid()
    assert pid, "no libvirtd found through /run/libvirtd.pid"
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    raise AssertionError("no core limit line")


@pytest.mark.boot
def test_demo_as_written_under_sudos_limits(bus):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("with systemd, libvirtd is started by systemctl, whatever the caller's limits")
    kill_libvirtd()
    name = pb.unique_name("demo")
    pb.CREATED.add(name)
    t0 = time.monotonic()
    # prlimit does to the demo what sudo 1.9 does to anything it runs: core-size limit 0, hard.
    p = subprocess.run(["prlimit", "--core=0:0", "--", DEMO], capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, PIEMU_DEMO_BOARD=name))
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    for expect in ("piemu: ready", "guest sees pin 17 = 1", "gpio 23", "Stopping and deleting the board", "Done."):
        assert expect in out, f"{expect!r} missing from the demo's output:\n{out[-3000:]}"
    # The libvirtd the demo started can start QEMU: either its core limit was raised, or (where
    # the host does not allow raising a hard limit) qemu.conf's max_core fits under it.
    limit = libvirtd_core_limit()
    with open("/etc/libvirt/qemu.conf") as f:
        max_core = [l for l in f if l.strip().startswith("max_core")]
    assert limit == ["unlimited", "unlimited"] or max_core == ["max_core = 0\n"], (limit, max_core)
    assert not pb.domain_exists(name)
    print(f"demo took {took:.0f} s")
