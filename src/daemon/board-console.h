/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A board's console: the OpenSerial clients relayed to the console line, and the ring of its recent
 * output (RecentSerial). Knows nothing of the board around it. */

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "serial.h"

#define BOARD_RECENT_MAX 8192

typedef struct ConsoleClient ConsoleClient;

typedef struct BoardConsole {
        Serial *const
                *line; /* where the console line is (NULL while closed): what clients type goes there */
        ConsoleClient *clients;
        uint8_t recent[BOARD_RECENT_MAX];
        size_t recent_start, recent_len;
} BoardConsole;

void board_console_init(BoardConsole *c, Serial *const *line);
/* What the guest printed: into the ring and to every client (a client that cannot keep up loses it). */
void board_console_feed(BoardConsole *c, const uint8_t *data, size_t n);
/* Returns one end of a socket pair relayed to the console line (raw bytes both ways). */
int board_console_open_client(BoardConsole *c, sd_event *e, int *ret_fd);
/* The last (at most size) bytes of output, oldest first. */
size_t board_console_recent(const BoardConsole *c, uint8_t *buf, size_t size);
void board_console_drop_clients(BoardConsole *c);
