/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "watchers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"

#define THROTTLE_USEC 5000
/* An accuracy of 0 would mean sd-event's default of 250 ms, and a quiet guest's output
 * would then wait up to that long for its signal. */
#define FLUSH_ACCURACY_USEC 100

void watchers_init(Watchers *w, const char *path, const char *name) {
        *w = (Watchers){.path = path, .name = name};
}

sd_bus *watchers_bus(Watchers *w) {
        return w->bus;
}

void watchers_attach(Watchers *w, Serial *source) {
        w->source = source;
}

void watchers_detach(Watchers *w) {
        w->source = NULL;
        w->flush_timer = sd_event_source_disable_unref(w->flush_timer);
        w->throttle_timer = sd_event_source_disable_unref(w->throttle_timer);
        free(w->out);
        w->out = NULL;
        w->out_len = 0;
}

void watchers_done(Watchers *w) {
        watchers_detach(w);
        for (size_t i = 0; i < w->n_names; i++)
                free(w->names[i]);
        free(w->names);
        w->names = NULL;
        w->n_names = w->n_alloc = 0;
        w->bus = sd_bus_unref(w->bus);
}

static ssize_t find_name(Watchers *w, const char *name) {
        for (size_t i = 0; i < w->n_names; i++)
                if (streq(w->names[i], name))
                        return (ssize_t)i;
        return -1;
}

int watchers_add_name(Watchers *w, sd_bus *bus, const char *name) {
        char *copy;

        if (!bus || !name || name[0] != ':')
                return -EINVAL;
        if (w->bus && w->bus != bus)
                return -EXDEV;
        /* Repeated Watch() calls are one watch: a watcher gets every signal once. */
        if (find_name(w, name) >= 0)
                return 0;
        if (w->n_names == w->n_alloc) {
                size_t n = w->n_alloc ? w->n_alloc * 2 : 4;
                char **nn = realloc(w->names, n * sizeof *nn);
                if (!nn)
                        return -ENOMEM;
                w->names = nn;
                w->n_alloc = n;
        }
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        w->names[w->n_names++] = copy;
        if (!w->bus)
                w->bus = sd_bus_ref(bus);
        log_debug("board %s: %s watches", w->name, name);
        return 1;
}

int watchers_add(Watchers *w, sd_bus_message *m) {
        return watchers_add_name(w, sd_bus_message_get_bus(m), sd_bus_message_get_sender(m));
}

void watchers_forget(Watchers *w, const char *name) {
        ssize_t i = name ? find_name(w, name) : -1;
        if (i < 0)
                return;
        free(w->names[i]);
        w->names[i] = w->names[--w->n_names];
}

void watchers_remove(Watchers *w, sd_bus_message *m) {
        watchers_forget(w, sd_bus_message_get_sender(m));
}

unsigned watchers_count(Watchers *w) {
        return (unsigned)w->n_names;
}

int watchers_emit(Watchers *w, const char *member, const char *types, ...) {
        sd_bus *bus = watchers_bus(w);
        int r;

        if (!bus)
                return 0;
        for (size_t i = 0; i < w->n_names; i++) {
                const char *name = w->names[i];
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
                va_list ap;

                r = sd_bus_message_new_signal(bus, &s, w->path, "org.piemu.Board", member);
                if (r < 0)
                        return r;
                r = sd_bus_message_set_destination(s, name);
                if (r < 0)
                        return r;
                va_start(ap, types);
                if (streq(types, "ay")) {
                        const void *data = va_arg(ap, const void *);
                        size_t n = va_arg(ap, size_t);
                        r = sd_bus_message_append_array(s, 'y', data, n);
                } else
                        r = sd_bus_message_appendv(s, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
                r = sd_bus_send(bus, s, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_throttle(sd_event_source *s, uint64_t usec, void *userdata) {
        Watchers *w = userdata;
        sd_bus *bus = watchers_bus(w);
        uint64_t queued = 0;

        if (bus && sd_bus_get_n_queued_write(bus, &queued) >= 0 && queued > WATCHERS_BUS_QUEUE_MAX / 2) {
                sd_event_source_set_time_relative(s, THROTTLE_USEC);
                sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        w->throttle_timer = sd_event_source_disable_unref(w->throttle_timer);
        if (w->source)
                serial_set_reading(w->source, true);
        return 0;
}

static void flush_output(Watchers *w) {
        sd_bus *bus = watchers_bus(w);
        uint64_t queued = 0;
        int r;

        w->flush_timer = sd_event_source_disable_unref(w->flush_timer);
        if (w->out_len == 0)
                return;
        r = watchers_emit(w, "SerialOutput", "ay", w->out, w->out_len);
        if (r < 0)
                log_warning_errno(r, "board %s: cannot send SerialOutput: %m", w->name);
        else {
                w->n_signals++;
                w->n_bytes += w->out_len;
        }
        w->out_len = 0;

        if (bus && w->source && !w->throttle_timer && sd_bus_get_n_queued_write(bus, &queued) >= 0 &&
            queued > WATCHERS_BUS_QUEUE_MAX) {
                serial_set_reading(w->source, false);
                r = sd_event_add_time_relative(sd_bus_get_event(bus), &w->throttle_timer, CLOCK_MONOTONIC,
                                               THROTTLE_USEC, 1000, on_throttle, w);
                if (r < 0) /* without the timer we could never resume: keep reading instead */
                        serial_set_reading(w->source, true);
                else
                        w->n_pauses++;
        }
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        flush_output(userdata);
        return 0;
}

void watchers_push_output(Watchers *w, const uint8_t *data, size_t n) {
        sd_bus *bus;

        if (watchers_count(w) == 0)
                return;
        bus = watchers_bus(w);
        while (n > 0) {
                size_t room = WATCHERS_COALESCE_MAX - w->out_len, k = n < room ? n : room;
                if (!w->out) {
                        w->out = malloc(WATCHERS_COALESCE_MAX);
                        if (!w->out) {
                                log_oom();
                                return;
                        }
                }
                memcpy(w->out + w->out_len, data, k);
                w->out_len += k;
                data += k;
                n -= k;
                if (w->out_len == WATCHERS_COALESCE_MAX)
                        flush_output(w);
        }
        if (w->out_len > 0 && !w->flush_timer &&
            sd_event_add_time_relative(sd_bus_get_event(bus), &w->flush_timer, CLOCK_MONOTONIC,
                                       WATCHERS_COALESCE_USEC, FLUSH_ACCURACY_USEC, on_flush_timer, w) < 0)
                flush_output(w);
}
