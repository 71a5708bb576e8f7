/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pi-models.h"

#include <string.h>

/* RAM, CPUs and board-rev from QEMU 10 (hw/arm/raspi.c, raspi4b.c; `-m`/`-smp` take no other
 * values), peripheral bases from the SoCs: BCM2835 0x20000000, BCM2836/7 0x3f000000, BCM2711
 * 0xfe000000. Measured in docs/research/pi-models/REPORT.md. */
static const PiModel models[] = {
        /* The ARMv6 boards boot Debian's armel "rpi" kernel, the ARMv7 one the armhf "armmp"
         * kernel: an image each (tools/build-image.sh --arch). */
        {"raspi0", "Raspberry Pi Zero", 512, 1, UINT64_C(0x20000000), 0x920092, "default-armel"},
        {"raspi1ap", "Raspberry Pi 1 Model A+", 512, 1, UINT64_C(0x20000000), 0x900021, "default-armel"},
        {"raspi2b", "Raspberry Pi 2 Model B", 1024, 4, UINT64_C(0x3f000000), 0xa21041, "default-armhf"},
        /* The arm64 kernel and its device trees: one image for all three. */
        {"raspi3ap", "Raspberry Pi 3 Model A+", 512, 4, UINT64_C(0x3f000000), 0x9020e0, "default"},
        {"raspi3b", "Raspberry Pi 3 Model B", 1024, 4, UINT64_C(0x3f000000), 0xa02082, "default"},
        {"raspi4b", "Raspberry Pi 4 Model B", 2048, 4, UINT64_C(0xfe000000), 0xb03115, "default"},
};

const PiModel *pi_model_find(const char *name) {
        for (size_t i = 0; name && i < sizeof models / sizeof models[0]; i++)
                if (strcmp(models[i].name, name) == 0)
                        return &models[i];
        return NULL;
}

const PiModel *pi_models(size_t *ret_n) {
        *ret_n = sizeof models / sizeof models[0];
        return models;
}

const char *pi_model_names(void) {
        return "raspi0, raspi1ap, raspi2b, raspi3ap, raspi3b, raspi4b";
}
