/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Wires between boards' pins: the Manager's AddWire/RemoveWire/ListWires, and driving the far ends
 * when a wired pin changes. Each wire is kept with the board it starts from (BoardConfig.wires, saved
 * in that board's libvirt metadata), so wires come back after a piemud restart with their boards. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct Board Board;

/* from's pin went to value (seen at seen_usec, CLOCK_REALTIME): drive every pin wired to it, at once, on
 * the loop. How long after seen_usec each far end was driven is logged at debug level
 * (bench/piemu_bench.py wires reads it). */
void manager_wires_propagate(Manager *m, Board *from, unsigned pin, bool value, uint64_t seen_usec);
/* b's GPIO is up (it runs, its levels are known): bring the pins wired into it and out of it up to
 * date. */
void manager_wires_board_up(Manager *m, Board *b);
/* b is going away (deleted, or gone from libvirt): the wires into it go too, from the other boards'
 * settings. Its own wires go with it. */
void manager_wires_board_gone(Manager *m, Board *b);
/* After boards are (re)loaded: wires to boards that are not there, or that break the rules (one
 * driver per pin, no cycles; only damaged metadata has such), are dropped and the change saved. */
void manager_wires_prune(Manager *m);

int manager_method_add_wire(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int manager_method_remove_wire(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int manager_method_list_wires(sd_bus_message *msg, void *userdata, sd_bus_error *error);
