#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Layers point one way: a file never includes the header of a layer above its own.

The layers of piemud (src/daemon), lowest first:
  0  everything not named below: pure logic, the lines, qtest, libvirt glue, workers, polkit, ...
  1  the board and its parts: board.c, board-*.c (but board-dbus), pins-*.c; they report upward
     only through the hooks in board-host.h
  2  the bus faces and the manager: board-dbus, manager*, image-dbus, image-import
  3  main.c
Across src/: src/shared is below everything and includes only itself; each program's folder
(daemon, ctl, shim, image-extract, qemu-wrapper) includes its own headers and src/shared's, and
piemud also extract-run.h (src/image-extract's runner, which it links).

With --self-test, shows that the check fails on an upward include (in a scratch copy)."""

import os
import re
import shutil
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PROGRAMS = ("daemon", "ctl", "shim", "image-extract", "qemu-wrapper")
# Headers of another folder a program may use: (program, header) -> folder it lives in.
ALLOWED_FOREIGN = {("daemon", "extract-run.h"): "image-extract", ("daemon", "extract-errors.h"): "image-extract"}
# Generated at build time (meson's configure_file), not in the tree.
GENERATED = {"config.h"}


def daemon_layer(stem):
    if stem == "main":
        return 3
    if stem == "board-dbus" or stem.startswith("manager") or stem in ("image-dbus", "image-import"):
        return 2
    if stem in ("board-config", "board-fsm"):
        return 0  # pure: in libdaemon_pure, used by the tests and fuzzers
    if stem == "board" or stem.startswith("board-") or stem.startswith("pins-"):
        return 1
    return 0


def check(src):
    problems = []
    for folder in ("shared",) + PROGRAMS:
        d = os.path.join(src, folder)
        if not os.path.isdir(d):
            continue
        own = {f for f in os.listdir(d) if f.endswith(".h")}
        shared = {f for f in os.listdir(os.path.join(src, "shared")) if f.endswith(".h")}
        for f in sorted(os.listdir(d)):
            if not f.endswith((".c", ".h")):
                continue
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                text = fh.read()
            for m in INCLUDE.finditer(text):
                h = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                where = f"src/{folder}/{f}:{line}"
                if h in GENERATED:
                    continue
                if folder == "shared":
                    if h not in shared:
                        problems.append(f"{where}: src/shared includes {h}, which is not in src/shared")
                    continue
                if h in own:
                    if folder == "daemon":
                        mine, theirs = daemon_layer(f.rsplit(".", 1)[0]), daemon_layer(h[:-2])
                        if theirs > mine:
                            problems.append(f"{where}: {f} (layer {mine}) includes {h} (layer {theirs}), "
                                            f"a layer above it")
                    continue
                if h in shared or ALLOWED_FOREIGN.get((folder, h)):
                    continue
                problems.append(f"{where}: includes {h}, which is neither src/{folder}'s nor src/shared's")
    return problems


def self_test(src):
    """The check must be able to fail: an upward include in a scratch copy is caught."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "src")
        shutil.copytree(src, copy)
        if check(copy):
            print("self-test: the tree itself does not pass", file=sys.stderr)
            return 1
        with open(os.path.join(copy, "daemon", "board.c"), "a", encoding="utf-8") as f:
            f.write('\n#include "manager.h"\n')
        found = check(copy)
        if not any("board.c" in p and "manager.h" in p for p in found):
            print("self-test: an upward include (board.c -> manager.h) went unnoticed", file=sys.stderr)
            return 1
    print("self-test: an upward include is caught")
    return 0


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(top, "src")
    if "--self-test" in sys.argv[1:]:
        return self_test(src)
    problems = check(src)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-layers: {len(problems)} include(s) point the wrong way (see the layers in "
              f"tools/check-layers.py)", file=sys.stderr)
        return 1
    print("check-layers: every include points down or sideways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
