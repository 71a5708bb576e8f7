/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What piemu changes in a board's device tree, as a pure function on buffers (libfdt, no string
 * surgery), shared by piemu-image-extract, its tests and its fuzzer. */

#include <stddef.h>
#include <stdint.h>

/* Largest dtb accepted; real ones are 20-60 KiB. */
#define DTB_PATCH_MAX_SIZE (1024 * 1024)

/* The fixed /system/linux,serial piemu reports ("piemu" in ASCII): QEMU has no serial number to
 * offer, and a stable one keeps the guest's idea of its board identity stable. */
#define DTB_PATCH_SERIAL UINT64_C(0x0000007069656d75)

/* Checks in (fdt_check_full) and returns a patched copy in *ret (malloc'd, *ret_size bytes):
 *  - /system (created if missing) gets linux,revision = revision (u32) and linux,serial = serial
 *    (u64), which the firmware sets on real hardware and Raspberry Pi OS reads the model from;
 *  - the PL011 (the node /aliases/uart0 names if it is a PL011, else the first node compatible with
 *    "arm,pl011") loses its "bluetooth" children: with one there the kernel makes the UART a serdev
 *    controller and creates no /dev/ttyAMA0, so no console could run on serial0; it is enabled if
 *    its status says otherwise;
 *  - /aliases (created if missing): serial0 = the PL011 (QEMU's serial0, ttyAMA0), serial1 = the
 *    mini UART (compatible "brcm,bcm2835-aux-uart") if there is one, else serial1 is dropped if it
 *    named the PL011;
 *  - i2c_arm 1 or 0 (config.txt's dtparam=i2c_arm=on/off, which the Pi firmware applies and QEMU
 *    does not): the header's I2C bus gets status "okay" or "disabled"; -1 leaves it alone.
 * Returns 0, -EBADMSG for an invalid tree, -EFBIG above DTB_PATCH_MAX_SIZE, -ENODEV if there is no
 * PL011 (or no I2C bus for i2c_arm), -ENOMEM; *ret_error (optional) then points to a static
 * description. */
int dtb_patch(const void *in, size_t size, uint32_t revision, uint64_t serial, int i2c_arm, void **ret,
              size_t *ret_size, const char **ret_error);
