/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The uid behind a bus client's unique name, remembered for as long as that client stays connected.
 *
 * On dbus-daemon, sd-bus learns a sender's uid only by asking the bus (GetConnectionCredentials), a
 * synchronous round trip that holds the event loop. A Board call needs the uid twice (own board or
 * someone else's, and the root shortcut) and runs again when polkit answers. Unique names are never
 * reused on a bus, so the answer stays true until the client leaves; uid_cache_forget() forgets it
 * then (the daemon's one subscription to callers leaving, peers.h, calls it). The first call of each client
 * asks the bus asynchronously (uid_cache_sender_uid_async) and runs again when the answer is in. */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "macro.h"

/* Entries are dropped all at once beyond this many (a client whose departure was missed is never
 * forgotten otherwise; this keeps such leftovers bounded). */
#define UID_CACHE_MAX 1024u

typedef struct UidCache UidCache;

int uid_cache_new(UidCache **ret);
UidCache *uid_cache_free(UidCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(UidCache *, uid_cache_free);

/* Effective uid of m's sender, from the cache or asked of the bus without blocking: 1 with *ret set
 * when the uid is known (a NULL cache, or a sender without a unique name, asks the bus directly;
 * -EPERM when the bus does not vouch for the uid, see bus_get_sender_uid); 0 when the bus has been asked,
 * and `m` will be put back on the bus's read queue once it answers, so that its handler runs again
 * and finds the uid (a call whose caller cannot be identified is answered with AccessDenied
 * instead); negative errno on failure. Handlers return at 0 without replying, as for polkit. */
int uid_cache_sender_uid_async(UidCache *c, sd_bus_message *m, uid_t *ret);

/* The uid of m's sender if it is already remembered (1, *ret set), else 0. Never asks the bus: for
 * property getters, which cannot wait (a bus filter made sure the uid was asked for first). */
int uid_cache_peek(UidCache *c, sd_bus_message *m, uid_t *ret);

/* `name` left the bus: forget its uid (peers.h tells who left). */
void uid_cache_forget(UidCache *c, const char *name);

/* Effective uid of the sender of m, as the bus reports it (a synchronous question to the bus). Negative
 * errno on failure; -EPERM if the uid could only be guessed from /proc (racy, not used for decisions). */
int bus_get_sender_uid(sd_bus_message *m, uid_t *ret);

/* For tests and the debug log: number of remembered clients, and of questions asked of the bus. */
unsigned uid_cache_size(UidCache *c);
unsigned uid_cache_n_lookups(UidCache *c);
