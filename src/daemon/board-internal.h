/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by board.c (the state machine and operations), board-console.c (the console line's
 * relay: OpenSerial clients, recent output, SendSerial) and board-gpio.c (the GPIO line's
 * protocol). Not for anything outside the board. */

#include "board.h"

void board_set_last_error(Board *b, const char *msg);
void board_set_guest_ready(Board *b, bool ready);

/* board-console.c */
void board_console_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata);
void board_console_clients_drop(Board *b);

/* board-gpio.c */
void board_gpio_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata);
void board_gpio_send(Board *b, const char *line, int len);
