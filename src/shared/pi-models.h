/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* QEMU 10's Raspberry Pi machines as piemu runs them: what QEMU fixes (RAM, CPUs), where the SoC's
 * peripherals sit (GPIO and the PL011 follow from that), the board revision code QEMU reports, and
 * whether piemu has a default image for the model yet. Pure table; see docs/research/pi-models. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct PiModel {
        const char *name;          /* QEMU's machine name, e.g. "raspi3b" */
        const char *title;         /* "Raspberry Pi 3 Model B" */
        unsigned memory_mib;       /* the only value QEMU accepts */
        unsigned vcpus;            /* the only value QEMU accepts */
        uint64_t periph_base;      /* ARM physical address of the peripherals */
        uint32_t revision;         /* QEMU's board-rev, which the dtb's /system/linux,revision repeats */
        const char *default_image; /* what CreateBoard's image "" means on this model */
} PiModel;

#define PI_MODEL_GPIO_OFFSET  UINT64_C(0x200000)
#define PI_MODEL_PL011_OFFSET UINT64_C(0x201000)

const PiModel *pi_model_find(const char *name);
/* All six, in the order a person picks from: the default model (raspi3b) first. This table is the
 * one list of models; the Manager's Models property publishes it. */
const PiModel *pi_models(size_t *ret_n);
/* Every name, sorted and ", "-separated, derived from the table.
 * Static storage, built on the first call (not thread-safe before that: piemud calls it from the
 * bus thread only). */
const char *pi_model_names(void);
