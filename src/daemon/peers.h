/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who leaves the bus. One subscription for the whole daemon (NameOwnerChanged of unique names that
 * lose their owner), handed to the few parts that remember callers: the uid cache, pending polkit
 * questions, the boards' watchers. A match rule per caller (what sd_bus_track does) would let a
 * crowd of callers push piemud past dbus-daemon's limit of match rules per connection, and the bus
 * then closes piemud's connection. */

#include <systemd/sd-bus.h>

typedef struct Peers Peers;
typedef void (*peers_gone_cb)(const char *unique_name, void *userdata);

#define PEERS_HANDLERS_MAX 8

int peers_new(Peers **ret);
Peers *peers_free(Peers *p);
/* Subscribes on `bus` (one match rule); the handlers run for every unique name that leaves. */
int peers_attach(Peers *p, sd_bus *bus);
int peers_add_handler(Peers *p, peers_gone_cb cb, void *userdata);
/* Asks the bus (asynchronously) whether `unique_name` is still there; if it is not, the handlers run
 * for it as if it had just left. Closes the gap between a call and its caller leaving before the
 * caller was remembered. */
int peers_check(Peers *p, const char *unique_name);
/* For tests: names reported gone so far. */
unsigned long peers_n_gone(Peers *p);
