/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Work a board hands to a worker thread (libvirt calls): a self-contained copy, so that the thread
 * touches nothing the loop owns. Internal to the board's files. */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include <libvirt/libvirt.h>

#include "board-saver.h"
#include "macro.h"
#include "worker.h"

typedef struct Job {
        Board *board;
        virConnectPtr conn;
        char *domain;
        char *volume;
        char *domain_xml;
        char *volume_xml;
        bool fresh_volume;
        bool delete_volume;
        bool undefine;
        worker_done_t done;
        bool destroyed; /* cleanup_work cut the power (the domain is not running any more) */
        bool inactive;  /* refresh_work: libvirt says the domain is not running */
        bool inject_failure;
        char *metadata;       /* save_work: piemu's metadata element; sensor_work: the QMP command */
        char *qmp_reply;      /* sensor_work: QEMU's answer */
        sd_bus_message *call; /* sensor_done: answered when QEMU is */
        SaveWaiter *waiters;  /* save_done: who waits for this save */
        int r;
        char *error;
        char uuid[VIR_UUID_STRING_BUFLEN];
} Job;

/* The job holds a reference on the board and on the libvirt connection (NULL while libvirtd is away). */
int job_new(Board *b, Job **ret);
Job *job_free(Job *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);
/* Runs work on a worker, then j->done = done on the loop, then what the board kept waiting
 * (board_job_finished). Not a board operation: the caller sets Board.op if it is one. */
int job_submit(Job *j, worker_work_t work, worker_done_t done);
/* board.c: after every job's done callback. */
void board_job_finished(Board *b);
