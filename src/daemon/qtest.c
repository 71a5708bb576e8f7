/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "qtest.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

typedef enum {
        CMD_INTERCEPT,
        CMD_WRITEL,
        CMD_SET_IRQ_IN,
        CMD_READL,
        CMD_LEVELS_LO, /* GPLEV0 of a gpio_read_levels; its CMD_LEVELS_HI follows right behind */
        CMD_LEVELS_HI,
} CmdKind;

typedef struct {
        CmdKind kind;
        union {
                qtest_done_cb done;
                qtest_value_cb value;
                qtest_levels_cb levels;
        } cb;
        void *userdata;
        /* CMD_LEVELS_HI: what its CMD_LEVELS_LO got */
        uint32_t lo;
        int lo_error;
} Cmd;

/* One read() per wakeup: a burst of IRQ lines (~14 bytes each) is taken in few syscalls, and a
 * flood cannot keep the loop away from other sources for long. */
#define QTEST_READ_SIZE (16U * 1024U)
/* Bytes not sent yet all belong to queued commands, so this is never exceeded. */
#define QTEST_OBUF_SIZE ((size_t)QTEST_QUEUE_MAX * QTEST_CMD_MAX)

struct Qtest {
        /* 1 for the owner, +1 while a dispatch runs: callbacks may free the object under it */
        unsigned n_ref;
        pid_t tid;
        sd_event *event;
        QtestCallbacks cb;
        void *userdata;

        int fd;
        sd_event_source *io;
        uint32_t io_events;
        bool closed; /* the connection is gone (error says why), or qtest_free() was called */
        bool freed;  /* qtest_free() was called: only waiting callbacks are still called */
        int error;

        QtestSplitter splitter;
        uint64_t n_ignored_irqs;

        /* FIFO of commands waiting for replies */
        Cmd cmds[QTEST_QUEUE_MAX];
        unsigned head, n_queued;

        /* output not sent yet: obuf[opos..olen) */
        size_t opos, olen;
        char obuf[QTEST_OBUF_SIZE];
};

static void assert_thread(const Qtest *q) {
        /* sd-event objects are not thread-safe, and callbacks assume the loop's thread */
        assert(q->tid == gettid());
}

static Qtest *qtest_ref(Qtest *q) {
        assert(q->n_ref > 0);
        q->n_ref++;
        return q;
}

static void qtest_unref(Qtest *q) {
        assert(q->n_ref > 0);
        if (--q->n_ref > 0)
                return;
        assert(q->closed && q->freed && q->n_queued == 0 && !q->io && q->fd < 0);
        sd_event_unref(q->event);
        free(q);
}

static void update_events(Qtest *q) {
        uint32_t ev;

        if (!q->io)
                return;
        ev = EPOLLIN | (q->olen > q->opos ? EPOLLOUT : 0);
        if (ev == q->io_events)
                return;
        if (sd_event_source_set_io_events(q->io, ev) >= 0)
                q->io_events = ev;
}

/* Sends what it can. 0 when all is sent or the socket is full, else a negative errno (the data
 * stays; the caller decides whether that is the end). */
static int flush(Qtest *q) {
        while (q->olen > q->opos) {
                ssize_t n = send(q->fd, q->obuf + q->opos, q->olen - q->opos, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                q->opos += (size_t)n;
        }
        q->opos = q->olen = 0;
        return 0;
}

static Cmd pop(Qtest *q) {
        Cmd c;

        assert(q->n_queued > 0);
        c = q->cmds[q->head];
        q->head = (q->head + 1) % QTEST_QUEUE_MAX;
        q->n_queued--;
        return c;
}

/* Calls c's callback with r and the reply's value. c was popped already: a callback that queues
 * new commands or frees q cannot disturb it. */
static void complete(Qtest *q, const Cmd *c, int r, uint64_t value) {
        switch (c->kind) {
        case CMD_INTERCEPT:
        case CMD_WRITEL:
        case CMD_SET_IRQ_IN:
                if (c->cb.done)
                        c->cb.done(q, r, c->userdata);
                break;
        case CMD_READL:
                if (c->cb.value)
                        c->cb.value(q, r, r < 0 ? 0 : (uint32_t)value, c->userdata);
                break;
        case CMD_LEVELS_LO: {
                /* queued together and replies come in order: the GPLEV1 read is next */
                Cmd *hi = &q->cmds[q->head];
                assert(q->n_queued > 0 && hi->kind == CMD_LEVELS_HI);
                hi->lo = r < 0 ? 0 : (uint32_t)value;
                hi->lo_error = r;
                break;
        }
        case CMD_LEVELS_HI:
                if (r >= 0 && c->lo_error < 0)
                        r = c->lo_error;
                if (c->cb.levels)
                        c->cb.levels(q, r, r < 0 ? 0 : ((uint64_t)c->lo | (value << 32)) & QTEST_GPIO_MASK,
                                     c->userdata);
                break;
        }
}

static void fail_queued(Qtest *q, int error) {
        /* one at a time off the FIFO, so a callback that frees q (which fails the rest itself)
         * leaves nothing for this loop to call twice */
        while (q->n_queued > 0) {
                Cmd c = pop(q);
                complete(q, &c, error, 0);
        }
}

static void disconnect(Qtest *q) {
        q->io = sd_event_source_disable_unref(q->io);
        q->fd = safe_close(q->fd);
        q->opos = q->olen = 0;
}

/* The end of the connection. The caller holds a reference. */
static void fail_connection(Qtest *q, int error) {
        assert(error < 0);
        if (q->closed)
                return;
        log_debug_errno(error, "qtest: closing the connection: %m");
        q->closed = true;
        q->error = error;
        disconnect(q);
        fail_queued(q, error);
        if (!q->freed && q->cb.on_closed)
                q->cb.on_closed(q, error, q->userdata);
}

static bool wants_value(CmdKind k) {
        return k == CMD_READL || k == CMD_LEVELS_LO || k == CMD_LEVELS_HI;
}

static void handle_reply(Qtest *q, const QtestLine *l) {
        const Cmd *c;
        uint64_t value = 0;
        int r = 0;

        if (q->n_queued == 0) {
                log_debug("qtest: a reply (%s) nobody waits for", qtest_line_type_to_string(l->type));
                fail_connection(q, -EPROTO);
                return;
        }
        c = &q->cmds[q->head];

        switch (l->type) {
        case QTEST_LINE_OK:
                if (wants_value(c->kind))
                        r = -EPROTO;
                break;
        case QTEST_LINE_VALUE:
                if (!wants_value(c->kind) || l->value > UINT32_MAX)
                        r = -EPROTO;
                value = l->value;
                break;
        case QTEST_LINE_FAIL:
        case QTEST_LINE_ERR:
                log_debug("qtest: %s %s", qtest_line_type_to_string(l->type), l->message);
                r = -EREMOTEIO;
                break;
        default:
                assert(!"not a reply");
        }

        /* A reply of the wrong kind means we no longer know which reply belongs to which command;
         * a failed intercept means the connection is useless for GPIO. The command at the head is
         * failed first by fail_connection(), with the same error as all others. */
        if (r == -EPROTO || (r < 0 && c->kind == CMD_INTERCEPT)) {
                fail_connection(q, r);
                return;
        }

        Cmd done = pop(q);
        complete(q, &done, r, value);
}

static void handle_line(Qtest *q, const char *line, size_t len) {
        QtestLine l;

        if (qtest_parse_line(line, len, &l) < 0) {
                log_debug("qtest: a malformed line of %zu bytes", len);
                fail_connection(q, -EBADMSG);
                return;
        }
        if (l.type != QTEST_LINE_IRQ) {
                handle_reply(q, &l);
                return;
        }
        if (l.irq >= QTEST_GPIO_NPINS) {
                q->n_ignored_irqs++;
                return;
        }
        if (q->cb.on_irq)
                q->cb.on_irq(q, l.irq, l.level, q->userdata);
}

static void read_once(Qtest *q) {
        uint8_t buf[QTEST_READ_SIZE];
        const uint8_t *p = buf;
        size_t left;
        ssize_t n;

        n = read(q->fd, buf, sizeof(buf));
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        fail_connection(q, -errno);
                return;
        }
        if (n == 0) {
                fail_connection(q, -ECONNRESET);
                return;
        }

        left = (size_t)n;
        /* closed turns true when a line kills the connection or a callback frees q: the rest of buf
         * is then not for anybody */
        while (!q->closed) {
                const char *line;
                size_t len;
                int r;

                r = qtest_splitter_next(&q->splitter, &p, &left, &line, &len);
                if (r < 0) {
                        log_debug("qtest: a line longer than %d bytes", QTEST_LINE_MAX);
                        fail_connection(q, r);
                        return;
                }
                if (r == 0)
                        return;
                handle_line(q, line, len);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Qtest *q = qtest_ref(userdata);

        assert_thread(q);
        /* Read first: replies that came before a hangup are delivered before the hangup is. */
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                read_once(q);
        if (!q->closed && q->olen > q->opos) {
                int r = flush(q);
                if (r < 0)
                        fail_connection(q, r);
        }
        update_events(q);
        qtest_unref(q);
        return 0;
}

int qtest_new(sd_event *e, int fd, const QtestCallbacks *cb, void *userdata, Qtest **ret) {
        _cleanup_free_ Qtest *q = NULL;
        int type = 0, flags, r;
        socklen_t sl = sizeof(type);

        if (!e || fd < 0 || !ret)
                return -EINVAL;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0)
                return -errno;
        if (type != SOCK_STREAM)
                return -ESOCKTNOSUPPORT;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->n_ref = 1;
        q->tid = gettid();
        q->fd = -EBADF;
        if (cb)
                q->cb = *cb;
        q->userdata = userdata;
        qtest_splitter_init(&q->splitter);

        r = sd_event_add_io(e, &q->io, fd, EPOLLIN, on_io, q);
        if (r < 0)
                return r;
        q->io_events = EPOLLIN;
        (void)sd_event_source_set_description(q->io, "qtest");
        q->event = sd_event_ref(e);
        q->fd = fd;
        *ret = TAKE_PTR(q);
        return 0;
}

Qtest *qtest_free(Qtest *q) {
        if (!q)
                return NULL;
        assert_thread(q);
        /* again from a callback that the first call runs: that call does the work */
        if (q->freed)
                return NULL;
        q->freed = true;
        if (!q->closed) {
                q->closed = true;
                q->error = -ECANCELED;
                disconnect(q);
        }
        /* with the connection's error if it is failing right now (we are in one of its callbacks) */
        fail_queued(q, q->error);
        qtest_unref(q);
        return NULL;
}

/* Appends one or two commands (text: their lines back to back) as a unit: all or nothing. */
static int enqueue(Qtest *q, const char *text, size_t len, const Cmd *cmds, unsigned n) {
        assert_thread(q);
        if (q->closed)
                return -ENOTCONN;
        if (q->n_queued + n > QTEST_QUEUE_MAX)
                return -ENOBUFS;
        if (q->olen - q->opos + len > QTEST_OBUF_SIZE)
                return -ENOBUFS; /* cannot happen: every command is at most QTEST_CMD_MAX */
        if (q->olen + len > QTEST_OBUF_SIZE) {
                memmove(q->obuf, q->obuf + q->opos, q->olen - q->opos);
                q->olen -= q->opos;
                q->opos = 0;
        }
        memcpy(q->obuf + q->olen, text, len);
        q->olen += len;
        for (unsigned i = 0; i < n; i++)
                q->cmds[(q->head + q->n_queued + i) % QTEST_QUEUE_MAX] = cmds[i];
        q->n_queued += n;

        /* Send right away: saves a loop iteration per command. An error is left for on_io (epoll
         * reports it again as EPOLLERR/EPOLLHUP or a failing send), so that callbacks never run
         * inside the call that queued their command. */
        (void)flush(q);
        update_events(q);
        return 0;
}

int qtest_intercept_gpio(Qtest *q, const char *path, qtest_done_cb cb, void *userdata) {
        char buf[QTEST_CMD_MAX + 1];
        Cmd c = {.kind = CMD_INTERCEPT, .cb.done = cb, .userdata = userdata};
        int n;

        if (!q)
                return -EINVAL;
        n = qtest_format_irq_intercept_out(buf, sizeof(buf), path);
        if (n < 0)
                return n;
        return enqueue(q, buf, (size_t)n, &c, 1);
}

int qtest_readl(Qtest *q, uint64_t addr, qtest_value_cb cb, void *userdata) {
        char buf[QTEST_CMD_MAX + 1];
        Cmd c = {.kind = CMD_READL, .cb.value = cb, .userdata = userdata};
        int n;

        if (!q)
                return -EINVAL;
        n = qtest_format_readl(buf, sizeof(buf), addr);
        if (n < 0)
                return n;
        return enqueue(q, buf, (size_t)n, &c, 1);
}

int qtest_writel(Qtest *q, uint64_t addr, uint32_t value, qtest_done_cb cb, void *userdata) {
        char buf[QTEST_CMD_MAX + 1];
        Cmd c = {.kind = CMD_WRITEL, .cb.done = cb, .userdata = userdata};
        int n;

        if (!q)
                return -EINVAL;
        n = qtest_format_writel(buf, sizeof(buf), addr, value);
        if (n < 0)
                return n;
        return enqueue(q, buf, (size_t)n, &c, 1);
}

int qtest_set_irq_in(Qtest *q, const char *path, unsigned line, bool level, qtest_done_cb cb,
                     void *userdata) {
        char buf[QTEST_CMD_MAX + 1];
        Cmd c = {.kind = CMD_SET_IRQ_IN, .cb.done = cb, .userdata = userdata};
        int n;

        if (!q)
                return -EINVAL;
        n = qtest_format_set_irq_in(buf, sizeof(buf), path, line, level);
        if (n < 0)
                return n;
        return enqueue(q, buf, (size_t)n, &c, 1);
}

int qtest_gpio_set(Qtest *q, uint64_t base, unsigned pin, bool level, qtest_done_cb cb, void *userdata) {
        uint64_t reg;

        if (pin >= QTEST_GPIO_NPINS || base > UINT64_MAX - 0x1000)
                return -EINVAL;
        reg = base + (level ? QTEST_GPIO_GPSET0 : QTEST_GPIO_GPCLR0) + (pin / 32) * 4;
        return qtest_writel(q, reg, UINT32_C(1) << (pin % 32), cb, userdata);
}

int qtest_gpio_read_levels(Qtest *q, uint64_t base, qtest_levels_cb cb, void *userdata) {
        char buf[2 * (QTEST_CMD_MAX + 1)];
        Cmd c[2] = {
                {.kind = CMD_LEVELS_LO},
                {.kind = CMD_LEVELS_HI, .cb.levels = cb, .userdata = userdata},
        };
        int n0, n1;

        if (!q || base > UINT64_MAX - 0x1000)
                return -EINVAL;
        n0 = qtest_format_readl(buf, QTEST_CMD_MAX + 1, base + QTEST_GPIO_GPLEV0);
        if (n0 < 0)
                return n0;
        n1 = qtest_format_readl(buf + n0, QTEST_CMD_MAX + 1, base + QTEST_GPIO_GPLEV1);
        if (n1 < 0)
                return n1;
        return enqueue(q, buf, (size_t)n0 + (size_t)n1, c, 2);
}

bool qtest_is_open(const Qtest *q) {
        return q && !q->closed;
}

unsigned qtest_n_queued(const Qtest *q) {
        return q ? q->n_queued : 0;
}

uint64_t qtest_n_ignored_irqs(const Qtest *q) {
        return q ? q->n_ignored_irqs : 0;
}
