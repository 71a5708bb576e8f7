/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SerialOutput throughput from a flooding peer to one watcher, on piemud's own code path:
 * the serial line (serial.c) listens with TLS as it does for a board, a fake QEMU dials it
 * as a TLS client with a certificate from the same CA and writes as fast as TCP and TLS
 * allow, the fan-out (watchers.c) coalesces what the line reads into SerialOutput signals
 * addressed to one watcher, and a real dbus-daemon (the system bus unless --bus says
 * otherwise) carries them to a watcher process that checks every byte. The daemon side's
 * peak RSS is reported too, with a watcher that keeps up and, with --slow-ms, with one that
 * does not. What this leaves out is QEMU: a real guest's UART is far slower than the peer
 * (bench/piemu_bench.py flood measures that path).
 *
 *   bench-serial-flood [--seconds S] [--slow-ms MS] [--bus ADDRESS] [--tls-dir DIR]
 *
 * The credentials are a throwaway set made by tools/setup-tls.sh --throwaway in a temporary
 * directory (removed again at the end), or the complete set already in DIR (ca-cert.pem,
 * server-cert.pem, server-key.pem, client-cert.pem, client-key.pem, as that script makes
 * it). The handshake is not part of the measured time: the clock starts at the first byte.
 *
 * Prints one line of key=value pairs. The peer writes bytes i % 251 so that the watcher
 * can tell lost or reordered data from a slow stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bench-tls.h"
#include "macro.h"
#include "serial.h"
#include "tls.h"
#include "watchers.h"

#define PATTERN_MOD 251
#define BENCH_PATH  "/org/piemu/board/bench"
/* Set by bench/meson.build: the benches are run from the build tree, next to this source. */

DEFINE_TRIVIAL_CLEANUP_FUNC(TlsCreds *, tls_creds_unref);

static long status_kib(const char *key) {
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        long v = -1;
        size_t k = strlen(key);

        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, key, k) == 0 && line[k] == ':') {
                        v = strtol(line + k + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static int open_bus(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address)
                return sd_bus_open_system(ret);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* ---- the fake guest: writes the pattern until the connection closes ---- */

static _Noreturn void run_flooder(const char *tls_dir, uint16_t port) {
        uint8_t buf[65536];
        uint64_t off = 0;
        gnutls_session_t tls = NULL;

        if (tls_dial(tls_dir, port, &tls) < 0)
                _exit(1);
        for (;;) {
                for (size_t i = 0; i < sizeof buf; i++)
                        buf[i] = (uint8_t)((off + i) % PATTERN_MOD);
                /* One record (at most 16 KiB) per call: the rest is sent from `off` next time. */
                ssize_t n = gnutls_record_send(tls, buf, sizeof buf);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n <= 0)
                        _exit(0);
                off += (uint64_t)n;
        }
}

/* ---- the watcher: a separate bus client, as a user's `piemuctl watch` would be ---- */

typedef struct Watcher {
        uint64_t bytes, signals, gaps, first_usec, last_usec;
        unsigned expect;
        bool synced;
        unsigned slow_ms;
} Watcher;

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Watcher *w = userdata;
        const uint8_t *p;
        size_t n;

        if (sd_bus_message_read_array(m, 'y', (const void **)&p, &n) < 0)
                return 0;
        if (w->signals++ == 0)
                w->first_usec = now_usec(CLOCK_MONOTONIC);
        w->last_usec = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < n; i++) {
                if (w->synced && p[i] != w->expect)
                        w->gaps++;
                w->synced = true;
                w->expect = (p[i] + 1u) % PATTERN_MOD;
        }
        w->bytes += n;
        if (w->slow_ms)
                usleep(w->slow_ms * 1000u);
        return 0;
}

static _Noreturn void run_watcher(const char *address, unsigned slow_ms, int name_fd, int stop_fd,
                                  int result_fd) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        Watcher w = {.slow_ms = slow_ms};
        const char *unique;
        char out[256];

        if (open_bus(address, &bus) < 0 ||
            sd_bus_match_signal(bus, NULL, NULL, BENCH_PATH, "org.piemu.Board", "SerialOutput", on_signal,
                                &w) < 0 ||
            sd_bus_get_unique_name(bus, &unique) < 0)
                _exit(1);
        if (write(name_fd, unique, strlen(unique) + 1) < 0)
                _exit(1);
        close(name_fd);
        /* Until told to stop, then until the bus has been quiet for a second: what dbus-daemon
         * still holds for a slow watcher is delivered, or counted as a gap if it was dropped. */
        for (bool stopping = false;;) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        _exit(1);
                if (r > 0)
                        continue;
                char c;
                if (!stopping && (read(stop_fd, &c, 1) >= 0 || errno != EAGAIN))
                        stopping = true;
                r = sd_bus_wait(bus, stopping ? 1000000 : 100000);
                if (r < 0)
                        _exit(1);
                if (r == 0 && stopping)
                        break;
        }
        int k = snprintf(out, sizeof out, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", w.bytes,
                         w.signals, w.gaps, w.last_usec > w.first_usec ? w.last_usec - w.first_usec : 0);
        (void)!write(result_fd, out, (size_t)k);
        _exit(0);
}

/* ---- the daemon side: serial.c and watchers.c on one sd-event loop, as in piemud ---- */

typedef struct Daemon {
        sd_event *event;
        Watchers watchers;
        Serial *serial;
        uint64_t bytes_in;
        uint64_t t_start, t_end;
        uint64_t max_queued;
} Daemon;

static void on_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Daemon *d = userdata;
        uint64_t q = 0;

        if (d->bytes_in == 0)
                d->t_start = now_usec(CLOCK_MONOTONIC);
        d->bytes_in += n;
        watchers_push_output(&d->watchers, data, n);
        if (sd_bus_get_n_queued_write(watchers_bus(&d->watchers), &q) >= 0 && q > d->max_queued)
                d->max_queued = q;
}

static void on_state(Serial *s, int error, void *userdata) {
        Daemon *d = userdata;
        if (error < 0)
                sd_event_exit(d->event, error);
}

/* Only the fake QEMU ever connects: anything reported here means its certificate or handshake
 * was refused, and the bench would otherwise wait out its time for bytes that never come. */
static void on_intruder(Serial *s, uid_t uid, const char *what, unsigned suppressed, void *userdata) {
        Daemon *d = userdata;
        fprintf(stderr, "the line refused the fake QEMU (uid %d): %s\n", (int)uid, what);
        sd_event_exit(d->event, -EACCES);
}

static int on_done(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        d->t_end = now_usec(CLOCK_MONOTONIC);
        return sd_event_exit(d->event, 0);
}

static void usage(void) {
        printf("bench-serial-flood [--seconds S] [--slow-ms MS] [--bus ADDRESS] [--tls-dir DIR]\n\n"
               "Floods piemud's TLS serial line and SerialOutput fan-out from a fake guest for S seconds\n"
               "(default 5) and reports what one watcher received. --slow-ms makes the watcher sleep\n"
               "that long after every signal, to show memory stays bounded when it cannot keep up.\n"
               "--tls-dir names a complete set as tools/setup-tls.sh --throwaway makes it; without it,\n"
               "one is made in a temporary directory and removed at the end.\n");
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                {"seconds", required_argument, NULL, 's'}, {"slow-ms", required_argument, NULL, 'w'},
                {"bus", required_argument, NULL, 'b'},     {"tls-dir", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},          {},
        };
        const char *address = NULL, *tls_dir = NULL;
        _cleanup_(tls_dir_removep) char *throwaway = NULL;
        _cleanup_(tls_creds_unrefp) TlsCreds *creds = NULL;
        _cleanup_free_ char *problem = NULL;
        double seconds = 5;
        unsigned slow_ms = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 's':
                        seconds = atof(optarg);
                        break;
                case 'w':
                        slow_ms = (unsigned)atoi(optarg);
                        break;
                case 'b':
                        address = optarg;
                        break;
                case 't':
                        tls_dir = optarg;
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        return 2;
                }
        if (seconds <= 0) {
                fprintf(stderr, "--seconds must be positive\n");
                return 2;
        }

        /* As piemud: a peer that goes away must not kill the reader with SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        if (!tls_dir) {
                r = tls_dir_make(&throwaway);
                if (r < 0) {
                        fprintf(stderr, "cannot make throwaway credentials with %s: %s\n", SETUP_TLS,
                                strerror(-r));
                        return 1;
                }
                tls_dir = throwaway;
        }
        r = tls_creds_load(tls_dir, &creds, &problem);
        if (r < 0) {
                fprintf(stderr, "TLS credentials: %s\n", problem ?: strerror(-r));
                return 1;
        }

        int name_pipe[2], stop_pipe[2], result_pipe[2];
        if (pipe2(name_pipe, O_CLOEXEC) < 0 || pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
            pipe2(result_pipe, O_CLOEXEC) < 0) {
                perror("pipe");
                return 1;
        }
        pid_t watcher = fork();
        if (watcher == 0) {
                close(name_pipe[0]);
                close(stop_pipe[1]);
                close(result_pipe[0]);
                run_watcher(address, slow_ms, name_pipe[1], stop_pipe[0], result_pipe[1]);
        }
        close(name_pipe[1]);
        close(stop_pipe[0]);
        close(result_pipe[1]);
        char unique[256] = "";
        ssize_t n = read(name_pipe[0], unique, sizeof unique - 1);
        if (watcher < 0 || n <= 0) {
                fprintf(stderr, "the watcher did not connect to the bus\n");
                return 1;
        }

        Daemon d = {};
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        long rss_before;
        r = sd_event_default(&d.event);
        if (r >= 0)
                r = open_bus(address, &bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, d.event, 0);
        watchers_init(&d.watchers, BENCH_PATH, "bench");
        if (r >= 0)
                r = watchers_add_name(&d.watchers, bus, unique);
        if (r < 0) {
                fprintf(stderr, "bus set-up: %s\n", strerror(-r));
                return 1;
        }

        rss_before = status_kib("VmRSS");
        /* Any uid may dial: the fake QEMU is this very user, and the certificate is what is tested. */
        r = serial_listen(d.event, 0, creds, (uid_t)-1,
                          &(SerialCallbacks){.on_data = on_data,
                                             .on_state = on_state,
                                             .on_intruder = on_intruder,
                                             .userdata = &d},
                          &d.serial);
        if (r < 0) {
                fprintf(stderr, "listen: %s\n", strerror(-r));
                kill(watcher, SIGKILL);
                return 1;
        }
        pid_t flooder = fork();
        if (flooder == 0)
                run_flooder(tls_dir, serial_port(d.serial));
        if (flooder < 0)
                r = negative_errno();
        if (r >= 0) {
                watchers_attach(&d.watchers, d.serial);
                r = sd_event_add_time_relative(d.event, NULL, CLOCK_MONOTONIC, (uint64_t)(seconds * 1e6),
                                               1000, on_done, &d);
        }
        if (r >= 0)
                r = sd_event_loop(d.event);
        if (r >= 0 && d.bytes_in == 0)
                r = -ENODATA; /* the fake QEMU never got through (it said why on stderr) */
        if (r < 0) {
                fprintf(stderr, "flood: %s\n", strerror(-r));
                if (flooder > 0)
                        kill(flooder, SIGKILL);
                kill(watcher, SIGKILL);
                return 1;
        }
        long rss_peak = status_kib("VmHWM");

        /* Stop the peer, drop what is held, let the watcher drain, then ask for its count. */
        watchers_detach(&d.watchers);
        d.serial = serial_free(d.serial);
        kill(flooder, SIGKILL);
        waitpid(flooder, NULL, 0);
        (void)sd_bus_flush(bus);
        (void)!write(stop_pipe[1], "x", 1);
        char res[256] = "";
        n = read(result_pipe[0], res, sizeof res - 1);
        waitpid(watcher, NULL, 0);
        uint64_t w_bytes = 0, w_signals = 0, w_gaps = 0, w_usec = 0;
        if (n <= 0 || sscanf(res, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &w_bytes, &w_signals,
                             &w_gaps, &w_usec) != 4) {
                fprintf(stderr, "the watcher gave no result\n");
                return 1;
        }

        double in_s = (double)(d.t_end - d.t_start) / 1e6;
        printf("seconds=%.2f slow_ms=%u read_mb_s=%.1f sent_mb_s=%.1f watcher_mb_s=%.1f signals=%" PRIu64
               " avg_signal_kib=%.1f gaps=%" PRIu64 " pauses=%" PRIu64 " max_queued=%" PRIu64
               " rss_before_mib=%.1f rss_peak_mib=%.1f\n",
               in_s, slow_ms, (double)d.bytes_in / in_s / 1e6, (double)d.watchers.n_bytes / in_s / 1e6,
               w_usec ? (double)w_bytes / ((double)w_usec / 1e6) / 1e6 : 0.0, w_signals,
               w_signals ? (double)w_bytes / (double)w_signals / 1024.0 : 0.0, w_gaps, d.watchers.n_pauses,
               d.max_queued, (double)rss_before / 1024.0, (double)rss_peak / 1024.0);
        watchers_done(&d.watchers);
        sd_event_unref(d.event);
        return w_bytes > 0 ? 0 : 1;
}
