/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The console line's relay: what the guest prints goes to the recent-output ring, the OpenSerial
 * clients and the watchers; what OpenSerial clients and SendSerial type goes to the line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "board-internal.h"
#include "log.h"
#include "macro.h"
#include "piemu-errors.h"

/* ---- OpenSerial clients ---- */

typedef struct ConsoleClient {
        Board *board;
        int fd;
        sd_event_source *io;
        struct ConsoleClient *next;
} ConsoleClient;

static void console_client_free(ConsoleClient *c) {
        Board *b = c->board;
        for (ConsoleClient **p = &b->console_clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        free(c);
}

static int on_console_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ConsoleClient *c = userdata;
        uint8_t buf[4096];
        ssize_t n;

        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                console_client_free(c);
                return 0;
        }
        if (!c->board->console || serial_write(c->board->console, buf, (size_t)n) < 0)
                console_client_free(c);
        return 0;
}

int board_open_console(Board *b, int *ret_fd) {
        int pair[2];
        ConsoleClient *c;
        int r;

        if (!b->console)
                return -ENOTCONN;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
                free(c);
                return negative_errno();
        }
        c->board = b;
        c->fd = pair[0];
        r = sd_event_add_io(b->manager->event, &c->io, c->fd, EPOLLIN, on_console_client, c);
        if (r < 0) {
                safe_close(pair[0]);
                safe_close(pair[1]);
                free(c);
                return r;
        }
        c->next = b->console_clients;
        b->console_clients = c;
        *ret_fd = pair[1];
        return 0;
}

static void console_clients_write(Board *b, const uint8_t *data, size_t n) {
        ConsoleClient *next;
        for (ConsoleClient *c = b->console_clients; c; c = next) {
                next = c->next;
                ssize_t k = send(c->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                /* A terminal that cannot keep up loses output rather than making piemud buffer it. */
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        console_client_free(c);
        }
}

/* ---- guest output ---- */

static void recent_append(Board *b, const uint8_t *data, size_t n) {
        if (n >= BOARD_RECENT_MAX) {
                memcpy(b->recent, data + n - BOARD_RECENT_MAX, BOARD_RECENT_MAX);
                b->recent_start = 0;
                b->recent_len = BOARD_RECENT_MAX;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                size_t pos = (b->recent_start + b->recent_len) % BOARD_RECENT_MAX;
                b->recent[pos] = data[i];
                if (b->recent_len < BOARD_RECENT_MAX)
                        b->recent_len++;
                else
                        b->recent_start = (b->recent_start + 1) % BOARD_RECENT_MAX;
        }
}

size_t board_recent_serial(Board *b, uint8_t *buf, size_t size) {
        size_t n = b->recent_len < size ? b->recent_len : size;
        size_t skip = b->recent_len - n;
        for (size_t i = 0; i < n; i++)
                buf[i] = b->recent[(b->recent_start + skip + i) % BOARD_RECENT_MAX];
        return n;
}

void board_console_on_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Board *b = userdata;

        recent_append(b, data, n);
        console_clients_write(b, data, n);
        watchers_push_output(&b->watchers, data, n);
}

int board_send_serial(Board *b, const void *data, size_t n, sd_bus_error *error) {
        int r;
        if (b->state != BOARD_RUNNING)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        if (!b->console)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "The serial line of board %s is not open; try again.",
                                         b->config.name);
        if (n > SERIAL_WRITE_MAX)
                /* It would never fit, however long the caller waited. */
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "SendSerial takes at most %u bytes at a time (got %zu); send it in "
                                         "parts.",
                                         SERIAL_WRITE_MAX, n);
        r = serial_write(b->console, data, n);
        if (r == -ENOBUFS)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "The console of board %s is not reading; try again later.",
                                         b->config.name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot write to the console of %s: %m",
                                               b->config.name);
        return 0;
}

void board_console_clients_drop(Board *b) {
        while (b->console_clients)
                console_client_free(b->console_clients);
}
