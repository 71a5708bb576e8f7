/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Saving a board's config (its wires) to libvirt's metadata, off the loop.
 *
 * Not one of the board's operations (Board.op): a wire added while the board starts or stops need
 * not wait for that. One save per board at a time, so that an older copy never lands after a newer
 * one, and none beside a Start or a define, which write the whole definition from the config as it
 * was when they began. Changes made meanwhile are saved right after (dirty). */

#include <stdbool.h>

typedef struct Board Board;
typedef struct SaveWaiter SaveWaiter;

typedef struct BoardSaver {
        bool saving;         /* a save is in flight */
        bool dirty;          /* changed since the last save began */
        SaveWaiter *waiters; /* to be answered by the next save */
} BoardSaver;

/* The board's config changed: it is written to libvirt's metadata now, or after the save, Start or
 * define in flight, or once libvirtd is back. `done` (may be NULL) is called on the loop, never from
 * inside this call, when a write with this change is done or failed (-ESTALE: the board went first).
 * A negative return (and no call) when not even that could be arranged. */
typedef void (*board_saved_t)(Board *b, int r, const char *error, void *userdata);
int board_save_config(Board *b, board_saved_t done, void *userdata);
/* The same, for changes nobody waits for (errors are logged). */
void board_save_config_later(Board *b);

/* From the board's own paths (an operation ended, libvirtd is back): saves what waits, if it may now. */
void board_saver_maybe(Board *b);
/* The board is gone: whoever waits hears -ESTALE. */
void board_saver_cancel(Board *b);
