/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

/* A TCP client of one of QEMU's serial chardevs on 127.0.0.1. Reads are
 * event-driven (no polling); writes are queued with a hard bound so a guest
 * that stops reading cannot make piemud grow. */
typedef struct Serial Serial;

typedef void (*serial_data_cb)(Serial *s, const uint8_t *data, size_t n, void *userdata);
/* error == 0: connected; < 0: connect failed or the peer closed (QEMU went away). */
typedef void (*serial_state_cb)(Serial *s, int error, void *userdata);

#define SERIAL_WRITE_MAX (1U << 20)

int serial_connect(sd_event *e, uint16_t port, serial_data_cb on_data, serial_state_cb on_state,
                   void *userdata, Serial **ret);
Serial *serial_free(Serial *s);
uint16_t serial_local_port(const Serial *s);
uint16_t serial_remote_port(const Serial *s);
/* -ENOBUFS when the queue would exceed SERIAL_WRITE_MAX, -ENOTCONN before connect. */
int serial_write(Serial *s, const void *data, size_t n);
/* After each read, waits `usec` before the next one (0, the default: reads at once), so that
 * a streaming peer gives few large reads instead of many tiny ones. */
void serial_set_batch_usec(Serial *s, uint64_t usec);
/* Stops/starts reading: TCP flow control then holds the guest back. */
int serial_set_reading(Serial *s, bool on);
