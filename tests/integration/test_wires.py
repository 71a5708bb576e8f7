# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 12 (part): wires between boards. Two real guests wired 23 -> 17: guest A drives its pin 23
and guest B reads the level on its pin 17, both ways. The wire is in board A's libvirt metadata,
survives a kill -9 of piemud, and its level comes back after guest B reboots. A user who may not
manage board B cannot wire to it (while she may wire her own board); a cycle, a second driver, a
wire that is there already, a bad pin, board or id each get their named error and change nothing;
deleting a board takes the wires into and out of it along, from libvirt too."""

import subprocess
import time

import pytest

import piemu_bus as pb
from piemu_bus import MANAGER_IFACE, MANAGER_PATH
from test_lifecycle import restart_piemud
from test_security import DENIED, alice_board, users  # noqa: F401  (module fixtures)

METADATA_URI = "https://piemu.org/xmlns/board/1"


def wires(conn):
    return sorted(tuple(w) for w in pb.call(conn, MANAGER_PATH, MANAGER_IFACE, "ListWires")[0])


def add(conn, *args):
    return pb.call(conn, MANAGER_PATH, MANAGER_IFACE, "AddWire", "(susu)", args)[0]


def add_error(conn, *args):
    return pb.call_error(conn, MANAGER_PATH, MANAGER_IFACE, "AddWire", "(susu)", args)


def metadata(board):
    r = subprocess.run(["virsh", "-q", "metadata", f"piemu-{board}", METADATA_URI], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def pair(bus):
    a, b = pb.Board.create(bus), pb.Board.create(bus)
    try:
        for x in (a, b):
            x.watch()
            x.call("Start")
        for x in (a, b):
            x.wait_prompt()
        yield a, b
    finally:
        a.delete()
        b.delete()


def level_in_guest(board, pin, value):
    board.wait_for(lambda: board.call("GetPin", "(u)", (pin,))[0] is value, 15, f"pin {pin} of {board.name} = {value}")
    board.run(f"echo level=$(piemu-gpio-shim get {pin})", rb"\nlevel=%d" % value)


@pytest.mark.boot
def test_wire_carries_guest_a_to_guest_b_and_survives(bus, pair):
    a, b = pair
    wid = add(bus, a.name, 23, b.name, 17)
    assert wid == f"{a.name}:23:{b.name}:17"
    assert (wid, a.name, 23, b.name, 17) in wires(bus)
    assert f"<wire from-pin='23' to-board='{b.name}' to-pin='17'/>" in metadata(a.name).replace('"', "'")

    for value in (1, 0, 1):
        a.run(f"piemu-gpio-shim set 23 {value} && echo set-ok", rb"\nset-ok")
        level_in_guest(b, 17, bool(value))

    # kill -9: the wire comes back from libvirt and still carries the level.
    restart_piemud(kill9=True)
    conn = pb.private_system_bus()
    assert (wid, a.name, 23, b.name, 17) in pb.retry_while_unavailable(lambda: wires(conn))
    a2, b2 = pb.Board(conn, a.name, a.path), pb.Board(conn, b.name, b.path)
    for x in (a2, b2):
        x.wait_state("running", 30)
        x.watch()
    a2.run("piemu-gpio-shim set 23 0 && echo set-ok", rb"\nset-ok")
    level_in_guest(b2, 17, False)
    a2.run("piemu-gpio-shim set 23 1 && echo set-ok", rb"\nset-ok")
    level_in_guest(b2, 17, True)

    # Guest B reboots: the wire's level is applied again, as SetPin's is.
    mark = len(b2.serial)
    b2.call("SendSerial", "(ay)", (b"reboot -f\n",))
    b2.wait_serial(rb"piemu: ready", start=mark)
    b2.wait_serial(rb"piemu:[^\n]*# ", 30, start=mark)
    level_in_guest(b2, 17, True)

    pb.call(conn, MANAGER_PATH, MANAGER_IFACE, "RemoveWire", "(s)", (wid,))
    assert wid not in [w[0] for w in wires(conn)]
    assert "<wire" not in metadata(a.name)
    a2.run("piemu-gpio-shim set 23 0 && echo set-ok", rb"\nset-ok")
    a2.wait_for(lambda: a2.call("GetPin", "(u)", (23,))[0] is False, 15, "pin 23 of A low")
    b2.run("echo level=$(piemu-gpio-shim get 17)", rb"\nlevel=1")  # unplugged: B keeps the last level
    for x in (a2, b2):
        x.unsubscribe()


def test_bad_wires_get_named_errors_and_change_nothing(bus, board_factory):
    a, b = board_factory(), board_factory()
    wid = add(bus, a.name, 23, b.name, 17)
    before = wires(bus)
    cases = [
        ((b.name, 17, a.name, 23), "org.piemu.Error.WireCycle"),
        ((a.name, 5, a.name, 5), "org.piemu.Error.WireCycle"),
        ((a.name, 24, b.name, 17), "org.piemu.Error.PinDriven"),
        ((a.name, 23, b.name, 17), "org.piemu.Error.WireExists"),
        ((a.name, 54, b.name, 1), "org.piemu.Error.InvalidPin"),
        ((a.name, 1, b.name, 99), "org.piemu.Error.InvalidPin"),
        ((a.name, 1, "no-such-board", 1), "org.piemu.Error.NoSuchBoard"),
        (("../etc", 1, b.name, 1), "org.piemu.Error.InvalidName"),
    ]
    for args, want in cases:
        name, msg = add_error(bus, *args)
        assert name == want, (args, name, msg)
        assert msg, args
    # A chain through B is no cycle: A:23 -> B:17, B:18 -> A:24.
    wid2 = add(bus, b.name, 18, a.name, 24)
    for bad in ("nope", f"{a.name}:23:{b.name}", f"{a.name}:23:{b.name}:16", f"{a.name}:023:{b.name}:17"):
        name, _ = pb.call_error(bus, MANAGER_PATH, MANAGER_IFACE, "RemoveWire", "(s)", (bad,))
        assert name == "org.piemu.Error.NoSuchWire", bad
    assert wires(bus) == sorted(before + [(wid2, b.name, 18, a.name, 24)])
    assert wid in [w[0] for w in wires(bus)]


def test_deleting_a_board_takes_its_wires(bus, board_factory):
    a, c = board_factory(), board_factory()
    add(bus, a.name, 5, c.name, 6)
    add(bus, c.name, 7, a.name, 8)
    assert len([w for w in wires(bus) if c.name in (w[1], w[3])]) == 2
    c.delete()
    assert not [w for w in wires(bus) if c.name in (w[1], w[3])]
    # A's settings are saved to libvirt right after (on a worker): give it a moment.
    end = time.monotonic() + 10
    while "<wire" in metadata(a.name):
        assert time.monotonic() < end, "the wire to the deleted board is still in A's metadata"
        time.sleep(0.1)


def test_wiring_needs_both_boards(bus, users, alice_board):
    """alice may wire her own board but not to or from root's board; RemoveWire by either end's
    manager."""
    other = pb.Board.create(bus)
    try:
        before = wires(bus)
        for args in ((alice_board.name, 23, other.name, 17), (other.name, 23, alice_board.name, 17)):
            r = users.call("alice", MANAGER_PATH, MANAGER_IFACE, "AddWire", "(susu)", list(args))
            assert not r["ok"] and r["error"] in DENIED, r
        assert wires(bus) == before
        r = users.call("alice", MANAGER_PATH, MANAGER_IFACE, "AddWire", "(susu)", [alice_board.name, 5, alice_board.name, 6])
        assert r["ok"], r
        own = r["result"][0]
        # root wires its board into alice's; bob may not unplug it, alice may (her board is one end).
        wid = add(bus, other.name, 9, alice_board.name, 10)
        r = users.call("bob", MANAGER_PATH, MANAGER_IFACE, "RemoveWire", "(s)", [wid])
        assert not r["ok"] and r["error"] in DENIED, r
        for w in (wid, own):
            r = users.call("alice", MANAGER_PATH, MANAGER_IFACE, "RemoveWire", "(s)", [w])
            assert r["ok"], r
        assert wires(bus) == before
    finally:
        other.delete()
