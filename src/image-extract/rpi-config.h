/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Raspberry Pi boot-partition logic of piemu-image-extract, as pure functions on buffers so that
 * the unit tests and fuzzers see exactly what the helper runs: which board models piemu knows, how
 * the firmware reads config.txt for one of them, and how cmdline.txt becomes piemu's kernel command
 * line. Everything here treats its input as hostile: no I/O, bounded output, and every file name
 * handed back has passed rpi_boot_name_is_valid(). */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum RpiModel {
        RPI_MODEL_RASPI0,
        RPI_MODEL_RASPI1AP,
        RPI_MODEL_RASPI2B,
        RPI_MODEL_RASPI3AP,
        RPI_MODEL_RASPI3B,
        RPI_MODEL_RASPI4B,
        _RPI_MODEL_MAX,
        _RPI_MODEL_INVALID = -EINVAL,
} RpiModel;

/* QEMU machine names ("raspi3b"); -EINVAL for anything else. */
RpiModel rpi_model_from_string(const char *s);
const char *rpi_model_to_string(RpiModel m);
/* The board revision code QEMU 10 reports for the machine (hw/arm/raspi.c, raspi4b.c), which the
 * dtb's /system/linux,revision must repeat: Raspberry Pi OS reads the model from there. */
uint32_t rpi_model_revision(RpiModel m);
/* The dtb file names to look for in the boot partition, best first, NULL-terminated: Raspberry Pi
 * OS's name, then the upstream kernel's (also under broadcom/). upstream_first puts the upstream
 * names first, as the firmware does with upstream_kernel=1. */
const char *const *rpi_model_dtb_names(RpiModel m, bool upstream_first);

/* Longest boot file name we accept; FAT allows 255 characters per component. */
#define RPI_BOOT_NAME_MAX 255

/* A file name from config.txt that is safe to hand to mcopy as "::<name>" and to print as a
 * key=value line: [A-Za-z0-9._+,~=-] in components separated by single '/', no leading '/', no
 * "." or ".." component. mtools wildcards (* ? [) are refused, so that a name cannot select several
 * files. */
bool rpi_boot_name_is_valid(const char *name);

#define RPI_CONFIG_MAX_NOTES 16

typedef struct RpiConfig {
        char *kernel;         /* kernel=, or NULL */
        int arm_64bit;        /* arm_64bit=, or -1 if not set */
        char *device_tree;    /* device_tree=, or NULL */
        char *initramfs;      /* initramfs <file> (or ramfsfile=), or NULL */
        bool auto_initramfs;  /* auto_initramfs=1 */
        bool upstream_kernel; /* upstream_kernel=1 */
        char *cmdline;        /* cmdline= (the command line file), or NULL */
        int i2c_arm;          /* dtparam=i2c_arm (or its alias i2c) for the base tree: 1 on, 0 off,
                               * -1 not set (the tree's own status stays) */
        unsigned n_includes;  /* "include" lines in applicable sections (not followed) */
        /* Things a human may want to know (ignored settings, invalid values), sanitized to
         * printable ASCII, at most RPI_CONFIG_MAX_NOTES. NULL-terminated or NULL. */
        char **notes;
        size_t n_notes;
} RpiConfig;

/* Parses config.txt as the firmware of the given model would: [all] resets the filters, [none] and
 * any filter we cannot evaluate ([cm4] is a model filter that does not match; [gpio4=1],
 * [EDID=...], [board-type=...], [0x...] serial filters and the like are treated as not matching
 * until the next [all]); model filters replace each other. Comments, CR-LF, blank lines and unknown
 * keys are fine. dtparam= lines (a comma-separated list of NAME or NAME=VALUE) set the base tree's
 * parameters, also after a dtoverlay= (the firmware gives a parameter to the overlay only if it has
 * one of that name). Of them only i2c_arm (the header's I2C bus, alias i2c) is applied (an
 * unreadable value is noted); other parameters and overlays are ignored. Only fails on -ENOMEM. */
int rpi_config_parse(const char *text, size_t size, RpiModel model, RpiConfig *ret);
void rpi_config_done(RpiConfig *c);

/* The kernel the firmware would load: kernel= if set, else the model's default (kernel.img,
 * kernel7.img, kernel7l.img or kernel8.img by model and arm_64bit; arm_64bit defaults to 1 on the
 * Pi 4 as in current firmware). Returns a pointer into c or a static string. */
const char *rpi_config_kernel(const RpiConfig *c, RpiModel model);
/* Whether the kernel runs in 64-bit mode (arm_64bit=, or the name of the kernel). */
bool rpi_config_arm_64bit(const RpiConfig *c, RpiModel model);

/* The initramfs for kernel name k under auto_initramfs=1: "kernel<x>.img" → "initramfs<x>"
 * (kernel8.img → initramfs8, kernel7l.img → initramfs7l, kernel.img → initramfs, also inside a
 * directory). -EINVAL if k does not have that form, -ENOMEM. */
int rpi_auto_initramfs_name(const char *kernel, char **ret);

/* The console piemu's guest always uses: the PL011, which QEMU connects to serial0. */
#define RPI_CMDLINE_CONSOLE "console=ttyAMA0,115200"
/* Longest command line accepted (input's first line and result). */
#define RPI_CMDLINE_MAX 4096

/* Turns cmdline.txt into piemu's kernel command line: first line only (CR-LF fine), split at
 * blanks outside double quotes; every console= dropped and RPI_CMDLINE_CONSOLE added (before a
 * "--", after which everything belongs to init and is kept as is); first-boot resizers
 * (init=.../firstboot, init=.../init_resize.sh), quiet, splash and plymouth.* dropped; all else kept
 * in order, single-spaced (a tab inside quotes becomes a blank: the result is printable ASCII).
 * -EBADMSG if the first line has control characters, non-ASCII bytes or an unterminated double
 * quote, -E2BIG if it or the result is longer than RPI_CMDLINE_MAX, -ENOMEM. *ret_has_root tells
 * whether a non-empty root= is present (optional). */
int rpi_cmdline_rewrite(const char *text, size_t size, char **ret, bool *ret_has_root);
