/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        board_unref(j->board);
        if (j->conn)
                virConnectClose(j->conn); /* drops the job's reference */
        free(j->domain);
        free(j->volume);
        free(j->domain_xml);
        free(j->volume_xml);
        free(j->metadata);
        free(j->qmp_reply);
        sd_bus_message_unref(j->call);
        free(j->error);
        free(j);
        return NULL;
}

int job_new(Board *b, Job **ret) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        /* The job owns a reference on the board (its memory stays valid whatever happens to the
         * board meanwhile) and on the libvirt connection (piemud may replace it after a libvirtd
         * restart while the job runs). */
        j->board = board_ref(b);
        j->conn = b->host->conn;
        if (j->conn && virConnectRef(j->conn) < 0)
                j->conn = NULL;
        j->domain = strdup(b->domain);
        j->volume = strdup(b->volume);
        if (!j->domain || !j->volume) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* Every job's end passes here: its done callback, then what the board kept waiting. */
static void job_done(void *userdata) {
        Job *j = userdata;
        _cleanup_(board_unrefp) Board *b = board_ref(j->board);

        j->done(j); /* frees j */
        board_job_finished(b);
}

int job_submit(Job *j, worker_work_t work, worker_done_t done) {
        j->done = done;
        return worker_submit(j->board->host->workers, work, job_done, j);
}
