# SPDX-License-Identifier: LGPL-2.1-or-later
"""piemuctl against a running piemud: every command's happy path and its error paths, --json output
parsed and checked, watch and wait. The console is in test_ctl_console.py.

Runs as root after the daemon is installed and running. The binary is $PIEMUCTL (default: piemuctl
on $PATH). Without piemud on the bus, the tests that need it skip (or fail with
PIEMU_REQUIRE_DAEMON=1); the usage tests and the "daemon not running" tests run anyway. If
$PIEMU_BUS_ADDRESS is set, piemuctl and these tests use that bus instead of the system bus.
"""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import _require
import piemu_bus as pb

PIEMUCTL = os.environ.get("PIEMUCTL", "piemuctl")
BOOT_TIMEOUT = float(os.environ.get("PIEMU_BOOT_TIMEOUT", "120"))
# The busybox prompt: "piemu:/# " or "piemu:~# " depending on the directory.
PROMPT_RE = "piemu:[^ ]*# "
TIMESTAMP_RE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
EXIT_USAGE, EXIT_NOT_FOUND, EXIT_STATE, EXIT_ACCESS, EXIT_TIMEOUT, EXIT_NO_DAEMON = 2, 3, 4, 5, 6, 7
STATUS_KEYS = {
    "name", "image", "model", "cmdline", "owner", "state", "persistent", "guest_ready", "serial_port",
    "gpio_port", "last_error", "dropped_gpio_lines", "gpio_path", "gpio_interrupts", "path", "recent_serial",
}
BOARD_VERBS = [
    ["status"], ["start"], ["stop"], ["restart"], ["delete"], ["send", "{}", "hello"], ["set-pin", "{}", "3", "1"],
    ["get-pin", "{}", "3"], ["pins"], ["watch"], ["console"], ["wait", "{}", "--state=running"],
]


def unique(prefix="t-ctl"):
    # Every name made here joins the session's leak check (conftest: no domain or volume left).
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    pb.CREATED.add(name)
    return name


def ctl(*args, env=None, timeout=180, stdin=subprocess.DEVNULL):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([PIEMUCTL, *args], capture_output=True, text=True, env=e, timeout=timeout, stdin=stdin)


def ok(*args, **kw):
    r = ctl(*args, **kw)
    assert r.returncode == 0, f"piemuctl {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return r


def fails(code, *args, message=None, **kw):
    r = ctl(*args, **kw)
    assert r.returncode == code, (
        f"piemuctl {' '.join(args)}: expected exit {code}, got {r.returncode}\n"
        f"stdout: {r.stdout}\nstderr: {r.stderr}"
    )
    if message:
        assert re.search(message, r.stderr), f"{message!r} not in stderr: {r.stderr!r}"
    return r


def wait_prompt(name, timeout=BOOT_TIMEOUT):
    r = ctl("wait", name, f"--serial={PROMPT_RE}", f"--timeout={timeout}s", timeout=timeout + 30)
    assert r.returncode == 0, f"board {name} did not reach its shell prompt: {r.returncode} {r.stderr}"


@pytest.fixture(scope="module")
def running_board(daemon):
    """One booted board shared by the module: booting a guest under emulation takes a while."""
    name = unique()
    ok("create", name)
    try:
        ok("start", name)
        wait_prompt(name)
        yield name
    finally:
        ctl("delete", name)


@pytest.fixture
def stopped_board(daemon):
    name = unique()
    ok("create", name)
    try:
        yield name
    finally:
        ctl("delete", name)


@pytest.fixture
def private_bus(tmp_path):
    """A dbus-daemon of our own where nobody owns org.piemu: piemud "not running"."""
    if not shutil.which("dbus-daemon"):
        _require("dbus-daemon is not installed")
    conf = tmp_path / "bus.conf"
    conf.write_text(
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
        f"<busconfig><type>session</type><listen>unix:dir={tmp_path}</listen>"
        '<policy context="default"><allow send_destination="*" eavesdrop="true"/>'
        '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n'
    )
    proc = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        address = proc.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


class Stream:
    """Reads a child's stdout line by line with a deadline (watch runs until interrupted)."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        self.lines = []

    def wait_for(self, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        checked = 0
        while True:
            for line in self.lines[checked:]:
                if rx.search(line):
                    return line
            checked = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in {timeout}s; got: {self.lines[-20:]}")
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if r:
                data = os.read(self.proc.stdout.fileno(), 65536)
                if not data:
                    raise AssertionError(f"stream ended (exit {self.proc.poll()}); got: {self.lines[-20:]}")
                self.buf += data
                *complete, self.buf = self.buf.split(b"\n")
                self.lines += [c.decode("utf-8", "replace") for c in complete]


def start_watch(*args):
    return subprocess.Popen(
        [PIEMUCTL, "watch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )


def wait_subscribed(proc, timeout=30):
    """Waits for watch's banner on stderr: it is printed once the matches and Watch() are in place."""
    deadline = time.monotonic() + timeout
    err = b""
    while b"Watching board" not in err:
        left = deadline - time.monotonic()
        assert left > 0, f"watch did not subscribe in {timeout}s: {err!r}"
        r, _, _ = select.select([proc.stderr], [], [], min(left, 0.5))
        if r:
            data = os.read(proc.stderr.fileno(), 4096)
            assert data, f"watch ended (exit {proc.poll()}) before subscribing: {err!r}"
            err += data
    return err


def stop_watch(proc):
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc


def status_json(name):
    return json.loads(ok("status", name, "--json=short").stdout)


# ---- no daemon needed ----


def test_help_and_version(piemuctl_bin):
    r = ok("--help")
    for verb in ["list", "status", "create", "delete", "start", "stop", "restart", "images", "import-image",
                 "remove-image", "send", "set-pin", "get-pin", "pins", "watch", "console", "wait"]:
        assert re.search(rf"^  {verb}\b", r.stdout, re.M), f"{verb} missing from --help"
        v = ok(verb, "--help")
        assert v.stdout.startswith(f"Usage: piemuctl [OPTIONS...] {verb}"), v.stdout
        assert "Exit status" in v.stdout
        assert ok("help", verb).stdout == v.stdout
    assert "7  piemud" in r.stdout  # exit codes are documented
    assert re.fullmatch(r"piemuctl \d+\.\d+.*\n", ok("--version").stdout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["frobnicate"], "Unknown command"),
        (["--frobnicate", "list"], "Unknown option"),
        (["create"], "Too few arguments"),
        (["status", "a", "b"], "Too many arguments"),
        (["start", "x", "--persistent"], "does not apply to 'start'"),
        (["list", "--json=yaml"], "Invalid --json"),
        (["wait", "x", "--timeout=soon", "--state=running"], "Invalid --timeout"),
        (["wait", "x"], "wait needs a condition"),
        (["wait", "x", "--state=sleeping"], "Invalid state"),
        (["wait", "x", "--serial=("], "Invalid regular expression"),
        (["wait", "x", "--pin=17"], "Invalid --pin"),
        (["status", "x", "--lines=many"], "Invalid --lines"),
        (["import-image", "img", "--kernel=/dev/null"], "needs FILE .*or --kernel"),
        (["import-image", "img", "x.img", "--kernel=/dev/null"], "takes no --kernel"),
        (["import-image", "img", "--kernel=/nonexistent", "--dtb=/nonexistent", "--sd=/nonexistent"],
         "Cannot open the kernel file"),
        (["import-image", "img", "--kernel=/tmp", "--dtb=/tmp", "--sd=/tmp"], "not a regular file"),
    ],
)
def test_usage_errors(piemuctl_bin, args, message):
    fails(EXIT_USAGE, *args, message=message)


@pytest.mark.parametrize("name", ["bad/name", "a" * 64, ".hidden", "sp ace", "ütf"])
def test_invalid_names(piemuctl_bin, name):
    for verb in (["create", name], ["start", name], ["status", name], ["delete", name], ["console", name],
                 ["import-image", name, "--kernel=/dev/null", "--dtb=/dev/null", "--sd=/dev/null"]):
        fails(EXIT_USAGE, *verb, message="Invalid (board|image) name")


@pytest.mark.parametrize(
    "args",
    [["set-pin", "b", "54", "1"], ["set-pin", "b", "--", "-1", "1"], ["get-pin", "b", "54"], ["get-pin", "b", "x"],
     ["get-pin", "b", "1000000000000"], ["wait", "b", "--pin=54=1"]],
)
def test_bad_pin(piemuctl_bin, args):
    fails(EXIT_USAGE, *args, message="Invalid pin")


def test_bad_level(piemuctl_bin):
    fails(EXIT_USAGE, "set-pin", "b", "3", "2", message="Invalid level")
    fails(EXIT_USAGE, "wait", "b", "--pin=3=on", message="Invalid level")


@pytest.mark.parametrize(
    "args",
    [["list"], ["images"], ["status", "b"], ["create", "b"], ["start", "b"], ["stop", "b"], ["delete", "b"],
     ["send", "b", "x"], ["get-pin", "b", "1"], ["pins", "b"], ["watch", "b"], ["console", "b"],
     ["wait", "b", "--state=running"], ["remove-image", "i"]],
)
def test_daemon_not_running(piemuctl_bin, private_bus, args):
    r = fails(EXIT_NO_DAEMON, *args, env={"PIEMU_BUS_ADDRESS": private_bus}, timeout=30,
              message="piemud is not running")
    assert "org.piemu has no owner" in r.stderr


def test_bus_unreachable(piemuctl_bin, tmp_path):
    fails(EXIT_NO_DAEMON, "list", env={"PIEMU_BUS_ADDRESS": f"unix:path={tmp_path}/nothing"}, timeout=30,
          message="Cannot connect to the bus")


# ---- against piemud ----


def test_list(running_board):
    r = ok("list")
    assert re.search(r"^NAME +STATE +OWNER$", r.stdout, re.M)
    assert re.search(rf"^{running_board} +running +root$", r.stdout, re.M), r.stdout
    assert re.search(r"^\d+ boards? listed\.$", r.stdout, re.M)

    r = ok("list", "--no-legend")
    assert "NAME" not in r.stdout and "listed" not in r.stdout
    assert re.search(rf"^{running_board} +running +root$", r.stdout, re.M)

    # No arguments at all: list, like machinectl.
    assert running_board in ok().stdout


def test_list_json(running_board):
    short = ok("list", "--json=short")
    assert short.stdout.count("\n") == 1
    boards = json.loads(short.stdout)
    assert isinstance(boards, list)
    for b in boards:
        assert set(b) == {"name", "state", "owner", "path"}
        assert isinstance(b["owner"], int)
    mine = [b for b in boards if b["name"] == running_board]
    assert len(mine) == 1
    assert mine[0]["state"] == "running"
    assert mine[0]["owner"] == os.getuid()
    assert mine[0]["path"].startswith("/org/piemu/board/")

    pretty = ok("list", "--json=pretty")
    assert pretty.stdout.count("\n") > 1
    assert [b for b in json.loads(pretty.stdout) if b["name"] == running_board] == mine
    assert [b for b in json.loads(ok("list", "-j").stdout) if b["name"] == running_board] == mine
    # names are sorted
    names = [b["name"] for b in boards]
    assert names == sorted(names)


def test_images(daemon):
    r = ok("images")
    images = json.loads(ok("images", "--json").stdout)
    assert isinstance(images, list) and images, "piemud lists no images"
    for i in images:
        assert set(i) == {"name", "description"}
        assert re.search(rf"^{re.escape(i['name'])}\b", r.stdout, re.M)
    assert re.search(r"^NAME +DESCRIPTION$", r.stdout, re.M)
    assert "NAME" not in ok("images", "--no-legend").stdout


def test_models(daemon, bus):
    """models prints piemud's Models property, the one table of models (the default first), as a
    table and as JSON."""
    models = pb.get_prop(bus, pb.MANAGER_PATH, pb.MANAGER_IFACE, "Models")
    assert sorted(m[0] for m in models) == ["raspi0", "raspi1ap", "raspi2b", "raspi3ap", "raspi3b", "raspi4b"]
    assert models[0][0] == "raspi3b" and models[0][2] == "default"

    r = ok("models")
    assert re.search(r"^NAME +DESCRIPTION +IMAGE +REVISION +RAM +CPUS$", r.stdout, re.M), r.stdout
    rows = [line.split()[0] for line in r.stdout.splitlines()[1:len(models) + 1]]
    assert rows == [m[0] for m in models], r.stdout
    for name, description, image, revision, mib, cpus in models:
        ram = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
        assert re.search(rf"^{name} +{re.escape(description)} +{re.escape(image)} +{revision:06x} +{ram} +{cpus}$",
                         r.stdout, re.M), r.stdout
    assert re.search(rf"^{len(models)} models listed\.$", r.stdout, re.M)
    assert "NAME" not in ok("models", "--no-legend").stdout

    assert json.loads(ok("models", "--json=short").stdout) == [
        {"name": n, "description": d, "default_image": i, "revision": f"{rev:06x}", "memory_mib": mib, "cpus": c}
        for n, d, i, rev, mib, c in models]


def complete(piemuctl_bin, words, cword):
    """Runs the bash completion in the repository for COMP_WORDS=words at index cword and returns
    COMPREPLY; piemuctl (the one under test) is what it asks for names."""
    bash_completion = "/usr/share/bash-completion/bash_completion"
    if not os.path.exists(bash_completion):
        _require("bash-completion is not installed")
    # As bash has it: "--model=x" is the three words "--model", "=", "x" with no blanks between.
    line = " ".join(words).replace(" = ", "=")
    script = (f"source {bash_completion}\nsource {pb.REPO}/completion/piemuctl.bash\n"
              'COMP_WORDS=("$@"); COMP_CWORD=$CWORD; COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}\n'
              "_piemuctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, CWORD=str(cword), LINE=line,
               PATH=os.path.dirname(piemuctl_bin) + ":" + os.environ.get("PATH", ""))
    r = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_completion_asks_piemud_for_models(daemon, bus, piemuctl_bin):
    names = [m[0] for m in pb.get_prop(bus, pb.MANAGER_PATH, pb.MANAGER_IFACE, "Models")]
    assert complete(piemuctl_bin, ["piemuctl", "create", "b", "--model", ""], 4) == names
    assert complete(piemuctl_bin, ["piemuctl", "create", "b", "--model", "=", "raspi3"], 5) == [
        n for n in names if n.startswith("raspi3")]
    assert complete(piemuctl_bin, ["piemuctl", "mode"], 1) == ["models"]


def test_status(running_board):
    r = ok("status", running_board)
    assert r.stdout.startswith(running_board + "\n")
    assert re.search(r"^ +State: running$", r.stdout, re.M)
    assert re.search(r"^ +Owner: root \(0\)$", r.stdout, re.M)
    assert re.search(r"^ +Serial port: 127\.0\.0\.1:\d+ \(TLS\)$", r.stdout, re.M)
    assert "Recent console output:" in r.stdout
    assert re.search(PROMPT_RE.rstrip(), r.stdout)

    r = ok("status", running_board, "-n", "2")
    tail = r.stdout.split("Recent console output:\n", 1)[1]
    assert 1 <= len(tail.splitlines()) <= 2
    # Control characters from the guest never reach the terminal raw.
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", r.stdout)


def test_status_json(running_board):
    st = status_json(running_board)
    assert set(st) == STATUS_KEYS
    assert st["name"] == running_board
    assert st["state"] == "running"
    assert st["owner"] == os.getuid()
    assert st["persistent"] is False
    assert isinstance(st["guest_ready"], bool)
    assert isinstance(st["serial_port"], int) and st["serial_port"] > 0
    assert isinstance(st["gpio_port"], int) and st["gpio_port"] > 0
    assert isinstance(st["dropped_gpio_lines"], int)
    assert st["gpio_path"] == "qtest"
    # piemu's own QEMU where it is installed (tools/build-qemu.sh), and then only there
    assert st["gpio_interrupts"] is os.access(pb.PIEMU_QEMU, os.X_OK)
    assert st["path"].startswith("/org/piemu/board/")
    assert isinstance(st["recent_serial"], str) and re.search(PROMPT_RE, st["recent_serial"])
    assert st["image"] and st["model"] == "raspi3b"


def test_create_delete(daemon):
    name, other = unique(), unique()
    try:
        ok("create", name, "--persistent", "--cmdline=loglevel=7 piemu.test=1")
        st = status_json(name)
        assert st["state"] == "stopped"
        assert st["persistent"] is True
        assert "piemu.test=1" in st["cmdline"]
        assert st["recent_serial"] in ("", None)

        fails(EXIT_STATE, "create", name, message="already exists")

        created = json.loads(ok("create", other, "--json=short").stdout)
        assert created["name"] == other and created["path"].startswith("/org/piemu/board/")
        assert status_json(other)["persistent"] is False

        ok("delete", name, other)
        listed = [b["name"] for b in json.loads(ok("list", "--json").stdout)]
        assert name not in listed and other not in listed
        fails(EXIT_NOT_FOUND, "delete", name, message="No board named")
        fails(EXIT_NOT_FOUND, "status", name, message="No board named")
    finally:
        ctl("delete", name)
        ctl("delete", other)


def test_create_unknown_image(daemon):
    name = unique()
    try:
        fails(EXIT_NOT_FOUND, "create", name, "--image=no-such-image", message="No image named")
        fails(EXIT_NOT_FOUND, "status", name)
    finally:
        ctl("delete", name)


@pytest.mark.parametrize("verb", BOARD_VERBS, ids=lambda v: v[0])
def test_unknown_board(daemon, verb):
    name = unique("t-ctl-missing")
    args = [a.format(name) for a in verb] if len(verb) > 1 else [verb[0], name]
    fails(EXIT_NOT_FOUND, *args, message=f'No board named "{name}"', timeout=30)


def test_start_stop_restart(stopped_board):
    name = stopped_board
    fails(EXIT_STATE, "stop", name, message="not running")
    for args in (["send", name, "x"], ["get-pin", name, "3"], ["pins", name], ["set-pin", name, "3", "1"]):
        fails(EXIT_STATE, *args, message="not running")
    # waiting for things only a running board does fails at once instead of hanging
    fails(EXIT_STATE, "wait", name, "--ready", "--timeout=30", message="is stopped")

    ok("start", name)
    assert status_json(name)["state"] == "running"
    ok("wait", name, "--state=running", "--timeout=5")
    fails(EXIT_STATE, "start", name, message="already running")

    ok("restart", name)
    assert status_json(name)["state"] == "running"

    ok("stop", name)
    ok("wait", name, "--state=stopped", "--timeout=30")
    assert status_json(name)["state"] == "stopped"

    ok("restart", name)  # restart of a stopped board starts it
    assert status_json(name)["state"] == "running"
    ok("stop", name)


def test_send_and_wait_serial(running_board):
    token = uuid.uuid4().hex[:8]
    # The shell computes the number: the echoed command line itself does not match.
    ok("send", running_board, f"echo ctl-$((40+2))-{token}")
    ok("wait", running_board, f"--serial=^ctl-42-{token}$", "--timeout=30")
    # Output printed before wait started counts, unless --since-now.
    ok("wait", running_board, f"--serial=ctl-42-{token}", "--timeout=5")
    fails(EXIT_TIMEOUT, "wait", running_board, f"--serial=ctl-42-{token}", "--since-now", "--timeout=2")

    # --no-newline: nothing runs until the newline comes.
    token = uuid.uuid4().hex[:8]
    ok("send", running_board, "--no-newline", f"echo part-$((1+1))-{token}")
    fails(EXIT_TIMEOUT, "wait", running_board, f"--serial=part-2-{token}", "--timeout=2")
    ok("send", running_board, "")
    ok("wait", running_board, f"--serial=part-2-{token}", "--timeout=30")


def test_wait_timeout(running_board):
    t0 = time.monotonic()
    r = fails(EXIT_TIMEOUT, "wait", running_board, "--serial=NEVERMATCHES-" + uuid.uuid4().hex, "--timeout=2",
              message="Timed out after 2s")
    took = time.monotonic() - t0
    assert 1.9 <= took < 30, f"wait --timeout=2 took {took:.1f}s"
    assert r.stdout == ""

    fails(EXIT_TIMEOUT, "wait", running_board, "--state=stopped", "--timeout=1", message="Timed out")


def test_wait_state_running(running_board):
    t0 = time.monotonic()
    ok("wait", running_board, "--state=running")  # no timeout: returns at once
    assert time.monotonic() - t0 < 10


def test_pins(running_board):
    pins = json.loads(ok("pins", running_board, "--json").stdout)
    assert [p["pin"] for p in pins] == list(range(54))
    assert all(set(p) == {"pin", "level"} and p["level"] in (0, 1) for p in pins)

    table = ok("pins", running_board).stdout.splitlines()
    assert re.fullmatch(r"PIN +LEVEL", table[0])
    rows = [line for line in table[1:] if re.fullmatch(r"\d+ +[01]", line)]
    assert len(rows) == 54
    assert len(ok("pins", running_board, "--no-legend").stdout.splitlines()) == 54

    level = ok("get-pin", running_board, "5").stdout
    assert level in ("0\n", "1\n")
    assert json.loads(ok("get-pin", running_board, "5", "--json").stdout) == {"pin": 5, "level": int(level)}


def test_set_pin_and_wait(running_board):
    ok("wait", running_board, "--ready", f"--timeout={BOOT_TIMEOUT}s", timeout=BOOT_TIMEOUT + 30)
    ok("set-pin", running_board, "17", "1")
    ok("wait", running_board, "--pin=17=1", "--timeout=30")
    assert ok("get-pin", running_board, "17").stdout == "1\n"
    assert json.loads(ok("pins", running_board, "--json").stdout)[17]["level"] == 1
    ok("set-pin", running_board, "17", "0")
    ok("wait", running_board, "--pin=17=0", "--timeout=30")
    assert ok("get-pin", running_board, "17").stdout == "0\n"
    fails(EXIT_TIMEOUT, "wait", running_board, "--pin=17=1", "--timeout=1")


def test_watch_serial(running_board):
    proc = start_watch(running_board)
    try:
        out = Stream(proc)
        banner = wait_subscribed(proc)
        token = uuid.uuid4().hex[:8]
        ok("send", running_board, f"echo watch-$((2+3))-{token}")
        line = out.wait_for(rf"serial: watch-5-{token}$")
        assert re.fullmatch(rf"{TIMESTAMP_RE} serial: watch-5-{token}", line)
        # Escape sequences from the guest are shown, not passed to the terminal.
        ok("send", running_board, "printf 'esc-\\033[31m-red\\n'")
        out.wait_for(r"serial: esc-\\x1b\[31m-red$")
    finally:
        rc = stop_watch(proc)
    assert rc == 0, proc.stderr.read()
    assert banner.startswith(b"Watching board " + running_board.encode())


def test_watch_says_unwatch_when_it_ends(stopped_board):
    """Ctrl-C ends `piemuctl watch` with an Unwatch() call, seen on the bus by a root monitor."""
    mon = subprocess.Popen(["dbus-monitor", "--system",
                            f"type='method_call',interface='org.piemu.Board',path_namespace='/org/piemu/board'"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        proc = start_watch(stopped_board)
        wait_subscribed(proc)
        assert stop_watch(proc) == 0, proc.stderr.read()
        time.sleep(0.5)
    finally:
        mon.terminate()
    seen = mon.communicate(timeout=10)[0]
    members = re.findall(r"member=(\w+)", seen)
    assert "Watch" in members and "Unwatch" in members, seen
    assert members.index("Unwatch") > members.index("Watch"), members


def test_watch_gpio(running_board):
    ok("wait", running_board, "--ready", f"--timeout={BOOT_TIMEOUT}s", timeout=BOOT_TIMEOUT + 30)
    ok("set-pin", running_board, "22", "0")
    ok("wait", running_board, "--pin=22=0", "--timeout=30")
    proc = start_watch(running_board)
    try:
        out = Stream(proc)
        wait_subscribed(proc)
        ok("set-pin", running_board, "22", "1")
        line = out.wait_for(r" gpio 22 = 1$")
        assert re.fullmatch(rf"{TIMESTAMP_RE} gpio 22 = 1", line)
        ok("set-pin", running_board, "22", "0")
        out.wait_for(r" gpio 22 = 0$")
    finally:
        assert stop_watch(proc) == 0


def test_watch_json(running_board):
    proc = start_watch(running_board, "--json")
    try:
        out = Stream(proc)
        wait_subscribed(proc)
        token = uuid.uuid4().hex[:8]
        ok("send", running_board, f"echo json-$((3+4))-{token}")
        out.wait_for(rf"json-7-{token}\"")
    finally:
        assert stop_watch(proc) == 0
    events = [json.loads(line) for line in out.lines]
    mine = [e for e in events if e["type"] == "serial" and e["text"] == f"json-7-{token}"]
    assert len(mine) == 1
    assert re.fullmatch(TIMESTAMP_RE, mine[0]["time"])
    assert abs(mine[0]["timestamp_usec"] / 1e6 - time.time()) < 120
    assert all(e["type"] in ("serial", "gpio", "state", "guest-ready") for e in events)


def test_watch_state_and_delete(stopped_board):
    proc = start_watch(stopped_board)
    try:
        out = Stream(proc)
        wait_subscribed(proc)
        ok("start", stopped_board)
        out.wait_for(r" state running$")
        ok("delete", stopped_board)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == EXIT_NOT_FOUND
    assert b"was deleted" in proc.stderr.read()


def test_import_and_remove_image(daemon, tmp_path):
    name = unique("t-ctl-img")
    board = unique()
    # Real files where the default image is readable (piemud may check them); small dummies otherwise.
    default = "/var/lib/piemu/images/default"
    files = {}
    for key, fname, size in (("kernel", "kernel", 65536), ("dtb", "dtb", 4096), ("sd", "sd.img", 1 << 20)):
        src = os.path.join(default, fname)
        dst = tmp_path / fname
        if os.access(src, os.R_OK):
            shutil.copyfile(src, dst)
        else:
            dst.write_bytes(os.urandom(size) if key != "sd" else bytes(size))
        files[key] = str(dst)
    extra = []
    if os.access(os.path.join(default, "initrd"), os.R_OK):
        shutil.copyfile(os.path.join(default, "initrd"), tmp_path / "initrd")
        extra = [f"--initrd={tmp_path / 'initrd'}"]
    # Only descriptors travel: unreadable-for-piemud paths are fine.
    os.chmod(tmp_path, 0o700)
    try:
        ok("import-image", name, f"--kernel={files['kernel']}", f"--dtb={files['dtb']}", f"--sd={files['sd']}",
           "--description=ctl test image", *extra, timeout=600)
        images = {i["name"]: i["description"] for i in json.loads(ok("images", "--json").stdout)}
        assert images.get(name) == "ctl test image"

        ok("create", board, f"--image={name}")
        assert status_json(board)["image"] == name
        fails(EXIT_STATE, "remove-image", name)  # in use
        ok("delete", board)

        ok("remove-image", name)
        assert name not in {i["name"] for i in json.loads(ok("images", "--json").stdout)}
        fails(EXIT_NOT_FOUND, "remove-image", name, message="No image named")
    finally:
        ctl("delete", board)
        ctl("remove-image", name)


def test_unprivileged_user(running_board, piemuctl_bin):
    """Without authorization: 5, and a message; what is public still works."""
    if not shutil.which("setpriv"):
        _require("setpriv (util-linux) is not installed")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", piemuctl_bin]
    probe = subprocess.run(nobody + ["--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        _require(f"{piemuctl_bin} cannot be run by nobody: {probe.stderr.strip()}")

    def run(*args):
        return subprocess.run(nobody + list(args), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    r = run("--no-ask-password", "stop", running_board)
    assert r.returncode == EXIT_ACCESS, r.stderr
    assert "denied" in r.stderr.lower() or "not allowed" in r.stderr.lower()
    # No terminal: no agent, same answer without --no-ask-password.
    assert run("send", running_board, "true").returncode == EXIT_ACCESS
    r = run("list", "--json")
    assert r.returncode == 0, r.stderr
    assert running_board in [b["name"] for b in json.loads(r.stdout)]
    assert status_json(running_board)["state"] == "running"  # the board was not stopped


PW_USER, PW_PASSWORD = "piemu-t-pwuser", "piemu-Test-pw-1"
PW_RULES = "/etc/polkit-1/rules.d/10-piemu-ctl-pw-test.rules"


def run_in_pty(argv, answer, timeout=60):
    """Runs argv on a new pseudo-terminal (its controlling terminal) and types `answer` at the
    first password prompt. Returns (exit code, everything it printed, whether it was asked)."""
    import pty
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    out, asked, end = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
            if not asked and b"Password:" in out:
                # The agent turns echo off after printing the prompt, flushing what was typed
                # before: answer only once echo is off.
                for _ in range(100):
                    if not termios.tcgetattr(fd)[3] & termios.ECHO:
                        break
                    time.sleep(0.05)
                asked = True
                os.write(fd, answer.encode() + b"\n")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace"), asked


@pytest.fixture
def password_user(daemon):
    """A user polkit lets create boards after typing their own password (auth_self)."""
    import pwd

    if not shutil.which("setpriv") or not shutil.which("chpasswd"):
        _require("setpriv and chpasswd are needed")
    try:
        pwd.getpwnam(PW_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PW_USER],
                       check=True)
    subprocess.run(["chpasswd"], input=f"{PW_USER}:{PW_PASSWORD}\n", text=True, check=True)
    with open(PW_RULES, "w") as f:
        f.write("// Temporary, written by tests/integration/test_ctl.py; delete if left behind.\n"
                "polkit.addRule(function(action, subject) {\n"
                f'    if (subject.user == "{PW_USER}" && action.id == "org.piemu.create-board")\n'
                "        return polkit.Result.AUTH_SELF;\n"
                "});\n")
    try:
        # polkitd reads rules asynchronously: wait until a call without a terminal is challenged.
        argv = ["setpriv", f"--reuid={PW_USER}", f"--regid={PW_USER}", "--init-groups", PIEMUCTL]
        for _ in range(100):
            r = subprocess.run(argv + ["create", "t-never-made"], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=60)
            if "Authentication is required" in r.stderr:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test polkit rule never took effect: {r.stderr}")
        yield argv
    finally:
        os.unlink(PW_RULES)


def test_password_prompt(password_user):
    """polkit wants the user's password: piemuctl starts a text agent on its terminal, which asks,
    and the call goes through with the right password and is refused with a wrong one."""
    name = unique()
    code, out, asked = run_in_pty(password_user + ["create", name], "not-the-password")
    assert asked, out
    assert code == EXIT_ACCESS, out
    fails(EXIT_NOT_FOUND, "status", name)

    code, out, asked = run_in_pty(password_user + ["create", name], PW_PASSWORD)
    try:
        assert asked and "AUTHENTICATING FOR org.piemu.create-board" in out, out
        assert code == 0, out
        import pwd

        assert status_json(name)["owner"] == pwd.getpwnam(PW_USER).pw_uid
    finally:
        ctl("delete", name)
