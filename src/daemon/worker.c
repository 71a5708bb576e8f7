/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

typedef struct Job {
        worker_work_t work;
        worker_done_t done;
        void *userdata;
        struct Job *next;
} Job;

struct WorkerPool {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Job *queue_head, *queue_tail;
        Job *done_head, *done_tail;
        pthread_t *threads;
        unsigned n_threads;
        unsigned pending;
        bool quit;
        int efd;
        sd_event_source *source;
};

static void push(Job **head, Job **tail, Job *j) {
        j->next = NULL;
        if (*tail)
                (*tail)->next = j;
        else
                *head = j;
        *tail = j;
}

static Job *pop(Job **head, Job **tail) {
        Job *j = *head;
        if (j) {
                *head = j->next;
                if (!*head)
                        *tail = NULL;
        }
        return j;
}

static void *worker_main(void *arg) {
        WorkerPool *p = arg;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                Job *j;
                while (!p->quit && !p->queue_head)
                        pthread_cond_wait(&p->cond, &p->lock);
                /* Drain the queue before quitting: a queued libvirt job half-done at exit would leak a
                 * domain. */
                if (!p->queue_head)
                        break;
                j = pop(&p->queue_head, &p->queue_tail);
                pthread_mutex_unlock(&p->lock);

                j->work(j->userdata);

                pthread_mutex_lock(&p->lock);
                push(&p->done_head, &p->done_tail, j);
                uint64_t one = 1;
                /* An eventfd write cannot block and only fails on overflow, which 2^64 jobs won't reach. */
                (void)!write(p->efd, &one, sizeof one);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static void dispatch_done(WorkerPool *p) {
        for (;;) {
                Job *j;
                pthread_mutex_lock(&p->lock);
                j = pop(&p->done_head, &p->done_tail);
                if (j)
                        p->pending--;
                pthread_mutex_unlock(&p->lock);
                if (!j)
                        return;
                if (j->done)
                        j->done(j->userdata);
                free(j);
        }
}

static int on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WorkerPool *p = userdata;
        uint64_t v;

        (void)!read(fd, &v, sizeof v);
        dispatch_done(p);
        return 0;
}

int worker_pool_new(sd_event *e, unsigned n_threads, WorkerPool **ret) {
        WorkerPool *p;
        int r;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &p->source, p->efd, EPOLLIN, on_eventfd, p);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(p->source, "worker-done");
        p->threads = calloc(n_threads, sizeof(pthread_t));
        if (!p->threads) {
                r = -ENOMEM;
                goto fail;
        }
        for (unsigned i = 0; i < n_threads; i++) {
                r = -pthread_create(&p->threads[i], NULL, worker_main, p);
                if (r < 0)
                        goto fail;
                p->n_threads++;
        }
        *ret = p;
        return 0;
fail:
        worker_pool_free(p);
        return r;
}

WorkerPool *worker_pool_free(WorkerPool *p) {
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->quit = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        /* Done callbacks may submit more work (a failed Start submits its cleanup): the threads are
         * gone, so run it here, to the end, until nothing is left. No job is ever dropped. */
        for (;;) {
                Job *j;
                dispatch_done(p);
                pthread_mutex_lock(&p->lock);
                j = pop(&p->queue_head, &p->queue_tail);
                pthread_mutex_unlock(&p->lock);
                if (!j)
                        break;
                j->work(j->userdata);
                pthread_mutex_lock(&p->lock);
                push(&p->done_head, &p->done_tail, j);
                pthread_mutex_unlock(&p->lock);
        }
        sd_event_source_disable_unref(p->source);
        safe_close(p->efd);
        free(p->threads);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p);
        return NULL;
}

int worker_submit(WorkerPool *p, worker_work_t work, worker_done_t done, void *userdata) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->work = work;
        j->done = done;
        j->userdata = userdata;
        pthread_mutex_lock(&p->lock);
        push(&p->queue_head, &p->queue_tail, j);
        p->pending++;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return 0;
}

unsigned worker_pool_pending(WorkerPool *p) {
        unsigned n;
        pthread_mutex_lock(&p->lock);
        n = p->pending;
        pthread_mutex_unlock(&p->lock);
        return n;
}
