# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 4: polkit authorization, ownership, private signals, images and console ports,
with the real polkitd, the shipped actions and rules, and real unprivileged users."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

import piemu_bus as pb
from piemu_bus import BOARD_IFACE, MANAGER_IFACE, MANAGER_PATH

USERS = {"alice": True, "bob": True, "admin": False, "nobody": False}  # name -> member of group piemu
RULES = "/etc/polkit-1/rules.d/10-piemu-test-security.rules"
DENIED = {"org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"}


def uname(short):
    return f"piemu-sec-{short}"


@pytest.fixture(scope="module")
def users(bus):
    for short, in_group in USERS.items():
        name = uname(short)
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           check=True)
        groups = ["piemu"] if in_group else []
        subprocess.run(["usermod", "-G", ",".join(groups), name], check=True)
    with open(RULES, "w") as f:
        f.write(
            "// Temporary, written by tests/integration/test_security.py.\n"
            "polkit.addRule(function(action, subject) {\n"
            f'    if (subject.user == "{uname("admin")}" &&\n'
            '        (action.id == "org.piemu.manage-boards" || action.id == "org.piemu.manage-images"))\n'
            "        return polkit.Result.YES;\n"
            "});\n"
        )
    # The helper runs as the test users, so it must live somewhere they can read.
    tmp = tempfile.mkdtemp(prefix="piemu-sec-")
    os.chmod(tmp, 0o755)
    for f in ("as_user.py", "piemu_bus.py"):
        shutil.copy(os.path.join(os.path.dirname(__file__), f), tmp)
        os.chmod(os.path.join(tmp, f), 0o644)
    runner = Runner(tmp)
    # polkitd picks rules up asynchronously: wait until the admin rule is in force.
    for _ in range(100):
        r = runner.call("admin", MANAGER_PATH, MANAGER_IFACE, "RemoveImage", "(s)", ["no-such-image-x"])
        if r.get("error") == "org.piemu.Error.NoSuchImage":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the test polkit rule never took effect: {r}")
    yield runner
    os.unlink(RULES)
    shutil.rmtree(tmp)


class Runner:
    def __init__(self, tmp):
        self.tmp = tmp

    def argv(self, short, *args):
        pw = pwd.getpwnam(uname(short))
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                "/usr/bin/python3", os.path.join(self.tmp, "as_user.py"), *args]

    def run(self, short, *args, timeout=60):
        p = subprocess.run(self.argv(short, *args), capture_output=True, text=True, timeout=timeout,
                           env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        assert p.returncode == 0, p.stderr
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def call(self, short, path, iface, method, sig=None, args=None):
        extra = [sig, json.dumps(args or [])] if sig else []
        return self.run(short, "call", path, iface, method, *extra)[-1]

    def create_board(self, short, bus, prefix, options=None):
        """A board made by `short` through the bus (so it is theirs), known to the session's leak
        check; the caller deletes it."""
        name = pb.unique_name(prefix)
        pb.CREATED.add(name)
        r = self.call(short, MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})", [name, "", options or {}])
        assert r["ok"], r
        return pb.Board(bus, name, r["result"][0])

    def spawn(self, short, *args):
        return subprocess.Popen(self.argv(short, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})


@pytest.fixture(scope="module")
def alice_board(bus, users):
    b = users.create_board("alice", bus, "sec")
    path = b.path
    try:
        assert b.prop("Owner") == pwd.getpwnam(uname("alice")).pw_uid
        r = users.call("alice", path, BOARD_IFACE, "Start")
        assert r["ok"], r
        b.watch()  # root's own watcher, to know when the shell is up
        b.wait_prompt()
        yield b
    finally:
        b.delete()


@pytest.mark.boot
def test_owner_may_manage_own_board(users, alice_board):
    b = alice_board
    assert users.call("alice", b.path, BOARD_IFACE, "GetPin", "(u)", [4])["ok"]
    r = users.call("alice", b.path, BOARD_IFACE, "Start")
    assert r["error"] == "org.piemu.Error.AlreadyRunning", r  # authorized, then refused for state
    assert users.call("alice", b.path, BOARD_IFACE, "SendSerial", "(ay)", [list(b"\n")])["ok"]
    # Her own pins and console, with effect: the pin she drives is high for everyone.
    assert users.call("alice", b.path, BOARD_IFACE, "SetPin", "(ub)", [4, True])["ok"]
    b.wait_for(lambda: b.call("GetPin", "(u)", (4,)) == (True,), 10, "pin 4 high")
    assert users.call("alice", b.path, BOARD_IFACE, "SetPin", "(ub)", [4, False])["ok"]
    b.wait_for(lambda: b.call("GetPin", "(u)", (4,)) == (False,), 10, "pin 4 low")
    assert users.call("alice", b.path, BOARD_IFACE, "OpenSerial")["ok"]
    assert users.call("alice", b.path, BOARD_IFACE, "GetRecentSerial")["ok"]


def test_owner_stops_and_deletes_own_board(bus, users):
    b = users.create_board("alice", bus, "own")
    name = b.name
    try:
        assert users.call("alice", b.path, BOARD_IFACE, "Start")["ok"]
        assert b.prop("State") == "running"
        assert users.call("alice", b.path, BOARD_IFACE, "Stop")["ok"]
        assert b.prop("State") == "stopped"
        assert users.call("alice", MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", "(s)", [name])["ok"]
        assert not pb.domain_exists(name) and not pb.volume_exists(name)
    finally:
        if pb.domain_exists(name):
            b.delete()


@pytest.mark.boot
@pytest.mark.parametrize(
    "method,sig,args",
    [
        ("Start", None, None),
        ("Stop", None, None),
        ("SetPin", "(ub)", [17, True]),
        ("GetPin", "(u)", [17]),
        ("GetPins", None, None),
        ("SendSerial", "(ay)", [list(b"reboot -f\n")]),
        ("Watch", None, None),
        ("OpenSerial", None, None),
        ("GetRecentSerial", None, None),
    ],
)
def test_other_user_is_refused(users, alice_board, method, sig, args):
    r = users.call("bob", alice_board.path, BOARD_IFACE, method, sig, args)
    assert not r["ok"] and r["error"] in DENIED, r
    assert alice_board.prop("State") == "running"


@pytest.mark.boot
def test_other_user_cannot_delete(users, alice_board):
    r = users.call("bob", MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", "(s)", [alice_board.name])
    assert not r["ok"] and r["error"] in DENIED, r
    assert pb.domain_exists(alice_board.name)


def test_user_without_rule_cannot_create(users):
    name = pb.unique_name("sec")
    pb.CREATED.add(name)
    r = users.call("nobody", MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})", [name, "", {}])
    assert not r["ok"] and r["error"] in DENIED, r
    assert not pb.domain_exists(name)


@pytest.mark.boot
def test_admin_may_manage_any_board(users, alice_board):
    assert users.call("admin", alice_board.path, BOARD_IFACE, "GetPin", "(u)", [4])["ok"]
    r = users.call("admin", alice_board.path, BOARD_IFACE, "GetPins")
    assert r["ok"] and len(r["result"][0]) == 54


@pytest.mark.boot
def test_guest_output_reaches_only_watchers(users, alice_board):
    b = alice_board
    listener = users.spawn("bob", "listen", "12")
    watcher = users.spawn("alice", "watch", b.path, "12")
    assert json.loads(listener.stdout.readline())["listening"]
    assert json.loads(watcher.stdout.readline())["watch"]["ok"]
    secret = pb.unique_name("secret")
    b.wait_for(lambda: b.prop("GuestReady") is True, 30, "GuestReady")
    # Each level held longer than the shim's polling interval, so both edges are seen.
    b.run(f"echo {secret}; piemu-gpio-shim set 5 1; sleep 1; piemu-gpio-shim set 5 0; sleep 1; echo done-{secret}",
          f"done-{secret}")
    lout, _ = listener.communicate(timeout=60)
    wout, _ = watcher.communicate(timeout=60)
    seen = json.loads(lout.splitlines()[-1])["seen"]
    got = json.loads(wout.splitlines()[-1])
    assert "SerialOutput" not in seen and "GpioChanged" not in seen, seen
    assert secret in got["serial"]
    assert [5, True] in [g[:2] for g in got["gpio"]] and [5, False] in [g[:2] for g in got["gpio"]]


def test_image_names_are_not_paths(users):
    for image in ("/etc/shadow", "../x", "default/../../etc"):
        r = users.call("alice", MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})", ["sec-img", image, {}])
        assert r["error"] == "org.piemu.Error.InvalidName", r


def test_import_image_from_descriptors(bus, users):
    name = pb.unique_name("img")
    src = "/var/lib/piemu/images/default"
    files = [f"{src}/kernel", f"{src}/dtb", f"{src}/sd.img"]
    r = users.run("bob", "import", name, *files)[-1]
    assert not r["ok"] and r["error"] in DENIED, r
    r = users.run("admin", "import", name, *files)[-1]
    assert r["ok"], r
    try:
        images = dict(pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "ListImages")[0])
        assert images[name] == "imported by test"
        for f in ("kernel", "sd.img"):
            with open(f"/var/lib/piemu/images/{name}/{f}", "rb") as a, open(f"{src}/{f}", "rb") as b:
                assert a.read() == b.read(), f
        # The device tree is the one given, with the board's revision (the extractor patches it).
        rev = subprocess.run(["fdtget", "-t", "x", f"/var/lib/piemu/images/{name}/dtb", "/system",
                              "linux,revision"], capture_output=True, text=True)
        assert rev.stdout.strip() == "a02082", rev
        model = subprocess.run(["fdtget", "-t", "s", f"/var/lib/piemu/images/{name}/dtb", "/", "model"],
                               capture_output=True, text=True).stdout
        assert model == subprocess.run(["fdtget", "-t", "s", f"{src}/dtb", "/", "model"],
                                       capture_output=True, text=True).stdout
        board = pb.Board.create(bus, image=name)
        err, _ = pb.call_error(bus, MANAGER_PATH, MANAGER_IFACE, "RemoveImage", "(s)", (name,))
        assert err == "org.piemu.Error.Busy"
        board.delete()
        r = users.call("bob", MANAGER_PATH, MANAGER_IFACE, "RemoveImage", "(s)", [name])
        assert not r["ok"] and r["error"] in DENIED, r
    finally:
        pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "RemoveImage", "(s)", (name,))
    assert name not in dict(pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "ListImages")[0])


def test_import_rejects_a_non_dtb(bus, users):
    # The importing user opens the files itself, so they must be readable by that user.
    tmp = tempfile.mkdtemp(prefix="piemu-sec-dtb-")
    os.chmod(tmp, 0o755)
    bogus = os.path.join(tmp, "notadtb")
    with open(bogus, "wb") as f:
        f.write(b"hello")
    os.chmod(bogus, 0o644)
    src = "/var/lib/piemu/images/default"
    name = pb.unique_name("img")
    r = users.run("admin", "import", name, f"{src}/kernel", str(bogus), f"{src}/sd.img")[-1]
    shutil.rmtree(tmp)
    assert not r["ok"] and r["error"] == "org.piemu.Error.ImageInvalid" and "dtb" in r["message"], r
    assert not os.path.exists(f"/var/lib/piemu/images/{name}")
    assert not [e for e in os.listdir("/var/lib/piemu/images") if e.startswith(f".import-{name}")]


@pytest.mark.boot
def test_stranger_on_the_console_port_gets_nothing(users, alice_board):
    b = alice_board
    port = b.prop("SerialPort")
    code = (
        "import socket,time\n"
        f"s=socket.create_connection(('127.0.0.1',{port}),timeout=2)\n"
        "s.sendall(b'echo stranger-typed\\n')\n"
        "s.settimeout(3)\n"
        # Refused: nothing, then EOF or a reset (piemud closes on bytes that are not a TLS handshake).
        "try:\n  d=s.recv(100)\nexcept (socket.timeout, ConnectionResetError):\n  d=b''\n"
        "print(len(d))\n"
    )
    pw = pwd.getpwnam(uname("bob"))
    p = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                        "/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0", "a stranger received console bytes"
    b.run("echo console-still-ours", "console-still-ours")
    recent = bytes(b.call("GetRecentSerial")[0])
    assert b"stranger-typed" not in recent
    assert b"stranger-typed" not in b.serial
