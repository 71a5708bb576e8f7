/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sd-event qtest client (src/daemon/qtest.c) against a fake QEMU: the other end of a socketpair,
 * written and read by the test itself between iterations of the client's event loop. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "macro.h"
#include "qtest.h"
#include "tests.h"

#define BASE UINT64_C(0x3f200000)

/* Everything the client reports, in order, as text: "what r value;". */
static char events[1 << 18];

static void record(const char *fmt, ...) {
        size_t n = strlen(events);
        va_list ap;

        va_start(ap, fmt);
        CHECK(n + 128 < sizeof(events));
        vsnprintf(events + n, sizeof(events) - n, fmt, ap);
        va_end(ap);
        strcat(events, ";");
}

static void expect_events(const char *expected) {
        CHECK_STREQ(events, expected);
        events[0] = '\0';
}

typedef struct {
        sd_event *event;
        Qtest *q;
        int peer; /* the fake QEMU's end */
        char got[1 << 16];
        size_t n_got;
        /* what callbacks do besides recording */
        bool free_on_irq, free_on_closed, free_on_done;
        unsigned n_closed;
        int closed_error;
} Fixture;

static void on_irq(Qtest *q, unsigned line, bool level, void *userdata) {
        Fixture *f = userdata;

        CHECK(q == f->q);
        CHECK(line < QTEST_GPIO_NPINS);
        record("irq %u %d", line, level);
        if (f->free_on_irq)
                f->q = qtest_free(f->q);
}

static void on_closed(Qtest *q, int error, void *userdata) {
        Fixture *f = userdata;

        CHECK(q == f->q);
        CHECK(error < 0);
        f->n_closed++;
        f->closed_error = error;
        record("closed %d", error);
        if (f->free_on_closed)
                f->q = qtest_free(f->q);
}

static const QtestCallbacks callbacks = {.on_irq = on_irq, .on_closed = on_closed};

static void on_done(Qtest *q, int r, void *userdata) {
        Fixture *f = userdata;

        record("done %d", r);
        if (f->free_on_done)
                f->q = qtest_free(f->q);
}

static void on_done_tagged(Qtest *q, int r, void *userdata) {
        record("done[%s] %d", (const char *)userdata, r);
}

static void on_value(Qtest *q, int r, uint32_t value, void *userdata) {
        record("readl %d 0x%" PRIx32, r, value);
}

static void on_levels(Qtest *q, int r, uint64_t levels, void *userdata) {
        record("levels %d 0x%" PRIx64, r, levels);
}

/* sndbuf: the client's socket send buffer, 0 for the default */
static void fixture_init_full(Fixture *f, int sndbuf) {
        int sv[2];

        memset(f, 0, sizeof(*f));
        events[0] = '\0';
        CHECK(sd_event_new(&f->event) >= 0);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        if (sndbuf > 0)
                CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
        CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
        CHECK(qtest_new(f->event, sv[0], &callbacks, f, &f->q) == 0);
        f->peer = sv[1];
}

static void fixture_init(Fixture *f) {
        fixture_init_full(f, 0);
}

static void fixture_done(Fixture *f) {
        f->q = qtest_free(f->q);
        f->peer = safe_close(f->peer);
        f->event = sd_event_unref(f->event);
        CHECK(events[0] == '\0'); /* every test checks all it got */
}

/* Runs the client's loop until it has nothing more to do. */
static void run(Fixture *f) {
        int r;

        for (unsigned i = 0; i < 100000; i++) {
                r = sd_event_run(f->event, 0);
                CHECK(r >= 0);
                if (r == 0)
                        return;
        }
        CHECK(!"loop did not settle");
}

/* What the client sent since the last call, as the fake QEMU reads it. */
static void expect_sent(Fixture *f, const char *expected) {
        run(f);
        for (;;) {
                ssize_t n = read(f->peer, f->got + f->n_got, sizeof(f->got) - 1 - f->n_got);
                if (n <= 0) {
                        CHECK(n == 0 || errno == EAGAIN);
                        break;
                }
                f->n_got += (size_t)n;
        }
        f->got[f->n_got] = '\0';
        CHECK_STREQ(f->got, expected);
        f->n_got = 0;
}

static void peer_send_n(Fixture *f, const void *data, size_t n) {
        CHECK(write(f->peer, data, n) == (ssize_t)n);
        run(f);
}

static void peer_send(Fixture *f, const char *s) {
        peer_send_n(f, s, strlen(s));
}

/* The peer sees our end close. */
static void expect_peer_eof(Fixture *f) {
        char c;
        ssize_t n;

        run(f);
        do
                n = read(f->peer, &c, 1);
        while (n > 0);
        CHECK(n == 0);
}

static void test_order_and_values(void) {
        Fixture f;

        fixture_init(&f);
        CHECK(qtest_intercept_gpio(f.q, QTEST_GPIO_QOM_PATH, on_done, &f) == 0);
        CHECK(qtest_gpio_set(f.q, BASE, 17, true, on_done_tagged, "set17") == 0);
        CHECK(qtest_gpio_set(f.q, BASE, 40, false, on_done_tagged, "clr40") == 0);
        CHECK(qtest_gpio_set(f.q, BASE, 53, true, NULL, NULL) == 0);
        CHECK(qtest_readl(f.q, BASE + QTEST_GPIO_GPLEV0, on_value, &f) == 0);
        CHECK(qtest_gpio_read_levels(f.q, BASE, on_levels, &f) == 0);
        CHECK(qtest_writel(f.q, 0x1000, 0xffffffff, on_done, &f) == 0);
        CHECK(qtest_n_queued(f.q) == 8);
        /* callbacks never run inside the call that queued */
        CHECK(events[0] == '\0');

        expect_sent(&f, "irq_intercept_out /machine/soc/peripherals/gpio\n"
                        "writel 0x3f20001c 0x20000\n"
                        "writel 0x3f20002c 0x100\n"
                        "writel 0x3f200020 0x200000\n"
                        "readl 0x3f200034\n"
                        "readl 0x3f200034\n"
                        "readl 0x3f200038\n"
                        "writel 0x1000 0xffffffff\n");

        /* IRQs before, between and after replies */
        peer_send(&f, "IRQ raise 23\nOK\nIRQ lower 23\nOK\nOK\n");
        expect_events("irq 23 1;done 0;irq 23 0;done[set17] 0;done[clr40] 0;");
        peer_send(&f, "OK\nOK 0x0000000000820000\nIRQ raise 5\n");
        expect_events("readl 0 0x820000;irq 5 1;");
        /* GPLEV1 bits above pin 53 are not levels */
        peer_send(&f, "OK 0x0000000080820000\nOK 0x00000000ffe00001\nOK\n");
        expect_events("levels 0 0x20000180820000;done 0;");
        CHECK(qtest_n_queued(f.q) == 0 && qtest_is_open(f.q));

        /* a FAIL or ERR for readl/writel fails that command only */
        CHECK(qtest_writel(f.q, 1, 2, on_done, &f) == 0);
        CHECK(qtest_readl(f.q, 4, on_value, &f) == 0);
        CHECK(qtest_gpio_read_levels(f.q, BASE, on_levels, &f) == 0);
        CHECK(qtest_readl(f.q, 4, on_value, &f) == 0);
        expect_sent(&f, "writel 0x1 0x2\nreadl 0x4\nreadl 0x3f200034\nreadl 0x3f200038\nreadl 0x4\n");
        peer_send(&f,
                  "FAIL\nERR invalid argument size\nFAIL x\nOK 0x0000000000000001\nOK 0x0000000000000007\n");
        expect_events("done -121;readl -121 0x0;levels -121 0x0;readl 0 0x7;");
        CHECK(qtest_is_open(f.q));

        /* readl's full 32 bits */
        CHECK(qtest_readl(f.q, 4, on_value, &f) == 0);
        expect_sent(&f, "readl 0x4\n");
        peer_send(&f, "OK 0x00000000ffffffff\n");
        expect_events("readl 0 0xffffffff;");

        /* an input line driven: OK completes it, FAIL fails that command only */
        CHECK(qtest_set_irq_in(f.q, QTEST_GPIO_QOM_PATH, 17, true, on_done_tagged, "in17") == 0);
        CHECK(qtest_set_irq_in(f.q, QTEST_GPIO_QOM_PATH, 4, false, on_done, &f) == 0);
        expect_sent(&f, "set_irq_in /machine/soc/peripherals/gpio unnamed-gpio-in 17 1\n"
                        "set_irq_in /machine/soc/peripherals/gpio unnamed-gpio-in 4 0\n");
        peer_send(&f, "OK\nFAIL Unknown device\n");
        expect_events("done[in17] 0;done -121;");
        CHECK(qtest_is_open(f.q));

        /* bad arguments queue nothing */
        CHECK(qtest_set_irq_in(f.q, QTEST_GPIO_QOM_PATH, 54, true, on_done, &f) == -EINVAL);
        CHECK(qtest_gpio_set(f.q, BASE, 54, true, on_done, &f) == -EINVAL);
        CHECK(qtest_intercept_gpio(f.q, "/a b", on_done, &f) == -EINVAL);
        CHECK(qtest_intercept_gpio(f.q, "/a\nwritel 0 0", on_done, &f) == -EINVAL);
        CHECK(qtest_n_queued(f.q) == 0);
        expect_sent(&f, "");
        fixture_done(&f);
}

static void test_split_reads(void) {
        static const char stream[] = "IRQ raise 23\nOK\nIRQ lower 23\nIRQ raise 0\nOK 0x0000000000000003\n";
        Fixture f;

        fixture_init(&f);
        CHECK(qtest_writel(f.q, 1, 1, on_done, &f) == 0);
        CHECK(qtest_readl(f.q, 2, on_value, &f) == 0);
        expect_sent(&f, "writel 0x1 0x1\nreadl 0x2\n");
        peer_send(&f, "IRQ ra");
        expect_events("");
        peer_send(&f, "ise 23\nO");
        expect_events("irq 23 1;");
        peer_send(&f, "K\nIRQ lower 2");
        expect_events("done 0;");
        peer_send(&f, "3\nIRQ raise 0\nOK 0x0000000000000003");
        expect_events("irq 23 0;irq 0 1;");
        peer_send(&f, "\n");
        expect_events("readl 0 0x3;");

        /* byte by byte */
        CHECK(qtest_writel(f.q, 1, 1, on_done, &f) == 0);
        CHECK(qtest_readl(f.q, 2, on_value, &f) == 0);
        expect_sent(&f, "writel 0x1 0x1\nreadl 0x2\n");
        for (size_t i = 0; i < sizeof(stream) - 1; i++)
                peer_send_n(&f, stream + i, 1);
        expect_events("irq 23 1;done 0;irq 23 0;irq 0 1;readl 0 0x3;");

        /* well-formed indexes beyond 53 are dropped and counted */
        peer_send(&f, "IRQ raise 54\nIRQ lower 255\nIRQ raise 53\n");
        expect_events("irq 53 1;");
        CHECK(qtest_n_ignored_irqs(f.q) == 2);

        /* a burst bigger than one read: every line, in order */
        {
                static char burst[8000 * 14];
                size_t n = 0, sent = 0;
                char expect[32];

                for (unsigned i = 0; i < 8000; i++)
                        n += (size_t)sprintf(burst + n, "IRQ %s %u\n", i % 2 ? "lower" : "raise", i % 54);
                while (sent < n) {
                        ssize_t k = write(f.peer, burst + sent, n - sent);
                        CHECK(k > 0 || errno == EAGAIN);
                        if (k > 0)
                                sent += (size_t)k;
                        run(&f);
                }
                run(&f);
                char *p = events;
                for (unsigned i = 0; i < 8000; i++) {
                        size_t len =
                                (size_t)snprintf(expect, sizeof(expect), "irq %u %d;", i % 54, !(i % 2));
                        CHECK(strncmp(p, expect, len) == 0);
                        p += len;
                }
                CHECK(*p == '\0');
                events[0] = '\0';
        }
        CHECK(qtest_is_open(f.q));
        fixture_done(&f);
}

/* Queues four commands of all kinds: 5 callbacks' worth of "r" afterwards. */
static void queue_four(Fixture *f) {
        CHECK(qtest_intercept_gpio(f->q, QTEST_GPIO_QOM_PATH, on_done_tagged, "icpt") == 0);
        CHECK(qtest_writel(f->q, 1, 1, on_done_tagged, "w") == 0);
        CHECK(qtest_readl(f->q, 2, on_value, f) == 0);
        CHECK(qtest_gpio_read_levels(f->q, BASE, on_levels, f) == 0);
        CHECK(qtest_n_queued(f->q) == 5);
}

static void check_dead(Fixture *f, int error) {
        CHECK(!qtest_is_open(f->q));
        CHECK(qtest_n_queued(f->q) == 0);
        CHECK(f->n_closed == 1 && f->closed_error == error);
        CHECK(qtest_readl(f->q, 1, on_value, f) == -ENOTCONN);
        CHECK(qtest_writel(f->q, 1, 1, on_done, f) == -ENOTCONN);
        CHECK(qtest_gpio_read_levels(f->q, BASE, on_levels, f) == -ENOTCONN);
        CHECK(qtest_intercept_gpio(f->q, QTEST_GPIO_QOM_PATH, on_done, f) == -ENOTCONN);
        expect_peer_eof(f);
}

/* Each fatal line: the connection closes; every waiting callback, then on_closed, gets the error,
 * each once; later lines in the same read are not looked at. */
static void test_fatal_lines(void) {
        static const struct {
                const char *reply; /* sent after "OK\n" answered the intercept */
                const char *expect;
                int error;
                size_t len; /* of reply, if it holds a NUL */
        } cases[] = {
                {"garbage\nIRQ raise 1\n", "done[w] -74;readl -74 0x0;levels -74 0x0;closed -74;", -EBADMSG},
                {"IRQ raise 1\r\n", "done[w] -74;readl -74 0x0;levels -74 0x0;closed -74;", -EBADMSG},
                {"IRQ raise 023\n", "done[w] -74;readl -74 0x0;levels -74 0x0;closed -74;", -EBADMSG},
                {"OK\0\n", "done[w] -74;readl -74 0x0;levels -74 0x0;closed -74;", -EBADMSG, 4},
                /* a value for writel */
                {"OK 0x0000000000000001\n", "done[w] -71;readl -71 0x0;levels -71 0x0;closed -71;", -EPROTO},
                /* none for readl */
                {"OK\nOK\n", "done[w] 0;readl -71 0x0;levels -71 0x0;closed -71;", -EPROTO},
                /* more than readl's 32 bits */
                {"OK\nOK 0x0000000100000000\n", "done[w] 0;readl -71 0x0;levels -71 0x0;closed -71;",
                 -EPROTO},
                /* the same inside gpio_read_levels */
                {"OK\nOK 0x1\nOK\n", "done[w] 0;readl 0 0x1;levels -71 0x0;closed -71;", -EPROTO},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = cases[i].len ?: strlen(cases[i].reply);
                Fixture f;

                fixture_init(&f);
                queue_four(&f);
                peer_send(&f, "OK\n");
                expect_events("done[icpt] 0;");
                peer_send_n(&f, cases[i].reply, len);
                expect_events(cases[i].expect);
                check_dead(&f, cases[i].error);
                fixture_done(&f);
        }

        /* a FAIL for the intercept is fatal (unlike for writel) */
        {
                Fixture f;
                fixture_init(&f);
                queue_four(&f);
                peer_send(&f, "FAIL Unknown device\nOK\n");
                expect_events("done[icpt] -121;done[w] -121;readl -121 0x0;levels -121 0x0;closed -121;");
                check_dead(&f, -EREMOTEIO);
                fixture_done(&f);
        }

        /* a reply nobody waits for */
        {
                Fixture f;
                fixture_init(&f);
                peer_send(&f, "IRQ raise 3\nOK\nIRQ raise 4\n");
                expect_events("irq 3 1;closed -71;");
                check_dead(&f, -EPROTO);
                fixture_done(&f);
        }

        /* overlong: at QTEST_LINE_MAX bytes without '\n', before the '\n' ever comes */
        {
                Fixture f;
                char big[QTEST_LINE_MAX];

                fixture_init(&f);
                queue_four(&f);
                memcpy(big, "FAIL ", 5);
                memset(big + 5, 'x', sizeof(big) - 5);
                peer_send_n(&f, big, 100);
                expect_events("");
                peer_send_n(&f, big + 100, sizeof(big) - 100);
                expect_events("done[icpt] -90;done[w] -90;readl -90 0x0;levels -90 0x0;closed -90;");
                check_dead(&f, -EMSGSIZE);
                fixture_done(&f);
        }

        /* the longest line that is allowed is fine */
        {
                Fixture f;
                char big[QTEST_LINE_MAX];

                fixture_init(&f);
                CHECK(qtest_writel(f.q, 1, 1, on_done, &f) == 0);
                memcpy(big, "FAIL ", 5);
                memset(big + 5, 'x', sizeof(big) - 5);
                big[QTEST_LINE_MAX - 1] = '\n';
                peer_send_n(&f, big, sizeof(big));
                expect_events("done -121;");
                CHECK(qtest_is_open(f.q));
                fixture_done(&f);
        }
}

static void test_hangup(void) {
        Fixture f;

        /* replies that came before the hangup count */
        fixture_init(&f);
        queue_four(&f);
        peer_send(&f, "OK\nIRQ raise 9\nOK\n");
        f.peer = safe_close(f.peer);
        run(&f);
        expect_events("done[icpt] 0;irq 9 1;done[w] 0;readl -104 0x0;levels -104 0x0;closed -104;");
        CHECK(!qtest_is_open(f.q) && f.n_closed == 1 && f.closed_error == -ECONNRESET);
        CHECK(qtest_readl(f.q, 1, on_value, &f) == -ENOTCONN);
        fixture_done(&f);

        /* a hangup while nothing waits */
        fixture_init(&f);
        shutdown(f.peer, SHUT_RDWR);
        run(&f);
        expect_events("closed -104;");
        fixture_done(&f);

        /* on_closed may free */
        fixture_init(&f);
        f.free_on_closed = true;
        queue_four(&f);
        f.peer = safe_close(f.peer);
        run(&f);
        expect_events("done[icpt] -104;done[w] -104;readl -104 0x0;levels -104 0x0;closed -104;");
        CHECK(!f.q);
        fixture_done(&f);
}

static void test_queue_bound(void) {
        Fixture f;
        char expect[QTEST_QUEUE_MAX * 32];
        size_t n = 0;

        fixture_init(&f);
        for (unsigned i = 0; i < QTEST_QUEUE_MAX - 1; i++)
                CHECK(qtest_writel(f.q, i, i, on_done, &f) == 0);
        /* two slots needed, one left: nothing is queued */
        CHECK(qtest_gpio_read_levels(f.q, BASE, on_levels, &f) == -ENOBUFS);
        CHECK(qtest_n_queued(f.q) == QTEST_QUEUE_MAX - 1);
        CHECK(qtest_readl(f.q, 7, on_value, &f) == 0);
        CHECK(qtest_readl(f.q, 7, on_value, &f) == -ENOBUFS);
        CHECK(qtest_writel(f.q, 7, 7, on_done, &f) == -ENOBUFS);
        CHECK(qtest_intercept_gpio(f.q, QTEST_GPIO_QOM_PATH, on_done, &f) == -ENOBUFS);

        for (unsigned i = 0; i < QTEST_QUEUE_MAX - 1; i++)
                n += (size_t)sprintf(expect + n, "writel 0x%x 0x%x\n", i, i);
        strcpy(expect + n, "readl 0x7\n");
        expect_sent(&f, expect);

        /* one reply frees one slot */
        peer_send(&f, "OK\n");
        expect_events("done 0;");
        CHECK(qtest_readl(f.q, 8, on_value, &f) == 0);
        CHECK(qtest_readl(f.q, 8, on_value, &f) == -ENOBUFS);
        expect_sent(&f, "readl 0x8\n");

        n = 0;
        for (unsigned i = 1; i < QTEST_QUEUE_MAX - 1; i++)
                n += (size_t)sprintf(expect + n, "OK\n");
        strcpy(expect + n, "OK 0x0000000000000007\nOK 0x0000000000000008\n");
        peer_send(&f, expect);
        CHECK(qtest_n_queued(f.q) == 0);
        n = 0;
        for (unsigned i = 1; i < QTEST_QUEUE_MAX - 1; i++)
                n += (size_t)sprintf(expect + n, "done 0;");
        strcpy(expect + n, "readl 0 0x7;readl 0 0x8;");
        expect_events(expect);

        /* the output buffer wraps around cleanly over many rounds */
        for (unsigned round = 0; round < 50; round++) {
                for (unsigned i = 0; i < QTEST_QUEUE_MAX / 2; i++)
                        CHECK(qtest_gpio_read_levels(f.q, BASE, on_levels, &f) == 0);
                CHECK(qtest_readl(f.q, 0, on_value, &f) == -ENOBUFS);
                run(&f);
                f.n_got = 0;
                for (;;) {
                        ssize_t k = read(f.peer, f.got, sizeof(f.got));
                        if (k <= 0)
                                break;
                        f.n_got += (size_t)k;
                }
                CHECK(f.n_got == QTEST_QUEUE_MAX / 2 * strlen("readl 0x3f200034\nreadl 0x3f200038\n"));
                f.n_got = 0;
                for (unsigned i = 0; i < QTEST_QUEUE_MAX / 2; i++)
                        peer_send(&f, "OK 0x0000000000000001\nOK 0x0000000000000002\n");
                n = 0;
                for (unsigned i = 0; i < QTEST_QUEUE_MAX / 2; i++)
                        n += (size_t)sprintf(expect + n, "levels 0 0x200000001;");
                expect_events(expect);
        }
        fixture_done(&f);
}

/* A peer that reads slowly: what does not fit into the socket stays in our buffer, goes out in
 * order as the peer reads, and the socket is polled for writing only while something waits. */
static void test_slow_peer(void) {
        static char got[QTEST_QUEUE_MAX * (QTEST_CMD_MAX + 1)];
        char path[QTEST_PATH_MAX + 1], line[QTEST_CMD_MAX + 1];
        size_t total = 0, len;
        int avail = 0;
        Fixture f;

        memset(path, 'p', QTEST_PATH_MAX);
        path[QTEST_PATH_MAX] = '\0';
        fixture_init_full(&f, 4096);
        for (unsigned i = 0; i < QTEST_QUEUE_MAX; i++)
                CHECK(qtest_intercept_gpio(f.q, path, NULL, NULL) == 0);
        run(&f);
        len = (size_t)qtest_format_irq_intercept_out(line, sizeof(line), path);
        /* it did not all fit at once */
        CHECK(ioctl(f.peer, FIONREAD, &avail) == 0);
        CHECK(avail > 0 && (size_t)avail < QTEST_QUEUE_MAX * len);
        for (;;) {
                ssize_t k = read(f.peer, got + total, 1000);
                if (k < 0 && errno == EAGAIN) {
                        run(&f);
                        k = read(f.peer, got + total, 1000);
                        if (k < 0 && errno == EAGAIN)
                                break;
                }
                CHECK(k > 0);
                total += (size_t)k;
        }
        CHECK(total == QTEST_QUEUE_MAX * len);
        for (unsigned i = 0; i < QTEST_QUEUE_MAX; i++)
                CHECK(memcmp(got + i * len, line, len) == 0);
        CHECK(qtest_n_queued(f.q) == QTEST_QUEUE_MAX);
        /* nothing left to write: the loop is idle (not spinning on EPOLLOUT) */
        CHECK(sd_event_run(f.event, 0) == 0);
        fixture_done(&f);
}

static void test_free(void) {
        Fixture f;

        /* with commands waiting: each gets -ECANCELED once, on_closed is not called */
        fixture_init(&f);
        queue_four(&f);
        peer_send(&f, "OK\n");
        expect_events("done[icpt] 0;");
        f.q = qtest_free(f.q);
        expect_events("done[w] -125;readl -125 0x0;levels -125 0x0;");
        CHECK(f.n_closed == 0);
        expect_peer_eof(&f);
        fixture_done(&f);

        /* on_irq frees with more lines in the same read: nothing after it is delivered */
        fixture_init(&f);
        f.free_on_irq = true;
        queue_four(&f);
        peer_send(&f, "IRQ raise 1\nOK\nIRQ raise 2\n");
        expect_events("irq 1 1;done[icpt] -125;done[w] -125;readl -125 0x0;levels -125 0x0;");
        CHECK(!f.q && f.n_closed == 0);
        fixture_done(&f);

        /* a completion frees: the others are cancelled */
        fixture_init(&f);
        f.free_on_done = true;
        CHECK(qtest_writel(f.q, 1, 1, on_done, &f) == 0);
        CHECK(qtest_writel(f.q, 1, 1, on_done_tagged, "b") == 0);
        CHECK(qtest_readl(f.q, 2, on_value, &f) == 0);
        peer_send(&f, "OK\nOK\nOK 0x0000000000000001\n");
        expect_events("done 0;done[b] -125;readl -125 0x0;");
        CHECK(!f.q);
        fixture_done(&f);

        /* a callback of a failing connection frees: the rest get the connection's error, not
         * -ECANCELED, and on_closed is not called */
        fixture_init(&f);
        f.free_on_done = true;
        CHECK(qtest_writel(f.q, 1, 1, on_done, &f) == 0);
        CHECK(qtest_writel(f.q, 1, 1, on_done_tagged, "b") == 0);
        CHECK(qtest_readl(f.q, 2, on_value, &f) == 0);
        peer_send(&f, "bogus\n");
        expect_events("done -74;done[b] -74;readl -74 0x0;");
        CHECK(!f.q && f.n_closed == 0);
        fixture_done(&f);

        /* NULL is fine */
        CHECK(qtest_free(NULL) == NULL);
}

/* Callbacks may queue more; while the connection fails they are refused. */
static Fixture *requeue_fixture;
static void on_done_requeue(Qtest *q, int r, void *userdata) {
        int k = qtest_readl(q, 9, on_value, requeue_fixture);
        record("requeue %d %d", r, k);
}

static void test_requeue(void) {
        Fixture f;

        fixture_init(&f);
        requeue_fixture = &f;
        CHECK(qtest_writel(f.q, 1, 1, on_done_requeue, &f) == 0);
        expect_sent(&f, "writel 0x1 0x1\n");
        peer_send(&f, "OK\n");
        expect_events("requeue 0 0;");
        expect_sent(&f, "readl 0x9\n");
        peer_send(&f, "OK 0x0000000000000009\n");
        expect_events("readl 0 0x9;");

        CHECK(qtest_writel(f.q, 1, 1, on_done_requeue, &f) == 0);
        CHECK(qtest_writel(f.q, 1, 1, on_done, &f) == 0);
        peer_send(&f, "\n");
        expect_events("requeue -74 -107;done -74;closed -74;");
        fixture_done(&f);
}

static void test_new_errors(void) {
        sd_event *e = NULL;
        Qtest *q = NULL;
        int p[2], sv[2];

        CHECK(sd_event_new(&e) >= 0);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK(qtest_new(e, p[0], NULL, NULL, &q) == -ENOTSOCK && !q);
        CHECK(fcntl(p[0], F_GETFD) >= 0); /* still ours */
        CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
        CHECK(qtest_new(e, sv[0], NULL, NULL, &q) == -ESOCKTNOSUPPORT && !q);
        CHECK(qtest_new(e, -1, NULL, NULL, &q) == -EINVAL);
        CHECK(qtest_new(NULL, sv[0], NULL, NULL, &q) == -EINVAL);
        safe_close(p[0]);
        safe_close(p[1]);
        safe_close(sv[0]);
        safe_close(sv[1]);

        /* no callbacks at all is fine */
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        CHECK(qtest_new(e, sv[0], NULL, NULL, &q) == 0);
        CHECK(qtest_writel(q, 1, 1, NULL, NULL) == 0);
        CHECK(write(sv[1], "IRQ raise 1\nOK\n", 15) == 15);
        CHECK(sd_event_run(e, 0) >= 0);
        CHECK(qtest_is_open(q) && qtest_n_queued(q) == 0);
        safe_close(sv[1]);
        CHECK(sd_event_run(e, 0) >= 0);
        CHECK(!qtest_is_open(q));
        q = qtest_free(q);
        sd_event_unref(e);
}

static void *other_thread(void *p) {
        (void)qtest_readl(p, 1, NULL, NULL);
        return NULL;
}

/* Only the loop's thread may touch the object. */
static void test_wrong_thread(void) {
        pid_t pid = fork();
        int status;

        CHECK(pid >= 0);
        if (pid == 0) {
                Fixture f;
                pthread_t t;

                /* the abort is expected: keep its message out of the log */
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                CHECK(null >= 0 && dup2(null, STDERR_FILENO) == STDERR_FILENO);
                fixture_init(&f);
                pthread_create(&t, NULL, other_thread, f.q);
                pthread_join(t, NULL);
                _exit(0);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        test_order_and_values();
        test_split_reads();
        test_fatal_lines();
        test_hangup();
        test_queue_bound();
        test_slow_peer();
        test_free();
        test_requeue();
        test_new_errors();
        test_wrong_thread();
        printf("test-qtest: ok\n");
        return 0;
}
