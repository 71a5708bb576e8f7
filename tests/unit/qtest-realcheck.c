/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qtest client against a real QEMU, by hand (not a meson test: it needs a booted guest).
 *
 *   qtest-realcheck --connect PATH ...   QEMU listens: -qtest unix:PATH,server=on,wait=off
 *   qtest-realcheck --listen PATH ...    QEMU dials:   -qtest unix:PATH,reconnect-ms=1000
 *
 * Then, in this order, whichever are given:
 *   --no-intercept     do not send irq_intercept_out (to see whether an earlier one still holds)
 *   --set PIN=0|1      writel GPSET/GPCLR (repeatable)
 *   --levels           print GPLEV as a 54-bit mask
 *   --bench N          N writel round trips (GPSET0/GPCLR0 of --bench-pin, default 17, alternating),
 *                      then N readl GPLEV0 round trips; prints median, p99 and max in microseconds
 *   --watch SEC        print IRQ lines for SEC seconds
 * IRQ lines are printed as they come, any time ("+SECONDS IRQ raise|lower N"); stdout is line
 * buffered so a script can follow it. Exit status 0 unless the connection failed. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "macro.h"
#include "qtest.h"

#define BASE UINT64_C(0x3f200000) /* raspi3b */

static uint64_t t_start;
static bool done;
static int result;
static uint64_t levels;
static uint32_t value;
static bool failed;

static double elapsed(void) {
        return (double)(now_usec(CLOCK_MONOTONIC) - t_start) / 1e6;
}

static void on_irq(Qtest *q, unsigned line, bool level, void *userdata) {
        printf("+%.3f IRQ %s %u\n", elapsed(), level ? "raise" : "lower", line);
}

static void on_closed(Qtest *q, int error, void *userdata) {
        printf("+%.3f closed: %s\n", elapsed(), strerror(-error));
        failed = true;
        done = true;
}

static void on_done(Qtest *q, int r, void *userdata) {
        result = r;
        done = true;
}

static void on_value(Qtest *q, int r, uint32_t v, void *userdata) {
        result = r;
        value = v;
        done = true;
}

static void on_levels(Qtest *q, int r, uint64_t l, void *userdata) {
        result = r;
        levels = l;
        done = true;
}

/* Runs the loop until the command queued last completes (or the connection ends). */
static int wait_done(sd_event *e) {
        while (!done)
                if (sd_event_run(e, UINT64_MAX) < 0)
                        return -EIO;
        done = false;
        return failed ? -ENOTCONN : result;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static void print_stats(const char *what, uint64_t *t, unsigned n) {
        qsort(t, n, sizeof(*t), cmp_u64);
        printf("%s: n=%u median=%" PRIu64 "us p99=%" PRIu64 "us max=%" PRIu64 "us\n", what, n, t[n / 2],
               t[(size_t)n * 99 / 100], t[n - 1]);
}

static int do_connect(const char *path, bool listen_mode) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (!listen_mode) {
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        return -errno;
                return TAKE_FD(fd);
        }

        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
                return -errno;
        printf("+%.3f listening on %s\n", elapsed(), path);
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return -errno;
        printf("+%.3f QEMU connected\n", elapsed());
        /* one client: QEMU's next connection (after we exit) must find no listener, or a new one */
        (void)unlink(path);
        return c;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                {"connect", required_argument, NULL, 'c'},
                {"listen", required_argument, NULL, 'l'},
                {"no-intercept", no_argument, NULL, 'n'},
                {"set", required_argument, NULL, 's'},
                {"levels", no_argument, NULL, 'L'},
                {"bench", required_argument, NULL, 'b'},
                {"bench-pin", required_argument, NULL, 'p'},
                {"watch", required_argument, NULL, 'w'},
                {},
        };
        const char *path = NULL;
        bool listen_mode = false, intercept = true, want_levels = false;
        unsigned sets[64][2], n_sets = 0, bench = 0, bench_pin = 17;
        double watch = 0;
        sd_event *e = NULL;
        Qtest *q = NULL;
        int fd, r, c;

        setvbuf(stdout, NULL, _IOLBF, 0);
        t_start = now_usec(CLOCK_MONOTONIC);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                case 'l':
                        path = optarg;
                        listen_mode = c == 'l';
                        break;
                case 'n':
                        intercept = false;
                        break;
                case 's':
                        if (n_sets >= ELEMENTSOF(sets) ||
                            sscanf(optarg, "%u=%u", &sets[n_sets][0], &sets[n_sets][1]) != 2)
                                return EXIT_FAILURE;
                        n_sets++;
                        break;
                case 'L':
                        want_levels = true;
                        break;
                case 'b':
                        bench = (unsigned)atoi(optarg);
                        break;
                case 'p':
                        bench_pin = (unsigned)atoi(optarg);
                        break;
                case 'w':
                        watch = atof(optarg);
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (!path) {
                fprintf(stderr, "--connect PATH or --listen PATH\n");
                return EXIT_FAILURE;
        }

        fd = do_connect(path, listen_mode);
        if (fd < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-fd));
                return EXIT_FAILURE;
        }
        if (sd_event_new(&e) < 0)
                return EXIT_FAILURE;
        r = qtest_new(e, fd, &(QtestCallbacks){.on_irq = on_irq, .on_closed = on_closed}, NULL, &q);
        if (r < 0) {
                fprintf(stderr, "qtest_new: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        if (intercept) {
                uint64_t t0 = now_usec(CLOCK_MONOTONIC);
                r = qtest_intercept_gpio(q, QTEST_GPIO_QOM_PATH, on_done, NULL);
                r = r < 0 ? r : wait_done(e);
                printf("+%.3f irq_intercept_out: %s (%" PRIu64 "us)\n", elapsed(),
                       r < 0 ? strerror(-r) : "OK", now_usec(CLOCK_MONOTONIC) - t0);
                if (r < 0)
                        goto out;
        }

        for (unsigned i = 0; i < n_sets; i++) {
                r = qtest_gpio_set(q, BASE, sets[i][0], sets[i][1], on_done, NULL);
                r = r < 0 ? r : wait_done(e);
                printf("+%.3f set %u=%u: %s\n", elapsed(), sets[i][0], sets[i][1],
                       r < 0 ? strerror(-r) : "OK");
                if (r < 0)
                        goto out;
        }

        if (want_levels) {
                r = qtest_gpio_read_levels(q, BASE, on_levels, NULL);
                r = r < 0 ? r : wait_done(e);
                if (r < 0)
                        goto out;
                printf("+%.3f levels: 0x%014" PRIx64 "\n", elapsed(), levels);
        }

        if (bench > 0) {
                uint64_t *t = calloc(bench, sizeof(uint64_t));
                if (!t)
                        goto out;
                for (unsigned i = 0; i < bench; i++) {
                        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
                        r = qtest_gpio_set(q, BASE, bench_pin, i % 2 == 0, on_done, NULL);
                        r = r < 0 ? r : wait_done(e);
                        if (r < 0)
                                break;
                        t[i] = now_usec(CLOCK_MONOTONIC) - t0;
                }
                if (r >= 0)
                        print_stats("writel GPSET0/GPCLR0 round trip", t, bench);
                for (unsigned i = 0; r >= 0 && i < bench; i++) {
                        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
                        r = qtest_readl(q, BASE + QTEST_GPIO_GPLEV0, on_value, NULL);
                        r = r < 0 ? r : wait_done(e);
                        if (r < 0)
                                break;
                        t[i] = now_usec(CLOCK_MONOTONIC) - t0;
                }
                if (r >= 0)
                        print_stats("readl GPLEV0 round trip", t, bench);
                free(t);
                if (r < 0)
                        goto out;
        }

        if (watch > 0) {
                uint64_t end = now_usec(CLOCK_MONOTONIC) + (uint64_t)(watch * 1e6);
                while (!failed && now_usec(CLOCK_MONOTONIC) < end)
                        if (sd_event_run(e, end - now_usec(CLOCK_MONOTONIC)) < 0)
                                break;
        }

out:
        if (r < 0)
                printf("+%.3f failed: %s\n", elapsed(), strerror(-r));
        q = qtest_free(q);
        sd_event_unref(e);
        return r < 0 || failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
