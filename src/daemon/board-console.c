/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The console line's relay: what the guest prints goes to the recent-output ring and the OpenSerial
 * clients; what OpenSerial clients type goes to the line. */
#include "board-console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"

struct ConsoleClient {
        BoardConsole *console;
        int fd;
        sd_event_source *io;
        ConsoleClient *next;
};

void board_console_init(BoardConsole *c, Serial *const *line) {
        *c = (BoardConsole){.line = line};
}

static void client_free(ConsoleClient *cl) {
        BoardConsole *c = cl->console;
        for (ConsoleClient **p = &c->clients; *p; p = &(*p)->next)
                if (*p == cl) {
                        *p = cl->next;
                        break;
                }
        sd_event_source_disable_unref(cl->io);
        safe_close(cl->fd);
        free(cl);
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ConsoleClient *cl = userdata;
        Serial *line = *cl->console->line;
        uint8_t buf[4096];
        ssize_t n;

        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                client_free(cl);
                return 0;
        }
        if (!line || serial_write(line, buf, (size_t)n) < 0)
                client_free(cl);
        return 0;
}

int board_console_open_client(BoardConsole *c, sd_event *e, int *ret_fd) {
        int pair[2];
        ConsoleClient *cl;
        int r;

        if (!*c->line)
                return -ENOTCONN;
        cl = calloc(1, sizeof *cl);
        if (!cl)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
                free(cl);
                return negative_errno();
        }
        cl->console = c;
        cl->fd = pair[0];
        r = sd_event_add_io(e, &cl->io, cl->fd, EPOLLIN, on_client, cl);
        if (r < 0) {
                safe_close(pair[0]);
                safe_close(pair[1]);
                free(cl);
                return r;
        }
        cl->next = c->clients;
        c->clients = cl;
        *ret_fd = pair[1];
        return 0;
}

static void clients_write(BoardConsole *c, const uint8_t *data, size_t n) {
        ConsoleClient *next;
        for (ConsoleClient *cl = c->clients; cl; cl = next) {
                next = cl->next;
                ssize_t k = send(cl->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                /* A terminal that cannot keep up loses output rather than making piemud buffer it. */
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        client_free(cl);
        }
}

static void recent_append(BoardConsole *c, const uint8_t *data, size_t n) {
        if (n >= BOARD_RECENT_MAX) {
                memcpy(c->recent, data + n - BOARD_RECENT_MAX, BOARD_RECENT_MAX);
                c->recent_start = 0;
                c->recent_len = BOARD_RECENT_MAX;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                size_t pos = (c->recent_start + c->recent_len) % BOARD_RECENT_MAX;
                c->recent[pos] = data[i];
                if (c->recent_len < BOARD_RECENT_MAX)
                        c->recent_len++;
                else
                        c->recent_start = (c->recent_start + 1) % BOARD_RECENT_MAX;
        }
}

size_t board_console_recent(const BoardConsole *c, uint8_t *buf, size_t size) {
        size_t n = c->recent_len < size ? c->recent_len : size;
        size_t skip = c->recent_len - n;
        for (size_t i = 0; i < n; i++)
                buf[i] = c->recent[(c->recent_start + skip + i) % BOARD_RECENT_MAX];
        return n;
}

void board_console_feed(BoardConsole *c, const uint8_t *data, size_t n) {
        recent_append(c, data, n);
        clients_write(c, data, n);
}

void board_console_drop_clients(BoardConsole *c) {
        while (c->clients)
                client_free(c->clients);
}
