/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim-loop.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

uint64_t shim_now_usec(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void debug(const Shim *s, const char *fmt, ...) _printf_(2, 3);
static void debug(const Shim *s, const char *fmt, ...) {
        va_list ap;

        if (!s->verbose)
                return;
        va_start(ap, fmt);
        fputs("piemu-gpio-shim: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

void shim_init(Shim *s, GpioRegs *regs, int fd, const char *version, bool verbose) {
        memset(s, 0, sizeof(*s));
        s->regs = regs;
        s->fd = fd;
        s->version = version;
        s->verbose = verbose;
        gpio_parser_init(&s->parser);
}

/* Every batch of output (a scan, the answer to one input chunk) gets one shared budget, so a
 * host that stopped reading costs at most SHIM_WRITE_WAIT_MS per batch, not per line. The clock
 * starts at the first write that has to wait: the common case then needs no clock reads. */
static void begin_batch(Shim *s) {
        s->write_deadline_usec = 0;
}

/* Writes as much of buf as the line takes before the batch deadline. Returns bytes written
 * (possibly fewer than n) or a negative errno other than EAGAIN. */
static ssize_t write_bounded(Shim *s, const char *buf, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = write(s->fd, buf + done, n - done);
                if (k > 0) {
                        done += (size_t)k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EAGAIN)
                        return done > 0 ? (ssize_t)done : negative_errno();

                uint64_t now = shim_now_usec();
                if (s->write_deadline_usec == 0)
                        s->write_deadline_usec = now + SHIM_WRITE_WAIT_MS * 1000u;
                else if (now >= s->write_deadline_usec)
                        break;
                struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
                int timeout = (int)((s->write_deadline_usec - now + 999) / 1000);
                if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
                        return done > 0 ? (ssize_t)done : negative_errno();
        }
        return (ssize_t)done;
}

/* Sends one complete line. Returns 0 if it went out whole, -EAGAIN if it was dropped (in part or
 * entirely) because the host is not reading, or another negative errno. */
static int send_line(Shim *s, const char *line, size_t n) {
        ssize_t k;

        if (s->broken_line) {
                k = write_bounded(s, "\n", 1);
                if (k < 0)
                        return (int)k;
                if (k == 0) {
                        s->n_lines_dropped++;
                        return -EAGAIN;
                }
                s->broken_line = false;
        }

        k = write_bounded(s, line, n);
        if (k < 0)
                return (int)k;
        if ((size_t)k < n) {
                s->broken_line = k > 0;
                s->n_lines_dropped++;
                if (s->n_lines_dropped == 1 || s->verbose)
                        fprintf(stderr, "piemu-gpio-shim: host line is not draining, dropping output\n");
                return -EAGAIN;
        }
        s->n_lines_sent++;
        debug(s, "→ %.*s", (int)n - 1, line);
        return 0;
}

static int scan_levels(Shim *s, uint64_t levels) {
        uint64_t diff = (levels ^ s->reported) & GPIO_PROTO_PINS_MASK;
        int sent = 0;

        for (unsigned pin = 0; diff != 0 && pin < GPIO_PROTO_NPINS; pin++) {
                uint64_t bit = UINT64_C(1) << pin;
                char line[GPIO_PROTO_LINE_MAX + 1];
                int n, r;

                if (!(diff & bit))
                        continue;
                diff &= ~bit;

                n = gpio_proto_format_gpio(line, sizeof(line), pin, levels & bit);
                if (n < 0)
                        return n;
                r = send_line(s, line, (size_t)n);
                if (r == -EAGAIN)
                        /* Later pins wait too, so the host sees changes in the order they were
                         * found once it reads again. */
                        break;
                if (r < 0)
                        return r;
                s->reported ^= bit;
                sent++;
        }
        return sent;
}

int shim_scan(Shim *s) {
        s->need_scan = false;
        begin_batch(s);
        return scan_levels(s, gpio_regs_read_levels(s->regs));
}

int shim_start(Shim *s) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        int n, r;

        s->reported = gpio_regs_read_levels(s->regs);
        n = gpio_proto_format_hello(line, sizeof(line), s->version);
        if (n < 0)
                return n;
        begin_batch(s);
        r = send_line(s, line, (size_t)n);
        /* Nobody listening yet is fine: the host asks with SYNC when it comes. */
        return r == -EAGAIN ? 0 : r;
}

static int answer_sync(Shim *s) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        uint64_t levels = gpio_regs_read_levels(s->regs);
        int n, r;

        /* Pending changes first, so that the stream stays a consistent history. */
        r = scan_levels(s, levels);
        if (r < 0)
                return r;
        n = gpio_proto_format_pins(line, sizeof(line), levels);
        if (n < 0)
                return n;
        r = send_line(s, line, (size_t)n);
        if (r == -EAGAIN)
                return 0;
        if (r < 0)
                return r;
        /* The snapshot told the host everything, including anything scan_levels() dropped. */
        s->reported = levels;
        return 0;
}

static int on_message(const GpioMsg *m, void *userdata) {
        Shim *s = userdata;

        switch (m->type) {
        case GPIO_MSG_SET:
                debug(s, "← SET %u %u", m->pin, (unsigned)m->value);
                gpio_regs_write_level(s->regs, m->pin, m->value);
                /* Reported after the whole chunk, so a burst of SETs (the host replays all
                 * driven levels after HELLO) costs one scan. */
                s->need_scan = true;
                return 0;
        case GPIO_MSG_SYNC:
                debug(s, "← SYNC");
                s->need_scan = false;
                return answer_sync(s);
        default:
                /* GPIO/HELLO/PINS are what the shim itself says; coming back they are an echo
                 * or a confused peer, never an instruction. */
                debug(s, "← ignored %s", gpio_msg_type_to_string(m->type));
                s->n_ignored++;
                return 0;
        }
}

int shim_handle_input(Shim *s, const void *data, size_t size) {
        uint64_t invalid_before = s->parser.n_invalid;
        int r;

        begin_batch(s);
        r = gpio_parser_feed(&s->parser, data, size, on_message, s);
        if (s->parser.n_invalid != invalid_before)
                debug(s, "← %llu invalid line(s) so far", (unsigned long long)s->parser.n_invalid);
        if (r < 0)
                return r;
        if (s->need_scan) {
                s->need_scan = false;
                r = scan_levels(s, gpio_regs_read_levels(s->regs));
                if (r < 0)
                        return r;
        }
        return 0;
}

int shim_process_input(Shim *s) {
        char buf[512];

        for (;;) {
                ssize_t n = read(s->fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return negative_errno();
                }
                if (n == 0)
                        return -EPIPE;

                int r = shim_handle_input(s, buf, (size_t)n);
                if (r < 0)
                        return r;
                if ((size_t)n < sizeof(buf))
                        return 0;
        }
}

int shim_run(Shim *s, unsigned interval_ms, unsigned idle_interval_ms, int sigfd) {
        uint64_t fast = (uint64_t)interval_ms * 1000u;
        uint64_t slow = idle_interval_ms > interval_ms ? (uint64_t)idle_interval_ms * 1000u : fast;
        uint64_t now = shim_now_usec();
        uint64_t next = now + fast, last_activity = now;
        bool input_open = true;
        int r, last_write_error = 0;

        for (;;) {
                struct pollfd pfd[2] = {
                        /* A negative fd makes poll() skip the entry: a hung-up line would
                         * otherwise report POLLHUP forever and turn this into a busy loop. */
                        {.fd = input_open ? s->fd : -1, .events = POLLIN},
                        {.fd = sigfd, .events = POLLIN},
                };
                int timeout = now >= next ? 0 : (int)((next - now + 999) / 1000);

                r = poll(pfd, 2, timeout);
                if (r < 0 && errno != EINTR)
                        return negative_errno();
                /* The only clock read per wakeup: each one is a syscall's worth of emulated
                 * instructions when the vDSO is not used. */
                now = shim_now_usec();
                if (r < 0)
                        continue;

                if (sigfd >= 0 && (pfd[1].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                                debug(s, "got signal %u, exiting", si.ssi_signo);
                        return 0;
                }

                if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = shim_process_input(s);
                        if (r == -EPIPE || (r < 0 && r != -EAGAIN)) {
                                fprintf(stderr, "piemu-gpio-shim: host line closed (%s), still scanning\n",
                                        strerror(r == -EPIPE ? EPIPE : -r));
                                input_open = false;
                        }
                        /* The host is talking: be quick again, starting now. */
                        if (now - last_activity >= SHIM_IDLE_AFTER_MS * 1000u && next > now + fast)
                                next = now + fast;
                        last_activity = now;
                }

                if (now >= next) {
                        r = shim_scan(s);
                        /* Say it when it starts failing, not 50 times a second. */
                        if (r < 0 && r != last_write_error)
                                fprintf(stderr, "piemu-gpio-shim: writing to host line failed: %s\n",
                                        strerror(-r));
                        last_write_error = r < 0 ? r : 0;
                        if (r > 0)
                                last_activity = now;

                        next += now - last_activity < SHIM_IDLE_AFTER_MS * 1000u ? fast : slow;
                        /* After a stall (suspended VM, slow host) start afresh instead of
                         * scanning back-to-back to catch up. */
                        if (next <= now)
                                next = now + fast;
                }
        }
}
