/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for config.txt parsing (src/image-extract/rpi-config.c).
 *
 * The input is a config.txt. It is parsed for every model; whatever comes out must be a set of
 * safe boot file names (or none), bounded sanitized notes, and a kernel choice that is one; the
 * same text with CR-LF line ends must mean exactly the same. Built with -DFUZZ_REPLAY this file
 * has a main() that replays files, directories or a small built-in corpus (fuzz-replay.h). */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpi-config.h"

#ifdef FUZZ_REPLAY
static const char *const builtin_corpus[] = {
        "arm_64bit=1\r\nauto_initramfs=1\r\n[cm4]\r\notg_mode=1\r\n[all]\r\n",
        "kernel=k.img\n[pi4]\nkernel=kernel7l.img\n[pi3]\ninitramfs initrd.img followkernel\n[all]\n",
        "[gpio4=1]\nkernel=x.img\n[none]\ncmdline=c.txt\n[all]\ndevice_tree=bcm2710-rpi-3-b.dtb\n",
        "include extra.txt\nos_prefix=a/\nkernel=../x\nkernel=*.img\narm_64bit=0x\nupstream_kernel=1\n",
        "[pi3+]\nramfsfile=r\n[pi0]\narm_control=0x200\n[",
        "",
};
#endif

#include "fuzz-replay.h"

static bool str_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_config(const RpiConfig *c, RpiModel m) {
        const char *k;
        char *ir = NULL;

        FUZZ_CHECK(!c->kernel || rpi_boot_name_is_valid(c->kernel));
        FUZZ_CHECK(!c->device_tree || rpi_boot_name_is_valid(c->device_tree));
        FUZZ_CHECK(!c->initramfs || rpi_boot_name_is_valid(c->initramfs));
        FUZZ_CHECK(!c->cmdline || rpi_boot_name_is_valid(c->cmdline));
        FUZZ_CHECK(c->arm_64bit >= -1 && c->arm_64bit <= 1);
        FUZZ_CHECK(c->n_notes <= RPI_CONFIG_MAX_NOTES);
        FUZZ_CHECK((c->n_notes == 0) == (c->notes == NULL));
        if (c->notes) {
                FUZZ_CHECK(c->notes[c->n_notes] == NULL);
                for (size_t i = 0; i < c->n_notes; i++) {
                        FUZZ_CHECK(strlen(c->notes[i]) < 256);
                        for (const char *p = c->notes[i]; *p; p++)
                                FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
                }
        }

        k = rpi_config_kernel(c, m);
        FUZZ_CHECK(k && rpi_boot_name_is_valid(k));
        if (rpi_auto_initramfs_name(k, &ir) == 0) {
                FUZZ_CHECK(rpi_boot_name_is_valid(ir));
                free(ir);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *lf;
        size_t lf_n = 0;

        /* the helper reads at most 64 KiB */
        if (size > 64 * 1024)
                return 0;

        /* the same text with every CR-LF made LF */
        lf = malloc(size + 1);
        FUZZ_CHECK(lf);
        for (size_t i = 0; i < size; i++)
                if (!(data[i] == '\r' && i + 1 < size && data[i + 1] == '\n'))
                        lf[lf_n++] = (char)data[i];

        for (int m = 0; m < _RPI_MODEL_MAX; m++) {
                RpiConfig a, b;

                FUZZ_CHECK(rpi_config_parse((const char *)data, size, (RpiModel)m, &a) == 0);
                check_config(&a, (RpiModel)m);
                FUZZ_CHECK(rpi_config_parse(lf, lf_n, (RpiModel)m, &b) == 0);
                FUZZ_CHECK(str_eq(a.kernel, b.kernel) && str_eq(a.device_tree, b.device_tree) &&
                           str_eq(a.initramfs, b.initramfs) && str_eq(a.cmdline, b.cmdline));
                FUZZ_CHECK(a.arm_64bit == b.arm_64bit && a.auto_initramfs == b.auto_initramfs &&
                           a.upstream_kernel == b.upstream_kernel && a.n_includes == b.n_includes);
                rpi_config_done(&a);
                rpi_config_done(&b);
        }
        free(lf);
        return 0;
}
