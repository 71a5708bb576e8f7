/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The guest shim's line protocol on the board's GPIO serial line (gpio-proto.h). The shim runs in
 * every default guest: its HELLO says the guest is up (GuestReady), whichever back end drives the
 * pins; on the shim back end its reports are also the pins' levels. */

#include <stddef.h>
#include <stdint.h>

#include "board-pins.h"
#include "gpio-proto.h"
#include "serial.h"

typedef struct PinsShim {
        GpioParser parser;
        uint64_t dropped_lines; /* invalid lines from the guest, dropped */
} PinsShim;

extern const PinBackend pins_shim_backend;

void pins_shim_reset(Board *b);
/* The GPIO line's data callback (SerialCallbacks.on_data, userdata: the board). */
void pins_shim_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata);
/* The GPIO line came up while the board runs: ask a running shim for its levels (after piemud or the
 * line restarted it does not say HELLO again; its answer says it is there). */
void pins_shim_sync(Board *b);
