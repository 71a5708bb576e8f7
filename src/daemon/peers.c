/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "macro.h"

typedef struct Check Check;

typedef struct Handler {
        peers_gone_cb cb;
        void *userdata;
} Handler;

struct Peers {
        sd_bus *bus;
        sd_bus_slot *match;
        Handler handlers[PEERS_HANDLERS_MAX];
        unsigned n_handlers;
        unsigned long n_gone;
        Check *checks; /* GetNameOwner questions in flight */
};

struct Check {
        Peers *peers;
        Check *prev, *next;
        sd_bus_slot *slot;
        char *name;
};

static Check *check_free(Check *c) {
        if (!c)
                return NULL;
        LIST_REMOVE(c->peers->checks, c);
        sd_bus_slot_unref(c->slot);
        free(c->name);
        free(c);
        return NULL;
}

int peers_new(Peers **ret) {
        Peers *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

Peers *peers_free(Peers *p) {
        if (!p)
                return NULL;
        while (p->checks)
                check_free(p->checks);
        sd_bus_slot_unref(p->match);
        sd_bus_unref(p->bus);
        free(p);
        return NULL;
}

static void report_gone(Peers *p, const char *name) {
        p->n_gone++;
        for (unsigned i = 0; i < p->n_handlers; i++)
                p->handlers[i].cb(name, p->handlers[i].userdata);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Peers *p = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* Only unique names identify a caller; they never get a new owner. */
        if (name[0] != ':' || !isempty(new_owner))
                return 0;
        report_gone(p, name);
        return 0;
}

static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        /* Without it piemud would remember callers for ever: say so loudly, but keep serving. */
        if (e)
                log_error("Cannot subscribe to callers leaving the bus (%s): watchers and cached uids of "
                          "callers that left are not forgotten",
                          e->message ?: e->name);
        return 0;
}

int peers_attach(Peers *p, sd_bus *bus) {
        int r;

        if (p->bus)
                return -EBUSY;
        /* arg2='': the new owner is empty, i.e. a name that went away. */
        r = sd_bus_add_match_async(
                bus, &p->match,
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg2=''",
                on_name_owner_changed, on_match_installed, p);
        if (r < 0)
                return r;
        (void)sd_bus_slot_set_description(p->match, "peers-gone");
        p->bus = sd_bus_ref(bus);
        return 0;
}

int peers_add_handler(Peers *p, peers_gone_cb cb, void *userdata) {
        if (p->n_handlers >= PEERS_HANDLERS_MAX)
                return -ENOSPC;
        p->handlers[p->n_handlers++] = (Handler){cb, userdata};
        return 0;
}

static int on_name_owner(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Check *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        Peers *p = c->peers;
        _cleanup_free_ char *name = TAKE_PTR(c->name);

        /* Freeing the slot from inside its own callback is fine: sd-bus holds a reference. */
        check_free(c);
        if (e && sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                report_gone(p, name);
        return 0;
}

int peers_check(Peers *p, const char *unique_name) {
        Check *c;
        int r;

        if (!p->bus || !unique_name || unique_name[0] != ':')
                return 0;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->peers = p;
        LIST_PREPEND(p->checks, c);
        c->name = strdup(unique_name);
        if (!c->name) {
                check_free(c);
                return -ENOMEM;
        }
        r = sd_bus_call_method_async(p->bus, &c->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_name_owner, c, "s",
                                     unique_name);
        if (r < 0)
                check_free(c);
        return r;
}

unsigned long peers_n_gone(Peers *p) {
        return p ? p->n_gone : 0;
}
