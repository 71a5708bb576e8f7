/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GPIO line's protocol with the guest shim: levels it reports, levels the host drives. */
#include "pins-shim.h"

#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include "board.h"
#include "log.h"
#include "macro.h"

static int send_line(Board *b, const char *line, int len) {
        Serial *s = b->lines.gpio;
        int r;

        /* A TLS line queues while QEMU reconnects; a plain one only takes writes while up. */
        if (!s || (!b->lines.gpio_up && !serial_is_tls(s)))
                return -ENOTCONN;
        if (len <= 0)
                return -EINVAL;
        r = serial_write(s, line, (size_t)len);
        if (r < 0)
                log_warning_errno(r, "board %s: cannot write to the GPIO line: %m", b->config.name);
        return 0; /* a full queue drops it, as a line that is down would */
}

void pins_shim_sync(Board *b) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        (void)send_line(b, line, gpio_proto_format_sync(line, sizeof line));
}

static void shim_apply_driven(Board *b) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                if (b->pins.driven_mask & (UINT64_C(1) << pin))
                        (void)send_line(b, line,
                                        gpio_proto_format_set(line, sizeof line, pin,
                                                              b->pins.driven_values & (UINT64_C(1) << pin)));
        pins_shim_sync(b);
}

void pins_shim_reset(Board *b) {
        gpio_parser_init(&b->shim.parser);
}

static int on_msg(const GpioMsg *msg, void *userdata) {
        Board *b = userdata;
        bool levels = b->pins.backend && b->pins.backend->levels_from_shim;
        uint64_t ts = now_usec(CLOCK_REALTIME);

        switch (msg->type) {
        case GPIO_MSG_HELLO:
                log_info("board %s: guest shim %s is up", b->config.name, msg->version);
                board_set_guest_ready(b, true);
                if (levels)
                        shim_apply_driven(b);
                break;
        case GPIO_MSG_GPIO:
                /* With qtest, QEMU itself says what the pins do; the shim only says the guest is up. */
                if (levels)
                        board_pins_changed(b, msg->pin, msg->value, ts);
                break;
        case GPIO_MSG_PINS:
                /* Only the shim answers SYNC: it is there even if its HELLO went to an earlier piemud. */
                board_set_guest_ready(b, true);
                if (levels)
                        for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                                board_pins_changed(b, pin, msg->mask & (UINT64_C(1) << pin), ts);
                break;
        default:
                /* SET/SYNC are host-to-guest verbs; a guest sending them is talking nonsense. */
                b->shim.parser.n_invalid++;
                break;
        }
        return 0;
}

void pins_shim_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Board *b = userdata;
        uint64_t before = b->shim.parser.n_invalid;

        (void)gpio_parser_feed(&b->shim.parser, data, n, on_msg, b);
        if (b->shim.parser.n_invalid != before) {
                uint64_t added = b->shim.parser.n_invalid - before;
                /* The first few and then only powers of two: a guest must not be able to flood the log. */
                uint64_t total = b->shim.dropped_lines + added;
                if (b->shim.dropped_lines < 8 || (total & (total - 1)) == 0 ||
                    (b->shim.dropped_lines >> 10) != (total >> 10))
                        log_warning("board %s: dropped %" PRIu64
                                    " invalid GPIO line(s) from the guest (%" PRIu64 " in all)",
                                    b->config.name, added, total);
                b->shim.dropped_lines = total;
        }
}

static int shim_open(Board *b) {
        return 0; /* the GPIO serial line is all it needs, and the board opens that */
}

static void shim_close(Board *b) {
}

static bool shim_connected(Board *b) {
        return true; /* nothing beyond the lines */
}

static bool shim_levels_known(Board *b) {
        return true; /* what the shim last said; 0 until it says anything */
}

static int shim_set(Board *b, unsigned pin, bool value) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        if (!b->lines.gpio)
                return -ENOTCONN;
        (void)send_line(b, line, gpio_proto_format_set(line, sizeof line, pin, value));
        return 0;
}

static void shim_guest_rebooted(Board *b) {
        /* The shim comes back with a HELLO, and gets its driven levels again then. */
}

const PinBackend pins_shim_backend = {
        .name = "shim",
        .levels_from_shim = true,
        .open = shim_open,
        .close = shim_close,
        .connected = shim_connected,
        .levels_known = shim_levels_known,
        .set = shim_set,
        .apply_driven = shim_apply_driven,
        .guest_rebooted = shim_guest_rebooted,
};
