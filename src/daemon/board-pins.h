/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A board's pins: the levels the guest's pins have, the levels the host drives (SetPin, wires), and
 * the GPIO back end that carries both. Two back ends implement PinBackend: the guest shim's line
 * protocol (pins-shim.c) and QEMU's qtest channel (pins-qtest.c); the board picks one at Start (or
 * when it takes over a running domain) and never asks which one it has. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

typedef struct Board Board;

typedef struct PinBackend {
        const char *name; /* the board's GpioPath */
        /* The guest shim's GPIO/PINS reports are the pins' levels (with qtest, QEMU says them). */
        bool levels_from_shim;
        /* Ready for QEMU before it starts (qtest: listen on the board's socket); < 0 on failure. */
        int (*open)(Board *b);
        void (*close)(Board *b);
        /* Everything QEMU dials is connected: a paused start may resume. */
        bool (*connected)(Board *b);
        /* The levels are what the guest's pins are (the board runs, and they were read). */
        bool (*levels_known)(Board *b);
        /* Drives pin to value now (already remembered in the driven levels); < 0 if it cannot now. */
        int (*set)(Board *b, unsigned pin, bool value);
        /* Gives every driven level again (a new connection). */
        void (*apply_driven)(Board *b);
        /* The guest rebooted: QEMU reset its GPIO block. */
        void (*guest_rebooted)(Board *b);
} PinBackend;

typedef struct BoardPins {
        const PinBackend *backend;
        uint64_t levels;                     /* bit n: GPIO n is high */
        uint64_t driven_mask, driven_values; /* what the host drives, kept across reboots and restarts */
} BoardPins;

/* A pin's level is now value (seen at ts, CLOCK_REALTIME): the hook and watchers hear, if it changed. */
void board_pins_changed(Board *b, unsigned pin, bool value, uint64_t ts);
/* SetPin: the board must run. */
int board_set_pin(Board *b, unsigned pin, bool value, sd_bus_error *error);
/* A wire drives pin: remembered whatever the board's state (applied when its GPIO comes up, as
 * SetPin's levels are after a reboot) and sent at once while it runs. */
void board_drive_pin(Board *b, unsigned pin, bool value);
/* Whether the levels are what the guest's pins are (running, and read at least once on qtest). */
bool board_levels_known(Board *b);
uint64_t board_levels(const Board *b);
