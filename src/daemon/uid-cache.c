/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "polkit.h"
#include "uid-cache.h"

typedef struct UidEntry UidEntry;

struct UidEntry {
        UidCache *cache;
        UidEntry *prev, *next;
        char *name; /* the sender's unique name */
        uid_t uid;
        sd_bus_track *track; /* tells us when the name leaves the bus */
};

struct UidCache {
        UidEntry *entries;
        unsigned n_entries;
};

static UidEntry *entry_free(UidEntry *e) {
        if (!e)
                return NULL;
        if (e->cache) {
                if (e->prev)
                        e->prev->next = e->next;
                else
                        e->cache->entries = e->next;
                if (e->next)
                        e->next->prev = e->prev;
                e->cache->n_entries--;
        }
        /* Safe from inside the track's own handler: sd-bus holds a reference while it calls it. */
        sd_bus_track_unref(e->track);
        free(e->name);
        free(e);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(UidEntry *, entry_free);

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
        free(c);
        return NULL;
}

unsigned uid_cache_size(UidCache *c) {
        return c ? c->n_entries : 0;
}

static int on_client_gone(sd_bus_track *t, void *userdata) {
        UidEntry *e = userdata;

        (void)t;
        entry_free(e);
        return 0;
}

static UidEntry *cache_find(UidCache *c, const char *name) {
        for (UidEntry *e = c->entries; e; e = e->next)
                if (streq(e->name, name))
                        return e;
        return NULL;
}

/* Remembering is an optimisation: any failure here leaves the answer correct, just not cached. */
static void cache_remember(UidCache *c, sd_bus_message *m, const char *name, uid_t uid) {
        _cleanup_(entry_freep) UidEntry *e = NULL;
        sd_bus *bus = sd_bus_message_get_bus(m);

        if (!bus)
                return;
        if (c->n_entries >= UID_CACHE_MAX)
                cache_clear(c);

        e = calloc(1, sizeof(*e));
        if (!e)
                return;
        e->uid = uid;
        e->name = strdup(name);
        if (!e->name)
                return;
        if (sd_bus_track_new(bus, &e->track, on_client_gone, e) < 0)
                return;
        if (sd_bus_track_add_name(e->track, name) < 0)
                return;

        e->cache = c;
        e->next = c->entries;
        if (c->entries)
                c->entries->prev = e;
        c->entries = e;
        c->n_entries++;
        TAKE_PTR(e);
}

int uid_cache_sender_uid(UidCache *c, sd_bus_message *m, uid_t *ret) {
        const char *sender;
        UidEntry *e;
        uid_t uid;
        int r;

        if (!m || !ret)
                return -EINVAL;

        sender = sd_bus_message_get_sender(m);
        /* Only unique names identify one connection for its whole life. */
        if (!c || !sender || sender[0] != ':')
                return bus_get_sender_uid(m, ret);

        e = cache_find(c, sender);
        if (e) {
                *ret = e->uid;
                return 0;
        }

        r = bus_get_sender_uid(m, &uid);
        if (r < 0)
                return r;
        cache_remember(c, m, sender, uid);
        *ret = uid;
        return 0;
}
