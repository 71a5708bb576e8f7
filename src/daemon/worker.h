/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

/* A small thread pool for the calls that block (libvirt RPCs, file copies). The work
 * function runs on a worker thread and must touch nothing owned by the event loop;
 * the done function runs later on the loop thread. This is how piemud keeps every
 * bus caller answered while one board sits inside libvirt. */
typedef struct WorkerPool WorkerPool;
typedef void (*worker_work_t)(void *userdata);
typedef void (*worker_done_t)(void *userdata);

int worker_pool_new(sd_event *e, unsigned n_threads, WorkerPool **ret);
/* Runs every queued job to its end and then its done callback, so no libvirt
 * operation is abandoned halfway at shutdown; work that done callbacks submit meanwhile
 * is run too, on the calling thread. */
WorkerPool *worker_pool_free(WorkerPool *p);
int worker_submit(WorkerPool *p, worker_work_t work, worker_done_t done, void *userdata);
unsigned worker_pool_pending(WorkerPool *p);
