# SPDX-License-Identifier: LGPL-2.1-or-later
"""Small helpers for talking to the real piemud over the real system bus (GDBus)."""

import contextlib
import os
import re
import subprocess
import time
import uuid

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = "org.piemu"
MANAGER_PATH = "/org/piemu"
MANAGER_IFACE = "org.piemu.Manager"
BOARD_IFACE = "org.piemu.Board"
PROMPT = b"piemu:"
BOOT_TIMEOUT = float(os.environ.get("PIEMU_BOOT_TIMEOUT", "120"))
# Every board name this test session created, for the leak check at the end.
CREATED = set()
# piemu's own QEMU (meson option piemu-qemu, built by tools/build-qemu.sh): boards started while it
# is installed have GpioInterrupts.
PIEMU_QEMU = "/usr/lib/piemu/qemu/bin/qemu-system-aarch64"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def system_bus():
    return Gio.bus_get_sync(Gio.BusType.SYSTEM, None)


def private_system_bus():
    """A fresh connection (own unique name), as a second client would have."""
    addr = Gio.dbus_address_get_for_bus_sync(Gio.BusType.SYSTEM, None)
    return Gio.DBusConnection.new_for_address_sync(
        addr,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None,
        None,
    )


def dbus_error_name(exc):
    return Gio.DBusError.get_remote_error(exc) if isinstance(exc, GLib.Error) else None


def call(conn, path, iface, method, sig=None, args=(), timeout_ms=180000, fds=None):
    params = GLib.Variant(sig, tuple(args)) if sig else None
    if fds is not None:
        fdlist = Gio.UnixFDList.new()
        for fd in fds:
            fdlist.append(fd)
        res, out_fds = conn.call_with_unix_fd_list_sync(
            BUS_NAME, path, iface, method, params, None, Gio.DBusCallFlags.NONE, timeout_ms, fdlist, None
        )
        return res.unpack() if res else (), out_fds
    res = conn.call_sync(BUS_NAME, path, iface, method, params, None, Gio.DBusCallFlags.NONE, timeout_ms, None)
    return res.unpack() if res else ()


def retry_while_unavailable(fn, timeout=15):
    """Runs fn() until piemud stops answering org.piemu.Error.Unavailable (it is reconnecting to
    libvirtd, at most 5 s of backoff); any other error, or still Unavailable at the deadline, fails."""
    end = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except GLib.Error as e:
            assert dbus_error_name(e) == "org.piemu.Error.Unavailable" and time.monotonic() < end, e
            time.sleep(0.2)


def call_error(conn, path, iface, method, sig=None, args=()):
    """Calls and returns the D-Bus error name (and message); fails if the call succeeds."""
    try:
        call(conn, path, iface, method, sig, args)
    except GLib.Error as e:
        return dbus_error_name(e), e.message
    raise AssertionError(f"{method}{args} unexpectedly succeeded")


def get_prop(conn, path, iface, prop):
    return call(conn, path, "org.freedesktop.DBus.Properties", "Get", "(ss)", (iface, prop))[0]


def pump(timeout=0.05):
    ctx = GLib.MainContext.default()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not ctx.iteration(False):
            time.sleep(0.005)


def unique_name(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def virsh(*args):
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True)


def domain_exists(name):
    return virsh("domstate", f"piemu-{name}").returncode == 0


def volume_exists(name):
    return virsh("vol-info", "--pool", "piemu", f"{name}.qcow2").returncode == 0


class Board:
    """One board on the bus, with a collector for its (unicast) signals."""

    def __init__(self, conn, name, path):
        self.conn = conn
        self.name = name
        self.path = path
        self.serial = bytearray()
        self.first_serial_at = None  # time.monotonic() when the first SerialOutput was dispatched
        self.gpio = []
        self.states = []
        self._subs = []

    @classmethod
    def create(cls, conn, name=None, image="", **options):
        name = name or unique_name()
        opts = {}
        for k, v in options.items():
            if isinstance(v, GLib.Variant):
                opts[k] = v
            elif isinstance(v, bool):
                opts[k] = GLib.Variant("b", v)
            else:
                opts[k] = GLib.Variant("s", v)
        CREATED.add(name)
        (path,) = call(conn, MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})", (name, image, opts))
        return cls(conn, name, path)

    def call(self, method, sig=None, args=(), **kw):
        return call(self.conn, self.path, BOARD_IFACE, method, sig, args, **kw)

    def error(self, method, sig=None, args=()):
        return call_error(self.conn, self.path, BOARD_IFACE, method, sig, args)

    def prop(self, name):
        return get_prop(self.conn, self.path, BOARD_IFACE, name)

    def watch(self):
        def on_signal(conn, sender, path, iface, member, params):
            if path != self.path:
                return
            if member == "SerialOutput":
                if self.first_serial_at is None:
                    self.first_serial_at = time.monotonic()
                self.serial.extend(bytes(params.unpack()[0]))
            elif member == "GpioChanged":
                self.gpio.append(params.unpack())
            elif member == "PropertiesChanged":
                changed = params.unpack()[1]
                if "State" in changed:
                    self.states.append(changed["State"])

        for iface, member in ((BOARD_IFACE, None), ("org.freedesktop.DBus.Properties", "PropertiesChanged")):
            self._subs.append(
                self.conn.signal_subscribe(
                    BUS_NAME, iface, member, self.path, None, Gio.DBusSignalFlags.NONE, on_signal
                )
            )
        self.call("Watch")

    def unsubscribe(self):
        for s in self._subs:
            self.conn.signal_unsubscribe(s)
        self._subs = []

    def wait_first_serial(self, timeout):
        """Blocks in the main loop (no polling granularity) until the first SerialOutput arrives."""
        ctx = GLib.MainContext.default()
        timer = GLib.timeout_add(int(timeout * 1000), lambda: False)  # wakes the loop at the deadline
        end = time.monotonic() + timeout
        try:
            while self.first_serial_at is None and time.monotonic() < end:
                ctx.iteration(True)
        finally:
            if ctx.find_source_by_id(timer):  # gone already if it fired
                GLib.source_remove(timer)
        if self.first_serial_at is None:
            raise AssertionError(f"no SerialOutput within {timeout}s")
        return self.first_serial_at

    def wait_for(self, predicate, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pump(0.05)
            if predicate():
                return
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; last serial output:\n"
            + self.serial[-2000:].decode(errors="replace")
        )

    def wait_serial(self, pattern, timeout=BOOT_TIMEOUT, start=0):
        rx = re.compile(pattern if isinstance(pattern, bytes) else pattern.encode())
        self.wait_for(lambda: rx.search(self.serial, start) is not None, timeout, f"serial output {pattern!r}")
        return rx.search(self.serial, start)

    def wait_state(self, state, timeout=60):
        self.wait_for(lambda: self.prop("State") == state, timeout, f"state {state}")

    def wait_prompt(self, timeout=BOOT_TIMEOUT):
        self.wait_serial(rb"piemu: ready", timeout)
        self.wait_serial(rb"piemu:[^\n]*# ", 30)

    def wait_prompt_recent(self, timeout=BOOT_TIMEOUT):
        """For a board that booted before anyone watched: waits until piemud's recent console
        output (GetRecentSerial) shows the shell ready. Typing before that would feed the guest's
        boot or the shell's terminal query (ESC[6n) instead of the shell."""
        def ready():
            recent = bytes(self.call("GetRecentSerial")[0])
            return b"piemu: ready" in recent and re.search(rb"piemu:[^\n]*# ", recent.split(b"piemu: ready")[-1])
        self.wait_for(ready, timeout, "the shell prompt in GetRecentSerial")

    def run(self, command, expect, timeout=30):
        """Types a shell command on the console and waits for a regex after it."""
        mark = len(self.serial)
        self.call("SendSerial", "(ay)", (command.encode() + b"\n",))
        return self.wait_serial(expect, timeout, start=mark)

    def delete(self):
        self.unsubscribe()
        try:
            call(self.conn, MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", "(s)", (self.name,))
        except GLib.Error as e:
            if dbus_error_name(e) != "org.piemu.Error.NoSuchBoard":
                raise


@contextlib.contextmanager
def running_board(conn, **options):
    """A new board, started, with its shell and its guest shim up (GuestReady); deleted after."""
    b = Board.create(conn, **options)
    try:
        b.watch()
        b.call("Start")
        b.wait_prompt()
        b.wait_for(lambda: b.prop("GuestReady") is True, 30, "GuestReady (the shim's HELLO)")
        yield b
    finally:
        b.delete()
