/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetPin -> GpioChanged through a TCP peer that answers like the shim, measured on
 * piemud's own host-side path: the serial client (serial.c) writes the SET line the
 * daemon writes, a loopback peer answers "GPIO <pin> <v>" at once, and the reply goes
 * through the same parser (gpio-proto.c) on the same sd-event loop. What this leaves
 * out is the D-Bus hop (see bench/piemu_bench.py gpio for the full path with a guest).
 *
 *   bench-gpio-peer [ROUNDS]    prints median and p99 in microseconds */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "gpio-proto.h"
#include "macro.h"
#include "serial.h"

typedef struct {
        sd_event *event;
        Serial *serial;
        GpioParser parser;
        int listen_fd, peer_fd;
        sd_event_source *accept_src, *peer_src;
        char peer_buf[256];
        size_t peer_len;
        unsigned round, rounds;
        uint64_t t0;
        uint64_t *lat;
} Bench;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void send_set(Bench *b) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        int n = gpio_proto_format_set(line, sizeof line, 17, b->round % 2);
        b->t0 = now_ns();
        if (serial_write(b->serial, line, (size_t)n) < 0)
                sd_event_exit(b->event, -EIO);
}

/* The fake shim: answers every SET with the GPIO report a guest would send. */
static int on_peer(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Bench *b = userdata;
        ssize_t n = read(fd, b->peer_buf + b->peer_len, sizeof b->peer_buf - b->peer_len);
        if (n <= 0)
                return sd_event_exit(b->event, -EIO);
        b->peer_len += (size_t)n;
        char *nl;
        while ((nl = memchr(b->peer_buf, '\n', b->peer_len))) {
                GpioMsg m;
                size_t len = (size_t)(nl - b->peer_buf);
                if (gpio_proto_parse_line(b->peer_buf, len, &m) >= 0 && m.type == GPIO_MSG_SET) {
                        char out[GPIO_PROTO_LINE_MAX + 1];
                        int k = gpio_proto_format_gpio(out, sizeof out, m.pin, m.value);
                        if (write(fd, out, (size_t)k) != k)
                                return sd_event_exit(b->event, -EIO);
                }
                memmove(b->peer_buf, nl + 1, b->peer_len - len - 1);
                b->peer_len -= len + 1;
        }
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Bench *b = userdata;
        int one = 1;
        b->peer_fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (b->peer_fd < 0)
                return sd_event_exit(b->event, -errno);
        (void)setsockopt(b->peer_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return sd_event_add_io(b->event, &b->peer_src, b->peer_fd, EPOLLIN, on_peer, b);
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

static int cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        Bench b = {.listen_fd = -EBADF,
                   .peer_fd = -EBADF,
                   .rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 20000};
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        int r;

        if (b.rounds < 10)
                b.rounds = 10;
        b.lat = calloc(b.rounds, sizeof(uint64_t));
        if (!b.lat)
                return 1;
        gpio_parser_init(&b.parser);
        r = sd_event_default(&b.event);
        b.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (r < 0 || b.listen_fd < 0 || bind(b.listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
            listen(b.listen_fd, 1) < 0 || getsockname(b.listen_fd, (struct sockaddr *)&a, &l) < 0) {
                perror("setup");
                return 1;
        }
        r = sd_event_add_io(b.event, &b.accept_src, b.listen_fd, EPOLLIN, on_accept, &b);
        if (r >= 0)
                r = serial_connect(
                        b.event, ntohs(a.sin_port),
                        &(SerialCallbacks){.on_data = on_data, .on_state = on_state, .userdata = &b},
                        &b.serial);
        if (r >= 0)
                r = sd_event_loop(b.event);
        if (r < 0 || b.round != b.rounds) {
                fprintf(stderr, "bench-gpio-peer: failed after %u rounds: %s\n", b.round, strerror(-r));
                return 1;
        }
        qsort(b.lat, b.rounds, sizeof(uint64_t), cmp);
        double med = (double)b.lat[b.rounds / 2] / 1000.0, p99 = (double)b.lat[b.rounds * 99 / 100] / 1000.0;
        printf("gpio-peer: SET -> GPIO through a loopback TCP peer answering like the shim, %u rounds: "
               "median %.1f us, p99 %.1f us (host I/O path without D-Bus; target median <= 200 us: ratio "
               "%.2f, "
               "p99 <= 1000 us: ratio %.2f)\n",
               b.rounds, med, p99, med / 200.0, p99 / 1000.0);
        serial_free(b.serial);
        sd_event_source_disable_unref(b.accept_src);
        sd_event_source_disable_unref(b.peer_src);
        safe_close(b.listen_fd);
        safe_close(b.peer_fd);
        sd_event_unref(b.event);
        free(b.lat);
        return 0;
}
