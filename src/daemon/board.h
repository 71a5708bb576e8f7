/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A board: its identity, config, state and the operation in flight. Its parts each have their own
 * header: the lines (board-lines.h), the console (board-console.h), the pins and their back ends
 * (board-pins.h, pins-shim.h, pins-qtest.h) and the metadata saver (board-saver.h). A board reports
 * upward only through its host's hooks (board-host.h); it never calls the manager. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "board-config.h"
#include "board-console.h"
#include "board-fsm.h"
#include "board-host.h"
#include "board-lines.h"
#include "board-pins.h"
#include "board-saver.h"
#include "image.h"
#include "macro.h"
#include "pi-models.h"
#include "pins-qtest.h"
#include "pins-shim.h"
#include "vm.h"
#include "watchers.h"

struct Board {
        unsigned n_ref; /* the manager's, and one per job in flight */
        bool removed;   /* deleted or forgotten: off the bus, waiting for the last reference */
        bool announced; /* on the bus (BoardAdded sent, or found at start-up); not while being created */
        BoardHost *host;
        BoardConfig config;
        const PiModel
                *model; /* looked up once: the config's model (raspi3b for boards from before models) */
        char *path;
        char *domain;
        char *volume;
        char uuid[VIR_UUID_STRING_BUFLEN]; /* empty until libvirt has the domain */

        BoardState state;
        BoardOp op;                /* one libvirt operation at a time per board */
        BoardEvent deferred_event; /* a lifecycle event that came during `op` */
        bool needs_cleanup;        /* a cleanup could not run (libvirtd away): redone after reconnect */
        sd_bus_message *pending;   /* the call answered when `op` finishes */
        char *last_error;
        bool waiting_for_lines;       /* started paused; resumed once QEMU dialed everything */
        sd_event_source *lines_timer; /* ...and failed if it does not within LINES_WAIT_USEC */
        bool guest_ready;

        BoardLines lines;
        BoardConsole console;
        BoardPins pins;
        PinsShim shim;
        PinsQtest qtest;
        BoardSaver saver;
        Watchers watchers;             /* GpioChanged and SerialOutput to the board's watchers */
        struct LevelWait *level_waits; /* board-dbus.c: GetPin/GetPins waiting for the first levels */
};

int board_new(BoardHost *host, const BoardConfig *c, Board **ret);
Board *board_ref(Board *b);
Board *board_unref(Board *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Board *, board_unref);
/* Leaving: lines, console clients and timers are dropped so that nothing calls into the board any
 * more. The manager does this before it drops the board from its list. */
void board_shut(Board *b);

/* Asynchronous operations. They take a ref on `reply_to` (may be NULL) and answer it when done.
 * Errors that are known at once are returned with `error` set. Define and Start take the board's
 * image, loaded by the caller. */
int board_define(Board *b, const Image *img, sd_bus_message *reply_to, sd_bus_error *error);
int board_start(Board *b, const Image *img, sd_bus_message *reply_to, sd_bus_error *error);
int board_stop(Board *b, sd_bus_message *reply_to, sd_bus_error *error);
int board_delete(Board *b, sd_bus_message *reply_to, sd_bus_error *error);
/* Whether a verb may run now (board-fsm.c's table, and libvirtd reachable); error set if not. */
int board_check_verb(Board *b, BoardVerb verb, sd_bus_error *error);
/* Takes over a domain found running (at start-up, or after a reconnect): listens on its lines again
 * (QEMU dials back), or connects plainly to a board started by an older piemu (no TLS lines). A
 * running guest is `running` at once; a paused one (piemud died mid-Start) is resumed once its
 * lines are up. */
int board_attach(Board *b, const VmDomainInfo *d);
void board_domain_stopped(Board *b, bool crashed);
/* After a reconnect to libvirtd: how the domain is now (no operation may be in flight). */
void board_reconcile(Board *b, const VmDomainInfo *d);
void board_guest_rebooted(Board *b);

/* Sets an integer property of the I2C device at address through QEMU's monitor (qom-set) and answers
 * `call` when QEMU has it. The caller has checked the device, property and range. */
int board_set_sensor(Board *b, uint8_t address, const char *property, int64_t value, sd_bus_message *call,
                     sd_bus_error *error);

/* Returns one end of a socket pair relayed to the console (raw bytes both ways). */
int board_open_console(Board *b, int *ret_fd);
int board_send_serial(Board *b, const void *data, size_t n, sd_bus_error *error);
size_t board_recent_serial(Board *b, uint8_t *buf, size_t size);

/* For the board's parts: what they report goes through here to the host's hooks. */
void board_set_last_error(Board *b, const char *msg);
void board_set_guest_ready(Board *b, bool ready);
/* Resumes a paused start once everything QEMU dials is connected. */
void board_lines_maybe_ready(Board *b);
