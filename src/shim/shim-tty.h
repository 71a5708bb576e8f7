/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define SHIM_TTY_FALLBACK "/dev/ttyS1"

/* Finds the guest tty that QEMU's raspi3b wires to its second serial port (-serial #2), the
 * BCM2835 AUX mini UART at bus address 0x7e215040:
 *   1. the tty whose device-tree node is compatible with "brcm,bcm2835-aux-uart";
 *   2. the tty whose node is the one /proc/device-tree/aliases/serial1 names;
 *   3. SHIM_TTY_FALLBACK.
 * The compatible match comes first because the alias is not stable: mainline (Debian) DTBs
 * point serial1 at the mini UART, Raspberry Pi's own DTBs point it at the PL011, which is
 * QEMU's serial0 and the console. sysfs_root and dt_root are for tests; NULL means "/sys" and
 * "/proc/device-tree". Writes "/dev/<name>" into ret. Returns 1 if found, 0 for the
 * fallback, or a negative errno if ret is too small. */
int shim_find_host_tty(const char *sysfs_root, const char *dt_root, char *ret, size_t size);

/* The line's speed. QEMU ignores it, but the kernel programs the mini UART's divisor for it, and
 * QEMU's mini UART has no divisor latch: the divisor's high byte lands in the interrupt-enable
 * register. On raspi4b (mini UART clock 562.5 MHz: base_baud 70312500) 115200 needs divisor 0x262,
 * whose high byte 0x02 switches the transmit interrupt on behind the kernel's back; the driver never
 * switches it off again, so the interrupt storms and the board hangs (measured: 3 boots in 5). At
 * 460800 the divisor fits in its low byte on every model (152 on raspi4b). /init's stty uses the
 * same speed, so that the shim's own tcsetattr changes nothing. */
#define SHIM_LINE_BAUD B460800

/* Opens path non-blocking and, if it is a tty, makes it raw SHIM_LINE_BAUD 8N1 without flow control
 * or echo and drops whatever arrived before. Returns the fd or a negative errno. */
int shim_open_host_line(const char *path);
