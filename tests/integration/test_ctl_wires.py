# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 12 (part), from the command line: `piemuctl trace` records a guest blinking pin 23 into a
Value Change Dump that parses back to the same edges, with the GpioChanged events' own time stamps;
`piemuctl wire/unwire/wires` and `create --i2c`/`set-sensor` call the API and map its named errors
to exit codes."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

import piemu_bus as pb
from conftest import PIEMUCTL

EXIT_USAGE, EXIT_NOT_FOUND, EXIT_STATE = 2, 3, 4


def ctl(*args, check=True, **kw):
    r = subprocess.run([PIEMUCTL, "--no-pager", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=120, **kw)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def parse_vcd(text):
    """A strict reader of the subset piemuctl writes: returns (timescale, {id: pin}, initial
    {pin: value}, [(time, pin, value)], last time)."""
    lines = text.splitlines()
    ids, initial, edges = {}, {}, []
    timescale, t, last, in_dump, defs_done = None, 0, 0, False, False
    for line in lines:
        if m := re.fullmatch(r"\$timescale (\S+) \$end", line):
            timescale = m.group(1)
        elif m := re.fullmatch(r"\$var wire 1 (\S) gpio(\d+) \$end", line):
            ids[m.group(1)] = int(m.group(2))
        elif line == "$enddefinitions $end":
            defs_done = True
        elif defs_done and line == "$dumpvars":
            in_dump = True
        elif defs_done and line == "$end":
            in_dump = False
        elif defs_done and line.startswith("#"):
            nt = int(line[1:])
            assert nt >= t, "time goes back in the dump"
            t = last = nt
        elif defs_done and len(line) == 2 and line[0] in "01x":
            pin = ids[line[1]]
            if in_dump:
                initial[pin] = line[0]
            else:
                edges.append((t, pin, int(line[0])))
        elif defs_done:
            raise AssertionError(f"unexpected line in the dump: {line!r}")
    assert defs_done
    return timescale, ids, initial, edges, last


@pytest.fixture(scope="module")
def blinker(bus):
    b = pb.Board.create(bus)
    try:
        b.watch()
        b.call("Start")
        b.wait_prompt()
        yield b
    finally:
        b.delete()


@pytest.mark.boot
def test_trace_of_a_blinking_pin_parses_back(blinker, daemon, tmp_path):
    b = blinker
    vcd = tmp_path / "blink.vcd"
    proc = subprocess.Popen([PIEMUCTL, "trace", b.name, "--pins=17,23", f"--vcd={vcd}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith(f"Tracing board {b.name} into {vcd}"), line
        mark = len(b.gpio)
        b.run("for i in 1 2 3 4 5; do piemu-gpio-shim set 23 1; sleep 0.3; piemu-gpio-shim set 23 0; sleep 0.3; "
              "done; echo blink-done", rb"\nblink-done", timeout=60)
        b.wait_for(lambda: len([e for e in b.gpio[mark:] if e[0] == 23]) >= 10, 15, "ten GpioChanged(23)")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert re.search(r"Recorded 10 changes in [0-9.]+ s\.", err), err

    timescale, ids, initial, edges, last = parse_vcd(vcd.read_text())
    assert timescale == "1us"
    assert sorted(ids.values()) == [17, 23]
    assert initial == {17: "0", 23: "0"}
    assert [(p, v) for _, p, v in edges] == [(23, 1), (23, 0)] * 5
    # The same edges, at the same distances, as the signals the test itself received.
    seen = [e for e in b.gpio[mark:] if e[0] == 23][:10]
    assert [v for _, v, _ in seen] == [True, False] * 5
    t0_vcd, t0_sig = edges[0][0], seen[0][2]
    for (t, _, _), (_, _, ts) in zip(edges, seen):
        assert t - t0_vcd == ts - t0_sig, (edges, seen)
    # ~0.3 s apart (the guest's sleep), and the dump ends after the last edge.
    gaps = [b_[0] - a_[0] for a_, b_ in zip(edges, edges[1:])]
    assert all(150_000 < g < 2_000_000 for g in gaps), gaps
    assert last > edges[-1][0]


def test_trace_usage_errors(bus, daemon, board_factory):
    b = board_factory()
    assert ctl("trace", b.name, check=False).returncode == EXIT_USAGE  # no --vcd
    r = ctl("trace", b.name, "--vcd=-", "--pins=54", check=False)
    assert r.returncode == EXIT_USAGE and "Invalid pin" in r.stderr
    r = ctl("trace", b.name, "--vcd=-", "--pins=9-3", check=False)
    assert r.returncode == EXIT_USAGE
    r = ctl("trace", b.name, "--vcd=-", "--duration=never", check=False)
    assert r.returncode == EXIT_USAGE
    r = ctl("trace", b.name, "--vcd=-", "--duration=1", check=False)  # a stopped board
    assert r.returncode == EXIT_STATE and "nothing to trace" in r.stderr, r.stderr
    r = ctl("start", b.name, "--vcd=x", check=False)  # an option of another verb
    assert r.returncode == EXIT_USAGE


def test_wire_commands(bus, daemon, board_factory):
    a, c = board_factory(), board_factory()
    r = ctl("wire", f"{a.name}:23", f"{c.name}:17")
    wid = r.stdout.strip()
    assert wid == f"{a.name}:23:{c.name}:17"
    listed = json.loads(ctl("wires", "--json=short").stdout)
    assert {"id": wid, "from_board": a.name, "from_pin": 23, "to_board": c.name, "to_pin": 17} in listed
    assert wid in ctl("wires").stdout
    r = ctl("wire", f"{c.name}:17", f"{a.name}:23", check=False)
    assert r.returncode == EXIT_STATE and "loop" in r.stderr, r.stderr
    r = ctl("wire", f"{a.name}:5", f"{c.name}:17", check=False)
    assert r.returncode == EXIT_STATE and "driven by wire" in r.stderr, r.stderr
    for bad in (f"{a.name}", f"{a.name}:", f"{a.name}:54", f"../x:1", ":3"):
        assert ctl("wire", bad, f"{c.name}:1", check=False).returncode == EXIT_USAGE, bad
    assert ctl("wire", "no-such-board:1", f"{c.name}:1", check=False).returncode == EXIT_NOT_FOUND
    ctl("unwire", wid)
    r = ctl("unwire", wid, check=False)
    assert r.returncode == EXIT_NOT_FOUND, r.stderr
    assert wid not in ctl("wires").stdout


def test_i2c_commands(bus, daemon):
    name = pb.unique_name("ctl-i2c")
    pb.CREATED.add(name)
    try:
        r = ctl("create", name, "--i2c=tmp105@0x48", "--i2c=ds1338@0x68")
        r = ctl("create", pb.unique_name("ctl-i2c"), "--i2c=pca9552@0x60", check=False)
        assert r.returncode == EXIT_USAGE and "piemu offers" in r.stderr, r.stderr
        r = ctl("set-sensor", name, "0x48", "temperature", "42500", check=False)
        assert r.returncode == EXIT_STATE and "not running" in r.stderr, r.stderr
        for args in (("0x07", "temperature", "1"), ("0x48", "temperature", "42.5"), ("zz", "temperature", "1")):
            assert ctl("set-sensor", name, *args, check=False).returncode == EXIT_USAGE, args
    finally:
        ctl("delete", name, check=False)
