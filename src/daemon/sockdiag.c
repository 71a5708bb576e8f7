/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"

/* Sends one request and walks the answer for the first inet_diag_msg that matches. The answer is
 * the kernel's, but it is still bounds-checked like any other input. */
static int diag_query(const struct inet_diag_req_v2 *req, bool dump, uid_t *ret_uid) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 r;
        } msg = {
                .nlh = {.nlmsg_len = sizeof msg,
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0),
                        .nlmsg_seq = 1},
                .r = *req,
        };
        struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
        union {
                struct nlmsghdr h;
                uint8_t buf[16384];
        } in;
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        struct timeval tv = {.tv_sec = 1};

        if (fd < 0)
                return negative_errno();
        /* The kernel answers at once; the timeout only guards against a kernel that does not. */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = recv(fd, in.buf, sizeof in.buf, 0);
                if (n < 0)
                        return errno == EINTR ? -EINTR : negative_errno();
                size_t len = (size_t)n;
                for (struct nlmsghdr *h = &in.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                        if (h->nlmsg_type == NLMSG_DONE)
                                return -ENOENT;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
                                        return -EBADMSG;
                                return e->error < 0 ? e->error : -ENOENT;
                        }
                        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                            h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                                continue;
                        const struct inet_diag_msg *d = NLMSG_DATA(h);
                        if (d->id.idiag_sport != req->id.idiag_sport ||
                            (req->id.idiag_dport && d->id.idiag_dport != req->id.idiag_dport))
                                continue;
                        *ret_uid = (uid_t)d->idiag_uid;
                        return 0;
                }
                if (!dump)
                        return -ENOENT;
        }
}

int sockdiag_tcp_owner(uint16_t src_port, uint16_t dst_port, uid_t *ret_uid) {
        struct inet_diag_req_v2 req = {
                .sdiag_family = AF_INET,
                .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = ~0U,
                .id = {.idiag_sport = htons(src_port),
                       .idiag_dport = htons(dst_port),
                       .idiag_src = {htonl(INADDR_LOOPBACK)},
                       .idiag_dst = {htonl(INADDR_LOOPBACK)},
                       .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}},
        };
        /* An exact lookup: one socket, no dump of the host's connections. */
        return diag_query(&req, false, ret_uid);
}

int sockdiag_tcp_listener_owner(uint16_t port, uid_t *ret_uid) {
        struct inet_diag_req_v2 req = {
                .sdiag_family = AF_INET,
                .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = 1U << TCP_LISTEN,
                .id = {.idiag_sport = htons(port), .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}},
        };
        /* Listeners cannot be looked up exactly without their cookie: dump the listening ones and
         * pick the port. */
        return diag_query(&req, true, ret_uid);
}
