# SPDX-License-Identifier: LGPL-2.1-or-later
"""piemuctl console, driven through a pseudo-terminal: type into the guest's shell, read the answer,
leave with the ^]^]^] escape, and check that the terminal modes are exactly what they were, on every
way out (escape, signals, the board stopping, errors).

Needs a running piemud (see test_ctl.py for the environment: $PIEMUCTL, $PIEMU_BUS_ADDRESS,
$PIEMU_REQUIRE_DAEMON, $PIEMU_BOOT_TIMEOUT).
"""

import os
import re
import select
import signal
import subprocess
import termios
import time
import uuid

import pytest

import piemu_bus as pb

PIEMUCTL = os.environ.get("PIEMUCTL", "piemuctl")
BOOT_TIMEOUT = float(os.environ.get("PIEMU_BOOT_TIMEOUT", "120"))
PROMPT = re.compile(rb"piemu:[^ ]*# ")
ESCAPE = b"\x1d\x1d\x1d"
EXIT_NOT_FOUND, EXIT_STATE = 3, 4


def unique():
    name = f"t-ctl-{uuid.uuid4().hex[:8]}"
    pb.CREATED.add(name)  # joins the session's leak check (conftest)
    return name


def ctl(*args, timeout=180):
    return subprocess.run([PIEMUCTL, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ok(*args, **kw):
    r = ctl(*args, **kw)
    assert r.returncode == 0, f"piemuctl {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return r


@pytest.fixture(scope="module")
def board(daemon):
    name = unique()
    ok("create", name)
    try:
        ok("start", name)
        r = ctl("wait", name, "--serial=piemu:[^ ]*# ", f"--timeout={BOOT_TIMEOUT}s", timeout=BOOT_TIMEOUT + 30)
        assert r.returncode == 0, f"board {name} did not boot to its prompt: {r.stderr}"
        yield name
    finally:
        ctl("delete", name)


class Console:
    """piemuctl console NAME on a fresh pty; remembers the pty's modes from before."""

    def __init__(self, name, *extra):
        self.master, self.slave = os.openpty()
        # A typical interactive terminal: canonical, echoing, signals on.
        self.before = termios.tcgetattr(self.slave)
        self.out = b""
        self.proc = subprocess.Popen(
            [PIEMUCTL, "console", name, *extra],
            stdin=self.slave, stdout=self.slave, stderr=self.slave, start_new_session=True,
        )

    def read_until(self, pattern, timeout=30):
        rx = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while not rx.search(self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{rx.pattern!r} not seen within {timeout}s; output so far: {self.out[-500:]!r}")
            r, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    pass
        return self.out

    def drain(self, seconds=0.5):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    return

    def write(self, data):
        os.write(self.master, data)

    def modes(self):
        return termios.tcgetattr(self.slave)

    def wait_raw(self, timeout=10):
        """Until piemuctl has put the terminal into raw mode."""
        self.read_until(rb"Connected to board", timeout)
        deadline = time.monotonic() + timeout
        while self.modes() == self.before:
            assert time.monotonic() < deadline, "the terminal never went into raw mode"
            time.sleep(0.05)
        mode = self.modes()
        assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO and not mode[3] & termios.ISIG

    def prompt(self):
        """Enter, and wait for a fresh shell prompt."""
        mark = len(self.out)
        self.write(b"\r")
        deadline = time.monotonic() + 30
        while not PROMPT.search(self.out, mark):
            assert time.monotonic() < deadline, f"no prompt; output: {self.out[-300:]!r}"
            self.read_until(PROMPT, 30)

    def wait(self, timeout=15):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self.drain(0.3)
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def console_factory():
    made = []

    def make(name, *extra):
        c = Console(name, *extra)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_console_session(board, console_factory):
    c = console_factory(board)
    c.wait_raw()
    assert b"Press ^] three times within 1s to exit." in c.out
    c.prompt()
    c.write(b"echo $((6*7))\r")
    c.read_until(rb"\r\n42\r\n")
    c.read_until(PROMPT)
    c.write(ESCAPE)
    assert c.wait() == 0
    assert c.modes() == c.before, "terminal modes not restored after the escape"
    assert b"Connection to board " + board.encode() + b" terminated." in c.out


def test_console_keys_reach_the_guest(board, console_factory):
    """Raw mode: Ctrl-C interrupts the guest's command instead of piemuctl."""
    c = console_factory(board)
    c.wait_raw()
    c.prompt()
    token = uuid.uuid4().hex[:6]
    c.write(b"sleep 60; echo slept-" + token.encode() + b"\r")
    time.sleep(1)
    mark = len(c.out)
    c.write(b"\x03")
    deadline = time.monotonic() + 10
    while not PROMPT.search(c.out, mark):
        assert time.monotonic() < deadline, f"Ctrl-C did not interrupt sleep: {c.out[-300:]!r}"
        c.drain(0.2)
    assert c.proc.poll() is None, "Ctrl-C ended piemuctl instead of reaching the guest"
    # The command line itself may be echoed late; its output would be a line of its own.
    assert not re.search(rb"\nslept-" + token.encode(), c.out[mark:])
    # A single or double ^] is passed on, not swallowed, once the 1 s window has passed: od in
    # the guest shows the bytes it read (octal 035).
    mark = len(c.out)
    c.write(b"od -An -to1\r")
    time.sleep(1)
    c.write(b"A\x1d")
    time.sleep(1.5)
    c.write(b"\x1d\x1dB\r")
    time.sleep(1.5)
    assert c.proc.poll() is None, "^] spread over more than 1s must not leave"
    c.write(b"\x04")  # end of input for od
    deadline = time.monotonic() + 10
    while not re.search(rb"101 +035 +035 +035 +102", c.out[mark:]):
        assert time.monotonic() < deadline, f"the guest did not read the ^] bytes: {c.out[mark:]!r}"
        c.drain(0.2)
    c.write(ESCAPE)
    assert c.wait() == 0
    assert c.modes() == c.before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_console_signal_restores_terminal(board, console_factory, sig):
    c = console_factory(board)
    c.wait_raw()
    c.proc.send_signal(sig)
    assert c.wait() == 128 + sig
    assert c.modes() == c.before, f"terminal modes not restored after {sig.name}"


def test_console_unknown_board(daemon, console_factory):
    c = console_factory(unique())
    assert c.wait() == EXIT_NOT_FOUND
    assert b"No board named" in c.out
    assert c.modes() == c.before


def test_console_stopped_board(daemon, console_factory):
    name = unique()
    ok("create", name)
    try:
        c = console_factory(name)
        assert c.wait() == EXIT_STATE
        assert b"not running" in c.out
        assert c.modes() == c.before
    finally:
        ctl("delete", name)


def test_console_board_stops(daemon, console_factory):
    """The board going away ends the session with status 4, terminal restored."""
    name = unique()
    ok("create", name)
    try:
        ok("start", name)
        c = console_factory(name)
        c.wait_raw()
        ok("stop", name)
        assert c.wait(30) == EXIT_STATE
        assert b"no longer running" in c.out
        assert c.modes() == c.before
    finally:
        ctl("delete", name)


def test_console_stdin_not_a_tty(board):
    """Piped input is forwarded and end of file ends the session."""
    token = uuid.uuid4().hex[:8]
    r = subprocess.run([PIEMUCTL, "console", board], input=f"echo piped-$((6*7))-{token}\n".encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # The guest ran it: its answer (42, which the typed line does not contain) is in the console.
    deadline = time.monotonic() + 20
    while f"piped-42-{token}".encode() not in subprocess.run(
            [PIEMUCTL, "status", board, "--lines=50"], capture_output=True, timeout=30).stdout:
        assert time.monotonic() < deadline, "the piped command never ran in the guest"
        time.sleep(0.5)
