/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <libvirt/libvirt.h>

#include "tls.h"
#include "worker.h"

typedef struct Board Board;
typedef struct PolkitRegistry PolkitRegistry;
typedef struct Peers Peers;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        virConnectPtr conn;
        WorkerPool *workers;        /* libvirt calls */
        WorkerPool *import_workers; /* image imports: never in the way of a Start */
        PolkitRegistry *polkit;
        Peers *peers; /* who leaves the bus: one subscription for the whole daemon */
        char *libvirt_uri;
        char *images_dir;
        char *pool_dir;
        char *emulator; /* <emulator> of every domain; NULL: libvirt's default (multi-threaded TCG) */
        char *tls_dir;  /* piemud's TLS credentials for the lines */
        TlsCreds *tls;  /* loaded from tls_dir, at start-up or at the first Start that finds them */
        uid_t qemu_uid; /* the only uid (besides root) a line's peer may have; (uid_t)-1: not checked */
        /* Where QEMU dials the boards' qtest channels (the agentless GPIO path); NULL when the
         * directory is missing or others could reach it: boards then have GPIO through a shim only. */
        char *qtest_dir;
        Board **boards;
        size_t n_boards, n_alloc;
        Board **gc; /* removed boards, unreferenced from gc_source (never inside their callbacks) */
        size_t n_gc;
        sd_event_source *gc_source;
        int lifecycle_cb;
        int reboot_cb;
        bool exiting;
        /* libvirtd went away: conn is NULL until a reconnect (on a worker) succeeds. */
        int libvirt_efd; /* libvirt's close callback, on any thread, wakes the loop through it */
        sd_event_source *libvirt_efd_source;
        int libvirt_close_reason;
        sd_event_source *reconnect_timer;
        uint64_t reconnect_usec;
        bool reconnecting;
        bool loaded;              /* boards found at start-up are in; later ones are announced */
        bool inject_stop_failure; /* PIEMUD_INJECT_FAULT=stop (tests only): Stop fails, power stays on */
} Manager;

int manager_new(sd_event *e, Manager **ret);
Manager *manager_free(Manager *m);
int manager_connect_libvirt(Manager *m);
int manager_load_boards(Manager *m);
int manager_connect_bus(Manager *m, bool user_bus);

Board *manager_find_board(Manager *m, const char *name);
int manager_add_board(Manager *m, Board *b);
void manager_remove_board(Manager *m, Board *b);
/* piemud's TLS credentials, loaded if they were not yet. On failure *ret_problem (if given) says
 * which file is missing or wrong. */
int manager_tls(Manager *m, TlsCreds **ret, char **ret_problem);
bool manager_image_in_use(Manager *m, const char *image);
/* Uses `dir` for the boards' qtest sockets if only piemud and QEMU can reach it (see --qtest-dir);
 * otherwise logs why and leaves the qtest path off. Negative errno only for out of memory. */
int manager_set_qtest_dir(Manager *m, const char *dir);
/* The bus error for image_load()'s failure r: NoSuchImage when it is not there, Failed saying what
 * is wrong when it is there but broken. */
int manager_image_error(sd_bus_error *error, const char *image, int r);
/* The manager's signals, sent from its bus face (manager-dbus.c) only: ObjectManager's
 * InterfacesAdded/Removed for the board's object, then BoardAdded/BoardRemoved. */
void manager_emit_board_added(Manager *m, Board *b);
void manager_emit_board_removed(Manager *m, Board *b);
/* Asks polkit whether the caller may do `verb` (action `action`) on board or image `name`: 1 allowed,
 * 0 polkit is being asked (the call comes back), < 0 refused (error set). */
int manager_verify(Manager *m, sd_bus_message *msg, const char *action, const char *name, const char *verb,
                   sd_bus_error *error);

extern const sd_bus_vtable manager_vtable[];
