/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "board-config.h"
#include "board-fsm.h"
#include "gpio-proto.h"
#include "macro.h"
#include "manager.h"
#include "serial.h"
#include "watchers.h"

#define BOARD_RECENT_MAX 8192

struct Board {
        unsigned n_ref; /* the manager's, and one per job in flight */
        bool removed;   /* deleted or forgotten: off the bus, waiting for the last reference */
        bool announced; /* on the bus (BoardAdded sent, or found at start-up); not while being created */
        Manager *manager;
        BoardConfig config;
        char *path;
        char *domain;
        char *volume;
        char uuid[VIR_UUID_STRING_BUFLEN]; /* empty until libvirt has the domain */
        BoardState state;
        BoardOp op;                /* one libvirt operation at a time per board */
        BoardEvent deferred_event; /* a lifecycle event that came during `op` */
        bool needs_cleanup;        /* a cleanup could not run (libvirtd away): redone after reconnect */
        /* Saving the config (its wires) to libvirt's metadata: see board_save_config(). */
        bool saving;                     /* a save is in flight */
        bool config_dirty;               /* changed since the last save began */
        struct SaveWaiter *save_waiters; /* to be answered by the next save */
        sd_bus_message *pending;         /* the call answered when `op` finishes */
        char *last_error;
        bool waiting_for_lines;       /* started paused; resumed once QEMU dialed both lines */
        sd_event_source *lines_timer; /* ...and failed if it does not within LINES_WAIT_USEC */

        Serial *console, *gpio;
        struct ConsoleClient *console_clients;
        bool console_up, gpio_up;

        Watchers watchers;
        uint8_t recent[BOARD_RECENT_MAX];
        size_t recent_start, recent_len;

        GpioParser parser;
        uint64_t levels;
        uint64_t driven_mask, driven_values;
        bool guest_ready;
        uint64_t dropped_lines;
        /* The agentless GPIO path (board-qtest.c): set when the domain has a qtest channel. */
        bool gpio_qtest;
        char *qtest_socket;               /* piemud's listening socket QEMU dials */
        sd_event_source *qtest_listener;  /* owns the listening fd */
        struct Qtest *qtest;              /* QEMU's connection, while there is one */
        sd_event_source *qtest_timer;     /* GPLEV read every QTEST_RECONCILE_USEC */
        bool qtest_reading, qtest_reread; /* a GPLEV read in flight; another wanted after it */
        bool qtest_levels_known;          /* GPLEV read at least once on this connection */
        uint64_t qtest_busy_until;        /* CLOCK_MONOTONIC µs: GPLEV read often until then */
        struct LevelWait *level_waits;    /* GetPin/GetPins waiting for the first GPLEV read */
};

int board_new(Manager *m, const BoardConfig *c, Board **ret);
Board *board_ref(Board *b);
Board *board_unref(Board *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Board *, board_unref);
/* Leaving: lines, console clients and timers are dropped so that nothing calls into the board any
 * more. The manager does this before it drops the board from its list. */
void board_shut(Board *b);

/* Asynchronous operations. They take a ref on `reply_to` (may be NULL) and answer
 * it when done. Errors that are known at once are returned with `error` set. */
int board_define(Board *b, sd_bus_message *reply_to, sd_bus_error *error);
int board_start(Board *b, sd_bus_message *reply_to, sd_bus_error *error);
int board_stop(Board *b, sd_bus_message *reply_to, sd_bus_error *error);
int board_delete(Board *b, sd_bus_message *reply_to, sd_bus_error *error);
/* Takes over a domain found running at start-up: listens on its lines again (QEMU dials back), or
 * connects plainly to a board started by an older piemu (`plain_lines`). A running guest is
 * `running` at once; a paused one (piemud died mid-Start) is resumed once its lines are up. */
int board_attach(Board *b, bool paused, bool plain_lines);
void board_domain_stopped(Board *b, bool crashed);
/* After a reconnect to libvirtd: how the domain is now (no operation may be in flight). */
void board_reconcile(Board *b, bool active, bool paused, bool crashed, bool tls_lines, bool qtest);
void board_guest_rebooted(Board *b);

/* The board's config changed: it is written to libvirt's metadata now, or after the save, Start or
 * define in flight, or once libvirtd is back. `done` (may be NULL) is called on the loop, never from
 * inside this call, when a write with this change is done or failed (-ESTALE: the board went first).
 * A negative return (and no call) when not even that could be arranged. */
typedef struct SaveWaiter SaveWaiter;
typedef void (*board_saved_t)(Board *b, int r, const char *error, void *userdata);
int board_save_config(Board *b, board_saved_t done, void *userdata);
/* The same, for changes nobody waits for (errors are logged). */
void board_save_config_later(Board *b);

/* Sets an integer property of the I2C device at address through QEMU's monitor (qom-set) and answers
 * `call` when QEMU has it. The caller has checked the device, property and range. */
int board_set_sensor(Board *b, uint8_t address, const char *property, int64_t value, sd_bus_message *call,
                     sd_bus_error *error);

/* Returns one end of a socket pair relayed to the console (raw bytes both ways). */
int board_open_console(Board *b, int *ret_fd);
int board_verify(Board *b, sd_bus_message *m, const char *verb, sd_bus_error *error);
int board_send_serial(Board *b, const void *data, size_t n, sd_bus_error *error);
int board_set_pin(Board *b, unsigned pin, bool value, sd_bus_error *error);
/* A wire drives pin: remembered whatever the board's state (applied when its GPIO comes up, as
 * SetPin's levels are after a reboot) and sent at once while it runs. */
void board_drive_pin(Board *b, unsigned pin, bool value);
/* Whether b->levels is what the guest's pins are (running, and read at least once on qtest). */
bool board_levels_known(Board *b);
/* GetPin/GetPins calls waiting for the levels are answered (the board is gone) and dropped. */
void board_level_waits_cancel(Board *b);
size_t board_recent_serial(Board *b, uint8_t *buf, size_t size);

int board_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error);
int board_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);
extern const sd_bus_vtable board_vtable[];
