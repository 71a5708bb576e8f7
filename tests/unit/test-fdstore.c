/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdstore.c against the protocol systemd speaks, played by this test: LISTEN_FDS/LISTEN_FDNAMES at
 * start-up, and the notification socket (a datagram socket of ours) that receives FDSTORE=1 with the
 * descriptor and FDSTOREREMOVE=1. The real systemd path is tested in a systemd container
 * (tests/system/systemd-host.sh). */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdstore.h"
#include "tests.h"

static void test_parse_name(void) {
        uint16_t port = 0;
        CHECK(fdstore_parse_name("line-1", &port) == 0 && port == 1);
        CHECK(fdstore_parse_name("line-65535", &port) == 0 && port == 65535);
        const char *bad[] = {"line-0",  "line-65536", "line-", "line-01",     "line-+5", "line-5x",
                             "line- 5", "serial-5",   "",      "line-123456", "LINE-5"};
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                CHECK(fdstore_parse_name(bad[i], &port) == -EINVAL);
        CHECK(fdstore_parse_name(NULL, &port) == -EINVAL);
}

static int listener(uint32_t addr, uint16_t *ret_port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(addr)};
        socklen_t l = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
        CHECK(listen(fd, 4) == 0);
        CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

/* One notification: its text, and the descriptor it carried (-1 if none). */
static void receive(int sock, char *text, size_t size, int *ret_fd) {
        char control[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = text, .iov_len = size - 1};
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
        ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT);
        CHECK(n >= 0);
        text[n] = 0;
        *ret_fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
}

static void test_protocol(void) {
        uint16_t good_port, other_port, wild_port;
        char names[128], path[64], text[256], pid[32];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int notify, fd;

        /* What systemd passes: fds 3, 4, 5 with their names. */
        for (int i = 3; i < 6; i++)
                close(i);
        int good = listener(INADDR_LOOPBACK, &good_port);
        int other = listener(INADDR_LOOPBACK, &other_port);
        int wild = listener(INADDR_ANY, &wild_port);
        CHECK(good == 3 && other == 4 && wild == 5);
        /* fd 4 claims a port it is not bound to; fd 5 is not on loopback: both dropped. */
        snprintf(names, sizeof names, "line-%u:line-%u:line-%u", good_port, (unsigned)(other_port + 1),
                 wild_port);
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "3", 1);
        setenv("LISTEN_FDNAMES", names, 1);

        notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(notify >= 0);
        snprintf(path, sizeof path, "/tmp/test-fdstore-%d.sock", (int)getpid());
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        unlink(path);
        CHECK(bind(notify, (struct sockaddr *)&sa, sizeof sa) == 0);
        setenv("NOTIFY_SOCKET", path, 1);

        CHECK(fdstore_init() == 1);
        CHECK(getenv("LISTEN_FDS") == NULL); /* taken: not passed on to children */
        /* The two bad ones were closed and dropped from the store. */
        CHECK(fcntl(4, F_GETFD) < 0 && errno == EBADF);
        CHECK(fcntl(5, F_GETFD) < 0 && errno == EBADF);
        receive(notify, text, sizeof text, &fd);
        CHECK(fd < 0 && strncmp(text, "FDSTOREREMOVE=1\nFDNAME=line-", 28) == 0);
        receive(notify, text, sizeof text, &fd);
        CHECK(fd < 0 && strncmp(text, "FDSTOREREMOVE=1\nFDNAME=line-", 28) == 0);

        CHECK(fdstore_take_listener(other_port) == -ENOENT);
        fd = fdstore_take_listener(good_port);
        CHECK(fd == 3);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
        CHECK(fdstore_take_listener(good_port) == -ENOENT); /* once */

        /* A new listener goes to the store with its name and a copy of the descriptor. */
        int fresh = listener(INADDR_LOOPBACK, &other_port);
        fdstore_push_listener(fresh, other_port);
        int got;
        receive(notify, text, sizeof text, &got);
        char want[64];
        snprintf(want, sizeof want, "FDSTORE=1\nFDNAME=line-%u", other_port);
        CHECK(strcmp(text, want) == 0);
        CHECK(got >= 0 && got != fresh);
        struct sockaddr_in a;
        socklen_t l = sizeof a;
        CHECK(getsockname(got, (struct sockaddr *)&a, &l) == 0 && ntohs(a.sin_port) == other_port);
        close(got);

        fdstore_forget_listener(other_port);
        receive(notify, text, sizeof text, &got);
        snprintf(want, sizeof want, "FDSTOREREMOVE=1\nFDNAME=line-%u", other_port);
        CHECK(strcmp(text, want) == 0 && got < 0);

        /* Nothing left unclaimed: no message. */
        fdstore_release_unclaimed();
        CHECK(recv(notify, text, sizeof text, MSG_DONTWAIT) < 0 && errno == EAGAIN);

        /* Without NOTIFY_SOCKET (no systemd) pushing does nothing and fails nothing. */
        unsetenv("NOTIFY_SOCKET");
        fdstore_push_listener(fresh, other_port);
        CHECK(recv(notify, text, sizeof text, MSG_DONTWAIT) < 0 && errno == EAGAIN);

        close(fresh);
        close(fd);
        close(notify);
        unlink(path);
}

int main(void) {
        test_parse_name();
        test_protocol();
        printf("test-fdstore: ok\n");
        return 0;
}
