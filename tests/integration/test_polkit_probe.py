# SPDX-License-Identifier: LGPL-2.1-or-later
"""src/daemon/polkit.c against the real polkitd on the real system bus.

polkit-probe (tests/integration/polkit-probe.c) serves Check(s action) -> u: it calls
polkit_verify_async() and answers with how many times its handler ran for the call, so a 2 means
"asked polkitd, got re-dispatched, answered". Stats() -> (runs, queries sent, live registry
entries) shows that nothing is left behind.

Needs root (it installs a bus policy, a polkit action file and rules, and test users) and a running
system dbus-daemon and polkitd (started with tools/start-services.sh if missing). Everything it
installs is removed afterwards; the test users piemu-t-* stay (useradd is slow and they are
harmless). Without logind the callers have no session, so `allow_active` never applies: the test
rules decide, or the policy's `allow_any` defaults do.
"""

import filecmp
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import _require

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NAME = "org.piemu.test.PolkitProbe"
PATH = "/org/piemu/test/PolkitProbe"
IFACE = "org.piemu.test.PolkitProbe"

DBUS_POLICY = "/etc/dbus-1/system.d/org.piemu.test.PolkitProbe.conf"
ACTIONS = "/usr/share/polkit-1/actions/org.piemu.policy"
TEST_RULES = "/etc/polkit-1/rules.d/10-piemu-probe-test.rules"
GROUP_RULES = "/etc/polkit-1/rules.d/50-piemu-probe-test.rules"  # a copy of polkit/50-piemu.rules

ALICE, BOB, CAROL, DAVE = "piemu-t-alice", "piemu-t-bob", "piemu-t-carol", "piemu-t-dave"

# A client's first call runs its handler once more than the rest: the first run asks the bus
# for the caller's uid (without blocking) and returns; the call comes back with the answer.
# Every dbus-send is a new client, so its call pays that run.
UID = 1

ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

# alice: create-board etc. allowed only with the details the probe sends (proves they arrive);
#        manage-images allowed after polkitd sleeps 2 s (a slow answer, for the async tests).
# bob:   refused outright, except manage-boards: "authenticate as admin" (a challenge).
# carol: nothing here; she is in group piemu and 50-piemu.rules decides.
# dave:  nothing anywhere; the policy defaults decide.
RULES_JS = """// Temporary, written by tests/integration/test_polkit_probe.py; delete if left behind.
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.piemu.") != 0)
        return polkit.Result.NOT_HANDLED;
    if (subject.user == "%(alice)s") {
        if (action.id == "org.piemu.manage-images") {
            polkit.spawn(["/bin/sleep", "2"]);
            return polkit.Result.YES;
        }
        if (action.lookup("board") == "probe-board" && action.lookup("verb") == "check")
            return polkit.Result.YES;
        return polkit.Result.NO;
    }
    if (subject.user == "%(bob)s") {
        if (action.id == "org.piemu.manage-boards")
            return polkit.Result.AUTH_ADMIN;
        return polkit.Result.NO;
    }
    return polkit.Result.NOT_HANDLED;
});
""" % {"alice": ALICE, "bob": BOB}

DBUS_POLICY_XML = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Temporary, written by tests/integration/test_polkit_probe.py; delete if left behind. -->
<busconfig>
  <policy user="root">
    <allow own_prefix="org.piemu.test.PolkitProbe"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.piemu.test.PolkitProbe"/>
    <allow send_destination="org.piemu.test.PolkitProbe.Shutdown"/>
    <allow send_destination="org.piemu.test.PolkitProbe.Manual"/>
  </policy>
</busconfig>
"""

PRIVATE_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def find_probe():
    p = os.environ.get("PIEMU_POLKIT_PROBE")
    if p:
        return p
    for build in sorted(os.listdir(REPO)):
        cand = os.path.join(REPO, build, "tests", "integration", "polkit-probe")
        if build.startswith("build") and os.access(cand, os.X_OK):
            return cand
    return None


def reload_dbus():
    subprocess.run(["dbus-send", "--system", "--type=method_call", "--dest=org.freedesktop.DBus", "/",
                    "org.freedesktop.DBus.ReloadConfig"], check=True)


def as_user(user):
    if user == "root":
        return []
    pw = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]


class Reply:
    def __init__(self, proc):
        self.ok = proc.returncode == 0
        self.out = proc.stdout
        self.err = proc.stderr.strip()
        # dbus-send: "Error org.freedesktop.DBus.Error.AccessDenied: message"
        self.error_name = None
        if not self.ok and self.err.startswith("Error "):
            self.error_name = self.err.split()[1].rstrip(":")
        self.values = [int(line.split()[1]) for line in self.out.splitlines()
                       if line.strip().startswith("uint32 ")]

    def __repr__(self):
        return f"Reply(ok={self.ok}, values={self.values}, error={self.err!r})"


def dbus_send_cmd(user, method, *args, name=NAME, timeout_ms=25000, bus=None):
    cmd = as_user(user) + ["dbus-send", bus and f"--bus={bus}" or "--system", "--print-reply",
                           f"--reply-timeout={timeout_ms}", f"--dest={name}", PATH, f"{IFACE}.{method}"]
    return cmd + [f"string:{a}" for a in args]


def call(user, method, *args, **kw):
    """Calls the probe without the allow-interactive-authorization flag (dbus-send never sets it)."""
    return Reply(run(dbus_send_cmd(user, method, *args, **kw), timeout=60))


def stats(name=NAME, bus=None):
    r = call("root", "Stats", name=name, bus=bus)
    assert r.ok, r
    return dict(zip(("runs", "queries", "registry", "uids", "lookups"), r.values))


def wait_for(pred, timeout, interval=0.1):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


def registry_drained(name=NAME):
    # Answers are collected at idle time, right after the reply: allow a moment.
    return wait_for(lambda: stats(name)["registry"] == 0, 2)


def start_probe(probe, name, env=None, args=()):
    p = subprocess.Popen([probe, name, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    line = p.stdout.readline()
    if line.strip() != "READY":
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"polkit-probe did not start: {line!r} {err}")
    return p


def stop_probe(p):
    """SIGTERM; the probe frees its registry and exits 0. Returns stderr (sanitizer reports)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        pytest.fail("polkit-probe did not exit on SIGTERM")
    return p.returncode, err


def assert_clean_exit(rc, err):
    assert "Sanitizer" not in err, err
    assert rc == 0, f"polkit-probe exited {rc}: {err}"


def ensure_user(name, groups=()):
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True)
    for g in groups:
        if name not in grp.getgrnam(g).gr_mem:
            subprocess.run(["usermod", "-a", "-G", g, name], check=True)


def bus_name_owned(name):
    r = run(["busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
             "org.freedesktop.DBus", "NameHasOwner", "s", name])
    return r.returncode == 0 and r.stdout.strip() == "b true"


@pytest.fixture(scope="module")
def probe_binary():
    if os.geteuid() != 0:
        _require("needs root: installs bus policy, polkit rules and test users")
    probe = find_probe()
    if not probe:
        _require("polkit-probe not built (set PIEMU_POLKIT_PROBE or build into build*/)")
    # The system bus and polkitd must be up; start them the way the set-up path does.
    if not (run(["busctl", "--system", "list"]).returncode == 0 and
            bus_name_owned("org.freedesktop.PolicyKit1")):
        subprocess.run([os.path.join(REPO, "tools", "start-services.sh")], check=True)
    return probe


@pytest.fixture(scope="module")
def polkit_env(probe_binary):
    installed = []
    saved_actions = None
    try:
        # Bus policy: root may own the probe's name, anyone may call it.
        with open(DBUS_POLICY, "w") as f:
            f.write(DBUS_POLICY_XML)
        installed.append(DBUS_POLICY)
        reload_dbus()

        # Our action definitions (identical when piemu is installed; otherwise put in place).
        src_actions = os.path.join(REPO, "polkit", "org.piemu.policy")
        if not (os.path.exists(ACTIONS) and filecmp.cmp(src_actions, ACTIONS, shallow=False)):
            if os.path.exists(ACTIONS):
                saved_actions = ACTIONS + ".piemu-test-saved"
                shutil.copy2(ACTIONS, saved_actions)
            shutil.copy(src_actions, ACTIONS)
            os.chmod(ACTIONS, 0o644)
            installed.append(ACTIONS)

        if run(["getent", "group", "piemu"]).returncode != 0:
            subprocess.run(["groupadd", "--system", "piemu"], check=True)
        for u in (ALICE, BOB, DAVE):
            ensure_user(u)
        ensure_user(CAROL, groups=("piemu",))

        for path, text in ((TEST_RULES, RULES_JS),
                           (GROUP_RULES, open(os.path.join(REPO, "polkit", "50-piemu.rules")).read())):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
            installed.append(path)

        # polkitd picks up actions and rules via inotify: wait until it knows the action.
        assert wait_for(lambda: run(["pkaction", "--action-id", "org.piemu.create-board"]).returncode == 0,
                        15), "polkitd did not load org.piemu.policy"
        yield
    finally:
        for path in reversed(installed):
            if path == ACTIONS and saved_actions:
                shutil.move(saved_actions, ACTIONS)
            else:
                os.unlink(path)
        if DBUS_POLICY in installed:
            reload_dbus()


@pytest.fixture(scope="module")
def probe(probe_binary, polkit_env):
    p = start_probe(probe_binary, NAME)
    # The rules file was just written: poll until polkitd evaluates it (alice gets a yes).
    r = wait_for(lambda: call(ALICE, "Check", "org.piemu.create-board").ok, 15, 0.3)
    if not r:
        stop_probe(p)
        pytest.fail("polkitd never applied the test rules: " + repr(call(ALICE, "Check", "org.piemu.create-board")))
    yield p
    if p.poll() is None:
        stop_probe(p)


def test_policy_is_loaded_by_polkitd(polkit_env):
    r = run(["pkaction", "--verbose", "--action-id", "org.piemu.manage-boards"])
    assert r.returncode == 0, r.stderr
    assert "implicit any:      auth_admin_keep" in r.stdout
    assert "org.freedesktop.policykit.imply -> org.piemu.manage-own-board org.piemu.create-board" in r.stdout
    r = run(["pkaction", "--verbose", "--action-id", "org.piemu.create-board"])
    assert "implicit active:   yes" in r.stdout and "implicit any:      auth_admin" in r.stdout


def test_root_is_allowed_without_asking_polkit(probe):
    before = stats()
    r = call("root", "Check", "org.piemu.manage-boards")
    assert r.ok and r.values == [UID + 1], r
    after = stats()
    assert after["queries"] == before["queries"]


def test_allowed_user_is_answered_after_redispatch(probe):
    before = stats()
    r = call(ALICE, "Check", "org.piemu.create-board")
    assert r.ok, r
    assert r.values == [UID + 2]  # handler ran, asked polkitd, ran again with the answer
    assert stats()["queries"] == before["queries"] + 1
    assert registry_drained()


def test_refused_user_gets_access_denied(probe):
    r = call(BOB, "Check", "org.piemu.create-board")
    assert r.error_name == ACCESS_DENIED, r
    assert "org.piemu.create-board" in r.err and "board=probe-board" in r.err
    assert registry_drained()


def test_details_reach_polkit(probe):
    # alice's rule says yes only for board=probe-board, verb=check.
    assert call(ALICE, "CheckBoard", "org.piemu.manage-own-board", "probe-board").values == [UID + 2]
    r = call(ALICE, "CheckBoard", "org.piemu.manage-own-board", "other-board")
    assert r.error_name == ACCESS_DENIED and "board=other-board" in r.err, r


def test_challenge_without_interaction_flag(probe):
    r = call(BOB, "Check", "org.piemu.manage-boards")
    assert r.error_name == INTERACTIVE, r
    assert "org.piemu.manage-boards" in r.err
    assert registry_drained()


# Calls Check with ALLOW_INTERACTIVE_AUTHORIZATION set, through GDBus (busctl would set the flag
# too, but replaces AccessDenied messages with "Access denied", and dbus-send cannot set it).
GIO_INTERACTIVE_CALL = """
import sys
from gi.repository import Gio, GLib
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
try:
    r = bus.call_sync(sys.argv[1], sys.argv[2], sys.argv[3], "Check", GLib.Variant("(s)", (sys.argv[4],)),
                      None, Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION, 30000, None)
    print("OK", r.unpack()[0])
except GLib.Error as e:
    name = Gio.DBusError.get_remote_error(e)
    Gio.DBusError.strip_remote_error(e)
    print("ERR", name, e.message)
"""


def test_challenge_with_interaction_flag_and_no_agent(probe):
    # polkitd finds no agent for a session-less caller and still answers "challenge": retrying
    # cannot help, so the caller gets AccessDenied saying that no agent answered.
    r = run(as_user(BOB) + [sys.executable, "-c", GIO_INTERACTIVE_CALL, NAME, PATH, IFACE,
                            "org.piemu.manage-boards"], timeout=60)
    assert r.stdout.startswith("ERR " + ACCESS_DENIED + " "), (r.stdout, r.stderr)
    assert "org.piemu.manage-boards" in r.stdout and "no authentication agent" in r.stdout, r.stdout
    # The flag is only a permission: an allowed caller is still simply allowed.
    r = run(as_user(ALICE) + [sys.executable, "-c", GIO_INTERACTIVE_CALL, NAME, PATH, IFACE,
                              "org.piemu.create-board"], timeout=60)
    assert r.stdout.strip() == f"OK {UID + 2}", (r.stdout, r.stderr)
    assert registry_drained()


def test_policy_defaults_apply_without_rules(probe):
    # dave: no rule, not in group piemu, no session -> allow_any = auth_admin -> challenge.
    r = call(DAVE, "Check", "org.piemu.create-board")
    assert r.error_name == INTERACTIVE, r
    r = call(DAVE, "Check", "org.piemu.manage-images")
    assert r.error_name == INTERACTIVE, r


def test_piemu_group_rules(probe):
    assert call(CAROL, "Check", "org.piemu.create-board").values == [UID + 2]
    assert call(CAROL, "Check", "org.piemu.manage-own-board").values == [UID + 2]
    # Other people's boards and images still need an admin.
    assert call(CAROL, "Check", "org.piemu.manage-boards").error_name == INTERACTIVE
    assert call(CAROL, "Check", "org.piemu.manage-images").error_name == INTERACTIVE


def test_unknown_action_is_refused(probe):
    r = call(ALICE, "Check", "org.piemu.no-such-action")
    assert r.error_name == ACCESS_DENIED, r
    assert "polkit failed" in r.err and "not registered" in r.err


def test_two_actions_in_one_call(probe):
    before = stats()
    r = Reply(run(dbus_send_cmd(ALICE, "CheckTwo", "org.piemu.create-board", "org.piemu.manage-own-board"),
                  timeout=60))
    assert r.ok and r.values == [UID + 3], r  # asked twice, re-dispatched twice, no repeated question
    assert stats()["queries"] == before["queries"] + 2
    r = Reply(run(dbus_send_cmd(ALICE, "CheckTwo", "org.piemu.create-board", "org.piemu.no-such-action"),
                  timeout=60))
    assert r.error_name == ACCESS_DENIED and "no-such-action" in r.err, r
    assert registry_drained()


def test_two_questions_at_once_give_one_reply(probe):
    # A handler that asks twice without returning in between is re-dispatched once, when both
    # answers are in; a second dispatch would run (and reply) twice.
    before = stats()
    r = Reply(run(dbus_send_cmd(ALICE, "CheckParallel", "org.piemu.create-board", "org.piemu.manage-own-board"),
                  timeout=60))
    assert r.ok and r.values == [UID + 2], r
    time.sleep(0.3)
    after = stats()
    assert after["runs"] == before["runs"] + UID + 2 and after["queries"] == before["queries"] + 2, (before, after)
    assert registry_drained()


def test_caller_uid_is_remembered_while_connected(probe):
    """The caller's uid is asked of the bus once per client (without blocking: the first call runs
    once more) and forgotten when the client leaves (unique names are never reused)."""
    from gi.repository import Gio, GLib

    # Every caller so far has disconnected: nothing of theirs is remembered.
    assert wait_for(lambda: stats()["uids"] == 0, 3, 0.05), stats()
    address = Gio.dbus_address_get_for_bus_sync(Gio.BusType.SYSTEM, None)
    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
    before = stats()
    try:
        for i in range(3):
            v = conn.call_sync(NAME, PATH, IFACE, "Check", GLib.Variant("(s)", ("org.piemu.create-board",)),
                               None, Gio.DBusCallFlags.NONE, 10000, None)
            # root: decided at once, once the bus has said who is calling (first call only)
            assert v.unpack() == ((UID + 1,) if i == 0 else (1,))
        after = stats()
        assert after["uids"] == 1
        assert after["lookups"] == before["lookups"] + 1  # once for three calls
    finally:
        conn.close_sync(None)
    assert wait_for(lambda: stats()["uids"] == 0, 3, 0.05), "a departed client's uid stayed cached"


def test_concurrent_callers(probe):
    procs = [subprocess.Popen(dbus_send_cmd(u, "Check", "org.piemu.create-board"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for u in [ALICE, BOB] * 10]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        results.append(Reply(subprocess.CompletedProcess(p.args, p.returncode, out, err)))
    for i, r in enumerate(results):
        if i % 2 == 0:
            assert r.ok and r.values == [UID + 2], r
        else:
            assert r.error_name == ACCESS_DENIED, r
    assert registry_drained()
    # Twenty clients, alice's and bob's interleaved, each judged by its own uid; all forgotten now.
    assert wait_for(lambda: stats()["uids"] == 0, 3, 0.05), stats()


def test_loop_does_not_wait_for_polkit(probe):
    # alice's manage-images rule makes polkitd take 2 s; meanwhile the probe answers others.
    slow = subprocess.Popen(dbus_send_cmd(ALICE, "Check", "org.piemu.manage-images"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: stats()["registry"] == 1, 2, 0.02), "query was not registered"
        t0 = time.monotonic()
        r = call("root", "Check", "org.piemu.create-board")
        elapsed = time.monotonic() - t0
        assert r.ok and r.values == [UID + 1], r
        assert elapsed < 0.5, f"root's call took {elapsed:.2f}s while polkitd was busy"
    finally:
        out, err = slow.communicate(timeout=30)
    r = Reply(subprocess.CompletedProcess(slow.args, slow.returncode, out, err))
    assert r.ok and r.values == [UID + 2], r
    assert registry_drained()


def test_vanished_caller_query_is_dropped(probe):
    before = stats()
    # dbus-send gives up after 0.5 s and disconnects while polkitd is still sleeping (2 s).
    r = call(ALICE, "Check", "org.piemu.manage-images", timeout_ms=500)
    assert r.error_name == "org.freedesktop.DBus.Error.NoReply", r
    # The NameOwnerChanged match drops the query right away, long before polkitd answers.
    assert wait_for(lambda: stats()["registry"] == 0, 1.0, 0.05), stats()
    time.sleep(2.5)  # polkitd answers now; the cancelled slot must not re-dispatch anything
    after = stats()
    assert after["runs"] == before["runs"] + UID + 1  # up to the question: never re-dispatched after
    assert after["registry"] == 0


def test_polkit_unreachable_is_access_denied(probe_binary, polkit_env):
    d = tempfile.mkdtemp(prefix="piemu-pk-bus-")
    os.chmod(d, 0o755)
    sock = os.path.join(d, "bus")
    conf = os.path.join(d, "bus.conf")
    with open(conf, "w") as f:
        f.write(PRIVATE_BUS_CONF % sock)
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = None
    try:
        addr = bus.stdout.readline().strip()
        assert addr, bus.stderr.read()
        p = start_probe(probe_binary, NAME, env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr))
        # A bus without polkitd: refuse, and say why.
        r = call(BOB, "Check", "org.piemu.create-board", bus=addr)
        assert r.error_name == ACCESS_DENIED, r
        assert "polkit is not reachable" in r.err, r
        # root needs no polkit
        r = call("root", "Check", "org.piemu.create-board", bus=addr)
        assert r.ok and r.values == [UID + 1], r
        assert stats(bus=addr)["registry"] == 0
        rc, err = stop_probe(p)
        p = None
        assert_clean_exit(rc, err)
    finally:
        if p:
            stop_probe(p)
        bus.terminate()
        bus.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def test_without_event_loop_answers_are_freed_when_consumed(probe_binary, polkit_env, probe):
    name = NAME + ".Manual"
    p = start_probe(probe_binary, name, args=("--manual-loop",))
    try:
        assert call(ALICE, "Check", "org.piemu.create-board", name=name).values == [UID + 2]
        assert stats(name)["registry"] == 0  # no idle GC here: freed by the last run itself
        r = call(BOB, "Check", "org.piemu.create-board", name=name)
        assert r.error_name == ACCESS_DENIED, r
        assert call("root", "Check", "org.piemu.create-board", name=name).values == [UID + 1]
        assert stats(name)["registry"] == 0
    finally:
        rc, err = stop_probe(p)
    assert_clean_exit(rc, err)


def test_shutdown_with_pending_query_is_clean(probe_binary, polkit_env, probe):
    name = NAME + ".Shutdown"
    p = start_probe(probe_binary, name)
    slow = subprocess.Popen(dbus_send_cmd(ALICE, "Check", "org.piemu.manage-images", name=name),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: stats(name)["registry"] == 1, 2, 0.02)
        rc, err = stop_probe(p)  # while polkitd is still thinking
        assert_clean_exit(rc, err)
    finally:
        out, err = slow.communicate(timeout=30)
    assert slow.returncode != 0  # the caller learns the service went away
    time.sleep(2)  # let polkitd finish that answer before the next test


def test_zz_probe_exits_cleanly(probe):
    # Last: everything above left no queries behind, and the registry frees cleanly.
    assert stats()["registry"] == 0
    rc, err = stop_probe(probe)
    assert_clean_exit(rc, err)
