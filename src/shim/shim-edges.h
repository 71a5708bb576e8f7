/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Edges through the kernel's GPIO character device (GPIO v2 uAPI, /dev/gpiochipN): the interrupt
 * path a guest program takes (libgpiod, gpiozero 2, RPi.GPIO's add_event_detect). It needs a GPIO
 * block that detects events, which QEMU's is only with piemu's patches (GpioInterrupts). */

#include <stdbool.h>

#include "gpio-regs.h"

typedef struct ShimEdges {
        const char *chip; /* e.g. "/dev/gpiochip0": its line offsets are BCM pin numbers */
        unsigned pin;     /* watched for both edges */
        unsigned long count;
        unsigned timeout_ms; /* for each edge */
        GpioRegs *follow;    /* not NULL: copy each edge's level onto follow_pin (an output) */
        unsigned follow_pin;
} ShimEdges;

/* Prints "watching GPIO <pin>" once the line is requested (no edge is lost after it), then
 * "rising|falling <timestamp ns>" for each of count edges, in order, each flushed at once.
 * Returns 0 when all came, -ETIME when one did not within timeout_ms, other negative errnos with a
 * message on stderr. */
int shim_edges_run(const ShimEdges *e);
