/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pi-models.h"

#include <stdlib.h>
#include <string.h>

/* RAM, CPUs and board-rev from QEMU 10 (hw/arm/raspi.c, raspi4b.c; `-m`/`-smp` take no other
 * values), peripheral bases from the SoCs: BCM2835 0x20000000, BCM2836/7 0x3f000000, BCM2711
 * 0xfe000000. Measured in docs/research/pi-models/REPORT.md.
 *
 * This is the one list of models: piemud publishes it as the Manager's Models property (piemuctl
 * models, its completion and the Cockpit page read it there), the man page's list is generated from
 * it at build time (gen-tables), and tools/build-image.sh reads each row's name, revision and
 * default image with sed: keep every row on one line in this shape.
 *
 * The rows are in the order a person picks from: the default model first (PIEMU_DEFAULT_MODEL in
 * src/daemon/board-config.h; test-pi-models checks it), the other boards of its image, then the
 * 32-bit boards. */
static const PiModel models[] = {
        /* The arm64 kernel and its device trees: one image for all three. */
        {"raspi3b", "Raspberry Pi 3 Model B", 1024, 4, UINT64_C(0x3f000000), 0xa02082, "default"},
        {"raspi3ap", "Raspberry Pi 3 Model A+", 512, 4, UINT64_C(0x3f000000), 0x9020e0, "default"},
        {"raspi4b", "Raspberry Pi 4 Model B", 2048, 4, UINT64_C(0xfe000000), 0xb03115, "default"},
        /* The ARMv7 board boots Debian's armhf "armmp" kernel, the ARMv6 ones the armel "rpi"
         * kernel: an image each (tools/build-image.sh --arch). */
        {"raspi2b", "Raspberry Pi 2 Model B", 1024, 4, UINT64_C(0x3f000000), 0xa21041, "default-armhf"},
        {"raspi1ap", "Raspberry Pi 1 Model A+", 512, 1, UINT64_C(0x20000000), 0x900021, "default-armel"},
        {"raspi0", "Raspberry Pi Zero", 512, 1, UINT64_C(0x20000000), 0x920092, "default-armel"},
};

#define N_MODELS (sizeof models / sizeof models[0])

const PiModel *pi_model_find(const char *name) {
        for (size_t i = 0; name && i < N_MODELS; i++)
                if (strcmp(models[i].name, name) == 0)
                        return &models[i];
        return NULL;
}

const PiModel *pi_models(size_t *ret_n) {
        *ret_n = N_MODELS;
        return models;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *pi_model_names(void) {
        /* Built once from the table: every name, sorted, ", "-separated. The longest name is far
         * below 16 characters (QEMU's machine names); the size is checked, not assumed. */
        static char buf[N_MODELS * 18];
        const char *names[N_MODELS];
        size_t len = 0;

        if (buf[0])
                return buf;
        for (size_t i = 0; i < N_MODELS; i++)
                names[i] = models[i].name;
        qsort(names, N_MODELS, sizeof names[0], compare_names);
        for (size_t i = 0; i < N_MODELS; i++) {
                size_t n = strlen(names[i]);

                if (len + n + 3 > sizeof buf)
                        abort();
                if (i > 0) {
                        memcpy(buf + len, ", ", 2);
                        len += 2;
                }
                memcpy(buf + len, names[i], n);
                len += n;
        }
        buf[len] = 0;
        return buf;
}
