/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pins of a board, whichever back end carries them: levels seen, levels driven. */
#include "board-pins.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "board.h"
#include "gpio-proto.h"
#include "log.h"
#include "piemu-errors.h"

static void set_bit(uint64_t *v, unsigned pin, bool value) {
        uint64_t bit = UINT64_C(1) << pin;
        *v = value ? (*v | bit) : (*v & ~bit);
}

void board_pins_changed(Board *b, unsigned pin, bool value, uint64_t ts) {
        if (!!(b->pins.levels & (UINT64_C(1) << pin)) == value)
                return;
        set_bit(&b->pins.levels, pin, value);
        log_debug("board %s: GPIO %u = %d", b->config.name, pin, value);
        /* The far ends of wires first (the hook): they are the latency-critical part, the signal can
         * wait the few µs. */
        if (b->host->hooks->pin_changed)
                b->host->hooks->pin_changed(b, pin, value, ts, b->host->userdata);
        (void)watchers_emit(&b->watchers, "GpioChanged", "ubt", pin, (int)value, ts);
}

bool board_levels_known(Board *b) {
        return b->state == BOARD_RUNNING && b->pins.backend && b->pins.backend->levels_known(b);
}

uint64_t board_levels(const Board *b) {
        return b->pins.levels;
}

int board_set_pin(Board *b, unsigned pin, bool value, sd_bus_error *error) {
        uint64_t mask = b->pins.driven_mask, values = b->pins.driven_values;
        int r;

        assert(pin < GPIO_PROTO_NPINS);
        if (b->state != BOARD_RUNNING || !b->pins.backend)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        /* Remembered first: a back end whose QEMU is dialing again gives it on connect. */
        b->pins.driven_mask |= UINT64_C(1) << pin;
        set_bit(&b->pins.driven_values, pin, value);
        r = b->pins.backend->set(b, pin, value);
        if (r < 0) {
                b->pins.driven_mask = mask;
                b->pins.driven_values = values;
                if (r == -ENOTCONN)
                        return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                                 "The GPIO line of board %s is not open; try again.",
                                                 b->config.name);
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "Cannot drive GPIO %u of board %s now (%s); try again.", pin,
                                         b->config.name, strerror(-r));
        }
        return 0;
}

void board_drive_pin(Board *b, unsigned pin, bool value) {
        assert(pin < GPIO_PROTO_NPINS);
        if (b->state == BOARD_RUNNING) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (board_set_pin(b, pin, value, &e) >= 0)
                        return;
                log_debug("board %s: wire to GPIO %u waits: %s", b->config.name, pin, e.message);
                sd_bus_error_free(&e);
        }
        b->pins.driven_mask |= UINT64_C(1) << pin;
        set_bit(&b->pins.driven_values, pin, value);
}
