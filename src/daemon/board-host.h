/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a board needs from the daemon around it, and how it reports back. The manager owns one
 * BoardHost and fills it in; boards read it and call its hooks, and never call the manager: layers
 * point one way (board → host), so the manager may call into boards from anywhere, including from
 * inside a hook. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include <libvirt/libvirt.h>

#include "tls.h"
#include "worker.h"

typedef struct Board Board;

/* Reports upward, all on the loop. The board's state is already the new one when they are called;
 * a hook may call back into the board (its job is done by then). */
typedef struct BoardHooks {
        /* State changed (the public State property follows). */
        void (*state_changed)(Board *b, void *userdata);
        /* Another property the bus shows changed: "LastError", "GuestReady" or "GpioPath". */
        void (*property_changed)(Board *b, const char *property, void *userdata);
        /* The board's levels are known again (it runs, and its GPIO back end read them after a
         * (re)connect): whatever depends on its pins may read them now. */
        void (*pins_up)(Board *b, void *userdata);
        /* A pin's level changed (seen at seen_usec, CLOCK_REALTIME), before anyone else hears. */
        void (*pin_changed)(Board *b, unsigned pin, bool value, uint64_t seen_usec, void *userdata);
        /* CreateBoard's definition is in libvirt: the board may be announced. */
        void (*defined)(Board *b, void *userdata);
        /* The board is gone (deleted, or its definition failed): the host drops it. The board shuts
         * itself down from then on; the host frees it later, never inside this call. */
        void (*gone)(Board *b, void *userdata);
} BoardHooks;

typedef struct BoardHost {
        sd_event *event;
        WorkerPool *workers; /* libvirt calls */
        virConnectPtr conn;  /* NULL while libvirtd is away: verbs answer Unavailable */
        char *emulator;      /* <emulator> of every domain; NULL: libvirt's default */
        char *tls_dir;       /* piemud's TLS credentials for the lines */
        TlsCreds *tls;       /* loaded from tls_dir, at start-up or at the first Start that finds them */
        uid_t qemu_uid;      /* the only uid (besides root) a line's peer may have; (uid_t)-1: not checked */
        /* Where QEMU dials the boards' qtest channels (the agentless GPIO path); NULL when the
         * directory is missing or others could reach it: boards then have GPIO through a shim only. */
        char *qtest_dir;
        /* piemu's own QEMU (qemu-flavor.h), which the emulator (piemu's wrapper) runs for a board that
         * asks; NULL when the emulator is not the wrapper. */
        const char *piemu_qemu;
        bool exiting;             /* piemud exits; boards run on (their ports stay in systemd's store) */
        bool loaded;              /* boards found at start-up are in; later changes are announced */
        bool inject_stop_failure; /* PIEMUD_INJECT_FAULT=stop (tests only): Stop fails, power stays on */
        const BoardHooks *hooks;
        void *userdata;
} BoardHost;

/* piemud's TLS credentials, loaded if they were not yet. On failure *ret_problem (if given) says
 * which file is missing or wrong. */
int board_host_tls(BoardHost *h, TlsCreds **ret, char **ret_problem);
/* Whether a board started now gets piemu's own QEMU: it is installed (checked at each Start, so that
 * installing or removing it needs no restart of piemud). */
bool board_host_piemu_qemu(const BoardHost *h);
