# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 12: every Pi model QEMU has. Each boots its default image to a shell: raspi3ap, raspi3b
and raspi4b the arm64 one ("default", Debian's arm64 kernel), raspi2b "default-armhf" (the armmp
kernel) and raspi0 and raspi1ap "default-armel" (the rpi kernel), each with the model's own device
tree. Checked per model: the device-tree model, the board revision QEMU reports, the RAM, the CPU
architecture, the SD card, and GPIO both ways (qtest on the model's GPIO block, the shim finding
that block from the device tree). Images that do not boot on a model get named errors. Prints each
model's boot time (docs/models.md's table)."""

import re
import time

import pytest
from gi.repository import GLib

import piemu_bus as pb
from piemu_bus import MANAGER_IFACE, MANAGER_PATH

EXPECT = {
    # model: (image, device-tree model, revision, MemTotal at least in MiB, `uname -m`)
    "raspi0": ("default-armel", "Raspberry Pi Zero", "00920092", 350, "armv6l"),
    "raspi1ap": ("default-armel", "Raspberry Pi Model A+", "00900021", 350, "armv6l"),
    "raspi2b": ("default-armhf", "Raspberry Pi 2 Model B", "00a21041", 800, "armv7l"),
    "raspi3ap": ("default", "Raspberry Pi 3 Model A+", "009020e0", 350, "aarch64"),
    "raspi3b": ("default", "Raspberry Pi 3 Model B", "00a02082", 800, "aarch64"),
    "raspi4b": ("default", "Raspberry Pi 4 Model B", "00b03115", 1700, "aarch64"),  # all 2 GiB
}


def create_error(bus, image, model):
    return pb.call_error(bus, MANAGER_PATH, MANAGER_IFACE, "CreateBoard", "(ssa{sv})",
                         (pb.unique_name("mdl"), image, {"model": GLib.Variant("s", model)}))


def test_models_without_an_image_and_images_that_do_not_fit(bus):
    name, msg = create_error(bus, "", "raspi5")
    assert name == "org.piemu.Error.InvalidOption" and "raspi0, raspi1ap, raspi2b, raspi3ap, raspi3b, raspi4b" in msg
    # Each default image boots its own models only: the error names the ones it boots on.
    fits = {"default": "raspi3b raspi3ap raspi4b", "default-armhf": "raspi2b", "default-armel": "raspi0 raspi1ap"}
    for image, models in fits.items():
        for model in EXPECT:
            if model in models.split():
                continue
            name, msg = create_error(bus, image, model)
            assert name == "org.piemu.Error.ImageModelMismatch", (image, model, name, msg)
            assert models in msg, msg


@pytest.mark.boot
@pytest.mark.parametrize("model", sorted(EXPECT))
def test_model_boots_with_gpio_both_ways(bus, model):
    image, dt_model, revision, min_mem, machine = EXPECT[model]
    b = pb.Board.create(bus, model=model)
    try:
        assert b.prop("Model") == model
        assert b.prop("Image") == image  # "" picked the model's default image
        b.watch()
        t0 = time.monotonic()
        b.call("Start")
        b.wait_prompt()
        boot = time.monotonic() - t0
        assert b"piemu: sd card mounted" in bytes(b.serial), "the SD card"
        print(f"\n{model}: Start -> shell prompt {boot:.1f} s")
        assert b.prop("GpioPath") == "qtest"
        b.wait_for(lambda: b.prop("GuestReady") is True, 30, "the shim's HELLO")
        m = b.run("echo M=$(tr -d '\\0' < /proc/device-tree/model)=", rb"\nM=([^=\r\n]*)=")
        assert m.group(1).decode() == dt_model
        m = b.run("echo R=$(od -An -tx1 /proc/device-tree/system/linux,revision | tr -d ' ')=", rb"\nR=([0-9a-f]*)=")
        assert m.group(1).decode() == revision
        m = b.run("echo MEM=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)=", rb"\nMEM=(\d+)=")
        assert int(m.group(1)) >= min_mem, m.group(1)
        m = b.run("echo ARCH=$(uname -m)=", rb"\nARCH=([^=\r\n]*)=")
        assert m.group(1).decode() == machine
        # Host -> guest on the model's GPIO block, and guest -> host.
        b.call("SetPin", "(ub)", (17, True))
        b.run("echo level=$(piemu-gpio-shim get 17)", rb"\nlevel=1")
        b.call("SetPin", "(ub)", (17, False))
        b.run("echo level=$(piemu-gpio-shim get 17)", rb"\nlevel=0")
        mark = len(b.gpio)
        b.run("piemu-gpio-shim set 23 1 && echo set-ok", rb"\nset-ok")
        b.wait_for(lambda: any(p == 23 and v for p, v, _ in b.gpio[mark:]), 15, "GpioChanged(23, true)")
        assert b.call("GetPin", "(u)", (23,))[0] is True
    finally:
        b.delete()
