/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Asynchronous polkit checks over sd-bus, in the manner of systemd's bus_verify_polkit_async():
 * a method handler asks, the question goes to polkitd without blocking the loop, the handler
 * returns, and when polkitd answers the very same call message is put back into the bus's read
 * queue so that the handler runs again from the top and now gets the answer.
 *
 * Usage in a method handler (all validation of arguments first, no state changes before):
 *
 *         r = polkit_verify_async(m, "org.piemu.manage-own-board", details, registry, error);
 *         if (r < 0)
 *                 return r;        (error names AccessDenied / InteractiveAuthorizationRequired)
 *         if (r == 0)
 *                 return 1;        (asked polkit: do not reply, we will be called again)
 *         ... authorized, do the work ...
 *
 * The handler is re-run from the top, so it must look everything up again (the board may be
 * gone by then). The bus must be attached to an sd-event loop for answers to be garbage
 * collected at idle time (see polkit.c); without one they are freed when consumed. */

#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "uid-cache.h"

#define POLKIT_ACTION_CREATE_BOARD     "org.piemu.create-board"
#define POLKIT_ACTION_MANAGE_OWN_BOARD "org.piemu.manage-own-board"
#define POLKIT_ACTION_MANAGE_BOARDS    "org.piemu.manage-boards"
#define POLKIT_ACTION_MANAGE_IMAGES    "org.piemu.manage-images"

/* Pending and answered queries keyed by (call message, action). */
typedef struct PolkitRegistry PolkitRegistry;

int polkit_registry_new(PolkitRegistry **ret);
/* Cancels pending queries (their callers never get an answer from us: the daemon is going away)
 * and frees answered ones. Safe on NULL. Free it before the bus it was used with is closed. */
PolkitRegistry *polkit_registry_free(PolkitRegistry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolkitRegistry *, polkit_registry_free);

/* Number of queries the registry holds (pending or answered and not yet collected). For tests. */
unsigned polkit_registry_size(PolkitRegistry *r);
/* Number of clients whose uid is remembered. For tests. */
unsigned polkit_registry_n_uids(PolkitRegistry *r);
/* CheckAuthorization calls, and uid questions to the bus, made so far. For tests. */
unsigned polkit_registry_n_sent(PolkitRegistry *r);
unsigned polkit_registry_n_uid_lookups(PolkitRegistry *r);

/* details: NULL-terminated key, value, key, value, ... list, or NULL.
 * Returns 1 if authorized (uid 0 always is), 0 if a CheckAuthorization query, or the bus's answer
 * about the caller's uid, is in flight (the handler must return 1 without replying; the call is
 * re-dispatched when the answer is in), or a
 * negative errno with ret_error set: AccessDenied (naming the action; also when polkitd cannot be
 * reached) or InteractiveAuthorizationRequired (polkit wants a challenge but the call did not
 * allow interaction). */
int polkit_verify_async(sd_bus_message *call, const char *action, const char **details,
                        PolkitRegistry *registry, sd_bus_error *ret_error);

/* Effective uid of the sender of m, remembered per client while it stays on the bus (uid-cache.h),
 * without blocking the loop (uid_cache_sender_uid_async): 1 known, 0 asked (return without replying;
 * the call is dispatched again), < 0 error; same errors as bus_get_sender_uid. */
int polkit_registry_sender_uid_async(PolkitRegistry *registry, sd_bus_message *m, uid_t *ret);
/* The remembered uid of m's sender, never asking the bus (uid_cache_peek): 1 known, 0 not. */
int polkit_registry_peek_uid(PolkitRegistry *registry, sd_bus_message *m, uid_t *ret);

/* `name` left the bus: drop its pending questions and its cached uid. */
void polkit_registry_forget(PolkitRegistry *r, const char *name);
