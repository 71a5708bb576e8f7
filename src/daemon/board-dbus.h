/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A board's face on the bus: its object, methods, properties and the signals about it. */

#include <systemd/sd-bus.h>

#include "board.h"

int board_verify(Board *b, sd_bus_message *m, const char *verb, sd_bus_error *error);
/* PropertiesChanged for one of the board's EMITS_CHANGE properties. */
void board_emit_property(sd_bus *bus, Board *b, const char *property);
/* GetPin/GetPins calls waiting for the levels are answered (the board is gone) and dropped. */
void board_level_waits_cancel(Board *b);

int board_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error);
int board_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);
extern const sd_bus_vtable board_vtable[];
