# SPDX-License-Identifier: LGPL-2.1-or-later
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import piemu_bus  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "boot: the test boots a real guest under QEMU")


@pytest.fixture(scope="session")
def bus():
    conn = piemu_bus.system_bus()
    try:
        conn.call_sync(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
            piemu_bus.GLib.Variant("(s)", ("org.piemu",)), None, 0, 5000, None,
        )
    except piemu_bus.GLib.Error:
        # In CI a missing daemon is a failure, not a reason to skip everything.
        if os.environ.get("PIEMU_REQUIRE_DAEMON") == "1":
            pytest.fail("piemud is not on the system bus (run tools/setup.sh first)")
        pytest.skip("piemud is not on the system bus (run tools/setup.sh first)")
    return conn


@pytest.fixture
def board_factory(bus):
    made = []

    def make(**kw):
        b = piemu_bus.Board.create(bus, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.delete()



@pytest.fixture(scope="session", autouse=True)
def no_leaked_domains_or_volumes():
    yield
    # Only what this session made: other piemu users on the host are none of our business.
    leaked = [n for n in sorted(piemu_bus.CREATED) if piemu_bus.domain_exists(n) or piemu_bus.volume_exists(n)]
    assert not leaked, f"tests left libvirt domains/volumes behind: {leaked}"


# --- piemuctl tests (test_ctl.py, test_ctl_console.py) share these ---

PIEMUCTL = os.environ.get("PIEMUCTL", "piemuctl")


def _require(what):
    if os.environ.get("PIEMU_REQUIRE_DAEMON") == "1":
        pytest.fail(what)
    pytest.skip(what)


def _piemud_on_bus():
    """Whether org.piemu has an owner on the bus piemuctl will use (None, reason) if unknown."""
    try:
        import gi

        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
    except (ImportError, ValueError) as e:
        return False, f"python3-gi is needed to look for piemud: {e}"
    try:
        addr = os.environ.get("PIEMU_BUS_ADDRESS")
        if addr:
            conn = Gio.DBusConnection.new_for_address_sync(
                addr,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
                None, None,
            )
        else:
            conn = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        res = conn.call_sync(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
            GLib.Variant("(s)", ("org.piemu",)), GLib.VariantType("(b)"), Gio.DBusCallFlags.NONE, 5000, None,
        )
        return res.unpack()[0], "org.piemu has no owner on the bus (piemud is not running)"
    except GLib.Error as e:
        return False, f"cannot reach the bus: {e.message}"


@pytest.fixture(scope="session")
def piemuctl_bin():
    path = shutil.which(PIEMUCTL)
    if not path:
        _require(f"piemuctl not found ({PIEMUCTL!r}; set $PIEMUCTL)")
    return path


@pytest.fixture(scope="session")
def daemon(piemuctl_bin):
    found, reason = _piemud_on_bus()
    if not found:
        _require(reason)
