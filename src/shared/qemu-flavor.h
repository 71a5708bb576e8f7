/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which QEMU runs a board: Debian's (PIEMU_QEMU), or piemu's own build of the same version with
 * piemu's patches (PIEMU_OWN_QEMU, built by tools/build-qemu.sh: GPIO event detection, input lines).
 * piemud decides at Start and says so in the domain's <qemu:commandline> as an environment variable,
 * which piemu's QEMU wrapper reads. libvirt's capability probe runs the wrapper without it, so
 * libvirt always probes Debian's QEMU. */

#define PIEMU_QEMU_ENV     "PIEMU_QEMU"
#define PIEMU_QEMU_ENV_OWN "piemu"
