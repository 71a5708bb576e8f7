/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pin verbs: "set-pin", "get-pin", "pins" (the Board's SetPin, GetPin, GetPins) and "trace" (a
 * Value Change Dump of GpioChanged, recorded by run_trace() in ctl-watch.c), and the parsers of pin
 * numbers and levels the other verbs share. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int ctl_parse_pin(const char *s, uint32_t *ret) {
        unsigned long v;
        char *end;

        if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 3)
                goto invalid;
        v = strtoul(s, &end, 10);
        if (v >= PIEMU_N_PINS)
                goto invalid;
        *ret = (uint32_t)v;
        return CTL_EXIT_OK;

invalid : {
        _cleanup_free_ char *e = escape_for_terminal(s, strlen(s), false);
        fprintf(stderr, "Invalid pin \"%s\": pins are BCM GPIO numbers 0-%u.\n", e ?: "?", PIEMU_N_PINS - 1);
        return CTL_EXIT_USAGE;
}
}

int ctl_parse_level(const char *s, bool *ret) {
        if (streq(s, "0") || streq(s, "low")) {
                *ret = false;
                return CTL_EXIT_OK;
        }
        if (streq(s, "1") || streq(s, "high")) {
                *ret = true;
                return CTL_EXIT_OK;
        }
        _cleanup_free_ char *e = escape_for_terminal(s, strlen(s), false);
        fprintf(stderr, "Invalid level \"%s\": use 0 or 1.\n", e ?: "?");
        return CTL_EXIT_USAGE;
}

int verb_set_pin(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        uint32_t pin;
        bool level;
        sd_bus *bus;
        int r;

        r = ctl_parse_pin(argv[2], &pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_parse_level(argv[3], &level);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_call(bus, path, PIEMU_BOARD_IFACE, "SetPin", ctl_call_timeout(0), true, NULL,
                        "set the pin", argv[1], NULL, "ub", pin, (int)level);
}

int verb_get_pin(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        uint32_t pin;
        int level;
        sd_bus *bus;
        int r;

        r = ctl_parse_pin(argv[2], &pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_call(bus, path, PIEMU_BOARD_IFACE, "GetPin", ctl_call_timeout(0), true, &reply,
                     "read the pin", argv[1], NULL, "u", pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = sd_bus_message_read(reply, "b", &level);
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", argv[1], NULL);

        if (arg_json != JSON_OFF) {
                JsonWriter j;

                json_init(&j, stdout, arg_json);
                json_open(&j, '{');
                json_key(&j, "pin");
                json_uint(&j, pin);
                json_key(&j, "level");
                json_uint(&j, level ? 1 : 0);
                json_close(&j, '}');
                json_finish(&j);
        } else
                printf("%d\n", level ? 1 : 0);
        return CTL_EXIT_OK;
}

int verb_pins(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int levels[PIEMU_N_PINS];
        size_t n = 0;
        sd_bus *bus;
        int r;

        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_call(bus, path, PIEMU_BOARD_IFACE, "GetPins", ctl_call_timeout(0), true, &reply,
                     "read the pins", argv[1], NULL, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        /* sd-bus refuses read_array() for booleans: read them one by one. */
        r = sd_bus_message_enter_container(reply, 'a', "b");
        while (r >= 0 && n < ELEMENTSOF(levels)) {
                r = sd_bus_message_read_basic(reply, 'b', &levels[n]);
                if (r <= 0)
                        break;
                n++;
        }
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", argv[1], NULL);

        pager_open();
        if (arg_json != JSON_OFF) {
                JsonWriter j;

                json_init(&j, stdout, arg_json);
                json_open(&j, '[');
                for (size_t i = 0; i < n; i++) {
                        json_open(&j, '{');
                        json_key(&j, "pin");
                        json_uint(&j, i);
                        json_key(&j, "level");
                        json_uint(&j, levels[i] ? 1 : 0);
                        json_close(&j, '}');
                }
                json_close(&j, ']');
                json_finish(&j);
        } else {
                _cleanup_(table_freep) Table *t = table_new(2, (const char *const[]){"PIN", "LEVEL"});
                if (!t)
                        return ctl_oom();
                for (size_t i = 0; i < n; i++) {
                        char pin[24];

                        snprintf(pin, sizeof(pin), "%zu", i);
                        if (table_add_row(t, (const char *const[]){pin, levels[i] ? "1" : "0"}) < 0)
                                return ctl_oom();
                }
                table_print(t, stdout);
                if (arg_legend)
                        printf("\n%zu pins.\n", n);
        }
        return CTL_EXIT_OK;
}

/* --pins=LIST: BCM numbers and ranges, "17,23" or "0-27". */
static int parse_pin_list(const char *s, uint64_t *ret) {
        _cleanup_free_ char *copy = strdup(s);
        uint64_t mask = 0;
        char *save = NULL;

        if (!copy)
                return ctl_oom();
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *dash = strchr(tok, '-');
                uint32_t lo, hi;
                int r;

                if (dash)
                        *dash = 0;
                r = ctl_parse_pin(tok, &lo);
                if (r == CTL_EXIT_OK)
                        r = dash ? ctl_parse_pin(dash + 1, &hi) : (hi = lo, CTL_EXIT_OK);
                if (r != CTL_EXIT_OK)
                        return r;
                if (hi < lo) {
                        fprintf(stderr, "Invalid pin range %u-%u in --pins.\n", lo, hi);
                        return CTL_EXIT_USAGE;
                }
                for (uint32_t p = lo; p <= hi; p++)
                        mask |= UINT64_C(1) << p;
        }
        if (mask == 0) {
                fprintf(stderr, "--pins needs at least one pin, e.g. --pins=17,23 or --pins=0-27.\n");
                return CTL_EXIT_USAGE;
        }
        *ret = mask;
        return CTL_EXIT_OK;
}

int verb_trace(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        /* The 40-pin header's GPIOs unless told otherwise. */
        uint64_t pins = (UINT64_C(1) << 28) - 1;
        FILE *out;
        sd_bus *bus;
        int r, k;

        if (!arg_vcd) {
                fprintf(stderr, "trace needs --vcd=FILE (- for standard output).\n");
                return CTL_EXIT_USAGE;
        }
        if (arg_trace_pins) {
                r = parse_pin_list(arg_trace_pins, &pins);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        if (streq(arg_vcd, "-"))
                out = stdout;
        else {
                out = fopen(arg_vcd, "we");
                if (!out) {
                        fprintf(stderr, "Cannot create %s: %s\n", arg_vcd, strerror(errno));
                        return CTL_EXIT_USAGE;
                }
        }
        r = run_trace(bus, argv[1], path, out, streq(arg_vcd, "-") ? "standard output" : arg_vcd, pins,
                      arg_duration_usec);
        k = out == stdout ? fflush(out) : fclose(out);
        if (k != 0 && r == CTL_EXIT_OK) {
                fprintf(stderr, "Cannot write %s: %s\n", arg_vcd, strerror(errno));
                r = CTL_EXIT_FAILURE;
        }
        return r;
}
