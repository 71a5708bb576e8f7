/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "serial.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdstore.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "sockdiag.h"

/* A connection accepted on the listener whose TLS handshake is not done yet. */
typedef struct Pending {
        Serial *serial;
        int fd;
        gnutls_session_t tls;
        sd_event_source *io, *timer;
        uint16_t peer_port;
        struct Pending *prev, *next;
} Pending;

struct Serial {
        sd_event *event;
        SerialCallbacks cb;

        /* TLS server mode: the listener and handshakes in progress. */
        TlsCreds *creds; /* NULL: a plain client line (boards from before TLS lines) */
        uid_t peer_uid;
        int listen_fd;
        sd_event_source *listen_io, *rebind_timer;
        Pending *pending;
        unsigned n_pending;
        uint64_t last_report_usec; /* start of the current report interval */
        unsigned n_reported, suppressed;
        bool holder_reported;

        /* The connection to QEMU. */
        uint16_t port;
        int fd;
        gnutls_session_t tls; /* NULL on a plain line */
        sd_event_source *io;
        sd_event_source *more; /* runs reads gnutls has buffered already (epoll cannot see them) */
        bool connected;
        bool reading;
        uint64_t batch_usec;          /* 0: read as soon as bytes arrive */
        sd_event_source *batch_timer; /* set while reads are held back */
        uint8_t *wbuf;
        size_t wlen;
        size_t inflight; /* bytes gnutls_record_send() took and must be offered again (E_AGAIN) */
        /* Raw TLS bytes read from the socket, not yet taken by gnutls. QEMU sends every UART byte
         * as a record of its own; gnutls' own reads would cost two syscalls per record. */
        uint8_t *rbuf;
        size_t rlen, rpos;
};

#define SERIAL_RBUF_SIZE (64U * 1024U)

/* sd-event's default accuracy (0) is 250 ms: far too loose for a pause of a millisecond. */
#define TIMER_ACCURACY_USEC 100

static uint64_t loop_now_usec(const Serial *s) {
        uint64_t t = 0;
        (void)sd_event_now(s->event, CLOCK_MONOTONIC, &t);
        return t;
}

/* Every stranger is named in the log, up to a burst per interval: a connection flood must not
 * become a log flood. The next report after a quiet spell says how many went unnamed. */
static void report_intruder(Serial *s, uid_t uid, const char *what) {
        uint64_t now = loop_now_usec(s);
        if (s->last_report_usec == 0 || now - s->last_report_usec >= SERIAL_INTRUDER_REPORT_USEC) {
                s->last_report_usec = now;
                s->n_reported = 0;
        }
        if (s->n_reported >= SERIAL_INTRUDER_REPORT_BURST) {
                s->suppressed++;
                return;
        }
        s->n_reported++;
        if (s->cb.on_intruder)
                s->cb.on_intruder(s, uid, what, s->suppressed, s->cb.userdata);
        s->suppressed = 0;
}

/* ---- the connection to QEMU ---- */

static bool tls_has_buffered(const Serial *s) {
        return s->tls && (gnutls_record_check_pending(s->tls) > 0 || s->rpos < s->rlen);
}

/* gnutls' transport for QEMU's connection: one recv() fills our buffer with as many records as
 * have arrived, and gnutls takes them from there. */
static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len) {
        Serial *s = ptr;
        size_t k;

        if (s->rpos == s->rlen) {
                ssize_t n = recv(s->fd, s->rbuf, SERIAL_RBUF_SIZE, MSG_DONTWAIT);
                if (n < 0) {
                        gnutls_transport_set_errno(s->tls, errno);
                        return -1;
                }
                if (n == 0)
                        return 0;
                s->rpos = 0;
                s->rlen = (size_t)n;
        }
        k = s->rlen - s->rpos < len ? s->rlen - s->rpos : len;
        memcpy(data, s->rbuf + s->rpos, k);
        s->rpos += k;
        return (ssize_t)k;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
        Serial *s = ptr;
        ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
                gnutls_transport_set_errno(s->tls, errno);
        return n;
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms) {
        Serial *s = ptr;
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (s->rpos < s->rlen)
                return 1;
        /* Only ever asked without waiting: the loop does the waiting. */
        return poll(&p, 1, 0);
}

static void update_events(Serial *s) {
        uint32_t ev = 0;
        bool read_now;

        if (!s->io)
                return;
        read_now = s->connected && s->reading && !s->batch_timer;
        if (!s->connected)
                ev = EPOLLOUT; /* a plain client waiting for connect() */
        else {
                if (read_now)
                        ev |= EPOLLIN;
                if (s->wlen > 0 || s->inflight > 0)
                        ev |= EPOLLOUT;
        }
        sd_event_source_set_io_events(s->io, ev);
        sd_event_source_set_enabled(s->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
        if (s->more)
                sd_event_source_set_enabled(s->more, read_now && tls_has_buffered(s) ? SD_EVENT_ONESHOT
                                                                                     : SD_EVENT_OFF);
}

static void drop_connection(Serial *s) {
        s->batch_timer = sd_event_source_disable_unref(s->batch_timer);
        s->io = sd_event_source_disable_unref(s->io);
        s->more = sd_event_source_disable_unref(s->more);
        if (s->tls) {
                /* Best effort: tell QEMU we are done, without waiting for it. */
                if (s->connected)
                        (void)gnutls_bye(s->tls, GNUTLS_SHUT_WR);
                gnutls_deinit(s->tls);
                s->tls = NULL;
        }
        s->fd = safe_close(s->fd);
        s->rpos = s->rlen = 0;
        s->connected = false;
        /* What gnutls took is gone with the session. The rest waits for QEMU's next connection on a
         * listening line (bytes typed during a piemud restart still arrive); a plain line is dead. */
        if (s->inflight > 0) {
                memmove(s->wbuf, s->wbuf + s->inflight, s->wlen - s->inflight);
                s->wlen -= s->inflight;
                s->inflight = 0;
        }
        if (!s->creds)
                s->wlen = 0;
}

static void closed(Serial *s, int error) {
        drop_connection(s);
        if (s->cb.on_state)
                s->cb.on_state(s, error, s->cb.userdata);
}

static int flush_writes(Serial *s) {
        while (s->wlen > 0) {
                ssize_t n;
                if (s->tls) {
                        /* gnutls wants the very same buffer again after E_AGAIN. */
                        size_t chunk = s->inflight ?: (s->wlen < 16384 ? s->wlen : 16384);
                        n = gnutls_record_send(s->tls, s->wbuf, chunk);
                        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                                s->inflight = chunk;
                                break;
                        }
                        s->inflight = 0;
                        if (n < 0)
                                return -EPIPE;
                } else {
                        n = send(s->fd, s->wbuf, s->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        break;
                                return negative_errno();
                        }
                }
                memmove(s->wbuf, s->wbuf + n, s->wlen - (size_t)n);
                s->wlen -= (size_t)n;
        }
        return 0;
}

static int on_batch_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Serial *s = userdata;
        s->batch_timer = sd_event_source_disable_unref(s->batch_timer);
        update_events(s);
        return 0;
}

/* After a read, leave the socket alone for batch_usec: a guest UART hands QEMU one byte at
 * a time and QEMU sends each at once, so a streaming guest would otherwise wake us for
 * every few bytes. The first bytes after a quiet spell are still read at once. */
static void hold_back_reads(Serial *s) {
        if (s->batch_usec == 0 || s->batch_timer)
                return;
        if (sd_event_add_time_relative(s->event, &s->batch_timer, CLOCK_MONOTONIC, s->batch_usec,
                                       TIMER_ACCURACY_USEC, on_batch_timer, s) < 0)
                s->batch_timer = NULL; /* reading on without a pause is only slower */
}

/* One read per wakeup: a flooding guest cannot starve other boards' sources. Returns false if the
 * connection closed: then `s` may be gone (a plain line's owner frees it from on_state). */
static bool read_once(Serial *s) {
        uint8_t buf[65536];
        ssize_t n;

        if (s->tls) {
                /* A TLS record holds at most 16 KiB: gather up to a buffer's worth of them, as one
                 * recv() would on a plain line. */
                size_t got = 0;
                while (got < sizeof buf) {
                        ssize_t k = gnutls_record_recv(s->tls, buf + got, sizeof buf - got);
                        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
                                break;
                        if (k <= 0) {
                                if (k < 0)
                                        log_debug("serial port %u: TLS read failed: %s", s->port,
                                                  gnutls_strerror((int)k));
                                if (got > 0 && s->cb.on_data)
                                        s->cb.on_data(s, buf, got, s->cb.userdata);
                                closed(s, k == 0 ? -ECONNRESET : -EPROTO);
                                return false;
                        }
                        got += (size_t)k;
                }
                if (got == 0)
                        return true;
                n = (ssize_t)got;
        } else {
                n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0) {
                        closed(s, -ECONNRESET);
                        return false;
                }
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                                closed(s, negative_errno());
                                return false;
                        }
                        return true;
                }
        }
        /* QEMU's socket chardev keeps Nagle on: with our ACKs delayed, every small reply (a GPIO
         * line, a prompt) would wait ~40 ms. Quick ACKs are not sticky in Linux, so they are
         * re-armed after every read. */
        int one = 1;
        (void)setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        hold_back_reads(s);
        if (s->cb.on_data)
                s->cb.on_data(s, buf, (size_t)n, s->cb.userdata);
        /* on_data never frees s: owners free lines from on_state only. */
        return true;
}

static int on_more(sd_event_source *src, void *userdata) {
        Serial *s = userdata;
        if (s->connected && s->reading && !s->batch_timer && !read_once(s))
                return 0;
        update_events(s);
        return 0;
}

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Serial *s = userdata;

        if (!s->connected) {
                /* A plain client's connect() finished. */
                int err = 0;
                socklen_t l = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        err = errno;
                if (err != 0) {
                        closed(s, -err);
                        return 0;
                }
                s->connected = true;
                update_events(s);
                if (s->cb.on_state)
                        s->cb.on_state(s, 0, s->cb.userdata);
                return 0;
        }
        if (revents & EPOLLOUT) {
                int r = flush_writes(s);
                if (r < 0) {
                        closed(s, r);
                        return 0;
                }
        }
        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !read_once(s))
                return 0; /* closed, and s may be gone */
        update_events(s);
        return 0;
}

static int adopt_connection(Serial *s, int fd, gnutls_session_t tls) {
        int r;

        assert(!s->io && s->fd < 0);
        s->fd = fd;
        s->tls = tls;
        s->rpos = s->rlen = 0;
        if (tls) {
                if (!s->rbuf && !(s->rbuf = malloc(SERIAL_RBUF_SIZE))) {
                        drop_connection(s);
                        return -ENOMEM;
                }
                gnutls_transport_set_ptr(tls, s);
                gnutls_transport_set_pull_function(tls, tls_pull);
                gnutls_transport_set_pull_timeout_function(tls, tls_pull_timeout);
                gnutls_transport_set_push_function(tls, tls_push);
        }
        r = sd_event_add_io(s->event, &s->io, fd, EPOLLIN, on_io, s);
        if (r >= 0 && tls)
                r = sd_event_add_defer(s->event, &s->more, on_more, s);
        if (r < 0) {
                drop_connection(s);
                return r;
        }
        (void)sd_event_source_set_description(s->io, "serial");
        if (s->more)
                (void)sd_event_source_set_enabled(s->more, SD_EVENT_OFF);
        s->connected = true;
        /* Whatever was written while QEMU was away goes out now. */
        if (s->wlen > 0 && flush_writes(s) < 0) {
                drop_connection(s);
                return -EPIPE;
        }
        update_events(s);
        return 0;
}

/* ---- the listener and handshakes ---- */

static void pending_free(Pending *p) {
        Serial *s;
        if (!p)
                return;
        s = p->serial;
        LIST_REMOVE(s->pending, p);
        s->n_pending--;
        sd_event_source_disable_unref(p->io);
        sd_event_source_disable_unref(p->timer);
        if (p->tls)
                gnutls_deinit(p->tls);
        safe_close(p->fd);
        free(p);
}

static uid_t peer_owner(const Serial *s, uint16_t peer_port) {
        uid_t uid;
        if (sockdiag_tcp_owner(peer_port, s->port, &uid) < 0)
                return (uid_t)-1;
        return uid;
}

static void pending_reject(Pending *p, const char *what) {
        Serial *s = p->serial;
        uid_t uid = peer_owner(s, p->peer_port);
        pending_free(p);
        report_intruder(s, uid, what);
}

static void pending_promote(Pending *p) {
        Serial *s = p->serial;
        _cleanup_free_ char *problem = NULL;
        uid_t uid;
        int fd, r;
        gnutls_session_t tls;

        if (tls_session_verify_peer(p->tls, &problem) < 0) {
                _cleanup_free_ char *what = NULL;
                if (asprintf(&what, "presented a certificate that does not verify (%s)", strempty(problem)) <
                    0)
                        what = NULL;
                pending_reject(p, what ?: "presented a certificate that does not verify");
                return;
        }
        uid = peer_owner(s, p->peer_port);
        /* The certificate's key is readable by QEMU's user; a process of any other user holding a
         * copy is still not QEMU. */
        if (s->peer_uid != (uid_t)-1 && uid != s->peer_uid && uid != 0) {
                pending_reject(p, "completed a TLS handshake but does not run as QEMU's user");
                return;
        }
        if (s->connected) {
                /* QEMU has one connection per line; a second authenticated one is not ours to take. */
                pending_reject(p, "connected while QEMU's connection was up");
                return;
        }
        fd = TAKE_FD(p->fd);
        tls = TAKE_PTR(p->tls);
        pending_free(p);
        r = adopt_connection(s, fd, tls);
        if (r < 0) {
                log_warning_errno(r, "serial port %u: cannot take QEMU's connection: %m", s->port);
                return;
        }
        log_debug("serial port %u: QEMU connected (uid %d)", s->port, (int)uid);
        if (s->cb.on_state)
                s->cb.on_state(s, 0, s->cb.userdata);
}

static int on_pending_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Pending *p = userdata;
        int r = gnutls_handshake(p->tls);

        if (r == GNUTLS_E_SUCCESS) {
                pending_promote(p);
                return 0;
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                (void)sd_event_source_set_io_events(p->io, gnutls_record_get_direction(p->tls) ? EPOLLOUT
                                                                                               : EPOLLIN);
                return 0;
        }
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "failed the TLS handshake (%s)", gnutls_strerror(r)) < 0)
                what = NULL;
        pending_reject(p, what ?: "failed the TLS handshake");
        return 0;
}

static int on_pending_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Pending *p = userdata;
        Serial *s = p->serial;
        uid_t uid;

        if (s->peer_uid != (uid_t)-1 && (uid = peer_owner(s, p->peer_port)) == s->peer_uid) {
                /* A slow handshake from QEMU's own user is QEMU on a busy host, not a stranger: it
                 * dials again within a second (<reconnect>). (A failed one still counts as a
                 * stranger's: QEMU holds the certificate.) */
                pending_free(p);
                log_info("serial port %u: QEMU (uid %u) did not complete its TLS handshake within 2 s; it "
                         "dials again",
                         s->port, (unsigned)uid);
                return 0;
        }
        pending_reject(p, "did not complete a TLS handshake within 2 s");
        return 0;
}

static void accept_one(Serial *s, int fd) {
        struct sockaddr_in peer;
        socklen_t l = sizeof peer;
        Pending *p;
        int r;

        if (getpeername(fd, (struct sockaddr *)&peer, &l) < 0) {
                safe_close(fd);
                return;
        }
        if (s->n_pending >= SERIAL_PENDING_MAX) {
                uid_t uid = peer_owner(s, ntohs(peer.sin_port));
                safe_close(fd);
                report_intruder(s, uid, "opened more handshakes at once than a line allows");
                return;
        }
        p = calloc(1, sizeof *p);
        if (!p) {
                safe_close(fd);
                return;
        }
        p->serial = s;
        p->fd = fd;
        p->peer_port = ntohs(peer.sin_port);
        LIST_PREPEND(s->pending, p);
        s->n_pending++;
        r = tls_session_new_server(s->creds, fd, &p->tls);
        if (r >= 0)
                r = sd_event_add_io(s->event, &p->io, fd, EPOLLIN, on_pending_io, p);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &p->timer, CLOCK_MONOTONIC, SERIAL_HANDSHAKE_USEC,
                                               10 * 1000, on_pending_timeout, p);
        if (r < 0) {
                log_warning_errno(r, "serial port %u: cannot set up a TLS handshake: %m", s->port);
                pending_free(p);
                return;
        }
        (void)sd_event_source_set_description(p->io, "serial-handshake");
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int on_listen_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Serial *s = userdata;
        /* A few per wakeup, so a connection flood cannot starve the loop. */
        for (int i = 0; i < 8; i++) {
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(negative_errno(), "serial port %u: accept failed: %m",
                                                  s->port);
                        break;
                }
                accept_one(s, c);
        }
        return 0;
}

static int try_bind(Serial *s) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_port = htons(s->port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t l = sizeof a;
        _cleanup_close_ int fd = -EBADF;
        bool kept = false;
        int one = 1, r;

        /* The listener systemd kept for us while piemud restarted: the port never was free. */
        if (s->port != 0 && (fd = fdstore_take_listener(s->port)) >= 0)
                kept = true;
        else if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
                return negative_errno();
        /* Our own old connections (TIME_WAIT after a restart) must not keep us off our port.
         * This does not let anybody else bind it while we listen, nor us while they do. */
        if (!kept) {
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0)
                        return negative_errno();
        }
        if (getsockname(fd, (struct sockaddr *)&a, &l) < 0)
                return negative_errno();
        r = sd_event_add_io(s->event, &s->listen_io, fd, EPOLLIN, on_listen_io, s);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(s->listen_io, "serial-listen");
        s->port = ntohs(a.sin_port);
        if (!kept)
                fdstore_push_listener(fd, s->port);
        s->listen_fd = TAKE_FD(fd);
        return 0;
}

static int on_rebind_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Serial *s = userdata;
        int r = try_bind(s);
        if (r >= 0) {
                s->rebind_timer = sd_event_source_disable_unref(s->rebind_timer);
                log_info("serial port %u: bound again; QEMU reconnects within a second", s->port);
                return 0;
        }
        if (r == -EADDRINUSE && !s->holder_reported) {
                /* Somebody took our port while no piemud listened on it. QEMU cannot be fooled by
                 * them (it verifies our certificate), but it cannot reach us either until they let go. */
                uid_t uid;
                if (sockdiag_tcp_listener_owner(s->port, &uid) < 0)
                        uid = (uid_t)-1;
                s->holder_reported = true;
                report_intruder(s, uid,
                                "holds its port (bound while piemud was away), so QEMU cannot reach piemud "
                                "until they let go");
        } else if (r != -EADDRINUSE)
                log_warning_errno(r, "serial port %u: cannot listen: %m; trying again", s->port);
        (void)sd_event_source_set_time_relative(src, SERIAL_REBIND_USEC);
        (void)sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return 0;
}

static Serial *serial_alloc(sd_event *e, uint16_t port, const SerialCallbacks *cb) {
        Serial *s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        *s = (Serial){
                .event = sd_event_ref(e),
                .cb = *cb,
                .peer_uid = (uid_t)-1,
                .listen_fd = -EBADF,
                .port = port,
                .fd = -EBADF,
                .reading = true,
        };
        return s;
}

int serial_listen(sd_event *e, uint16_t port, TlsCreds *creds, uid_t peer_uid, const SerialCallbacks *cb,
                  Serial **ret) {
        Serial *s;
        int r;

        assert(creds);
        s = serial_alloc(e, port, cb);
        if (!s)
                return -ENOMEM;
        s->creds = tls_creds_ref(creds);
        s->peer_uid = peer_uid;
        r = try_bind(s);
        if (r == -EADDRINUSE && port != 0)
                /* Taken: the timer says who holds it (callbacks never run inside the constructor) and
                 * keeps trying. */
                r = sd_event_add_time_relative(e, &s->rebind_timer, CLOCK_MONOTONIC, 0, 100 * 1000,
                                               on_rebind_timer, s);
        if (r < 0) {
                serial_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int serial_connect(sd_event *e, uint16_t port, const SerialCallbacks *cb, Serial **ret) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        Serial *s;
        int r, one = 1;

        s = serial_alloc(e, port, cb);
        if (!s)
                return -ENOMEM;
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

Serial *serial_close(Serial *s) {
        if (s && s->listen_fd >= 0)
                fdstore_forget_listener(s->port);
        return serial_free(s);
}

Serial *serial_free(Serial *s) {
        if (!s)
                return NULL;
        while (s->pending)
                pending_free(s->pending);
        drop_connection(s);
        sd_event_source_disable_unref(s->listen_io);
        sd_event_source_disable_unref(s->rebind_timer);
        safe_close(s->listen_fd);
        tls_creds_unref(s->creds);
        sd_event_unref(s->event);
        free(s->wbuf);
        free(s->rbuf);
        free(s);
        return NULL;
}

uint16_t serial_port(const Serial *s) {
        return s ? s->port : 0;
}

bool serial_is_tls(const Serial *s) {
        return s && s->creds;
}

bool serial_is_up(const Serial *s) {
        return s && s->connected;
}

int serial_write(Serial *s, const void *data, size_t n) {
        uint8_t *nb;
        int r;

        /* A listening line queues while QEMU reconnects (at most a second or two); a plain one cannot. */
        if (!s || (!s->connected && !s->creds))
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
        if (!s->connected)
                return 0; /* sent by adopt_connection() */
        /* Try at once: most writes go out without a loop iteration, which keeps SetPin latency low.
         * A broken connection is noticed (and reported) by the next wakeup. */
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
        if (!s)
                return -ENOTCONN;
        s->reading = on;
        update_events(s);
        return 0;
}
