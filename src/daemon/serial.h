/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "tls.h"

/* One of a board's two serial lines (the console and the GPIO line), as piemud sees it.
 *
 * A line is a TLS listener on 127.0.0.1 that piemud owns for as long as the board runs: QEMU
 * dials it as a TLS client (libvirt `<source mode='connect' tls='yes'>` with `<reconnect>`) and
 * is accepted only with a certificate from piemu's CA, and only from QEMU's uid. Anybody else who
 * connects gets a handshake they cannot finish and nothing of the line; a peer that never
 * finishes its handshake is dropped after SERIAL_HANDSHAKE_USEC, and many of them at once take
 * nothing from QEMU, which connects beside them. Because piemud listens and QEMU dials, no other
 * local user can take QEMU's one client slot, and if the connection drops QEMU simply dials again.
 *
 * serial_connect() is the old way, kept only for boards started by an older piemu that are still
 * running: a plain TCP client of QEMU's listening port. Their next Start gives them TLS lines.
 *
 * Reads are event-driven; writes are queued with a hard bound so a guest that stops reading
 * cannot make piemud grow. */
typedef struct Serial Serial;

typedef void (*serial_data_cb)(Serial *s, const uint8_t *data, size_t n, void *userdata);
/* error == 0: QEMU's connection is up (authenticated); < 0: it went away. A listening line keeps
 * listening after that (QEMU dials again); a plain client line is dead and should be freed. */
typedef void (*serial_state_cb)(Serial *s, int error, void *userdata);
/* Somebody other than QEMU reached the line, or holds its port. `uid` is their local uid
 * ((uid_t)-1 if the kernel could not say); `what` says what they did. At most
 * SERIAL_INTRUDER_REPORT_BURST calls per SERIAL_INTRUDER_REPORT_USEC per line; `suppressed` counts
 * those not reported before this one. */
typedef void (*serial_intruder_cb)(Serial *s, uid_t uid, const char *what, unsigned suppressed,
                                   void *userdata);

#define SERIAL_WRITE_MAX (1U << 20)
/* A peer that has not completed its TLS handshake by then is dropped. */
#define SERIAL_HANDSHAKE_USEC (2 * UINT64_C(1000000))
/* Handshakes in progress at once; more connections are closed at once. */
#define SERIAL_PENDING_MAX           32
#define SERIAL_INTRUDER_REPORT_USEC  (10 * UINT64_C(1000000))
#define SERIAL_INTRUDER_REPORT_BURST 20
/* While another socket holds our port (only possible while piemud was not running), try again. */
#define SERIAL_REBIND_USEC (1 * UINT64_C(1000000))

typedef struct SerialCallbacks {
        serial_data_cb on_data;
        serial_state_cb on_state;
        serial_intruder_cb on_intruder;
        void *userdata;
} SerialCallbacks;

/* Listens on 127.0.0.1:port (0: a free port the kernel picks) for QEMU's TLS connection. The peer
 * must present a certificate that verifies against `creds`' CA and, if `peer_uid` is not
 * (uid_t)-1, connect from that uid (or root). With a fixed port that another socket holds, the line
 * reports the holder as an intruder and binds as soon as it can; only other errors fail. */
int serial_listen(sd_event *e, uint16_t port, TlsCreds *creds, uid_t peer_uid, const SerialCallbacks *cb,
                  Serial **ret);
/* Plain TCP client of 127.0.0.1:port, for lines of boards started before TLS lines. */
int serial_connect(sd_event *e, uint16_t port, const SerialCallbacks *cb, Serial **ret);
/* Frees the line; a listener stays in systemd's file descriptor store (fdstore.h), so that piemud
 * exiting with boards running keeps their ports. */
Serial *serial_free(Serial *s);
/* The line is done for good (its board stopped): frees it and lets systemd's store go of it too. */
Serial *serial_close(Serial *s);

/* The TCP port of the line: the one piemud listens on (or, for a plain client, QEMU's). */
uint16_t serial_port(const Serial *s);
bool serial_is_tls(const Serial *s);
bool serial_is_up(const Serial *s);
/* -ENOBUFS when the queue would exceed SERIAL_WRITE_MAX. A listening line queues while QEMU is not
 * connected (it reconnects within a second or two) and sends on its next connection; a plain line
 * answers -ENOTCONN then. */
int serial_write(Serial *s, const void *data, size_t n);
/* After each read, waits `usec` before the next one (0, the default: reads at once), so that
 * a streaming peer gives few large reads instead of many tiny ones. */
void serial_set_batch_usec(Serial *s, uint64_t usec);
/* Stops/starts reading: TCP flow control then holds the guest back. */
int serial_set_reading(Serial *s, bool on);
