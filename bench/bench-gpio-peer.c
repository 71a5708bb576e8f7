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
#include "macro.h"
#include "serial.h"
#include "tls.h"

/* Set by bench/meson.build: the benches are run from the build tree, next to this source. */
#define SETUP_TLS PIEMU_SOURCE_ROOT "/tools/setup-tls.sh"

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

/* ---- throwaway credentials: a CA, piemud's server pair and QEMU's client pair ---- */

static const char *const tls_files[] = {
        "ca-cert.pem",    "ca-key.pem",      "server-cert.pem",
        "server-key.pem", "client-cert.pem", "client-key.pem",
};

static void tls_dir_remove(char *dir) {
        if (!dir)
                return;
        for (size_t i = 0; i < ELEMENTSOF(tls_files); i++) {
                _cleanup_free_ char *f = NULL;
                if (asprintf(&f, "%s/%s", dir, tls_files[i]) >= 0)
                        (void)unlink(f);
        }
        (void)rmdir(dir);
        free(dir);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char *, tls_dir_remove);

/* The very script an administrator runs, so that the bench's certificates have the same
 * algorithms and extensions as the ones QEMU and piemud use on a real host. */
static int tls_dir_make(char **ret) {
        _cleanup_(tls_dir_removep) char *dir = NULL;
        int status;
        pid_t pid;

        dir = strdup("/tmp/piemu-bench-tls-XXXXXX");
        if (!dir)
                return -ENOMEM;
        if (!mkdtemp(dir)) {
                free(TAKE_PTR(dir));
                return negative_errno();
        }
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                execl(SETUP_TLS, SETUP_TLS, "--throwaway", dir, (char *)NULL);
                fprintf(stderr, "%s: %s\n", SETUP_TLS, strerror(errno));
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return negative_errno();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        *ret = TAKE_PTR(dir);
        return 0;
}

/* QEMU's end of the line: a blocking TLS client of 127.0.0.1:port with the client pair in `dir`,
 * which verifies piemud's certificate against the CA and the address, as QEMU does. The child
 * process it runs in exits on any failure, so nothing here is freed. */
static int tls_dial(const char *dir, uint16_t port, gnutls_session_t *ret) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        gnutls_certificate_credentials_t x509;
        gnutls_session_t s;
        char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
        int fd, r, one = 1;

        snprintf(ca, sizeof ca, "%s/ca-cert.pem", dir);
        snprintf(cert, sizeof cert, "%s/client-cert.pem", dir);
        snprintf(key, sizeof key, "%s/client-key.pem", dir);
        if (gnutls_certificate_allocate_credentials(&x509) < 0 ||
            gnutls_certificate_set_x509_trust_file(x509, ca, GNUTLS_X509_FMT_PEM) <= 0 ||
            gnutls_certificate_set_x509_key_file(x509, cert, key, GNUTLS_X509_FMT_PEM) < 0 ||
            gnutls_init(&s, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s) < 0 ||
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, x509) < 0)
                return -EINVAL;
        gnutls_session_set_verify_cert(s, "127.0.0.1", 0);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
                return negative_errno();
        /* As the old loopback peer: every GPIO report goes out at once. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        gnutls_transport_set_int(s, fd);
        gnutls_handshake_set_timeout(s, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) {
                fprintf(stderr, "fake QEMU: TLS handshake: %s\n", gnutls_strerror(r));
                return -EPROTO;
        }
        *ret = s;
        return 0;
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
