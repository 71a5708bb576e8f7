/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "serial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

struct Serial {
        int fd;
        sd_event_source *io;
        bool connected;
        bool reading;
        uint64_t batch_usec;          /* 0: read as soon as bytes arrive */
        sd_event_source *batch_timer; /* set while reads are held back */
        uint16_t port, local_port;
        uint8_t *wbuf;
        size_t wlen;
        serial_data_cb on_data;
        serial_state_cb on_state;
        void *userdata;
};

static void update_events(Serial *s) {
        uint32_t ev = 0;
        if (!s->connected)
                ev = EPOLLOUT;
        else {
                if (s->reading && !s->batch_timer)
                        ev |= EPOLLIN;
                if (s->wlen > 0)
                        ev |= EPOLLOUT;
        }
        sd_event_source_set_io_events(s->io, ev);
        sd_event_source_set_enabled(s->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
}

static void closed(Serial *s, int error) {
        s->batch_timer = sd_event_source_disable_unref(s->batch_timer);
        s->io = sd_event_source_disable_unref(s->io);
        s->fd = safe_close(s->fd);
        s->connected = false;
        if (s->on_state)
                s->on_state(s, error, s->userdata);
}

static int flush_writes(Serial *s) {
        while (s->wlen > 0) {
                ssize_t n = send(s->fd, s->wbuf, s->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return negative_errno();
                }
                memmove(s->wbuf, s->wbuf + n, s->wlen - (size_t)n);
                s->wlen -= (size_t)n;
        }
        return 0;
}

/* sd-event's default accuracy (0) is 250 ms: far too loose for a pause of a millisecond. */
#define TIMER_ACCURACY_USEC 100

static int on_batch_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Serial *s = userdata;
        s->batch_timer = sd_event_source_disable_unref(s->batch_timer);
        if (s->io)
                update_events(s);
        return 0;
}

/* After a read, leave the socket alone for batch_usec: a guest UART hands QEMU one byte at
 * a time and QEMU sends each at once, so a streaming guest would otherwise wake us for
 * every few bytes. The first bytes after a quiet spell are still read at once. */
static void hold_back_reads(Serial *s) {
        if (s->batch_usec == 0 || s->batch_timer)
                return;
        if (sd_event_add_time_relative(sd_event_source_get_event(s->io), &s->batch_timer, CLOCK_MONOTONIC,
                                       s->batch_usec, TIMER_ACCURACY_USEC, on_batch_timer, s) < 0)
                s->batch_timer = NULL; /* reading on without a pause is only slower */
}

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Serial *s = userdata;
        uint8_t buf[65536];

        if (!s->connected) {
                int err = 0;
                socklen_t l = sizeof err;
                struct sockaddr_in a;
                socklen_t al = sizeof a;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        err = errno;
                if (err != 0) {
                        closed(s, -err);
                        return 0;
                }
                if (getsockname(fd, (struct sockaddr *)&a, &al) >= 0)
                        s->local_port = ntohs(a.sin_port);
                s->connected = true;
                update_events(s);
                if (s->on_state)
                        s->on_state(s, 0, s->userdata);
                return 0;
        }

        if (revents & EPOLLOUT) {
                int r = flush_writes(s);
                if (r < 0) {
                        closed(s, r);
                        return 0;
                }
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                /* One read per wakeup: a flooding guest cannot starve other boards' sources. */
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0) {
                        closed(s, -ECONNRESET);
                        return 0;
                }
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                                closed(s, negative_errno());
                                return 0;
                        }
                } else {
                        /* QEMU's socket chardev keeps Nagle on: with our ACKs delayed, every small reply
                         * (a GPIO line, a prompt) would wait ~40 ms. Quick ACKs are not sticky in Linux,
                         * so they are re-armed after every read. */
                        int one = 1;
                        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
                        hold_back_reads(s);
                        if (s->on_data)
                                s->on_data(s, buf, (size_t)n, s->userdata);
                }
                /* on_data may have freed s via its owner: callers never free from on_data. */
        }
        if (s->io)
                update_events(s);
        return 0;
}

int serial_connect(sd_event *e, uint16_t port, serial_data_cb on_data, serial_state_cb on_state,
                   void *userdata, Serial **ret) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        Serial *s;
        int r, one = 1;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        *s = (Serial){.fd = -EBADF,
                      .port = port,
                      .reading = true,
                      .on_data = on_data,
                      .on_state = on_state,
                      .userdata = userdata};
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0) {
                r = negative_errno();
                goto fail;
        }
        /* Pin changes are single short lines: don't let Nagle hold them back. */
        (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(s->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &s->io, s->fd, EPOLLOUT, on_io, s);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(s->io, "serial");
        *ret = s;
        return 0;
fail:
        serial_free(s);
        return r;
}

Serial *serial_free(Serial *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->batch_timer);
        sd_event_source_disable_unref(s->io);
        safe_close(s->fd);
        free(s->wbuf);
        free(s);
        return NULL;
}

uint16_t serial_local_port(const Serial *s) {
        return s ? s->local_port : 0;
}

uint16_t serial_remote_port(const Serial *s) {
        return s ? s->port : 0;
}

int serial_write(Serial *s, const void *data, size_t n) {
        uint8_t *nb;
        int r;

        if (!s || !s->connected)
                return -ENOTCONN;
        if (n == 0)
                return 0;
        if (s->wlen + n > SERIAL_WRITE_MAX)
                return -ENOBUFS;
        nb = realloc(s->wbuf, s->wlen + n);
        if (!nb)
                return -ENOMEM;
        s->wbuf = nb;
        memcpy(s->wbuf + s->wlen, data, n);
        s->wlen += n;
        /* Try at once: most writes go out without a loop iteration, which keeps SetPin latency low. */
        r = flush_writes(s);
        if (r < 0)
                return r;
        update_events(s);
        return 0;
}

void serial_set_batch_usec(Serial *s, uint64_t usec) {
        if (s)
                s->batch_usec = usec;
}

int serial_set_reading(Serial *s, bool on) {
        if (!s || !s->io)
                return -ENOTCONN;
        s->reading = on;
        update_events(s);
        return 0;
}
