# SPDX-License-Identifier: LGPL-2.1-or-later
"""The interface XML shipped in dbus/ is what the running daemon really exports."""

import os
import xml.etree.ElementTree as ET

import pytest

import piemu_bus as pb

DBUS_DIR = os.path.join(pb.REPO, "dbus")


def describe(iface):
    """A comparable summary: members, argument types/directions/names, property access and change flags."""
    out = {}
    for el in iface:
        if el.tag == "annotation":
            continue
        name = el.get("name")
        if el.tag in ("method", "signal"):
            args = tuple(
                (a.get("type"), a.get("direction", "in" if el.tag == "method" else "out"), a.get("name"))
                for a in el.findall("arg")
            )
            out[(el.tag, name)] = args
        elif el.tag == "property":
            ann = {a.get("name"): a.get("value") for a in el.findall("annotation")}
            out[(el.tag, name)] = (
                el.get("type"),
                el.get("access"),
                ann.get("org.freedesktop.DBus.Property.EmitsChangedSignal", "true"),
            )
    return out


def shipped(name):
    root = ET.parse(os.path.join(DBUS_DIR, f"{name}.xml")).getroot()
    return describe(root.find(f"interface[@name='{name}']"))


def live(bus, path, name):
    xml = pb.call(bus, path, "org.freedesktop.DBus.Introspectable", "Introspect")[0]
    iface = ET.fromstring(xml).find(f"interface[@name='{name}']")
    assert iface is not None, f"{name} not exported at {path}"
    return describe(iface)


def test_manager_interface_matches(bus):
    assert live(bus, "/org/piemu", "org.piemu.Manager") == shipped("org.piemu.Manager")


def test_board_interface_matches(bus, board_factory):
    b = board_factory()
    assert live(bus, b.path, "org.piemu.Board") == shipped("org.piemu.Board")


@pytest.mark.parametrize("name", ["org.piemu.Manager", "org.piemu.Board"])
def test_methods_are_open_to_polkit_not_bus_privilege(bus, board_factory, name):
    # sd-bus marks methods without SD_BUS_VTABLE_UNPRIVILEGED as Privileged; every piemu
    # method is authorized with polkit instead.
    path = "/org/piemu" if name == "org.piemu.Manager" else board_factory().path
    xml = pb.call(bus, path, "org.freedesktop.DBus.Introspectable", "Introspect")[0]
    assert "org.freedesktop.systemd1.Privileged" not in xml
