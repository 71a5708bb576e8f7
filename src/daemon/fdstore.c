/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fdstore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"

#define NAME_PREFIX "line-"

typedef struct Stored {
        uint16_t port;
        int fd; /* -EBADF once taken */
} Stored;

static Stored *stored;
static size_t n_stored;

int fdstore_parse_name(const char *name, uint16_t *ret_port) {
        const char *p;
        unsigned long v = 0;

        if (!name || strncmp(name, NAME_PREFIX, strlen(NAME_PREFIX)) != 0)
                return -EINVAL;
        p = name + strlen(NAME_PREFIX);
        /* Decimal, no sign, no leading zero, 1..65535: exactly what fdstore_push_listener() writes. */
        if (*p < '1' || *p > '9' || strlen(p) > 5)
                return -EINVAL;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *ret_port = (uint16_t)v;
        return 0;
}

static void forget_name(const char *name) {
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "FDSTOREREMOVE=1\nFDNAME=%s", name) < 0)
                return;
        (void)sd_notify(0, msg);
}

/* A listening TCP socket bound to 127.0.0.1:port, and nothing else, may serve as a line. */
static bool is_our_listener(int fd, uint16_t port) {
        struct sockaddr_in a;
        socklen_t l = sizeof a;

        if (sd_is_socket_inet(fd, AF_INET, SOCK_STREAM, 1, port) <= 0)
                return false;
        if (getsockname(fd, (struct sockaddr *)&a, &l) < 0 || l != sizeof a)
                return false;
        return a.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

int fdstore_init(void) {
        _cleanup_strv_free_ char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        if (n <= 0)
                return n < 0 ? log_warning_errno(n, "Cannot read the descriptors systemd passed: %m") : 0;
        stored = calloc((size_t)n, sizeof *stored);
        if (!stored) {
                for (int i = 0; i < n; i++)
                        close(SD_LISTEN_FDS_START + i);
                return log_oom();
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "";
                uint16_t port;

                if (fdstore_parse_name(name, &port) < 0 || !is_our_listener(fd, port)) {
                        log_warning("Dropping descriptor '%s' from systemd's store: not a line's listener",
                                    name);
                        close(fd);
                        forget_name(name);
                        continue;
                }
                /* systemd passes them without these; piemud's own sockets have both. */
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                stored[n_stored++] = (Stored){.port = port, .fd = fd};
        }
        if (n_stored > 0)
                log_info("systemd kept %zu line listener(s) while piemud was away", n_stored);
        return (int)n_stored;
}

int fdstore_take_listener(uint16_t port) {
        for (size_t i = 0; i < n_stored; i++)
                if (stored[i].port == port && stored[i].fd >= 0)
                        return TAKE_FD(stored[i].fd);
        return -ENOENT;
}

void fdstore_push_listener(int fd, uint16_t port) {
        char msg[64];
        int r;

        snprintf(msg, sizeof msg, "FDSTORE=1\nFDNAME=" NAME_PREFIX "%u", (unsigned)port);
        /* 0 without NOTIFY_SOCKET (no systemd, or a unit without NotifyAccess=): nothing to keep. A
         * listener systemd has already (taken back from the store) is not stored twice. */
        r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
        if (r < 0)
                log_warning_errno(r,
                                  "port %u: cannot hand the listener to systemd's store (%m); the port "
                                  "is free while piemud restarts",
                                  (unsigned)port);
}

void fdstore_forget_listener(uint16_t port) {
        char name[32];
        snprintf(name, sizeof name, NAME_PREFIX "%u", (unsigned)port);
        forget_name(name);
}

void fdstore_release_unclaimed(void) {
        for (size_t i = 0; i < n_stored; i++)
                if (stored[i].fd >= 0) {
                        log_info("port %u: its board is no longer running; letting go of its listener",
                                 (unsigned)stored[i].port);
                        stored[i].fd = safe_close(stored[i].fd);
                        fdstore_forget_listener(stored[i].port);
                }
        free(stored);
        stored = NULL;
        n_stored = 0;
}
