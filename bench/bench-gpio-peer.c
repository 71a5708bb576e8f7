/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetPin -> GpioChanged through a TLS peer that answers like the shim, measured on
 * piemud's own host-side path: the serial line (serial.c) listens with TLS as it does for
 * a board, a fake QEMU in another process dials it with a certificate from the same CA
 * and answers every SET line the daemon writes with "GPIO <pin> <v>" at once, and the
 * reply goes through the same parser (gpio-proto.c) on the same sd-event loop. What this
 * leaves out is the D-Bus hop (see bench/piemu_bench.py gpio for the full path with a
 * guest).
 *
 *   bench-gpio-peer [--tls-dir DIR] [ROUNDS]    prints median and p99 in microseconds
 *
 * The credentials are a throwaway set made by tools/setup-tls.sh --throwaway in a temporary
 * directory (removed again at the end), or the complete set already in DIR. The handshake
 * is not timed: the first SET goes out once the line is up. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <systemd/sd-event.h>

#include "gpio-proto.h"
#include "bench-tls.h"
#include "macro.h"
#include "serial.h"
#include "tls.h"

/* Set by bench/meson.build: the benches are run from the build tree, next to this source. */

DEFINE_TRIVIAL_CLEANUP_FUNC(TlsCreds *, tls_creds_unref);

typedef struct {
        sd_event *event;
        Serial *serial;
        GpioParser parser;
        unsigned round, rounds;
        uint64_t t0;
        uint64_t *lat;
} Bench;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the fake shim behind a fake QEMU: answers every SET with the GPIO report a guest would send ---- */

static _Noreturn void run_shim(const char *tls_dir, uint16_t port) {
        gnutls_session_t tls = NULL;
        char buf[256];
        size_t len = 0;

        if (tls_dial(tls_dir, port, &tls) < 0)
                _exit(1);
        for (;;) {
                ssize_t n = gnutls_record_recv(tls, buf + len, sizeof buf - len);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n <= 0)
                        _exit(0); /* the line was closed: the bench is done */
                len += (size_t)n;
                char *nl;
                while ((nl = memchr(buf, '\n', len))) {
                        GpioMsg m;
                        size_t k = (size_t)(nl - buf);
                        if (gpio_proto_parse_line(buf, k, &m) >= 0 && m.type == GPIO_MSG_SET) {
                                char out[GPIO_PROTO_LINE_MAX + 1];
                                int w = gpio_proto_format_gpio(out, sizeof out, m.pin, m.value);
                                if (gnutls_record_send(tls, out, (size_t)w) != w)
                                        _exit(1);
                        }
                        memmove(buf, nl + 1, len - k - 1);
                        len -= k + 1;
                }
                if (len == sizeof buf)
                        _exit(1); /* no line is that long */
        }
}

/* ---- piemud's side ---- */

static void send_set(Bench *b) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        int n = gpio_proto_format_set(line, sizeof line, 17, b->round % 2);
        b->t0 = now_ns();
        if (serial_write(b->serial, line, (size_t)n) < 0)
                sd_event_exit(b->event, -EIO);
}

static int on_msg(const GpioMsg *m, void *userdata) {
        Bench *b = userdata;
        if (m->type != GPIO_MSG_GPIO || m->pin != 17 || m->value != (b->round % 2))
                return -EBADMSG;
        b->lat[b->round++] = now_ns() - b->t0;
        if (b->round == b->rounds)
                return sd_event_exit(b->event, 0);
        send_set(b);
        return 0;
}

static void on_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Bench *b = userdata;
        if (gpio_parser_feed(&b->parser, data, n, on_msg, b) < 0)
                sd_event_exit(b->event, -EBADMSG);
}

static void on_state(Serial *s, int error, void *userdata) {
        Bench *b = userdata;
        if (error < 0)
                sd_event_exit(b->event, error);
        else
                send_set(b);
}

/* Only the fake QEMU ever connects: anything reported here means its certificate or handshake
 * was refused, and the bench would otherwise wait forever for its first reply. */
static void on_intruder(Serial *s, uid_t uid, const char *what, unsigned suppressed, void *userdata) {
        Bench *b = userdata;
        fprintf(stderr, "bench-gpio-peer: the line refused the fake QEMU (uid %d): %s\n", (int)uid, what);
        sd_event_exit(b->event, -EACCES);
}

static int cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                {"tls-dir", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        Bench b = {.rounds = 20000};
        _cleanup_(tls_dir_removep) char *throwaway = NULL;
        _cleanup_(tls_creds_unrefp) TlsCreds *creds = NULL;
        _cleanup_free_ char *problem = NULL;
        const char *tls_dir = NULL;
        pid_t shim = -1;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 't':
                        tls_dir = optarg;
                        break;
                case 'h':
                        printf("bench-gpio-peer [--tls-dir DIR] [ROUNDS]\n\n"
                               "SET -> GPIO round trips (default 20000) through piemud's TLS serial line "
                               "and a\n"
                               "fake QEMU answering like the shim. --tls-dir names a complete set as\n"
                               "tools/setup-tls.sh --throwaway makes it; without it, one is made in a "
                               "temporary\n"
                               "directory and removed at the end.\n");
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc)
                b.rounds = (unsigned)atoi(argv[optind]);
        if (b.rounds < 10)
                b.rounds = 10;
        b.lat = calloc(b.rounds, sizeof(uint64_t));
        if (!b.lat)
                return 1;
        /* As piemud: a peer that goes away must not kill the writer with SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        if (!tls_dir) {
                r = tls_dir_make(&throwaway);
                if (r < 0) {
                        fprintf(stderr, "bench-gpio-peer: cannot make throwaway credentials with %s: %s\n",
                                SETUP_TLS, strerror(-r));
                        return 1;
                }
                tls_dir = throwaway;
        }
        r = tls_creds_load(tls_dir, &creds, &problem);
        if (r < 0) {
                fprintf(stderr, "bench-gpio-peer: TLS credentials: %s\n", problem ?: strerror(-r));
                return 1;
        }
        gpio_parser_init(&b.parser);
        r = sd_event_default(&b.event);
        /* Any uid may dial: the fake QEMU is this very user, and the certificate is what is tested. */
        if (r >= 0)
                r = serial_listen(b.event, 0, creds, (uid_t)-1,
                                  &(SerialCallbacks){.on_data = on_data,
                                                     .on_state = on_state,
                                                     .on_intruder = on_intruder,
                                                     .userdata = &b},
                                  &b.serial);
        if (r >= 0) {
                shim = fork();
                if (shim == 0)
                        run_shim(tls_dir, serial_port(b.serial));
                if (shim < 0)
                        r = negative_errno();
        }
        if (r >= 0)
                r = sd_event_loop(b.event);
        if (r < 0 || b.round != b.rounds) {
                fprintf(stderr, "bench-gpio-peer: failed after %u rounds: %s\n", b.round, strerror(-r));
                if (shim > 0)
                        kill(shim, SIGKILL);
                return 1;
        }
        qsort(b.lat, b.rounds, sizeof(uint64_t), cmp);
        double med = (double)b.lat[b.rounds / 2] / 1000.0, p99 = (double)b.lat[b.rounds * 99 / 100] / 1000.0;
        printf("gpio-peer: SET -> GPIO through a loopback TLS peer answering like the shim, %u rounds: "
               "median %.1f us, p99 %.1f us (host I/O path without D-Bus; target median <= 200 us: ratio "
               "%.2f, "
               "p99 <= 1000 us: ratio %.2f)\n",
               b.rounds, med, p99, med / 200.0, p99 / 1000.0);
        /* Closing the line ends the shim. */
        serial_free(b.serial);
        waitpid(shim, NULL, 0);
        sd_event_unref(b.event);
        free(b.lat);
        return 0;
}
