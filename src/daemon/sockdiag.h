/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Who owns a local TCP socket, asked of the kernel (NETLINK_SOCK_DIAG, which needs no privilege).
 * Used to name the local user behind a connection to one of piemud's lines, for the log and for
 * refusing peers that are not QEMU. Ports in host byte order; addresses are IPv4 loopback. */

/* The owner of the socket at 127.0.0.1:src_port that is connected to 127.0.0.1:dst_port.
 * -ENOENT when there is none (it went away). */
int sockdiag_tcp_owner(uint16_t src_port, uint16_t dst_port, uid_t *ret_uid);
/* The owner of the socket listening on 127.0.0.1:port (a port someone else bound). */
int sockdiag_tcp_listener_owner(uint16_t port, uid_t *ret_uid);
