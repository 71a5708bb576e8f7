/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* serial.c's TLS lines against real gnutls clients in child processes, with throwaway
 * credentials from tools/setup-tls.sh --throwaway: QEMU's side (a client certificate from the
 * line's CA) gets the line, both ways and in order; a client without a certificate, one from
 * another CA, one of the wrong uid and one that stalls its handshake get nothing and are
 * reported with their uid; many stallers do not keep QEMU out; a port somebody else holds is
 * reported and taken as soon as they let go. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "macro.h"
#include "serial.h"
#include "tests.h"

static sd_event *event;
static char good_dir[64], foreign_dir[64];

typedef struct Line {
        Serial *serial;
        unsigned ups, downs;
        uint8_t *got;
        size_t n_got;
        unsigned n_intruders;
        uid_t last_uid;
        char last_what[256];
} Line;

static void on_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Line *l = userdata;
        uint8_t *g = realloc(l->got, l->n_got + n);
        CHECK(g);
        memcpy(g + l->n_got, data, n);
        l->got = g;
        l->n_got += n;
}

static void on_state(Serial *s, int error, void *userdata) {
        Line *l = userdata;
        if (error == 0)
                l->ups++;
        else
                l->downs++;
}

static void on_intruder(Serial *s, uid_t uid, const char *what, unsigned suppressed, void *userdata) {
        Line *l = userdata;
        l->n_intruders++;
        l->last_uid = uid;
        snprintf(l->last_what, sizeof l->last_what, "%s", what);
}

/* Runs the loop until *counter reaches want (or fails after timeout). */
static void run_until(unsigned *counter, unsigned want, uint64_t timeout_usec) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        while (*counter < want) {
                CHECK(now_usec(CLOCK_MONOTONIC) < end);
                CHECK(sd_event_run(event, 50 * 1000) >= 0);
        }
}

static void run_for(uint64_t usec) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + usec;
        while (now_usec(CLOCK_MONOTONIC) < end)
                CHECK(sd_event_run(event, 10 * 1000) >= 0);
}

/* ---- the clients (child processes, blocking) ---- */

typedef enum Client {
        CLIENT_QEMU,     /* the right certificate: exchanges data */
        CLIENT_NO_CERT,  /* no certificate */
        CLIENT_FOREIGN,  /* a certificate from another CA */
        CLIENT_STALL,    /* half a ClientHello, then waits */
        CLIENT_OTHER_UID /* the right certificate, but another uid */
} Client;

#define FLOOD_SIZE (1U << 20)

static int connect_to(uint16_t port) {
        struct sockaddr_in a = {
                .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
                _exit(90);
        return fd;
}

/* Exit codes: 0 as expected, 1 received application data it must not have, 9x set-up errors. */
static void client_main(Client kind, uint16_t port) {
        gnutls_certificate_credentials_t x;
        gnutls_session_t s;
        char path[128], key[128];
        uint8_t buf[65536];
        int fd, r;

        alarm(20);
        if (kind == CLIENT_OTHER_UID && setresuid(65534, 65534, 65534) < 0)
                _exit(91);
        fd = connect_to(port);
        if (kind == CLIENT_STALL) {
                static const uint8_t half_hello[] = {0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4};
                if (write(fd, half_hello, sizeof half_hello) != (ssize_t)sizeof half_hello)
                        _exit(92);
                /* Exits 0 once piemud drops it, having received nothing. */
                ssize_t n = read(fd, buf, sizeof buf);
                _exit(n == 0 ? 0 : 1);
        }
        if (gnutls_certificate_allocate_credentials(&x) < 0)
                _exit(93);
        /* The client trusts whatever answers: what matters is what the server gives it. */
        if (kind != CLIENT_NO_CERT) {
                const char *dir = kind == CLIENT_FOREIGN ? foreign_dir : good_dir;
                snprintf(path, sizeof path, "%s/client-cert.pem", dir);
                snprintf(key, sizeof key, "%s/client-key.pem", dir);
                if (gnutls_certificate_set_x509_key_file(x, path, key, GNUTLS_X509_FMT_PEM) < 0)
                        _exit(94);
        }
        if (gnutls_init(&s, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s) < 0 ||
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, x) < 0)
                _exit(95);
        gnutls_transport_set_int(s, fd);
        do
                r = gnutls_handshake(s);
        while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
        if (kind != CLIENT_QEMU) {
                /* With TLS 1.3 the client may finish its side before the server refuses it: then the
                 * first read must end, with no data. */
                if (r == 0) {
                        (void)gnutls_record_send(s, "stranger\n", 9);
                        ssize_t n = gnutls_record_recv(s, buf, sizeof buf);
                        _exit(n > 0 ? 1 : 0);
                }
                _exit(0);
        }
        if (r < 0)
                _exit(96);
        static const char hello[] = "hello from qemu\n";
        if (gnutls_record_send(s, hello, sizeof hello - 1) != (ssize_t)sizeof hello - 1)
                _exit(97);
        /* piemud's answer, then a flood with a known pattern. */
        static const char reply[] = "from piemud\n";
        size_t got = 0;
        while (got < sizeof reply - 1) {
                ssize_t n = gnutls_record_recv(s, buf + got, sizeof buf - got);
                if (n <= 0)
                        _exit(98);
                got += (size_t)n;
        }
        if (got != sizeof reply - 1 || memcmp(buf, reply, got) != 0)
                _exit(99);
        for (size_t off = 0; off < FLOOD_SIZE;) {
                size_t n = FLOOD_SIZE - off < 16384 ? FLOOD_SIZE - off : 16384;
                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t)((off + i) * 7);
                ssize_t k = gnutls_record_send(s, buf, n);
                if (k <= 0)
                        _exit(100);
                off += (size_t)k;
        }
        gnutls_bye(s, GNUTLS_SHUT_WR);
        _exit(0);
}

static pid_t spawn(Client kind, uint16_t port) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
                client_main(kind, port);
        return pid;
}

static int reap(pid_t pid) {
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* Reaps the child while the loop keeps serving the line. */
static int reap_serving(pid_t pid) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 20 * 1000000ULL;
        int status;
        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                CHECK(r >= 0);
                if (r == pid)
                        break;
                CHECK(now_usec(CLOCK_MONOTONIC) < end);
                CHECK(sd_event_run(event, 10 * 1000) >= 0);
        }
        CHECK(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void make_creds(char *dir, size_t size, const char *tag) {
        char cmd[512];
        snprintf(dir, size, "/tmp/piemu-test-tls-%s-XXXXXX", tag);
        CHECK(mkdtemp(dir));
        snprintf(cmd, sizeof cmd, "%s/tools/setup-tls.sh --throwaway %s", PIEMU_SOURCE_ROOT, dir);
        CHECK(system(cmd) == 0);
        /* The other-uid client must be able to read the client key (a copy of QEMU's key in the
         * wrong hands is exactly what that case is about). */
        CHECK(chmod(dir, 0755) == 0);
        snprintf(cmd, sizeof cmd, "%s/client-key.pem", dir);
        CHECK(chmod(cmd, 0644) == 0);
}

static Serial *listen_line(Line *l, uint16_t port, TlsCreds *creds, uid_t peer_uid) {
        const SerialCallbacks cb = {
                .on_data = on_data, .on_state = on_state, .on_intruder = on_intruder, .userdata = l};
        *l = (Line){.last_uid = (uid_t)-2};
        CHECK(serial_listen(event, port, creds, peer_uid, &cb, &l->serial) == 0);
        CHECK(serial_is_tls(l->serial));
        CHECK(serial_port(l->serial) != 0);
        return l->serial;
}

static void check_flood(const Line *l, size_t offset) {
        CHECK(l->n_got == offset + FLOOD_SIZE);
        for (size_t i = 0; i < FLOOD_SIZE; i++)
                if (l->got[offset + i] != (uint8_t)(i * 7)) {
                        fprintf(stderr, "byte %zu differs\n", i);
                        exit(1);
                }
}

static void test_qemu_gets_the_line_and_strangers_nothing(TlsCreds *creds) {
        Line l;
        uint16_t port;
        static const char hello[] = "hello from qemu\n";

        listen_line(&l, 0, creds, getuid());
        port = serial_port(l.serial);
        CHECK(!serial_is_up(l.serial));

        /* Strangers first: refused, named, and the line stays down. */
        CHECK(reap_serving(spawn(CLIENT_NO_CERT, port)) == 0);
        run_until(&l.n_intruders, 1, 5 * 1000000);
        CHECK(l.last_uid == getuid());
        CHECK(l.ups == 0 && l.n_got == 0);

        CHECK(reap_serving(spawn(CLIENT_FOREIGN, port)) == 0);
        run_until(&l.n_intruders, 2, 5 * 1000000);
        CHECK(l.last_uid == getuid());
        CHECK(l.ups == 0 && l.n_got == 0);

        /* QEMU: both ways, in order, all of it. */
        pid_t q = spawn(CLIENT_QEMU, port);
        run_until(&l.ups, 1, 10 * 1000000);
        CHECK(serial_is_up(l.serial));
        while (l.n_got < sizeof hello - 1)
                CHECK(sd_event_run(event, 100 * 1000) >= 0);
        CHECK(memcmp(l.got, hello, sizeof hello - 1) == 0);
        CHECK(serial_write(l.serial, "from piemud\n", 12) == 0);
        run_until(&l.downs, 1, 20 * 1000000); /* it closes after the flood */
        CHECK(reap(q) == 0);
        check_flood(&l, sizeof hello - 1);
        CHECK(!serial_is_up(l.serial));

        /* Still listening: QEMU dials again, and gets the line again. What piemud wrote while QEMU
         * was away is queued and arrives first. */
        free(l.got);
        l.got = NULL;
        l.n_got = 0;
        CHECK(serial_write(l.serial, "from piemud\n", 12) == 0);
        q = spawn(CLIENT_QEMU, port);
        run_until(&l.ups, 2, 10 * 1000000);
        run_until(&l.downs, 2, 20 * 1000000);
        CHECK(reap(q) == 0);
        check_flood(&l, sizeof hello - 1);
        CHECK(l.n_intruders == 2);

        free(l.got);
        serial_free(l.serial);
}

static void test_stalled_handshakes(TlsCreds *creds) {
        Line l;
        pid_t stallers[8];
        uint64_t t0;

        listen_line(&l, 0, creds, (uid_t)-1);
        t0 = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < ELEMENTSOF(stallers); i++)
                stallers[i] = spawn(CLIENT_STALL, serial_port(l.serial));
        run_for(300 * 1000);
        /* QEMU is not behind them. */
        pid_t q = spawn(CLIENT_QEMU, serial_port(l.serial));
        run_until(&l.ups, 1, 5 * 1000000);
        CHECK(now_usec(CLOCK_MONOTONIC) - t0 < SERIAL_HANDSHAKE_USEC);
        while (l.n_got < 16)
                CHECK(sd_event_run(event, 100 * 1000) >= 0);
        CHECK(serial_write(l.serial, "from piemud\n", 12) == 0);
        /* Dropped after SERIAL_HANDSHAKE_USEC, each one named. */
        run_until(&l.n_intruders, ELEMENTSOF(stallers), 5 * 1000000);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(took >= SERIAL_HANDSHAKE_USEC - 100 * 1000 && took < SERIAL_HANDSHAKE_USEC + 1500 * 1000);
        CHECK(strstr(l.last_what, "did not complete a TLS handshake"));
        CHECK(l.last_uid == getuid());
        for (size_t i = 0; i < ELEMENTSOF(stallers); i++)
                CHECK(reap_serving(stallers[i]) == 0);
        run_until(&l.downs, 1, 20 * 1000000);
        CHECK(reap(q) == 0);
        free(l.got);
        serial_free(l.serial);
}

/* QEMU's own user stalling (QEMU on a busy host): dropped after SERIAL_HANDSHAKE_USEC like anyone,
 * but logged as QEMU's slow handshake, not reported as a stranger. */
static void test_slow_qemu_is_not_a_stranger(TlsCreds *creds) {
        Line l;

        listen_line(&l, 0, creds, getuid()); /* this test's uid plays QEMU's */
        CHECK(reap_serving(spawn(CLIENT_STALL, serial_port(l.serial))) == 0);
        CHECK(l.n_intruders == 0);
        CHECK(l.ups == 0);
        serial_free(l.serial);
}

static void test_wrong_uid(TlsCreds *creds) {
        Line l;
        if (getuid() != 0) {
                printf("test_wrong_uid: skipped (needs root to run a client as another uid)\n");
                return;
        }
        /* QEMU's uid is 12345 here: root and 12345 may connect, uid 65534 may not, key or no key. */
        listen_line(&l, 0, creds, 12345);
        CHECK(reap_serving(spawn(CLIENT_OTHER_UID, serial_port(l.serial))) == 0);
        run_until(&l.n_intruders, 1, 5 * 1000000);
        CHECK(l.last_uid == 65534);
        CHECK(strstr(l.last_what, "does not run as QEMU's user"));
        CHECK(l.ups == 0 && l.n_got == 0);
        serial_free(l.serial);
}

static void test_squatted_port(TlsCreds *creds) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int squatter = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        Line l;

        CHECK(squatter >= 0);
        CHECK(bind(squatter, (struct sockaddr *)&a, sizeof a) == 0);
        CHECK(listen(squatter, 1) == 0);
        CHECK(getsockname(squatter, (struct sockaddr *)&a, &len) == 0);
        listen_line(&l, ntohs(a.sin_port), creds, (uid_t)-1);
        CHECK(serial_port(l.serial) == ntohs(a.sin_port));
        CHECK(l.n_intruders == 0); /* never from inside the constructor */
        run_until(&l.n_intruders, 1, 2 * 1000000);
        CHECK(strstr(l.last_what, "holds its port"));
        CHECK(l.last_uid == getuid());
        close(squatter);
        /* Taken back within SERIAL_REBIND_USEC, and QEMU gets it. */
        run_for(SERIAL_REBIND_USEC + 200 * 1000);
        pid_t q = spawn(CLIENT_QEMU, serial_port(l.serial));
        run_until(&l.ups, 1, 5 * 1000000);
        while (l.n_got < 16)
                CHECK(sd_event_run(event, 100 * 1000) >= 0);
        CHECK(serial_write(l.serial, "from piemud\n", 12) == 0);
        run_until(&l.downs, 1, 20 * 1000000);
        CHECK(reap(q) == 0);
        CHECK(l.n_intruders == 1);
        free(l.got);
        serial_free(l.serial);
}

static void test_bad_credentials(void) {
        char dir[64], path[128], cmd[256];
        _cleanup_free_ char *problem = NULL;
        TlsCreds *c = NULL;

        snprintf(dir, sizeof dir, "/tmp/piemu-test-tls-bad-XXXXXX");
        CHECK(mkdtemp(dir));
        CHECK(tls_creds_load(dir, &c, &problem) < 0 && !c);
        CHECK_CONTAINS(problem, "ca-cert.pem");
        snprintf(cmd, sizeof cmd, "%s/tools/setup-tls.sh --throwaway %s", PIEMU_SOURCE_ROOT, dir);
        CHECK(system(cmd) == 0);
        /* A key others can read is refused, and the message says how to fix it. */
        snprintf(path, sizeof path, "%s/server-key.pem", dir);
        CHECK(chmod(path, 0644) == 0);
        free(problem);
        problem = NULL;
        CHECK(tls_creds_load(dir, &c, &problem) == -EPERM && !c);
        CHECK_CONTAINS(problem, "server-key.pem");
        CHECK_CONTAINS(problem, "chmod 0400");
        CHECK(chmod(path, 0600) == 0);
        CHECK(tls_creds_load(dir, &c, NULL) == 0 && c);
        tls_creds_unref(c);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0);
}

int main(void) {
        TlsCreds *creds = NULL;
        _cleanup_free_ char *problem = NULL;
        char cmd[256];

        signal(SIGPIPE, SIG_IGN);
        CHECK(sd_event_new(&event) >= 0);
        make_creds(good_dir, sizeof good_dir, "good");
        make_creds(foreign_dir, sizeof foreign_dir, "foreign");
        if (tls_creds_load(good_dir, &creds, &problem) < 0) {
                fprintf(stderr, "cannot load credentials: %s\n", strempty(problem));
                return 1;
        }
        test_bad_credentials();
        test_qemu_gets_the_line_and_strangers_nothing(creds);
        test_stalled_handshakes(creds);
        test_slow_qemu_is_not_a_stranger(creds);
        test_wrong_uid(creds);
        test_squatted_port(creds);
        tls_creds_unref(creds);
        sd_event_unref(event);
        snprintf(cmd, sizeof cmd, "rm -rf %s %s", good_dir, foreign_dir);
        CHECK(system(cmd) == 0);
        printf("test-serial-tls: all passed\n");
        return 0;
}
