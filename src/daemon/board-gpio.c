/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GPIO line's protocol with the guest shim: levels it reports, levels the host drives. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "board-internal.h"
#include "log.h"
#include "macro.h"
#include "manager-wires.h"
#include "piemu-errors.h"

/* ---- GPIO ---- */

void board_gpio_send(Board *b, const char *line, int len) {
        int r;
        /* A TLS line queues while QEMU reconnects; a plain one only takes writes while up. */
        if (!b->gpio || (!b->gpio_up && !serial_is_tls(b->gpio)) || len <= 0)
                return;
        r = serial_write(b->gpio, line, (size_t)len);
        if (r < 0)
                log_warning_errno(r, "board %s: cannot write to the GPIO line: %m", b->config.name);
}

static void resend_driven(Board *b) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                if (b->driven_mask & (UINT64_C(1) << pin))
                        board_gpio_send(b, line,
                                        gpio_proto_format_set(line, sizeof line, pin,
                                                              b->driven_values & (UINT64_C(1) << pin)));
        board_gpio_send(b, line, gpio_proto_format_sync(line, sizeof line));
}

void board_gpio_level_changed(Board *b, unsigned pin, bool value, uint64_t ts) {
        uint64_t bit = UINT64_C(1) << pin;
        if (!!(b->levels & bit) == value)
                return;
        b->levels = value ? (b->levels | bit) : (b->levels & ~bit);
        log_debug("board %s: GPIO %u = %d", b->config.name, pin, value);
        /* The far ends of wires first: they are the latency-critical part, the signal can wait the
         * few µs. */
        if (b->config.n_wires > 0)
                manager_wires_propagate(b->manager, b, pin, value, ts);
        (void)watchers_emit(&b->watchers, "GpioChanged", "ubt", pin, (int)value, ts);
}

bool board_levels_known(Board *b) {
        return b->state == BOARD_RUNNING && (!b->gpio_qtest || b->qtest_levels_known);
}

void board_drive_pin(Board *b, unsigned pin, bool value) {
        uint64_t bit = UINT64_C(1) << pin;

        assert(pin < GPIO_PROTO_NPINS);
        if (b->state == BOARD_RUNNING) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (board_set_pin(b, pin, value, &e) >= 0)
                        return;
                log_debug("board %s: wire to GPIO %u waits: %s", b->config.name, pin, e.message);
                sd_bus_error_free(&e);
        }
        b->driven_mask |= bit;
        b->driven_values = value ? (b->driven_values | bit) : (b->driven_values & ~bit);
}

static int on_gpio_msg(const GpioMsg *msg, void *userdata) {
        Board *b = userdata;
        uint64_t ts = now_usec(CLOCK_REALTIME);

        switch (msg->type) {
        case GPIO_MSG_HELLO:
                log_info("board %s: guest shim %s is up", b->config.name, msg->version);
                board_set_guest_ready(b, true);
                if (!b->gpio_qtest)
                        resend_driven(b);
                break;
        case GPIO_MSG_GPIO:
                /* With qtest, QEMU itself says what the pins do; the shim only says the guest is up. */
                if (!b->gpio_qtest)
                        board_gpio_level_changed(b, msg->pin, msg->value, ts);
                break;
        case GPIO_MSG_PINS:
                /* Only the shim answers SYNC: it is there even if its HELLO went to an earlier piemud. */
                board_set_guest_ready(b, true);
                if (!b->gpio_qtest)
                        for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                                board_gpio_level_changed(b, pin, msg->mask & (UINT64_C(1) << pin), ts);
                break;
        default:
                /* SET/SYNC are host-to-guest verbs; a guest sending them is talking nonsense. */
                b->parser.n_invalid++;
                break;
        }
        return 0;
}

void board_gpio_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Board *b = userdata;
        uint64_t before = b->parser.n_invalid;

        (void)gpio_parser_feed(&b->parser, data, n, on_gpio_msg, b);
        if (b->parser.n_invalid != before) {
                uint64_t added = b->parser.n_invalid - before;
                /* Log the first few and then only powers of two: a guest must not be able to flood the log.
                 */
                uint64_t total = b->dropped_lines + added;
                if (b->dropped_lines < 8 || (total & (total - 1)) == 0 ||
                    (b->dropped_lines >> 10) != (total >> 10))
                        log_warning("board %s: dropped %" PRIu64
                                    " invalid GPIO line(s) from the guest (%" PRIu64 " in all)",
                                    b->config.name, added, total);
                b->dropped_lines = total;
        }
}

int board_set_pin(Board *b, unsigned pin, bool value, sd_bus_error *error) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        uint64_t bit = UINT64_C(1) << pin;

        if (b->state != BOARD_RUNNING)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        if (b->gpio_qtest) {
                uint64_t mask = b->driven_mask, values = b->driven_values;
                int r;
                /* Remembered first: a board whose QEMU is dialing again gets it on connect. */
                b->driven_mask |= bit;
                b->driven_values = value ? (b->driven_values | bit) : (b->driven_values & ~bit);
                r = board_qtest_set_pin(b, pin, value);
                if (r < 0) {
                        b->driven_mask = mask;
                        b->driven_values = values;
                }
                if (r < 0)
                        return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                                 "Cannot drive GPIO %u of board %s now (%s); try again.",
                                                 pin, b->config.name, strerror(-r));
                return 0;
        }
        if (!b->gpio)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "The GPIO line of board %s is not open; try again.",
                                         b->config.name);
        b->driven_mask |= bit;
        b->driven_values = value ? (b->driven_values | bit) : (b->driven_values & ~bit);
        board_gpio_send(b, line, gpio_proto_format_set(line, sizeof line, pin, value));
        return 0;
}
