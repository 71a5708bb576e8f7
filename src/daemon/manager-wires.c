/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Wires between boards: from one board's pin to another's (or the same board's) input. piemud
 * drives the far end with SetPin's semantics whenever the near end changes. */

#include "manager-wires.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "board-dbus.h"
#include "board.h"
#include "manager.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "piemu-errors.h"
#include "wires.h"

/* Every wire of every board on the bus, pointing into the boards' configs: valid until a config
 * changes. With boards = NULL, the board each wire starts from is not returned. */
static int collect(Manager *m, WireRef **ret, Board ***ret_boards, size_t *ret_n) {
        _cleanup_free_ WireRef *l = NULL;
        _cleanup_free_ Board **owners = NULL;
        size_t n = 0, k = 0;

        for (size_t i = 0; i < m->n_boards; i++)
                n += m->boards[i]->config.n_wires;
        l = calloc(n + 1, sizeof *l);
        owners = calloc(n + 1, sizeof *owners);
        if (!l || !owners)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_boards; i++) {
                Board *b = m->boards[i];
                for (size_t w = 0; w < b->config.n_wires; w++, k++) {
                        l[k] = (WireRef){
                                .from_board = b->config.name,
                                .from_pin = b->config.wires[w].from_pin,
                                .to_board = b->config.wires[w].to_board,
                                .to_pin = b->config.wires[w].to_pin,
                        };
                        owners[k] = b;
                }
        }
        *ret = TAKE_PTR(l);
        if (ret_boards)
                *ret_boards = TAKE_PTR(owners);
        *ret_n = n;
        return 0;
}

static ssize_t find_wire(const Board *from, unsigned from_pin, const char *to, unsigned to_pin) {
        for (size_t i = 0; i < from->config.n_wires; i++) {
                const BoardWire *w = &from->config.wires[i];
                if (w->from_pin == from_pin && w->to_pin == to_pin && streq(w->to_board, to))
                        return (ssize_t)i;
        }
        return -1;
}

void manager_wires_propagate(Manager *m, Board *from, unsigned pin, bool value, uint64_t seen_usec) {
        for (size_t i = 0; i < from->config.n_wires; i++) {
                const BoardWire *w = &from->config.wires[i];
                Board *to;

                if (w->from_pin != pin)
                        continue;
                to = manager_find_board(m, w->to_board);
                if (!to || to->removed)
                        continue;
                board_drive_pin(to, w->to_pin, value);
                /* (log_debug evaluates its arguments only when debug messages are on.) */
                log_debug("wire %s:%u:%s:%u: %d driven %" PRIu64 " us after the change was seen",
                          from->config.name, pin, w->to_board, w->to_pin, value,
                          now_usec(CLOCK_REALTIME) - seen_usec);
        }
}

void manager_wires_board_up(Manager *m, Board *b) {
        /* Out of b: its levels, to where they go. */
        if (board_levels_known(b))
                for (size_t i = 0; i < b->config.n_wires; i++) {
                        const BoardWire *w = &b->config.wires[i];
                        Board *to = manager_find_board(m, w->to_board);
                        if (to && !to->removed)
                                board_drive_pin(to, w->to_pin,
                                                board_levels(b) & (UINT64_C(1) << w->from_pin));
                }
        /* Into b: the levels of the pins wired to it, from boards whose levels are known. */
        for (size_t i = 0; i < m->n_boards; i++) {
                Board *from = m->boards[i];
                if (from == b || !board_levels_known(from))
                        continue;
                for (size_t k = 0; k < from->config.n_wires; k++) {
                        const BoardWire *w = &from->config.wires[k];
                        if (streq(w->to_board, b->config.name))
                                board_drive_pin(b, w->to_pin,
                                                board_levels(from) & (UINT64_C(1) << w->from_pin));
                }
        }
}

static bool drop_wires_to(Board *from, const char *to) {
        bool changed = false;
        for (size_t i = from->config.n_wires; i > 0; i--)
                if (streq(from->config.wires[i - 1].to_board, to)) {
                        log_info("wire %s:%u:%s:%u: removed with board %s", from->config.name,
                                 from->config.wires[i - 1].from_pin, to, from->config.wires[i - 1].to_pin,
                                 to);
                        board_config_remove_wire(&from->config, i - 1);
                        changed = true;
                }
        return changed;
}

void manager_wires_board_gone(Manager *m, Board *b) {
        if (m->host.exiting)
                return; /* piemud stops; the boards stay, and so do their wires */
        for (size_t i = 0; i < m->n_boards; i++) {
                Board *o = m->boards[i];
                if (o != b && !o->removed && drop_wires_to(o, b->config.name))
                        board_save_config_later(o);
        }
}

void manager_wires_prune(Manager *m) {
        for (size_t i = 0; i < m->n_boards; i++) {
                Board *b = m->boards[i];
                bool changed = false;

                for (size_t k = b->config.n_wires; k > 0; k--) {
                        const BoardWire *w = &b->config.wires[k - 1];
                        if (manager_find_board(m, w->to_board))
                                continue;
                        log_warning("wire %s:%u:%s:%u: board %s is not there any more; removed",
                                    b->config.name, w->from_pin, w->to_board, w->to_pin, w->to_board);
                        board_config_remove_wire(&b->config, k - 1);
                        changed = true;
                }
                /* Each wire against those before it: damaged metadata could hold a second driver or a
                 * loop, which AddWire never makes. */
                for (size_t k = 0; k < b->config.n_wires;) {
                        _cleanup_free_ WireRef *l = NULL;
                        size_t n, self = SIZE_MAX;
                        WireRef w;

                        if (collect(m, &l, NULL, &n) < 0) {
                                log_oom();
                                return;
                        }
                        for (size_t x = 0; x < n; x++)
                                if (streq(l[x].from_board, b->config.name) &&
                                    l[x].from_pin == b->config.wires[k].from_pin &&
                                    l[x].to_pin == b->config.wires[k].to_pin &&
                                    streq(l[x].to_board, b->config.wires[k].to_board)) {
                                        self = x;
                                        break;
                                }
                        assert(self != SIZE_MAX);
                        w = l[self];
                        memmove(l + self, l + self + 1, (n - self - 1) * sizeof *l);
                        if (wires_check_add(l, n - 1, &w, NULL) == WIRE_OK) {
                                k++;
                                continue;
                        }
                        log_warning(
                                "wire %s:%u:%s:%u: breaks the rules (a second driver or a loop); removed",
                                w.from_board, w.from_pin, w.to_board, w.to_pin);
                        board_config_remove_wire(&b->config, k);
                        changed = true;
                }
                if (changed)
                        board_save_config_later(b);
        }
}

/* ---- the bus methods ---- */

static int read_board(Manager *m, const char *name, Board **ret, sd_bus_error *error) {
        Board *b;

        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid board name '%s'.", name);
        b = manager_find_board(m, name);
        if (!b || !b->announced || b->removed)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_BOARD, "No board named %s.", name);
        *ret = b;
        return 0;
}

static int check_pin(const char *board, uint32_t pin, sd_bus_error *error) {
        if (pin >= GPIO_PROTO_NPINS)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_PIN,
                                         "Invalid pin %u of %s: BCM pins are numbered 0 to %d.", pin, board,
                                         GPIO_PROTO_NPINS - 1);
        return 0;
}

/* A wire is answered once libvirt has it: not while piemud cannot reach libvirtd. */
static int check_connected(Manager *m, sd_bus_error *error) {
        if (!m->host.conn)
                return sd_bus_error_setf(error, PIEMU_ERROR_UNAVAILABLE,
                                         "libvirtd is not reachable; piemud is reconnecting. Try again.");
        return 0;
}

/* A wire change waiting for libvirt to have the board's settings. */
typedef struct WireCall {
        sd_bus_message *call;
        bool add; /* AddWire (undone on failure by removing it) or RemoveWire (undone by adding it) */
        unsigned from_pin, to_pin;
        char *to_board;
        char *id;
} WireCall;

static WireCall *wire_call_free(WireCall *c) {
        if (!c)
                return NULL;
        sd_bus_message_unref(c->call);
        free(c->to_board);
        free(c->id);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(WireCall *, wire_call_free);

static void wire_saved(Board *from, int r, const char *error, void *userdata) {
        _cleanup_(wire_call_freep) WireCall *c = userdata;
        ssize_t i;

        if (r < 0) {
                /* libvirt does not have it: neither do we. */
                i = find_wire(from, c->from_pin, c->to_board, c->to_pin);
                if (c->add && i >= 0)
                        board_config_remove_wire(&from->config, (size_t)i);
                else if (!c->add && i < 0 &&
                         board_config_add_wire(&from->config, c->from_pin, c->to_board, c->to_pin) < 0)
                        log_oom();
                (void)sd_bus_reply_method_errorf(c->call, PIEMU_ERROR_FAILED, "Cannot %s wire %s: %s",
                                                 c->add ? "add" : "remove", c->id, strempty(error));
                return;
        }
        log_info("wire %s: %s", c->id, c->add ? "added" : "removed");
        if (c->add) {
                Board *to = manager_find_board(board_manager(from), c->to_board);
                /* The far end follows from now on, starting with the level there is. */
                if (to && !to->removed && board_levels_known(from))
                        board_drive_pin(to, c->to_pin, board_levels(from) & (UINT64_C(1) << c->from_pin));
                (void)sd_bus_reply_method_return(c->call, "s", c->id);
        } else
                (void)sd_bus_reply_method_return(c->call, NULL);
}

static int wire_call_new(sd_bus_message *msg, bool add, const WireRef *w, WireCall **ret) {
        _cleanup_(wire_call_freep) WireCall *c = calloc(1, sizeof *c);
        int r;

        if (!c)
                return -ENOMEM;
        c->call = sd_bus_message_ref(msg);
        c->add = add;
        c->from_pin = w->from_pin;
        c->to_pin = w->to_pin;
        c->to_board = strdup(w->to_board);
        if (!c->to_board)
                return -ENOMEM;
        r = wire_id_format(w, &c->id);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int save_error(Board *b, int r, sd_bus_error *error) {
        return sd_bus_error_set_errnof(error, r, "Cannot save the wires of %s: %m", b->config.name);
}

int manager_method_add_wire(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ WireRef *l = NULL;
        _cleanup_free_ char *other = NULL;
        _cleanup_(wire_call_freep) WireCall *c = NULL;
        const char *from_name, *to_name;
        uint32_t from_pin, to_pin;
        Board *from, *to;
        size_t n, at;
        WireRef w;
        int r;

        r = sd_bus_message_read(msg, "susu", &from_name, &from_pin, &to_name, &to_pin);
        if (r < 0)
                return r;
        r = read_board(m, from_name, &from, error);
        if (r >= 0)
                r = check_pin(from_name, from_pin, error);
        if (r >= 0)
                r = read_board(m, to_name, &to, error);
        if (r >= 0)
                r = check_pin(to_name, to_pin, error);
        if (r < 0)
                return r;

        /* A wire reads one board and drives the other: the caller must be allowed to manage both. */
        r = board_verify(from, msg, "wire", error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit or the bus is asked, the call comes back */
        r = board_verify(to, msg, "wire", error);
        if (r <= 0)
                return r < 0 ? r : 1;

        w = (WireRef){from_name, from_pin, to_name, to_pin};
        r = collect(m, &l, NULL, &n);
        if (r < 0)
                return r;
        switch (wires_check_add(l, n, &w, &at)) {
        case WIRE_OK:
                break;
        case WIRE_EXISTS:
                return sd_bus_error_setf(error, PIEMU_ERROR_WIRE_EXISTS, "Wire %s:%u:%s:%u exists already.",
                                         from_name, from_pin, to_name, to_pin);
        case WIRE_DRIVEN:
                (void)wire_id_format(&l[at], &other);
                return sd_bus_error_setf(error, PIEMU_ERROR_PIN_DRIVEN,
                                         "Pin %u of %s is driven by wire %s already; a pin takes one wire "
                                         "in (remove that one first).",
                                         to_pin, to_name, other ?: "?");
        case WIRE_CYCLE:
                if (at != SIZE_MAX)
                        (void)wire_id_format(&l[at], &other);
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_WIRE_CYCLE,
                        "A wire from pin %u of %s to pin %u of %s would close a loop%s%s%s.", from_pin,
                        from_name, to_pin, to_name, other ? " (through wire " : "", strempty(other),
                        other ? ")" : "");
        }
        r = check_connected(m, error);
        if (r < 0)
                return r;

        r = wire_call_new(msg, true, &w, &c);
        if (r < 0)
                return r;
        /* In the board's settings before libvirt has them, so that a second AddWire meanwhile is checked
         * against this one; taken out again if saving fails. */
        r = board_config_add_wire(&from->config, from_pin, to_name, to_pin);
        if (r == -E2BIG)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "Board %s has %d wires; no more.", from_name, BOARD_WIRES_MAX);
        if (r < 0)
                return r;
        r = board_save_config(from, wire_saved, c);
        if (r < 0) {
                board_config_remove_wire(&from->config, from->config.n_wires - 1);
                return save_error(from, r, error);
        }
        TAKE_PTR(c);
        return 1;
}

int manager_method_remove_wire(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *buf = NULL;
        _cleanup_(wire_call_freep) WireCall *c = NULL;
        const char *id;
        Board *from, *to;
        WireRef w;
        ssize_t i;
        int r;

        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        if (wire_id_parse(id, &w, &buf) < 0)
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_NO_SUCH_WIRE,
                        "No wire '%s': wire ids are FROM:PIN:TO:PIN, as ListWires shows them.", id);
        from = manager_find_board(m, w.from_board);
        i = from && from->announced ? find_wire(from, w.from_pin, w.to_board, w.to_pin) : -1;
        if (i < 0)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_WIRE, "No wire %s.", id);
        to = manager_find_board(m, w.to_board);

        /* Either end may unplug it: the owner of the board it reads or of the board it drives. */
        r = board_verify(from, msg, "unwire", error);
        if (r == 0)
                return 1;
        if (r < 0 && to && to != from) {
                sd_bus_error_free(error);
                r = board_verify(to, msg, "unwire", error);
                if (r == 0)
                        return 1;
        }
        if (r < 0)
                return r;

        r = check_connected(m, error);
        if (r < 0)
                return r;
        r = wire_call_new(msg, false, &w, &c);
        if (r < 0)
                return r;
        board_config_remove_wire(&from->config, (size_t)i);
        r = board_save_config(from, wire_saved, c);
        if (r < 0) {
                if (board_config_add_wire(&from->config, w.from_pin, w.to_board, w.to_pin) < 0)
                        log_oom();
                return save_error(from, r, error);
        }
        TAKE_PTR(c);
        return 1;
}

int manager_method_list_wires(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ WireRef *l = NULL;
        _cleanup_free_ Board **owners = NULL;
        Manager *m = userdata;
        size_t n;
        int r;

        /* Public, as board names and states are: a wire names two boards and two pins. */
        r = collect(m, &l, &owners, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssusu)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *id = NULL;
                if (!owners[i]->announced)
                        continue;
                r = wire_id_format(&l[i], &id);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(ssusu)", id, l[i].from_board, l[i].from_pin,
                                                  l[i].to_board, l[i].to_pin);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
