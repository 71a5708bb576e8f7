/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "wires.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpio-proto.h"
#include "macro.h"
#include "names.h"

static bool ref_valid(const WireRef *w) {
        return w && piemu_name_is_valid(w->from_board) && piemu_name_is_valid(w->to_board) &&
               w->from_pin < GPIO_PROTO_NPINS && w->to_pin < GPIO_PROTO_NPINS;
}

int wire_id_format(const WireRef *w, char **ret) {
        if (!ref_valid(w) || !ret)
                return -EINVAL;
        return asprintf(ret, "%s:%u:%s:%u", w->from_board, w->from_pin, w->to_board, w->to_pin) < 0 ? -ENOMEM
                                                                                                    : 0;
}

/* A pin number as wire_id_format() writes it: decimal, no sign, no leading zero, 0..53. */
static int parse_pin(const char *s, unsigned *ret) {
        unsigned v = 0;
        size_t n = strlen(s);
        if (n == 0 || n > 2 || (n == 2 && s[0] == '0'))
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(*p - '0');
        }
        if (v >= GPIO_PROTO_NPINS)
                return -EINVAL;
        *ret = v;
        return 0;
}

int wire_id_parse(const char *id, WireRef *ret, char **ret_buf) {
        char *parts[4], *buf, *p;
        WireRef w;

        if (!id || !ret || !ret_buf)
                return -EINVAL;
        /* Longest: two 63-character names and two pins. */
        if (strlen(id) > 2 * 63 + 2 * 2 + 3)
                return -EINVAL;
        buf = strdup(id);
        if (!buf)
                return -ENOMEM;
        p = buf;
        for (size_t i = 0; i < 4; i++) {
                parts[i] = p;
                p = strchr(p, ':');
                if ((p == NULL) != (i == 3)) {
                        free(buf);
                        return -EINVAL;
                }
                if (p)
                        *p++ = 0;
        }
        w = (WireRef){.from_board = parts[0], .to_board = parts[2]};
        if (parse_pin(parts[1], &w.from_pin) < 0 || parse_pin(parts[3], &w.to_pin) < 0 || !ref_valid(&w)) {
                free(buf);
                return -EINVAL;
        }
        *ret = w;
        *ret_buf = buf;
        return 0;
}

static bool same_pin(const char *board_a, unsigned pin_a, const char *board_b, unsigned pin_b) {
        return pin_a == pin_b && streq(board_a, board_b);
}

WireCheck wires_check_add(const WireRef *l, size_t n, const WireRef *w, size_t *ret_conflict) {
        size_t conflict = SIZE_MAX;
        WireCheck result = WIRE_OK;

        for (size_t i = 0; i < n && result == WIRE_OK; i++) {
                if (same_pin(l[i].to_board, l[i].to_pin, w->to_board, w->to_pin)) {
                        result = same_pin(l[i].from_board, l[i].from_pin, w->from_board, w->from_pin)
                                         ? WIRE_EXISTS
                                         : WIRE_DRIVEN;
                        conflict = i;
                }
        }
        if (result == WIRE_OK && same_pin(w->to_board, w->to_pin, w->from_board, w->from_pin))
                result = WIRE_CYCLE;

        /* A cycle closes if from_pin is reachable from to_pin. Every pin has at most one wire into it
         * (DRIVEN above), so the graph is a forest of fan-out trees and a walk back from from_pin
         * along the one wire into each pin visits each wire at most once: at most n steps. */
        if (result == WIRE_OK) {
                const char *board = w->from_board;
                unsigned pin = w->from_pin;
                for (size_t steps = 0; steps <= n; steps++) {
                        size_t in = SIZE_MAX;
                        for (size_t i = 0; i < n; i++)
                                if (same_pin(l[i].to_board, l[i].to_pin, board, pin)) {
                                        in = i;
                                        break;
                                }
                        if (in == SIZE_MAX)
                                break; /* reached a pin nothing drives: no cycle */
                        if (same_pin(l[in].from_board, l[in].from_pin, w->to_board, w->to_pin)) {
                                result = WIRE_CYCLE;
                                conflict = in;
                                break;
                        }
                        board = l[in].from_board;
                        pin = l[in].from_pin;
                }
        }
        if (ret_conflict)
                *ret_conflict = conflict;
        return result;
}
