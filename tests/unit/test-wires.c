/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Wire ids and the rules for adding a wire: one driver per pin, no cycles, fan-out allowed. */
#include <errno.h>
#include <stdint.h>

#include "tests.h"
#include "wires.h"

static void test_ids(void) {
        WireRef w = {"a", 23, "b-2.x", 17}, back;
        char *id = NULL, *buf = NULL;

        CHECK(wire_id_format(&w, &id) == 0);
        CHECK_STREQ(id, "a:23:b-2.x:17");
        CHECK(wire_id_parse(id, &back, &buf) == 0);
        CHECK_STREQ(back.from_board, "a");
        CHECK_STREQ(back.to_board, "b-2.x");
        CHECK(back.from_pin == 23 && back.to_pin == 17);
        free(buf);
        free(id);

        CHECK(wire_id_parse("a:0:a:53", &back, &buf) == 0);
        CHECK(back.from_pin == 0 && back.to_pin == 53);
        free(buf);

        const char *bad[] = {
                "",         "a",          "a:1",       "a:1:b",    "a:1:b:",    "a:1:b:2:",  "a:1:b:2:c",
                ":1:b:2",   "a::b:2",     "a:54:b:1",  "a:1:b:99", "a:01:b:2",  "a:-1:b:2",  "a:+1:b:2",
                "a:1 :b:2", "../x:1:b:2", "a:1:b/c:2", "a:1:.b:2", "a:100:b:2", "a:1:b:2\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                buf = (char *)0x1;
                if (wire_id_parse(bad[i], &back, &buf) != -EINVAL) {
                        fprintf(stderr, "accepted: '%s'\n", bad[i]);
                        CHECK(false);
                }
                CHECK(buf == (char *)0x1); /* nothing handed out on failure */
        }
        char long_id[300];
        memset(long_id, 'a', sizeof long_id - 1);
        long_id[sizeof long_id - 1] = 0;
        CHECK(wire_id_parse(long_id, &back, &buf) == -EINVAL);

        WireRef invalid = {"a b", 1, "c", 2};
        CHECK(wire_id_format(&invalid, &id) == -EINVAL);
        invalid = (WireRef){"a", 54, "c", 2};
        CHECK(wire_id_format(&invalid, &id) == -EINVAL);
}

static void test_rules(void) {
        /* a:23 -> b:17 -> (b:17 is read by b's guest) ; b:24 -> c:5 ; a:23 -> c:6 (fan-out) */
        WireRef l[] = {
                {"a", 23, "b", 17},
                {"b", 24, "c", 5},
                {"a", 23, "c", 6},
        };
        size_t n = 3, at;
        WireRef w;

        w = (WireRef){"a", 23, "d", 1}; /* more fan-out */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_OK);
        CHECK(at == SIZE_MAX);
        w = (WireRef){"a", 23, "b", 17};
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_EXISTS && at == 0);
        w = (WireRef){"a", 22, "b", 17}; /* b:17 has a driver */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_DRIVEN && at == 0);
        w = (WireRef){"a", 4, "a", 4}; /* onto itself */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_CYCLE && at == SIZE_MAX);
        w = (WireRef){"b", 17, "a", 23}; /* closes a:23 -> b:17 -> a:23 */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_CYCLE && at == 0);
        w = (WireRef){"c", 5, "b", 24}; /* closes b:24 -> c:5 -> b:24 */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_CYCLE && at == 1);
        w = (WireRef){"c", 6, "a", 22}; /* a:23 -> c:6 -> a:22: no cycle (22 is not 23) */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_OK);
        w = (WireRef){"b", 17, "b", 24}; /* a chain: a:23 -> b:17 -> b:24 -> c:5 is fine */
        CHECK(wires_check_add(l, n, &w, &at) == WIRE_OK);

        /* A long chain closed at the far end. */
        WireRef chain[5] = {
                {"p", 0, "p", 1}, {"p", 1, "p", 2}, {"p", 2, "p", 3}, {"p", 3, "p", 4}, {"p", 4, "p", 5},
        };
        w = (WireRef){"p", 5, "p", 0};
        CHECK(wires_check_add(chain, 5, &w, &at) == WIRE_CYCLE && at == 0);
        w = (WireRef){"p", 5, "p", 3}; /* p:3 is driven already */
        CHECK(wires_check_add(chain, 5, &w, &at) == WIRE_DRIVEN && at == 2);
        w = (WireRef){"p", 5, "p", 6};
        CHECK(wires_check_add(chain, 5, &w, &at) == WIRE_OK);

        /* Damaged input (a loop already there) does not hang the walk. */
        WireRef loop[2] = {{"x", 1, "x", 2}, {"x", 2, "x", 1}};
        w = (WireRef){"x", 1, "y", 3};
        CHECK(wires_check_add(loop, 2, &w, NULL) == WIRE_OK);
        CHECK(wires_check_add(NULL, 0, &w, NULL) == WIRE_OK);
}

int main(void) {
        test_ids();
        test_rules();
        return 0;
}
