/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A board's watchers and the private signals sent to them. Guest output and pin changes go
 * to the callers that called Watch() and were authorized, one message per watcher, never a
 * broadcast. Serial bytes are coalesced into few, large SerialOutput signals, and the serial
 * line stops being read while the bus connection has a long queue, so that a flooding guest
 * or a slow bus cannot make piemud buffer without bound. Kept apart from board.c so that
 * bench/ can drive this exact path with a flooding peer and a real dbus-daemon. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "serial.h"

#define WATCHERS_COALESCE_MAX (256U * 1024U)
/* Serial bytes are held this long so that a chatty guest gives few, larger signals. */
#define WATCHERS_COALESCE_USEC 3000
/* Beyond this many unsent messages on the bus connection, stop reading the serial line:
 * TCP flow control then slows the guest, and memory stays bounded. */
#define WATCHERS_BUS_QUEUE_MAX 16

typedef struct Watchers {
        const char *path; /* borrowed: the board's object path */
        const char *name; /* borrowed: for log lines */
        Serial *source;   /* borrowed, see watchers_attach(); NULL while no line is up */

        sd_bus *bus;  /* the connection watchers called on; set by the first watchers_add() */
        char **names; /* the watchers' unique names */
        size_t n_names, n_alloc;
        uint8_t *out;
        size_t out_len;
        sd_event_source *flush_timer;
        sd_event_source *throttle_timer;
        uint64_t n_signals, n_bytes, n_pauses; /* for the log and bench/ */
} Watchers;

void watchers_init(Watchers *w, const char *path, const char *name);
/* Frees everything but the borrowed pointers. */
void watchers_done(Watchers *w);

/* The sender of `m` watches until it calls watchers_remove() or leaves the bus (whoever learns
 * that calls watchers_forget(): there is no match rule per watcher, see peers.h). 1 if it is a new
 * watcher, 0 if it watched already. */
int watchers_add(Watchers *w, sd_bus_message *m);
/* The same for a unique name on `bus` (tests, bench/). */
int watchers_add_name(Watchers *w, sd_bus *bus, const char *unique_name);
void watchers_remove(Watchers *w, sd_bus_message *m);
/* `unique_name` left the bus. */
void watchers_forget(Watchers *w, const char *unique_name);
unsigned watchers_count(Watchers *w);
/* The connection the watchers are on, or NULL before anyone watched. */
sd_bus *watchers_bus(Watchers *w);

/* One signal of org.piemu.Board to each watcher. `types` is "ay" (then a pointer and a
 * size_t follow) or a plain sd_bus_message_append() signature. */
int watchers_emit(Watchers *w, const char *member, const char *types, ...);

/* The serial line the output comes from: paused while the bus queue is long. */
void watchers_attach(Watchers *w, Serial *source);
/* The line went away: forgets it, and drops bytes not yet sent and any pause. */
void watchers_detach(Watchers *w);
/* Serial bytes from the guest; sent within WATCHERS_COALESCE_USEC. */
void watchers_push_output(Watchers *w, const uint8_t *data, size_t n);
