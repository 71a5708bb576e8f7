/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A board's two serial lines (console and GPIO) and whether each is up. piemud listens with TLS and
 * QEMU dials (serial.h); boards started by an older piemu have plain lines piemud dials instead.
 * Knows nothing of the board around it: what arrives goes to the callbacks given at open. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "serial.h"
#include "tls.h"

typedef struct BoardLines {
        Serial *console, *gpio;
        bool console_up, gpio_up;
} BoardLines;

/* TLS listeners (creds set) on the given ports (0: any free one), which only QEMU (qemu_uid) may
 * dial; or (creds NULL) plain clients of QEMU's ports. On failure nothing is left open. */
int board_lines_open(BoardLines *l, sd_event *e, TlsCreds *creds, uid_t qemu_uid, uint16_t console_port,
                     uint16_t gpio_port, const SerialCallbacks *console_cb, const SerialCallbacks *gpio_cb);
/* keep_ports: piemud exits and the board runs on, so systemd's store keeps the listeners (fdstore.h);
 * otherwise they are let go of. */
void board_lines_close(BoardLines *l, bool keep_ports);
/* s (one of the two) went up or down; returns whether it is the console line. */
bool board_lines_set_up(BoardLines *l, const Serial *s, bool up);
/* A plain line that closed is gone for good. */
void board_lines_drop(BoardLines *l, const Serial *s);
bool board_lines_all_up(const BoardLines *l);
