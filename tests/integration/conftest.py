# SPDX-License-Identifier: LGPL-2.1-or-later
import os
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
