/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "virt-event.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "log.h"
#include "macro.h"

typedef struct Watch {
        int id;
        bool is_timeout;
        /* handle */
        int fd;
        int events; /* VIR_EVENT_HANDLE_* wanted */
        virEventHandleCallback hcb;
        /* timeout */
        int interval; /* ms, -1 disabled */
        virEventTimeoutCallback tcb;
        void *opaque;
        virFreeCallback ff;
        bool removed;
        bool dirty;
        sd_event_source *source; /* loop thread only */
} Watch;

static struct {
        pthread_mutex_t lock;
        sd_event *event;
        pthread_t loop_thread;
        int wake_fd;
        sd_event_source *wake_source;
        Watch **watches;
        size_t n_watches, n_alloc;
        int next_id;
} bridge = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .wake_fd = -EBADF,
};

static uint32_t to_epoll(int events) {
        uint32_t r = 0;
        if (events & VIR_EVENT_HANDLE_READABLE)
                r |= EPOLLIN;
        if (events & VIR_EVENT_HANDLE_WRITABLE)
                r |= EPOLLOUT;
        return r;
}

static int from_epoll(uint32_t revents) {
        int r = 0;
        if (revents & EPOLLIN)
                r |= VIR_EVENT_HANDLE_READABLE;
        if (revents & EPOLLOUT)
                r |= VIR_EVENT_HANDLE_WRITABLE;
        if (revents & EPOLLERR)
                r |= VIR_EVENT_HANDLE_ERROR;
        if (revents & EPOLLHUP)
                r |= VIR_EVENT_HANDLE_HANGUP;
        return r;
}

static Watch *find_locked(int id) {
        for (size_t i = 0; i < bridge.n_watches; i++)
                if (bridge.watches[i]->id == id)
                        return bridge.watches[i];
        return NULL;
}

static void wake_loop(void) {
        uint64_t one = 1;
        (void)!write(bridge.wake_fd, &one, sizeof one);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        int id = (int)(intptr_t)userdata;
        virEventHandleCallback cb = NULL;
        void *opaque = NULL;

        pthread_mutex_lock(&bridge.lock);
        Watch *w = find_locked(id);
        if (w && !w->removed && w->events != 0) {
                cb = w->hcb;
                opaque = w->opaque;
        }
        pthread_mutex_unlock(&bridge.lock);
        if (cb)
                cb(id, fd, from_epoll(revents), opaque);
        return 0;
}

static int on_time(sd_event_source *s, uint64_t usec, void *userdata) {
        int id = (int)(intptr_t)userdata;
        virEventTimeoutCallback cb = NULL;
        void *opaque = NULL;
        int interval = -1;

        pthread_mutex_lock(&bridge.lock);
        Watch *w = find_locked(id);
        if (w && !w->removed && w->interval >= 0) {
                cb = w->tcb;
                opaque = w->opaque;
                interval = w->interval;
        }
        pthread_mutex_unlock(&bridge.lock);
        if (interval >= 0) {
                /* libvirt timers repeat until changed; re-arm before calling out, the callback may update
                 * it. */
                uint64_t now;
                sd_event_now(bridge.event, CLOCK_MONOTONIC, &now);
                sd_event_source_set_time(s, now + (uint64_t)interval * 1000);
                sd_event_source_set_enabled(s, SD_EVENT_ON);
        }
        if (cb)
                cb(id, opaque);
        return 0;
}

/* Loop thread only. Makes the sd-event sources match what libvirt asked for and
 * collects the watches to free (their ff must run without our lock held). */
static void apply_pending(void) {
        Watch **dead = NULL;
        size_t n_dead = 0;

        pthread_mutex_lock(&bridge.lock);
        for (size_t i = 0; i < bridge.n_watches;) {
                Watch *w = bridge.watches[i];
                if (!w->dirty) {
                        i++;
                        continue;
                }
                w->dirty = false;
                if (w->removed) {
                        w->source = sd_event_source_disable_unref(w->source);
                        Watch **nd = realloc(dead, (n_dead + 1) * sizeof(Watch *));
                        if (!nd) {
                                /* Keep it for the next pass rather than leak or call ff under the lock. */
                                w->dirty = true;
                                i++;
                                continue;
                        }
                        dead = nd;
                        dead[n_dead++] = w;
                        bridge.watches[i] = bridge.watches[--bridge.n_watches];
                        continue;
                }
                if (!w->is_timeout) {
                        int r = 0;
                        if (!w->source)
                                r = sd_event_add_io(bridge.event, &w->source, w->fd, to_epoll(w->events),
                                                    on_io, (void *)(intptr_t)w->id);
                        else if (w->events)
                                r = sd_event_source_set_io_events(w->source, to_epoll(w->events));
                        if (r >= 0 && w->source)
                                r = sd_event_source_set_enabled(w->source,
                                                                w->events ? SD_EVENT_ON : SD_EVENT_OFF);
                        /* -ESTALE: the loop has finished and libvirt is closing its connection. */
                        if (r == -ESTALE)
                                log_debug_errno(r, "Not watching libvirt fd %d, the loop has ended", w->fd);
                        else if (r < 0)
                                log_error_errno(r, "Failed to watch libvirt fd %d: %m", w->fd);
                } else {
                        uint64_t now;
                        int r = 0;
                        sd_event_now(bridge.event, CLOCK_MONOTONIC, &now);
                        if (!w->source)
                                r = sd_event_add_time(bridge.event, &w->source, CLOCK_MONOTONIC, UINT64_MAX,
                                                      1000, on_time, (void *)(intptr_t)w->id);
                        if (r >= 0 && w->interval >= 0) {
                                sd_event_source_set_time(w->source, now + (uint64_t)w->interval * 1000);
                                r = sd_event_source_set_enabled(w->source, SD_EVENT_ON);
                        } else if (r >= 0)
                                r = sd_event_source_set_enabled(w->source, SD_EVENT_OFF);
                        if (r == -ESTALE)
                                log_debug_errno(r, "Not arming a libvirt timer, the loop has ended");
                        else if (r < 0)
                                log_error_errno(r, "Failed to arm libvirt timer: %m");
                }
                i++;
        }
        pthread_mutex_unlock(&bridge.lock);

        for (size_t i = 0; i < n_dead; i++) {
                if (dead[i]->ff)
                        dead[i]->ff(dead[i]->opaque);
                free(dead[i]);
        }
        free(dead);
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        (void)!read(fd, &v, sizeof v);
        apply_pending();
        return 0;
}

/* Called with the lock held after a change. Removal is always deferred (libvirt forbids calling ff
 * from inside the remove hook); other changes apply at once on the loop thread. */
static void changed_locked(Watch *w, bool *apply_now) {
        w->dirty = true;
        *apply_now = !w->removed && pthread_equal(pthread_self(), bridge.loop_thread);
        if (!*apply_now)
                wake_loop();
}

static int add_watch(Watch *w) {
        bool now;

        pthread_mutex_lock(&bridge.lock);
        if (bridge.n_watches == bridge.n_alloc) {
                size_t n = bridge.n_alloc ? bridge.n_alloc * 2 : 16;
                Watch **nw = realloc(bridge.watches, n * sizeof(Watch *));
                if (!nw) {
                        pthread_mutex_unlock(&bridge.lock);
                        free(w);
                        return -1; /* libvirt's contract: -1 on failure */
                }
                bridge.watches = nw;
                bridge.n_alloc = n;
        }
        w->id = ++bridge.next_id;
        bridge.watches[bridge.n_watches++] = w;
        int id = w->id;
        changed_locked(w, &now);
        pthread_mutex_unlock(&bridge.lock);
        if (now)
                apply_pending();
        return id;
}

static int virt_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
        Watch *w = calloc(1, sizeof *w);
        if (!w)
                return -1;
        *w = (Watch){.fd = fd, .events = events, .hcb = cb, .opaque = opaque, .ff = ff};
        return add_watch(w);
}

static int virt_add_timeout(int interval, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
        Watch *w = calloc(1, sizeof *w);
        if (!w)
                return -1;
        *w = (Watch){.is_timeout = true, .interval = interval, .tcb = cb, .opaque = opaque, .ff = ff};
        return add_watch(w);
}

static void update(int id, bool is_timeout, int value) {
        bool now = false;
        pthread_mutex_lock(&bridge.lock);
        Watch *w = find_locked(id);
        if (w && !w->removed && w->is_timeout == is_timeout) {
                if (is_timeout)
                        w->interval = value;
                else
                        w->events = value;
                changed_locked(w, &now);
        }
        pthread_mutex_unlock(&bridge.lock);
        if (now)
                apply_pending();
}

static void virt_update_handle(int id, int events) {
        update(id, false, events);
}

static void virt_update_timeout(int id, int interval) {
        update(id, true, interval);
}

static int remove_watch(int id, bool is_timeout) {
        bool now;
        int r = -1;
        pthread_mutex_lock(&bridge.lock);
        Watch *w = find_locked(id);
        if (w && !w->removed && w->is_timeout == is_timeout) {
                w->removed = true;
                changed_locked(w, &now);
                r = 0;
        }
        pthread_mutex_unlock(&bridge.lock);
        return r;
}

static int virt_remove_handle(int id) {
        return remove_watch(id, false);
}

static int virt_remove_timeout(int id) {
        return remove_watch(id, true);
}

int virt_event_register(sd_event *e) {
        int r;

        bridge.event = sd_event_ref(e);
        bridge.loop_thread = pthread_self();
        bridge.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (bridge.wake_fd < 0)
                return negative_errno();
        r = sd_event_add_io(e, &bridge.wake_source, bridge.wake_fd, EPOLLIN, on_wake, NULL);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(bridge.wake_source, "libvirt-bridge");
        virEventRegisterImpl(virt_add_handle, virt_update_handle, virt_remove_handle, virt_add_timeout,
                             virt_update_timeout, virt_remove_timeout);
        return 0;
}

void virt_event_unregister(void) {
        /* Called after the libvirt connection is closed: whatever remains is freed without callbacks
         * into libvirt. */
        apply_pending();
        pthread_mutex_lock(&bridge.lock);
        for (size_t i = 0; i < bridge.n_watches; i++) {
                sd_event_source_disable_unref(bridge.watches[i]->source);
                free(bridge.watches[i]);
        }
        free(bridge.watches);
        bridge.watches = NULL;
        bridge.n_watches = bridge.n_alloc = 0;
        pthread_mutex_unlock(&bridge.lock);
        bridge.wake_source = sd_event_source_disable_unref(bridge.wake_source);
        bridge.wake_fd = safe_close(bridge.wake_fd);
        bridge.event = sd_event_unref(bridge.event);
}
