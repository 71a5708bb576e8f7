/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The agentless GPIO back end: QEMU's qtest channel (see pins-qtest.c). */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "board-pins.h"

/* How often GPLEV is read to catch changes QEMU fires no IRQ for: the most such a change is late,
 * while the board's pins are busy (an IRQ, a SetPin or a change seen in the last QTEST_BUSY_USEC),
 * and after that. */
#define QTEST_RECONCILE_USEC (20 * 1000ULL)
#define QTEST_BUSY_USEC      (5 * 1000 * 1000ULL)
#define QTEST_IDLE_USEC      (500 * 1000ULL)

typedef struct PinsQtest {
        char *socket;              /* piemud's listening socket QEMU dials */
        sd_event_source *listener; /* owns the listening fd */
        struct Qtest *conn;        /* QEMU's connection, while there is one */
        sd_event_source *timer;    /* GPLEV read every QTEST_RECONCILE_USEC */
        bool reading, reread;      /* a GPLEV read in flight; another wanted after it */
        bool levels_known;         /* GPLEV read at least once on this connection */
        uint64_t busy_until;       /* CLOCK_MONOTONIC µs: GPLEV read often until then */
        /* piemu's own QEMU runs the board: its GPIO block has input lines (SetPin drives those),
         * detects events (the guest gets GPIO interrupts) and raises an output IRQ for every change
         * of an output, so GPLEV is not polled. Stock QEMU has none of that. */
        bool inputs;
        /* piemu's QEMU: pins whose next change qtest may not report (pins-qtest.c, wants_polling):
         * high when this connection began, or high before the guest's reset. */
        uint64_t unsynced_high, unsynced_low;
} PinsQtest;

extern const PinBackend pins_qtest_backend;

/* The board's socket path under the qtest directory (for its domain XML). */
int pins_qtest_socket_path(Board *b, char **ret);
