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

/* board.c: resume a paused start once everything QEMU dials is connected. */
void board_lines_maybe_ready(Board *b);

/* board-qtest.c: the agentless GPIO path. */
/* How often GPLEV is read to catch changes QEMU fires no IRQ for: the most such a change is late,
 * while the board's pins are busy (an IRQ, a SetPin or a change seen in the last QTEST_BUSY_USEC),
 * and after that. */
#define QTEST_RECONCILE_USEC (20 * 1000ULL)
#define QTEST_BUSY_USEC      (5 * 1000 * 1000ULL)
#define QTEST_IDLE_USEC      (500 * 1000ULL)
int board_qtest_socket_path(Board *b, char **ret);
int board_qtest_listen(Board *b);
void board_qtest_close(Board *b);
bool board_qtest_connected(Board *b);
int board_qtest_set_pin(Board *b, unsigned pin, bool value);
void board_qtest_apply_driven(Board *b);

/* board-gpio.c */
void board_gpio_level_changed(Board *b, unsigned pin, bool value, uint64_t ts);
void board_gpio_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata);
void board_gpio_send(Board *b, const char *line, int len);
