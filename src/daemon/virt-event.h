/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

/* Bridges libvirt's event loop into sd-event (virEventRegisterImpl), so libvirt's
 * socket and timers are sources on piemud's single loop. Must be called before
 * the first virConnectOpen. libvirt calls the add/update/remove hooks from worker
 * threads too (whoever holds its RPC "buck"), and sd-event is not thread-safe, so
 * those calls only record the wanted state and wake the loop, which applies it. */
int virt_event_register(sd_event *e);
void virt_event_unregister(void);
