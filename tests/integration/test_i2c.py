# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 12 (part): I2C sensors on the header bus. A board made with i2c=["tmp105@0x48"] has QEMU's
tmp105 on the guest's i2c-1; SetSensor sets its temperature and the guest's lm75 driver reads exactly
that from hwmon. Unknown devices, bad addresses, unknown properties, values out of range or of the
wrong type each get a named error, and a stranger may not set a sensor on someone else's board."""

import pytest
from gi.repository import GLib

import piemu_bus as pb
from piemu_bus import BOARD_IFACE, MANAGER_IFACE, MANAGER_PATH
from test_security import DENIED, users  # noqa: F401  (module fixture)

HWMON = "/sys/bus/i2c/devices/1-0048/hwmon/hwmon*/temp1_input"


def create_error(bus, i2c):
    opts = {"i2c": GLib.Variant("as", i2c)}
    return pb.call_error(bus, MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})", (pb.unique_name("i2c"), "", opts))


def test_create_refuses_bad_devices(bus):
    for i2c, words in [
        (["at24c-eeprom@0x50"], "piemu offers: tmp105, tmp421, ds1338"),
        (["tmp105"], "DEVICE@ADDRESS"),
        (["tmp105@0x07"], "DEVICE@ADDRESS"),
        (["tmp105@0x78"], "DEVICE@ADDRESS"),
        (["tmp105@0x48", "tmp421@72"], "two devices at address 0x48"),
    ]:
        name, msg = create_error(bus, i2c)
        assert name == "org.piemu.Error.InvalidOption", (i2c, name, msg)
        assert words in msg, (i2c, msg)
    name, msg = pb.call_error(bus, MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})",
                              (pb.unique_name("i2c"), "", {"i2c": GLib.Variant("s", "tmp105@0x48")}))
    assert name == "org.piemu.Error.InvalidOption" and "wrong type" in msg, msg


@pytest.fixture(scope="module")
def sensor_board(bus):
    b = pb.Board.create(bus, i2c=GLib.Variant("as", ["tmp105@0x48", "ds1338@0x68"]))
    try:
        b.watch()
        b.call("Start")
        b.wait_prompt()
        # The guest binds its lm75 driver to the tmp105 (nothing on an I2C bus announces itself).
        b.run("echo tmp105 0x48 > /sys/bus/i2c/devices/i2c-1/new_device && echo bound", rb"\nbound")
        yield b
    finally:
        b.delete()


def set_sensor(b, address, prop, value):
    return b.call("SetSensor", "(ysv)", (address, prop, value))


@pytest.mark.boot
def test_guest_reads_the_temperature_set(sensor_board):
    b = sensor_board
    for milli in (42500, -10000, 42500):
        set_sensor(b, 0x48, "temperature", GLib.Variant("i", milli))
        b.run(f"echo t=$(cat {HWMON})", rb"\nt=%d\r?\n" % milli)
    set_sensor(b, 0x48, "temperature", GLib.Variant("x", 25000))  # any integer type
    b.run(f"echo t=$(cat {HWMON})", rb"\nt=25000\r?\n")


@pytest.mark.boot
def test_set_sensor_errors_change_nothing(sensor_board, users):
    b = sensor_board
    set_sensor(b, 0x48, "temperature", GLib.Variant("i", 30000))
    cases = [
        ((0x49, "temperature", GLib.Variant("i", 1)), "org.piemu.Error.NoSuchSensor"),
        ((0x07, "temperature", GLib.Variant("i", 1)), "org.piemu.Error.InvalidOption"),
        ((0x48, "temperature0", GLib.Variant("i", 1)), "org.piemu.Error.InvalidOption"),
        ((0x48, "temperature", GLib.Variant("i", 128000)), "org.piemu.Error.InvalidOption"),
        ((0x48, "temperature", GLib.Variant("d", 42.5)), "org.piemu.Error.InvalidOption"),
        ((0x48, "temperature", GLib.Variant("s", "42500")), "org.piemu.Error.InvalidOption"),
        ((0x68, "time", GLib.Variant("i", 1)), "org.piemu.Error.InvalidOption"),
    ]
    for args, want in cases:
        name, msg = b.error("SetSensor", "(ysv)", args)
        assert name == want, (args, name, msg)
    r = users.call("bob", b.path, BOARD_IFACE, "SetSensor", "(ysv)", [0x48, "temperature", {"__variant__": ["i", 1000]}])
    assert not r["ok"] and r["error"] in DENIED, r
    b.run(f"echo t=$(cat {HWMON})", rb"\nt=30000\r?\n")
