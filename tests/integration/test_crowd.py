# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 9: a crowd on the bus does not take piemud off it. Three ordinary users open 250
connections each (the bus allows 256 per user) and call Watch or GetPin once on each: piemud stays
the same process on the bus with a handful of match rules, a fresh caller is answered within
100 ms, the board does not change state, and the watchers get the console."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

import piemu_bus as pb
from piemu_bus import MANAGER_IFACE, MANAGER_PATH

USERS = ["piemu-crowd-1", "piemu-crowd-2", "piemu-crowd-3"]
METHODS = ["Watch", "GetPin", "mixed"]
PER_USER = 250
RULES = "/etc/polkit-1/rules.d/10-piemu-test-crowd.rules"


def piemud_pid_and_name():
    out = subprocess.run(["busctl", "--system", "status", "org.piemu"], capture_output=True, text=True,
                         check=True).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return int(fields["PID"]), fields["UniqueName"]


def match_rules(unique):
    """piemud's match rules, as dbus-daemon counts them (Debug.Stats)."""
    out = subprocess.run(["busctl", "--system", "--json=short", "call", "org.freedesktop.DBus",
                          "/org/freedesktop/DBus", "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", "s",
                          unique], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    d = json.loads(out.stdout)["data"][0]
    return d["MatchRules"]["data"], d["PeakMatchRules"]["data"]


@pytest.fixture(scope="module")
def crowd_users():
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           check=True)
    with open(RULES, "w") as f:
        f.write("// Temporary, written by tests/integration/test_crowd.py.\n"
                "polkit.addRule(function(action, subject) {\n"
                '    if (subject.user.indexOf("piemu-crowd-") == 0 && action.id == "org.piemu.manage-boards")\n'
                "        return polkit.Result.YES;\n"
                "});\n")
    tmp = tempfile.mkdtemp(prefix="piemu-crowd-")
    os.chmod(tmp, 0o755)
    for f in ("crowd.py", "piemu_bus.py"):
        shutil.copy(os.path.join(os.path.dirname(__file__), f), tmp)
        os.chmod(os.path.join(tmp, f), 0o644)
    time.sleep(1.0)  # polkitd reads rules asynchronously
    yield tmp
    os.unlink(RULES)
    shutil.rmtree(tmp)


@pytest.mark.boot
def test_crowd_does_not_take_piemud_off_the_bus(bus, board_factory, crowd_users):
    b = board_factory()
    b.watch()
    b.call("Start")
    b.wait_prompt()
    pid, unique = piemud_pid_and_name()
    states_before = list(b.states)
    procs = []
    try:
        for user, method in zip(USERS, METHODS):
            pw = pwd.getpwnam(user)
            procs.append(subprocess.Popen(
                ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "/usr/bin/python3",
                 os.path.join(crowd_users, "crowd.py"), str(PER_USER), b.path, method],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}))
        results = []
        for p in procs:
            line = p.stdout.readline()
            assert line, p.stderr.read()
            results.append(json.loads(line))
        # Every call of the crowd was answered, and answered yes.
        for user, r in zip(USERS, results):
            assert r["ok"] == PER_USER and not r["errors"], (user, r)

        # piemud is the same process, still on the bus, with a handful of match rules.
        assert piemud_pid_and_name() == (pid, unique)
        rules = match_rules(unique)
        if rules is not None:
            assert rules[1] <= 8, f"piemud has {rules} match rules with {len(USERS) * PER_USER} callers"
        # A fresh caller is answered within 100 ms.
        conn = pb.private_system_bus()
        lat = []
        for _ in range(5):
            t0 = time.monotonic()
            pb.call(conn, MANAGER_PATH, MANAGER_IFACE, "ListBoards")
            pb.call(conn, b.path, pb.BOARD_IFACE, "GetPin", "(u)", (4,))
            lat.append(time.monotonic() - t0)
        assert min(lat) < 0.1 and sorted(lat)[2] < 0.1, lat
        # The watchers get the console; the board is untouched.
        b.run("echo crowd-$((9*9))", rb"\ncrowd-81")
        assert b.prop("State") == "running" and b.states == states_before
    finally:
        signals = []
        for p in procs:
            p.terminate()
        for p in procs:
            out, err = p.communicate(timeout=60)
            lines = [json.loads(x) for x in out.splitlines() if x.strip()]
            signals.append(lines[-1].get("signals") if lines else None)
    # The Watch callers received the echo (each of its connections a SerialOutput or more).
    assert signals[0] is not None and signals[0] >= PER_USER, signals
    # Once the crowd has gone, piemud forgets it: still one process, a handful of rules.
    time.sleep(1.0)
    assert piemud_pid_and_name() == (pid, unique)
    b.run("echo after-$((9*8))", rb"\nafter-72")
