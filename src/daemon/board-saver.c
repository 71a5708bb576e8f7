/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-saver.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board-job.h"
#include "board.h"
#include "log.h"
#include "vm.h"

struct SaveWaiter {
        board_saved_t done;
        void *userdata;
        SaveWaiter *next;
};

static void waiters_notify(Board *b, SaveWaiter *l, int r, const char *error) {
        while (l) {
                SaveWaiter *next = l->next;
                l->done(b, r, error, l->userdata);
                free(l);
                l = next;
        }
}

void board_saver_cancel(Board *b) {
        waiters_notify(b, TAKE_PTR(b->saver.waiters), -ESTALE, "the board is gone");
}

static void save_work(void *userdata) {
        Job *j = userdata;
        j->r = vm_set_metadata(j->conn, j->domain, j->metadata, &j->error);
}

static void save_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->saver.saving = false;
        if (j->r < 0)
                log_error("board %s: cannot save its settings: %s", b->config.name, strempty(j->error));
        else
                log_debug("board %s: settings saved", b->config.name);
        waiters_notify(b, TAKE_PTR(j->waiters), j->r, j->error);
        /* board_job_finished() starts the next save if the config changed meanwhile. */
}

static bool can_save_now(Board *b) {
        return !b->removed && !b->saver.saving && b->host->conn && b->op != BOARD_OP_DEFINE &&
               b->op != BOARD_OP_START;
}

/* Starts a save of the config as it is now, for everybody waiting. On failure nothing changed. */
static int save_start(Board *b) {
        _cleanup_free_ char *meta = NULL;
        Job *j = NULL;
        int r;

        assert(can_save_now(b));
        r = metadata_xml_build(&b->config, &meta);
        if (r < 0)
                return r;
        r = job_new(b, &j);
        if (r < 0)
                return r;
        if (asprintf(&j->metadata, "<board>%s</board>", meta) < 0) {
                j->metadata = NULL;
                job_free(j);
                return -ENOMEM;
        }
        r = job_submit(j, save_work, save_done);
        if (r < 0) {
                job_free(j);
                return r;
        }
        /* This write carries every change made so far, and answers everybody who waits for one. */
        j->waiters = TAKE_PTR(b->saver.waiters);
        b->saver.saving = true;
        b->saver.dirty = false;
        return 0;
}

/* A failure to even start fails the waiters, who would otherwise wait for ever. */
void board_saver_maybe(Board *b) {
        int r;

        if (!b->saver.dirty || !can_save_now(b))
                return;
        r = save_start(b);
        if (r < 0) {
                log_error_errno(r, "board %s: cannot save its settings: %m", b->config.name);
                waiters_notify(b, TAKE_PTR(b->saver.waiters), r, strerror(-r));
        }
}

int board_save_config(Board *b, board_saved_t done, void *userdata) {
        SaveWaiter *w = NULL, **tail;
        int r;

        if (b->removed)
                return -ESTALE;
        if (done) {
                w = calloc(1, sizeof *w);
                if (!w)
                        return -ENOMEM;
                *w = (SaveWaiter){.done = done, .userdata = userdata};
                for (tail = &b->saver.waiters; *tail; tail = &(*tail)->next)
                        ;
                *tail = w;
        }
        b->saver.dirty = true;
        if (!can_save_now(b)) {
                if (!b->host->conn)
                        log_warning(
                                "board %s: libvirtd is away; its changed settings are saved when it is back",
                                b->config.name);
                return 0; /* after the save or operation in flight, or the reconnect */
        }
        r = save_start(b);
        if (r < 0 && w) {
                /* Not started: the caller answers at once, so its waiter goes. */
                for (tail = &b->saver.waiters; *tail != w; tail = &(*tail)->next)
                        ;
                *tail = NULL;
                free(w);
        }
        return r;
}

void board_save_config_later(Board *b) {
        int r = board_save_config(b, NULL, NULL);
        if (r < 0)
                log_error_errno(r, "board %s: cannot save its settings: %m", b->config.name);
}
