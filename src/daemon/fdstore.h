/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* A board's line ports stay piemud's while piemud restarts.
 *
 * Each line is a TCP listener on 127.0.0.1 that QEMU dials. Between one piemud exiting and the next
 * binding again, any local user could bind that port and sit on it (QEMU would not trust them, but
 * could not reach piemud either). Under systemd, piemud hands every listener to the service's file
 * descriptor store (FileDescriptorStoreMax=, sd_pid_notify_with_fds "FDSTORE=1"), named after its
 * port; systemd holds it while piemud restarts or after it crashed, and gives it back at the next
 * start, so the port is never free. Without systemd (NOTIFY_SOCKET unset) all of this does nothing
 * and the lines bind again as before.
 *
 * Only the loop thread calls these. */

/* Start-up: takes the sockets systemd passed (LISTEN_FDS with LISTEN_FDNAMES "line-PORT"); those
 * that are not a listening TCP socket on 127.0.0.1 at that port are closed and dropped from the
 * store. Returns how many were kept. */
int fdstore_init(void);
/* The listener for `port` that systemd gave back, or -ENOENT. The caller owns the descriptor. */
int fdstore_take_listener(uint16_t port);
/* Puts a listener into the store (a copy: the caller keeps its descriptor). */
void fdstore_push_listener(int fd, uint16_t port);
/* The port's line is closed for good (its board stopped): systemd lets go of it too. */
void fdstore_forget_listener(uint16_t port);
/* After the boards found at start-up took theirs: closes and forgets what no board claimed (ports of
 * boards that stopped while piemud was away). */
void fdstore_release_unclaimed(void);

/* "line-PORT": the name of a port's listener in the store (pure; for the unit tests). Returns 0, or
 * -EINVAL if `name` is not such a name; *ret_port is set on success. */
int fdstore_parse_name(const char *name, uint16_t *ret_port);
