# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 13 (part): the multi-user guarantees proven by their effect, not by error names alone.
A refused call changes nothing the owner can see; a refused Watch subscribes to nothing while a
public signal still arrives (the positive control); Unwatch stops the signals; alice's board keeps
its owner and settings across a kill -9 of piemud and a libvirtd restart; a Start made to fail
leaves nothing behind and says why."""

import json
import os
import shutil
import subprocess
import time

import pytest

import piemu_bus as pb
from piemu_bus import BOARD_IFACE, MANAGER_IFACE, MANAGER_PATH
from test_lifecycle import kill_libvirtd, restart_piemud, start_libvirtd
from test_security import DENIED, alice_board, uname, users  # noqa: F401  (module fixtures)


@pytest.mark.boot
def test_refused_calls_change_nothing(users, alice_board):
    b = alice_board
    b.wait_for(lambda: b.prop("GuestReady") is True, 60, "GuestReady")
    states = list(b.states)
    mark = len(b.serial)
    for method, sig, args in [
        ("SendSerial", "(ay)", [list(b"echo BOB-$((40+2))\n")]),
        ("SetPin", "(ub)", [17, True]),
        ("SendSerial", "(ay)", [list(b"reboot -f\n")]),
        ("Stop", None, None),
        ("OpenSerial", None, None),
    ]:
        r = users.call("bob", b.path, BOARD_IFACE, method, sig, args)
        assert not r["ok"] and r["error"] in DENIED, (method, r)
    time.sleep(1.0)
    # From the owner's side: no command ran, the pin is low, the guest did not reboot.
    b.run("piemu-gpio-shim get 17; echo still-$((6*7))", rb"\n0\r?\n(.*\n)?still-42")
    assert b"BOB-42" not in b.serial[mark:]
    assert b"BOB-42" not in bytes(b.call("GetRecentSerial")[0])
    assert b.call("GetPin", "(u)", (17,)) == (False,)
    assert b.prop("State") == "running" and b.states == states
    assert b"Booting Linux" not in b.serial[mark:]


@pytest.mark.boot
def test_refused_watch_subscribes_to_nothing(bus, users, alice_board):
    b = alice_board
    bob = users.spawn("bob", "watch-all", b.path, "8")
    r = json.loads(bob.stdout.readline())["watch"]
    assert not r["ok"] and r["error"] in DENIED, r
    secret = pb.unique_name("secret")
    b.run(f"echo {secret}; piemu-gpio-shim set 6 1; sleep 1; piemu-gpio-shim set 6 0; echo done-{secret}",
          f"done-{secret}")
    # A public signal in the same window: bob must hear this one.
    other = pb.Board.create(bus)
    other.delete()
    out, err = bob.communicate(timeout=60)
    got = json.loads(out.splitlines()[-1])
    assert got["seen"].get("BoardAdded", 0) >= 1, got  # he was listening all along
    assert "SerialOutput" not in got["seen"] and "GpioChanged" not in got["seen"], got
    assert secret not in got["serial"]


@pytest.mark.boot
def test_unwatch_stops_the_signals(bus, alice_board):
    b = alice_board
    conn = pb.private_system_bus()
    w = pb.Board(conn, b.name, b.path)
    w.watch()
    first, second = pb.unique_name("first"), pb.unique_name("second")
    b.run(f"echo {first}", first)
    w.wait_serial(first, 10)
    w.call("Unwatch")
    mark = len(w.serial)
    b.run(f"echo {second}", second)  # b, still watching, is the positive control
    pb.pump(0.5)
    assert second.encode() not in w.serial[mark:]
    w.unsubscribe()


def settings(b):
    return b.prop("Owner"), b.prop("Persistent"), b.prop("Cmdline")


@pytest.mark.boot
def test_owner_and_settings_survive_restarts(bus, users):
    b = users.create_board("alice", bus, "own", {"persistent": True, "cmdline": "quiet piemu.test=1"})
    name = b.name
    try:
        assert users.call("alice", b.path, BOARD_IFACE, "Start")["ok"]
        alice = int(subprocess.run(["id", "-u", uname("alice")], capture_output=True, text=True).stdout)
        expect = (alice, True, "quiet piemu.test=1")
        assert settings(b) == expect
        restart_piemud(kill9=True)
        b = pb.Board(pb.private_system_bus(), name, b.path)
        assert settings(b) == expect and b.prop("State") == "running"
        r = users.call("bob", b.path, BOARD_IFACE, "Stop")
        assert not r["ok"] and r["error"] in DENIED, r
        kill_libvirtd()
        start_libvirtd()
        time.sleep(6)  # piemud reconnects (backoff of at most 5 s)
        assert settings(b) == expect and b.prop("State") == "running"
        r = users.call("bob", b.path, BOARD_IFACE, "Stop")
        assert not r["ok"] and r["error"] in DENIED, r
        end = time.monotonic() + 15
        while True:  # alice's own Stop works once piemud is connected again
            r = users.call("alice", b.path, BOARD_IFACE, "Stop")
            if r["ok"] or r["error"] != "org.piemu.Error.Unavailable" or time.monotonic() > end:
                break
            time.sleep(0.3)
        assert r["ok"], r
    finally:
        users.call("alice", MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", "(s)", [name])


@pytest.fixture
def broken_image():
    """A catalog image whose SD card QEMU cannot use: Start fails at once, no boot needed."""
    image = pb.unique_name("broken")
    src, dst = "/var/lib/piemu/images/default", f"/var/lib/piemu/images/{image}"
    os.mkdir(dst)
    try:
        for f in ("kernel", "dtb", "meta"):
            shutil.copy(os.path.join(src, f), dst)
        with open(os.path.join(dst, "sd.img"), "wb") as f:  # a qcow2 header and nothing behind it
            f.write(b"QFI\xfb" + bytes(20) + (64 << 20).to_bytes(8, "big") + bytes(100))
        subprocess.run(["chown", "-R", "piemu:piemu", dst], check=True)
        yield image
    finally:
        shutil.rmtree(dst)


@pytest.mark.boot
def test_failed_start_leaves_nothing_and_says_why(bus, broken_image):
    """An image whose SD card QEMU cannot use: the Start fails, the board is stopped, LastError
    says why, and no domain runs and no overlay stays."""
    b = pb.Board.create(bus, image=broken_image)
    try:
        name, msg = b.error("Start")
        assert name == "org.piemu.Error.Failed", (name, msg)
        assert b.prop("State") == "stopped"
        assert "Failed to start board" in b.prop("LastError"), b.prop("LastError")
        r = subprocess.run(["virsh", "-q", "domstate", f"piemu-{b.name}"], capture_output=True, text=True)
        assert r.stdout.strip() == "shut off", r.stdout
        assert not pb.volume_exists(b.name)
    finally:
        b.delete()


def props_of(users, short, path):
    r = users.call(short, path, "org.freedesktop.DBus.Properties", "GetAll", "(s)", [BOARD_IFACE])
    assert r["ok"], r
    return r["result"][0]


def test_strangers_see_names_and_states_not_cmdline_or_errors(bus, users, broken_image):
    """The security model (docs/security.md): a board's name, owner, image, model and state are public;
    its Cmdline and LastError are the owner's (and root's), in Get, GetAll and GetManagedObjects
    alike, and no signal carries them to anyone."""
    name, secret = pb.unique_name("priv"), pb.unique_name("token")
    pb.CREATED.add(name)
    bob = users.spawn("bob", "listen-bodies", "12")
    assert json.loads(bob.stdout.readline())["listening"]
    r = users.call("alice", MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})",
                   [name, broken_image, {"cmdline": f"quiet piemu.secret={secret}"}])
    assert r["ok"], r
    path = r["result"][0]
    try:
        r = users.call("alice", path, BOARD_IFACE, "Start")
        assert not r["ok"] and r["error"] == "org.piemu.Error.Failed", r
        mine = props_of(users, "alice", path)
        assert secret in mine["Cmdline"] and "Failed to start board" in mine["LastError"], mine
        b = pb.Board(bus, name, path)  # root
        assert secret in b.prop("Cmdline") and b.prop("LastError") == mine["LastError"]

        theirs = props_of(users, "bob", path)
        assert theirs["Cmdline"] == "" and theirs["LastError"] == "", theirs
        assert (theirs["Name"], theirs["Image"], theirs["State"], theirs["Owner"]) == \
            (name, broken_image, "stopped", mine["Owner"]), theirs
        for prop in ("Cmdline", "LastError"):
            r = users.call("bob", path, "org.freedesktop.DBus.Properties", "Get", "(ss)", [BOARD_IFACE, prop])
            assert r["ok"] and r["result"][0] == "", (prop, r)
        r = users.call("bob", MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        assert r["ok"], r
        objs = r["result"][0]
        assert objs[path][BOARD_IFACE]["State"] == "stopped"
        assert objs[path][BOARD_IFACE]["Cmdline"] == "" and objs[path][BOARD_IFACE]["LastError"] == ""
        r = users.call("alice", MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        assert secret in r["result"][0][path][BOARD_IFACE]["Cmdline"]
    finally:
        users.call("alice", MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", "(s)", [name])
    out, _ = bob.communicate(timeout=60)
    signals = json.loads(out.splitlines()[-1])["signals"]
    # The positive control: bob did hear this board come and go and change state.
    members = [m for _, m, _ in signals]
    assert "BoardAdded" in members and "BoardRemoved" in members, members
    assert any(m == "PropertiesChanged" and "'starting'" in body for _, m, body in signals), signals
    assert any(m == "PropertiesChanged" and "LastError" in body for _, m, body in signals), signals
    for _, member, body in signals:
        assert secret not in body and "Failed to start" not in body, (member, body)


@pytest.mark.boot
def test_other_users_cannot_read_a_boards_sd_card(bus, users):
    """A running board's overlay (its SD card, with whatever the guest wrote) is 0600 and out of
    every other user's reach; catalog files are readable (images are shared) but writable by
    nobody but piemu."""
    b = pb.Board.create(bus)
    try:
        b.call("Start")
        vol = f"/var/lib/piemu/overlays/{b.name}.qcow2"
        st = os.stat(vol)
        assert st.st_mode & 0o077 == 0, oct(st.st_mode)
        r = users.run("bob", "read-file", vol)[-1]
        assert not r["ok"] and r["error"] == "EACCES", r
        r = users.run("alice", "read-file", vol)[-1]
        assert not r["ok"] and r["error"] == "EACCES", r
        # The qtest channel reads and writes all guest memory: nobody but piemud and QEMU.
        assert b.prop("GpioPath") == "qtest"
        sock = f"/run/piemu/qtest/{b.name}.sock"
        st = os.stat("/run/piemu/qtest")
        assert oct(st.st_mode & 0o7777) == oct(0o2750), oct(st.st_mode)
        for who in ("alice", "bob"):
            r = users.run(who, "connect-unix", sock)[-1]
            assert not r["ok"] and r["error"] == "EACCES", (who, r)
        # Someone in QEMU's group but not QEMU: past the directory, refused by piemud (SO_PEERCRED).
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--groups=libvirt-qemu",
                            "/usr/bin/python3", os.path.join(os.path.dirname(__file__), "as_user.py"),
                            "connect-unix", sock], capture_output=True, text=True, timeout=30)
        r = json.loads(p.stdout.splitlines()[-1])
        assert r == {"ok": True, "got": ""}, r
        assert "reached the qtest socket" in b.prop("LastError"), b.prop("LastError")
        assert b.call("GetPin", "(u)", (17,)) == (False,)  # the real channel is untouched
    finally:
        b.delete()
    for root, dirs, files in os.walk("/var/lib/piemu/images"):
        for f in dirs + files:
            st = os.lstat(os.path.join(root, f))
            assert st.st_mode & 0o022 == 0, (os.path.join(root, f), oct(st.st_mode))
