/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "uid-cache.h"

typedef struct UidEntry UidEntry;

struct UidEntry {
        UidCache *cache;
        UidEntry *prev, *next;
        char *name; /* the sender's unique name */
        uid_t uid;
};

/* A GetConnectionUnixUser question in flight, and the calls that wait for its answer. */
typedef struct UidLookup UidLookup;

struct UidLookup {
        UidCache *cache;
        UidLookup *prev, *next;
        char *name;
        sd_bus_slot *slot;
        sd_bus_message **calls;
        size_t n_calls;
};

struct UidCache {
        UidEntry *entries;
        unsigned n_entries;
        UidLookup *lookups;
        unsigned n_lookups;
};

static UidEntry *entry_free(UidEntry *e) {
        if (!e)
                return NULL;
        if (e->cache) {
                LIST_REMOVE(e->cache->entries, e);
                e->cache->n_entries--;
        }
        free(e->name);
        free(e);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(UidEntry *, entry_free);

static UidLookup *lookup_free(UidLookup *l) {
        if (!l)
                return NULL;
        if (l->cache)
                LIST_REMOVE(l->cache->lookups, l);
        sd_bus_slot_unref(l->slot);
        for (size_t i = 0; i < l->n_calls; i++)
                sd_bus_message_unref(l->calls[i]);
        free(l->calls);
        free(l->name);
        free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(UidLookup *, lookup_free);

static void cache_clear(UidCache *c) {
        while (c->entries)
                entry_free(c->entries);
}

int uid_cache_new(UidCache **ret) {
        UidCache *c;

        if (!ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

UidCache *uid_cache_free(UidCache *c) {
        if (!c)
                return NULL;
        cache_clear(c);
        while (c->lookups)
                lookup_free(c->lookups);
        free(c);
        return NULL;
}

static UidEntry *cache_find(UidCache *c, const char *name);

void uid_cache_forget(UidCache *c, const char *name) {
        UidEntry *e;
        if (c && name && (e = cache_find(c, name)))
                entry_free(e);
}

int bus_get_sender_uid(sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        if (!m || !ret)
                return -EINVAL;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID)
                return -EPERM;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;

        *ret = uid;
        return 0;
}

unsigned uid_cache_size(UidCache *c) {
        return c ? c->n_entries : 0;
}

unsigned uid_cache_n_lookups(UidCache *c) {
        return c ? c->n_lookups : 0;
}

static UidEntry *cache_find(UidCache *c, const char *name) {
        for (UidEntry *e = c->entries; e; e = e->next)
                if (streq(e->name, name))
                        return e;
        return NULL;
}

int uid_cache_peek(UidCache *c, sd_bus_message *m, uid_t *ret) {
        const char *sender = m ? sd_bus_message_get_sender(m) : NULL;
        UidEntry *e;

        if (!c || !sender)
                return 0;
        e = cache_find(c, sender);
        if (!e)
                return 0;
        *ret = e->uid;
        return 1;
}

/* uid_cache_sender_uid_async() depends on remembering: a call re-dispatched after the bus answered
 * finds the uid here (see on_uid_reply). */
static int cache_remember(UidCache *c, sd_bus *bus, const char *name, uid_t uid) {
        _cleanup_(entry_freep) UidEntry *e = NULL;

        if (!bus)
                return -ENOTCONN;
        if (c->n_entries >= UID_CACHE_MAX)
                cache_clear(c);

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->uid = uid;
        e->name = strdup(name);
        if (!e->name)
                return -ENOMEM;
        e->cache = c;
        LIST_PREPEND(c->entries, e);
        c->n_entries++;
        TAKE_PTR(e);
        return 0;
}

static int lookup_add_call(UidLookup *l, sd_bus_message *m) {
        sd_bus_message **calls;

        for (size_t i = 0; i < l->n_calls; i++)
                if (l->calls[i] == m)
                        return 0;
        calls = realloc(l->calls, (l->n_calls + 1) * sizeof(*calls));
        if (!calls)
                return -ENOMEM;
        l->calls = calls;
        l->calls[l->n_calls++] = sd_bus_message_ref(m);
        return 0;
}

static int on_uid_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        UidLookup *l = userdata;
        sd_bus *bus = sd_bus_message_get_bus(reply);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t uid = 0;
        int r;

        (void)ret_error;
        if (e)
                r = -sd_bus_error_get_errno(e) ?: -EIO;
        else
                r = sd_bus_message_read(reply, "u", &uid);
        /* Not remembered means not found when the handler runs again: it would only ask again. */
        if (r >= 0)
                r = cache_remember(l->cache, bus, l->name, (uid_t)uid);

        /* Each waiting call runs its handler again and now finds the uid. A call whose caller
         * cannot be identified (it left, or the bus refused) is answered here instead: running
         * its handler again would only ask again. */
        for (size_t i = 0; i < l->n_calls; i++) {
                sd_bus_message *call = l->calls[i];
                int q = r;
                if (q >= 0)
                        q = sd_bus_message_rewind(call, true);
                if (q >= 0)
                        q = sd_bus_enqueue_for_read(bus, call);
                if (q < 0)
                        (void)sd_bus_reply_method_errorf(call, SD_BUS_ERROR_ACCESS_DENIED,
                                                         "Cannot tell which user is calling: %s.",
                                                         e ? (e->message ?: e->name) : strerror(-q));
        }
        lookup_free(l);
        return 0;
}

int uid_cache_sender_uid_async(UidCache *c, sd_bus_message *m, uid_t *ret) {
        _cleanup_(lookup_freep) UidLookup *l = NULL;
        sd_bus *bus;
        const char *sender;
        int r;

        if (!m || !ret)
                return -EINVAL;
        sender = sd_bus_message_get_sender(m);
        bus = sd_bus_message_get_bus(m);
        if (!c || !bus || !sender || sender[0] != ':') {
                r = bus_get_sender_uid(m, ret);
                return r < 0 ? r : 1;
        }

        UidEntry *e = cache_find(c, sender);
        if (e) {
                *ret = e->uid;
                return 1;
        }
        for (UidLookup *p = c->lookups; p; p = p->next)
                if (streq(p->name, sender)) {
                        r = lookup_add_call(p, m);
                        return r < 0 ? r : 0;
                }

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->name = strdup(sender);
        if (!l->name)
                return -ENOMEM;
        r = lookup_add_call(l, m);
        if (r < 0)
                return r;
        r = sd_bus_call_method_async(bus, &l->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionUnixUser", on_uid_reply, l, "s",
                                     sender);
        if (r < 0)
                return r;
        c->n_lookups++;
        l->cache = c;
        LIST_PREPEND(c->lookups, l);
        TAKE_PTR(l);
        return 0;
}
