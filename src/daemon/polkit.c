/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Asynchronous polkit checks, modelled on systemd's src/shared/bus-polkit.c.
 *
 * Flow for one method call M that needs action A:
 *
 *   handler(M) -> polkit_verify_async(M, A): nothing in the registry, caller is not root
 *                 -> CheckAuthorization sent with sd_bus_call_async(), query (M, A) registered, returns 0
 *   handler returns 1 without replying; sd-bus leaves M unanswered
 *   ... polkitd answers -> on_check_reply(): answer stored in the query, M rewound and put back into
 *                          the bus read queue (sd_bus_enqueue_for_read), idle-priority GC source armed
 *   handler(M) again   -> polkit_verify_async(M, A) finds the answer and returns 1 or an error
 *   ... loop idle      -> on_gc(): the query is freed
 *
 * Why answers are collected at idle time and not the moment the handler reads them: a handler may
 * verify more than one action for one message (first A, then B). If A's answer were dropped when
 * read, the run that finds B answered would ask for A again, forever. Idle-priority defer sources
 * run only when nothing else is pending, i.e. after sd-bus has dispatched the re-queued message
 * (a non-empty read queue makes the bus's own event source fire first). A bus without an event
 * loop has no idle time: there answers are freed when read, which suits one action per call.
 *
 * While a query is pending we watch the caller's unique name: if it disconnects, the query is
 * dropped at once instead of lingering until polkitd answers (with interactive authentication that
 * can be minutes). Nothing here blocks: the only synchronous bus traffic is the sender-credentials
 * lookup for the root shortcut, which dbus-daemon answers itself, once per client (uid-cache.c). */

#include <errno.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "list.h"
#include "polkit.h"
#include "uid-cache.h"

#define POLKIT_SERVICE   "org.freedesktop.PolicyKit1"
#define POLKIT_PATH      "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"

/* CheckAuthorization flag bit: polkitd may ask an authentication agent. */
#define POLKIT_CHECK_ALLOW_USER_INTERACTION 1u

/* A person typing a password takes longer than sd-bus's default 25 s call timeout. */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (5u * 60u * UINT64_C(1000000))
/* Questions to polkitd in flight at once; the rest wait their turn, oldest first. dbus-daemon
 * refuses more than 128 pending replies per connection (max_replies_per_connection), and a crowd
 * of callers must not turn into refusals. */
#define POLKIT_IN_FLIGHT_MAX 64

typedef enum PolkitAnswer {
        POLKIT_ANSWER_PENDING,
        POLKIT_ANSWER_AUTHORIZED,
        POLKIT_ANSWER_DENIED,
        POLKIT_ANSWER_CHALLENGE,   /* polkit wants authentication, the call did not allow it */
        POLKIT_ANSWER_UNREACHABLE, /* the bus could not deliver the question or polkitd never answered */
        POLKIT_ANSWER_FAILED,      /* polkitd answered with an error, or with garbage */
} PolkitAnswer;

typedef struct PolkitQuery PolkitQuery;

struct PolkitQuery {
        PolkitRegistry *registry;
        PolkitQuery *prev, *next;

        /* The key: the call (referenced, so its address cannot be reused while we live) and action. */
        sd_bus_message *call;
        char *action;
        char **details;

        sd_bus_slot *check_slot; /* pending CheckAuthorization; NULL once answered */
        sd_bus_message *unsent;  /* CheckAuthorization waiting for a free slot (POLKIT_IN_FLIGHT_MAX) */
        uint64_t timeout_usec;
        sd_event_source *gc_source;

        PolkitAnswer answer;
        char *error_text;     /* polkitd's or the bus's error message, for UNREACHABLE/FAILED */
        bool free_on_consume; /* no event loop to collect us at idle time */
        bool interactive;     /* the call allowed interactive authorization */
};

struct PolkitRegistry {
        PolkitQuery *queries;
        unsigned n_queries;
        unsigned n_sent;      /* CheckAuthorization calls made, ever: for tests */
        unsigned n_in_flight; /* sent and not answered */
        UidCache *uids;
};

static void query_unlink(PolkitQuery *q) {
        if (!q->registry)
                return;
        LIST_REMOVE(q->registry->queries, q);
        q->registry->n_queries--;
        q->registry = NULL;
}

static void query_link(PolkitRegistry *r, PolkitQuery *q) {
        q->registry = r;
        LIST_PREPEND(r->queries, q);
        r->n_queries++;
}

static void registry_send_next(PolkitRegistry *r);

static PolkitQuery *query_free(PolkitQuery *q) {
        PolkitRegistry *registry;
        bool was_in_flight;

        if (!q)
                return NULL;

        registry = q->registry;
        was_in_flight = q->check_slot && registry;
        query_unlink(q);

        /* Dropping the slot cancels the reply callback / match; safe from within those callbacks,
         * sd-bus holds its own reference while dispatching. Same for the defer source. */
        if (was_in_flight)
                registry->n_in_flight--;
        sd_bus_slot_unref(q->check_slot);
        sd_bus_message_unref(q->unsent);
        sd_event_source_disable_unref(q->gc_source);

        sd_bus_message_unref(q->call);
        free(q->action);
        if (was_in_flight)
                registry_send_next(registry); /* its slot is free now */
        strv_free(q->details);
        free(q->error_text);
        free(q);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(PolkitQuery *, query_free);

static bool registry_call_pending(PolkitRegistry *r, sd_bus_message *call) {
        for (PolkitQuery *q = r->queries; q; q = q->next)
                if (q->call == call && q->answer == POLKIT_ANSWER_PENDING)
                        return true;
        return false;
}

/* Frees every query about one call. */
static void registry_drop_call(PolkitRegistry *r, sd_bus_message *call) {
        /* Keep the message alive: freeing the last query unrefs it while we still compare against it. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *ref = sd_bus_message_ref(call);
        PolkitQuery *next;

        for (PolkitQuery *q = r->queries; q; q = next) {
                next = q->next;
                if (q->call == ref)
                        query_free(q);
        }
}

static size_t details_count(const char *const *l) {
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

static bool details_equal(char **a, const char **b) {
        size_t n = details_count((const char *const *)a);

        if (n != details_count(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

/* One call may ask the same action about two things (AddWire: both boards), so the details are part
 * of the key. */
static PolkitQuery *registry_find(PolkitRegistry *r, sd_bus_message *call, const char *action,
                                  const char **details) {
        for (PolkitQuery *q = r->queries; q; q = q->next)
                if (q->call == call && streq(q->action, action) && details_equal(q->details, details))
                        return q;
        return NULL;
}

static int details_copy(const char **l, char ***ret) {
        size_t n = details_count(l);
        _cleanup_strv_free_ char **c = NULL;

        /* key/value pairs: an odd count is a programming error in the caller */
        if (n % 2 != 0)
                return -EINVAL;

        c = calloc(n + 1, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* Formats " (key=value, ...)" for error messages; "" when there are no details or on OOM, the
 * action name alone still says what was refused. */
static char *details_format(char **l) {
        size_t n = details_count((const char *const *)l), len = 3;
        char *s, *p;

        if (n == 0)
                return NULL;
        for (size_t i = 0; i < n; i++)
                len += strlen(l[i]) + 2;
        s = malloc(len);
        if (!s)
                return NULL;
        p = stpcpy(s, " (");
        for (size_t i = 0; i + 1 < n; i += 2) {
                if (i > 0)
                        p = stpcpy(p, ", ");
                p = stpcpy(stpcpy(stpcpy(p, l[i]), "="), l[i + 1]);
        }
        stpcpy(p, ")");
        return s;
}

/* Error names that mean the question never reached polkitd or it never answered. */
static bool error_is_unreachable(const char *name) {
        static const char *const names[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_NO_REPLY,
                SD_BUS_ERROR_TIMEOUT,         SD_BUS_ERROR_DISCONNECTED,      SD_BUS_ERROR_NO_SERVER,
        };

        if (!name)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(name, names[i]))
                        return true;
        /* activation failures: org.freedesktop.DBus.Error.Spawn.* */
        return strncmp(name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0;
}

static int query_read_answer(PolkitQuery *q, sd_bus_message *reply) {
        int authorized, challenge, r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                q->answer = error_is_unreachable(e ? e->name : NULL) ? POLKIT_ANSWER_UNREACHABLE
                                                                     : POLKIT_ANSWER_FAILED;
                if (e && (e->message || e->name)) {
                        q->error_text = strdup(e->message ?: e->name);
                        if (!q->error_text)
                                return -ENOMEM;
                }
                return 0;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                q->answer = POLKIT_ANSWER_FAILED;
                q->error_text = strdup("unexpected reply from polkitd");
                return r;
        }

        q->answer = authorized  ? POLKIT_ANSWER_AUTHORIZED
                    : challenge ? POLKIT_ANSWER_CHALLENGE
                                : POLKIT_ANSWER_DENIED;
        return 0;
}

static int on_gc(sd_event_source *s, void *userdata) {
        PolkitQuery *q = userdata;

        /* Another question about the same call is still out: its answer re-dispatches the call, and
         * the handler will want this answer again then. Whoever collects that one collects us. */
        if (registry_call_pending(q->registry, q->call)) {
                q->gc_source = sd_event_source_disable_unref(q->gc_source);
                return 0;
        }

        registry_drop_call(q->registry, q->call);
        return 0;
}

static int query_arm_gc(PolkitQuery *q) {
        sd_event *e = sd_bus_get_event(sd_bus_message_get_bus(q->call));
        int r;

        if (!e) {
                q->free_on_consume = true;
                return 0;
        }

        r = sd_event_add_defer(e, &q->gc_source, on_gc, q);
        if (r < 0)
                return r;
        /* After the re-queued call has been dispatched: see the comment at the top. A GC source at
         * normal priority could run first and make the handler ask again, so never keep one. */
        r = sd_event_source_set_priority(q->gc_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->gc_source, SD_EVENT_ONESHOT);
        if (r < 0)
                q->gc_source = sd_event_source_disable_unref(q->gc_source);
        return r;
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        sd_bus *bus = sd_bus_message_get_bus(q->call);
        int r;

        q->check_slot = sd_bus_slot_unref(q->check_slot);
        q->registry->n_in_flight--;
        registry_send_next(q->registry);

        /* A broken answer is kept as FAILED (refusal): the handler then replies AccessDenied. */
        (void)query_read_answer(q, reply);
        if (q->answer == POLKIT_ANSWER_PENDING)
                q->answer = POLKIT_ANSWER_FAILED;

        /* Collected at idle time, once the handler has seen it (see the top of this file). */
        r = query_arm_gc(q);

        /* Run the handler again: it re-validates everything and now finds the answer. Only once
         * every question about this call is answered: a handler that asked two without waiting
         * (ignoring a 0) would otherwise run, and reply, twice. */
        if (r >= 0 && !registry_call_pending(q->registry, q->call)) {
                r = sd_bus_message_rewind(q->call, true);
                if (r >= 0)
                        r = sd_bus_enqueue_for_read(bus, q->call);
        }
        if (r < 0) {
                /* Cannot re-dispatch: answer the caller here so it does not wait forever. */
                (void)sd_bus_reply_method_errnof(q->call, r, "Failed to process authorization result: %m");
                registry_drop_call(q->registry, q->call);
        }

        /* Errors from a reply callback would be logged by sd-bus only; we handled them. */
        return 0;
}

static int query_consume(PolkitQuery *q, sd_bus_error *ret_error) {
        _cleanup_free_ char *d = details_format(q->details);
        const char *what = q->action, *ds = strempty(d);
        int r;

        switch (q->answer) {
        case POLKIT_ANSWER_AUTHORIZED:
                r = 1;
                break;
        case POLKIT_ANSWER_CHALLENGE:
                if (q->interactive) {
                        /* The caller allowed interaction and polkitd still could not authenticate
                         * anyone (no agent in the caller's session): asking again will not help. */
                        sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                          "Authentication is required for %s%s, but no authentication agent "
                                          "answered.",
                                          what, ds);
                        r = -EACCES;
                        break;
                }
                sd_bus_error_setf(ret_error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                  "Authentication is required for %s%s; retry allowing interactive "
                                  "authorization.",
                                  what, ds);
                r = -EACCES;
                break;
        case POLKIT_ANSWER_DENIED:
                sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED, "Not authorized for %s%s.", what,
                                  ds);
                r = -EACCES;
                break;
        case POLKIT_ANSWER_UNREACHABLE:
                sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "Cannot check authorization for %s%s: polkit is not reachable (%s).", what,
                                  ds, q->error_text ?: "no answer");
                r = -EACCES;
                break;
        case POLKIT_ANSWER_FAILED:
        default:
                sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "Cannot check authorization for %s%s: polkit failed (%s).", what, ds,
                                  q->error_text ?: "unknown error");
                r = -EACCES;
                break;
        }

        if (q->free_on_consume)
                query_free(q);
        return r;
}

int polkit_registry_sender_uid_async(PolkitRegistry *registry, sd_bus_message *m, uid_t *ret) {
        return uid_cache_sender_uid_async(registry ? registry->uids : NULL, m, ret);
}

int polkit_registry_peek_uid(PolkitRegistry *registry, sd_bus_message *m, uid_t *ret) {
        return uid_cache_peek(registry ? registry->uids : NULL, m, ret);
}

static int new_check_authorization(sd_bus *bus, const char *sender, const char *action, char **details,
                                   bool interactive, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r < 0)
                return r;

        r = sd_bus_message_append(m, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(m, 'a', "{ss}");
        if (r < 0)
                return r;
        for (char **k = details; k && *k; k += 2) {
                r = sd_bus_message_append(m, "{ss}", k[0], k[1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;

        r = sd_bus_message_append(m, "us", interactive ? POLKIT_CHECK_ALLOW_USER_INTERACTION : 0u, "");
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

int polkit_verify_async(sd_bus_message *call, const char *action, const char **details,
                        PolkitRegistry *registry, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *pk = NULL;
        _cleanup_(query_freep) PolkitQuery *q = NULL;
        PolkitQuery *existing;
        sd_bus *bus;
        const char *sender;
        uid_t uid;
        int interactive, r;

        if (!call || isempty(action) || !registry)
                return -EINVAL;

        /* A question whose details changed in between (the handler computes them from state that
         * moved on) is another question: asked anew; the old answer is collected at idle. */
        existing = registry_find(registry, call, action, details);
        if (existing) {
                /* The handler ran again before polkitd answered (another query of the same call
                 * finished first): keep waiting, the call is re-dispatched once more. */
                if (existing->answer == POLKIT_ANSWER_PENDING)
                        return 0;
                return query_consume(existing, ret_error);
        }

        /* Root needs nobody's permission. Only a uid the bus vouches for counts (bus_get_sender_uid
         * refuses one guessed from /proc, which could belong to a recycled PID). Errors mean "not
         * known to be root": polkit decides. */
        r = polkit_registry_sender_uid_async(registry, call, &uid);
        if (r == 0)
                return 0; /* the bus is asked; the call comes back when it answers */
        if (r > 0 && uid == 0)
                return 1;

        bus = sd_bus_message_get_bus(call);
        sender = sd_bus_message_get_sender(call);
        if (!bus || !sender)
                /* Direct (peer-to-peer) connections carry no sender polkit could look at. */
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cannot check authorization for %s: caller has no bus name.",
                                         action);

        interactive = sd_bus_message_get_allow_interactive_authorization(call);

        q = calloc(1, sizeof(*q));
        if (!q)
                return sd_bus_error_set_errno(ret_error, -ENOMEM);
        q->call = sd_bus_message_ref(call);
        q->answer = POLKIT_ANSWER_PENDING;
        q->interactive = interactive > 0;
        q->action = strdup(action);
        if (!q->action)
                return sd_bus_error_set_errno(ret_error, -ENOMEM);
        r = details_copy(details, &q->details);
        if (r < 0)
                return sd_bus_error_set_errnof(ret_error, r, "Invalid polkit details for %s: %m", action);

        r = new_check_authorization(bus, sender, action, q->details, interactive > 0, &pk);
        if (r < 0)
                return sd_bus_error_set_errnof(ret_error, r, "Failed to build polkit query for %s: %m",
                                               action);

        q->timeout_usec = interactive > 0 ? POLKIT_INTERACTIVE_TIMEOUT_USEC : 0;
        if (registry->n_in_flight < POLKIT_IN_FLIGHT_MAX) {
                r = sd_bus_call_async(bus, &q->check_slot, pk, on_check_reply, q, q->timeout_usec);
                if (r < 0)
                        return sd_bus_error_setf(
                                ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                "Cannot check authorization for %s: polkit is not reachable "
                                "(%s).",
                                action, strerror(-r));
                registry->n_in_flight++;
                registry->n_sent++;
        } else
                q->unsent = TAKE_PTR(pk); /* sent by registry_send_next() when a slot frees up */

        query_link(registry, q);
        TAKE_PTR(q);
        return 0;
}

static void registry_send_next(PolkitRegistry *r) {
        while (r->n_in_flight < POLKIT_IN_FLIGHT_MAX) {
                PolkitQuery *oldest = NULL;
                int k;

                /* The list is newest first: the last waiting one has waited longest. */
                for (PolkitQuery *q = r->queries; q; q = q->next)
                        if (q->unsent)
                                oldest = q;
                if (!oldest)
                        return;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *pk = TAKE_PTR(oldest->unsent);
                k = sd_bus_call_async(sd_bus_message_get_bus(oldest->call), &oldest->check_slot, pk,
                                      on_check_reply, oldest, oldest->timeout_usec);
                if (k >= 0) {
                        r->n_in_flight++;
                        r->n_sent++;
                        continue;
                }
                /* Cannot even send it: the caller gets AccessDenied saying so, as for an unreachable
                 * polkitd, and its handler never runs again. */
                (void)sd_bus_reply_method_errorf(
                        oldest->call, SD_BUS_ERROR_ACCESS_DENIED,
                        "Cannot check authorization for %s: polkit is not reachable (%s).", oldest->action,
                        strerror(-k));
                registry_drop_call(r, oldest->call);
        }
}

int polkit_registry_new(PolkitRegistry **ret) {
        PolkitRegistry *r;
        int k;

        if (!ret)
                return -EINVAL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        k = uid_cache_new(&r->uids);
        if (k < 0) {
                free(r);
                return k;
        }
        *ret = r;
        return 0;
}

PolkitRegistry *polkit_registry_free(PolkitRegistry *r) {
        if (!r)
                return NULL;
        while (r->queries)
                query_free(r->queries);
        uid_cache_free(r->uids);
        free(r);
        return NULL;
}

void polkit_registry_forget(PolkitRegistry *r, const char *name) {
        PolkitQuery *next;

        if (!r || !name)
                return;
        /* Nobody left to answer: drop their questions (and answers about the same calls). */
        for (PolkitQuery *q = r->queries; q; q = next) {
                next = q->next;
                if (streq_ptr(sd_bus_message_get_sender(q->call), name)) {
                        registry_drop_call(r, q->call);
                        next = r->queries; /* the drop may have freed more than q */
                }
        }
        uid_cache_forget(r->uids, name);
}

unsigned polkit_registry_n_uids(PolkitRegistry *r) {
        return r ? uid_cache_size(r->uids) : 0;
}

unsigned polkit_registry_n_sent(PolkitRegistry *r) {
        return r ? r->n_sent : 0;
}

unsigned polkit_registry_n_uid_lookups(PolkitRegistry *r) {
        return r ? uid_cache_n_lookups(r->uids) : 0;
}

unsigned polkit_registry_size(PolkitRegistry *r) {
        return r ? r->n_queries : 0;
}
