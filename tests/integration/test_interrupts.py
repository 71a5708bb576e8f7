# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 21: GPIO interrupts in the guest. Boards run piemu's own QEMU (tools/build-qemu.sh, which
the set-up runs): its GPIO block detects events, so a guest program waiting for an edge on the
kernel's GPIO character device gets one per change SetPin makes; and SetPin drives the pin as an
input. Stock QEMU (piemud --qemu=stock) keeps working as before, without them."""

import os
import re
import subprocess

import pytest

import piemu_bus as pb

SERVICE = os.path.join(pb.REPO, "tools", "piemud-service.sh")
PULSES = 10


def require_piemu_qemu():
    """The suite's set-up builds piemu's QEMU: a machine without it is a broken set-up, not a skip
    (a skipped check could never fail)."""
    assert os.access(pb.PIEMU_QEMU, os.X_OK), (
        f"{pb.PIEMU_QEMU} is missing: tools/setup.sh builds it (tools/build-qemu.sh)")


@pytest.fixture(scope="module")
def irq_board(bus):
    require_piemu_qemu()
    with pb.running_board(bus) as b:
        yield b


def pulse(b, pin, n):
    """n host pulses on pin, each edge read back by GetPin before the next: a pulse the guest can
    miss only if the interrupt path loses it, not because it was too short to see."""
    for _ in range(n):
        for level in (True, False):
            b.call("SetPin", "(ub)", (pin, level))
            b.wait_for(lambda: b.call("GetPin", "(u)", (pin,))[0] is level, 15, f"GPIO {pin} = {level}")


@pytest.mark.boot
def test_board_runs_piemu_qemu_with_interrupts(irq_board):
    b = irq_board
    assert b.prop("GpioPath") == "qtest"
    assert b.prop("GpioInterrupts") is True
    live = pb.virsh("dumpxml", f"piemu-{b.name}").stdout
    assert "<qemu:env name='PIEMU_QEMU' value='piemu'/>" in live, live
    # The board's QEMU process is piemu's build, not Debian's.
    pid = open(f"/run/libvirt/qemu/piemu-{b.name}.pid").read().strip()
    assert os.readlink(f"/proc/{pid}/exe") == pb.PIEMU_QEMU


@pytest.mark.boot
def test_each_pulse_is_one_rising_and_one_falling_edge(irq_board):
    """The kernel's GPIO character device (edge events, as libgpiod and gpiozero 2 use it) sees
    exactly one rising and one falling edge per SetPin pulse: none lost, none extra."""
    b = irq_board
    b.call("SetPin", "(ub)", (17, False))
    b.wait_for(lambda: b.call("GetPin", "(u)", (17,))[0] is False, 15, "GPIO 17 low")
    mark = len(b.serial)
    b.call("SendSerial", "(ay)", (f"piemu-gpio-shim edges 17 {2 * PULSES} 60000; echo edges-end\n".encode(),))
    b.wait_serial(rb"\nwatching GPIO 17\r?\n", 30, start=mark)
    pulse(b, 17, PULSES)
    b.wait_serial(rb"\nedges-end", 60, start=mark)
    out = b.serial[mark:].decode(errors="replace")
    kinds = re.findall(r"^(rising|falling) \d+\r?$", out, re.M)
    assert kinds == ["rising", "falling"] * PULSES, out[-2000:]


@pytest.mark.boot
def test_an_edge_in_the_guest_drives_an_output(irq_board):
    """A program waiting for an edge on pin 17 drives pin 23 from its handler: GpioChanged(23)
    follows SetPin(17), both ways."""
    b = irq_board
    b.call("SetPin", "(ub)", (17, False))
    b.wait_for(lambda: b.call("GetPin", "(u)", (17,))[0] is False, 15, "GPIO 17 low")
    mark = len(b.serial)
    b.call("SendSerial", "(ay)", (b"piemu-gpio-shim follow 17 23 2 60000; echo follow-end\n",))
    b.wait_serial(rb"\nwatching GPIO 17\r?\n", 30, start=mark)
    for level in (True, False):
        g = len(b.gpio)
        b.call("SetPin", "(ub)", (17, level))
        b.wait_for(lambda: any(p == 23 and v is level for p, v, _ in b.gpio[g:]), 15, f"GpioChanged(23, {level})")
    b.wait_serial(rb"\nfollow-end", 30, start=mark)


@pytest.mark.boot
def test_set_pin_drives_an_input_not_an_output(irq_board):
    """On piemu's QEMU SetPin drives the pin's input line: the guest reads it while the pin is an
    input, and a pin the guest drives as an output keeps the guest's level."""
    b = irq_board
    b.run("piemu-gpio-shim set 24 0; echo out-low", rb"\nout-low")
    b.call("SetPin", "(ub)", (24, True))
    b.run("echo level=$(piemu-gpio-shim get 24)", rb"\nlevel=0")
    assert b.call("GetPin", "(u)", (24,))[0] is False
    b.call("SetPin", "(ub)", (25, True))
    b.run("echo level=$(piemu-gpio-shim get 25)", rb"\nlevel=1")


@pytest.mark.boot
def test_stock_qemu_still_works(bus):
    """piemud --qemu=stock: Debian's QEMU, no GpioInterrupts, SetPin through GPSET/GPCLR as before."""
    subprocess.run([SERVICE, "restart"], check=True, capture_output=True,
                   env=dict(os.environ, PIEMUD_ARGS="--qemu=stock"))
    try:
        b = pb.Board.create(bus)
        try:
            b.watch()
            b.call("Start")
            assert b.prop("GpioInterrupts") is False
            live = pb.virsh("dumpxml", f"piemu-{b.name}").stdout
            assert "PIEMU_QEMU" not in live
            b.wait_prompt()
            b.call("SetPin", "(ub)", (17, True))
            b.run("echo level=$(piemu-gpio-shim get 17)", rb"\nlevel=1")
            # no edge events without piemu's QEMU: the shim says so within its timeout
            b.run("piemu-gpio-shim edges 17 1 1000; echo rc=$?", rb"\nrc=1")
        finally:
            b.delete()
    finally:
        subprocess.run([SERVICE, "restart"], check=True, capture_output=True)
