/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <libvirt/libvirt.h>

#include "board-host.h"
#include "worker.h"

typedef struct Board Board;
typedef struct PolkitRegistry PolkitRegistry;
typedef struct Peers Peers;

typedef struct Manager {
        /* What boards see of the daemon (the event loop, libvirt, the workers, the lines' TLS and
         * qtest set-up) and the hooks they report through: boards never call the manager. */
        BoardHost host;
        sd_bus *bus;
        WorkerPool *import_workers; /* image imports: never in the way of a Start */
        PolkitRegistry *polkit;
        Peers *peers; /* who leaves the bus: one subscription for the whole daemon */
        char *libvirt_uri;
        char *images_dir;
        char *pool_dir;
        Board **boards;
        size_t n_boards, n_alloc;
        Board **gc; /* removed boards, unreferenced from gc_source (never inside their callbacks) */
        size_t n_gc;
        sd_event_source *gc_source;
        int lifecycle_cb;
        int reboot_cb;
        /* libvirtd went away: conn is NULL until a reconnect (on a worker) succeeds. */
        int libvirt_efd; /* libvirt's close callback, on any thread, wakes the loop through it */
        sd_event_source *libvirt_efd_source;
        int libvirt_close_reason;
        sd_event_source *reconnect_timer;
        uint64_t reconnect_usec;
        bool reconnecting;
} Manager;

int manager_new(sd_event *e, Manager **ret);
Manager *manager_free(Manager *m);
int manager_connect_libvirt(Manager *m);
int manager_load_boards(Manager *m);
int manager_connect_bus(Manager *m, bool user_bus);

Board *manager_find_board(Manager *m, const char *name);
int manager_add_board(Manager *m, Board *b);
void manager_remove_board(Manager *m, Board *b);
bool manager_image_in_use(Manager *m, const char *image);
/* Uses `dir` for the boards' qtest sockets if only piemud and QEMU can reach it (see --qtest-dir);
 * otherwise logs why and leaves the qtest path off. Negative errno only for out of memory. */
int manager_set_qtest_dir(Manager *m, const char *dir);
/* The manager's signals, sent from its bus face (manager-dbus.c) only: ObjectManager's
 * InterfacesAdded/Removed for the board's object, then BoardAdded/BoardRemoved. */
void manager_emit_board_added(Manager *m, Board *b);
void manager_emit_board_removed(Manager *m, Board *b);
/* Asks polkit whether the caller may do `verb` (action `action`) on board or image `name`: 1 allowed,
 * 0 polkit is being asked (the call comes back), < 0 refused (error set). */
int manager_verify(Manager *m, sd_bus_message *msg, const char *action, const char *name, const char *verb,
                   sd_bus_error *error);

extern const sd_bus_vtable manager_vtable[];

static inline Manager *manager_from_host(BoardHost *h) {
        return (Manager *)((char *)h - offsetof(Manager, host));
}
/* The manager of a board, for the bus faces (board-dbus.c, manager-*.c): boards never use it. */
#define board_manager(b) manager_from_host((b)->host)
