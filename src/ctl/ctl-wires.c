/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* "piemuctl wire", "unwire" and "wires" (wires between boards' pins: the Manager's AddWire,
 * RemoveWire and ListWires) and "set-sensor" (Board.SetSensor on an I2C device of the board). */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "names.h"

/* BOARD:PIN, as in "piemuctl wire a:23 b:17". Board names cannot hold ':', so the last one splits. */
static int parse_board_pin(const char *s, char **ret_board, uint32_t *ret_pin) {
        const char *colon = strrchr(s, ':');
        _cleanup_free_ char *board = NULL;
        int r;

        if (!colon || colon == s || !colon[1]) {
                _cleanup_free_ char *e = escape_for_terminal(s, strlen(s), false);
                fprintf(stderr, "Invalid end of a wire \"%s\": use BOARD:PIN, e.g. b1:23.\n", e ?: "?");
                return CTL_EXIT_USAGE;
        }
        board = strndup(s, (size_t)(colon - s));
        if (!board) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        r = ctl_check_name("board", board);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_parse_pin(colon + 1, ret_pin);
        if (r != CTL_EXIT_OK)
                return r;
        *ret_board = TAKE_PTR(board);
        return CTL_EXIT_OK;
}

int verb_wire(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *from = NULL, *to = NULL;
        uint32_t from_pin, to_pin;
        const char *id;
        sd_bus *bus;
        int r;

        r = parse_board_pin(argv[1], &from, &from_pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = parse_board_pin(argv[2], &to, &to_pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "AddWire", ctl_call_timeout(0), true,
                     &reply, "add the wire", NULL, NULL, "susu", from, from_pin, to, to_pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = sd_bus_message_read(reply, "s", &id);
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        if (arg_json != JSON_OFF) {
                JsonWriter j;

                json_init(&j, stdout, arg_json);
                json_open(&j, '{');
                json_key(&j, "id");
                json_string(&j, id);
                json_close(&j, '}');
                json_finish(&j);
        } else
                printf("%s\n", id);
        return CTL_EXIT_OK;
}

int verb_unwire(int argc, char *argv[]) {
        int ret = CTL_EXIT_OK, r;
        sd_bus *bus;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        /* Every id is tried; the first failure decides the exit status, as for "stop a b c". */
        for (int i = 1; i < argc; i++) {
                r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "RemoveWire", ctl_call_timeout(0),
                             true, NULL, "remove the wire", NULL, NULL, "s", argv[i]);
                if (r != CTL_EXIT_OK && ret == CTL_EXIT_OK)
                        ret = r;
                if (r == CTL_EXIT_NO_DAEMON)
                        break;
        }
        return ret;
}

int verb_wires(int argc, char *argv[]) {
        static const ListColumn columns[] = {
                {"ID", "id", false},       {"FROM", "from_board", false}, {"PIN", "from_pin", true},
                {"TO", "to_board", false}, {"PIN", "to_pin", true},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(list_freep) List *l = NULL;
        const char *id, *from, *to;
        uint32_t from_pin, to_pin;
        sd_bus *bus;
        int r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ListWires", ctl_call_timeout(0), false,
                     &reply, "list the wires", NULL, NULL, NULL);
        if (r != CTL_EXIT_OK)
                return r;
        l = list_new(columns, ELEMENTSOF(columns));
        if (!l) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ssusu)");
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        /* In piemud's order, unsorted. */
        while ((r = sd_bus_message_read(reply, "(ssusu)", &id, &from, &from_pin, &to, &to_pin)) > 0) {
                char fp[16], tp[16];

                snprintf(fp, sizeof(fp), "%" PRIu32, from_pin);
                snprintf(tp, sizeof(tp), "%" PRIu32, to_pin);
                if (list_add(l, (const char *const[]){id, from, fp, to, tp}) < 0) {
                        fprintf(stderr, "Out of memory.\n");
                        return CTL_EXIT_FAILURE;
                }
        }
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        return list_print(l, "wire", "No wires. Add one with 'piemuctl wire FROM:PIN TO:PIN'.");
}

/* An I2C address as the i2c option writes it: 0x48 or 72. */
static int parse_address(const char *s, uint8_t *ret) {
        unsigned long v;
        char *end;

        errno = 0;
        v = strtoul(s, &end, strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0 ? 16 : 10);
        if (errno != 0 || end == s || *end || !strchr("0123456789", s[0]) || v < 0x08 || v > 0x77) {
                _cleanup_free_ char *e = escape_for_terminal(s, strlen(s), false);
                fprintf(stderr, "Invalid I2C address \"%s\": use 0x08 to 0x77, e.g. 0x48.\n", e ?: "?");
                return CTL_EXIT_USAGE;
        }
        *ret = (uint8_t)v;
        return CTL_EXIT_OK;
}

int verb_set_sensor(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL;
        long long value;
        uint8_t address;
        char *end;
        sd_bus *bus;
        int r;

        r = ctl_check_name("board", argv[1]);
        if (r != CTL_EXIT_OK)
                return r;
        r = parse_address(argv[2], &address);
        if (r != CTL_EXIT_OK)
                return r;
        errno = 0;
        value = strtoll(argv[4], &end, 10);
        if (errno != 0 || end == argv[4] || *end) {
                _cleanup_free_ char *e = escape_for_terminal(argv[4], strlen(argv[4]), false);
                fprintf(stderr,
                        "Invalid value \"%s\": use an integer (a temperature in m°C: 42500 is 42.5 °C).\n",
                        e ?: "?");
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_board_path(bus, argv[1], &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_new_call(bus, &m, path, PIEMU_BOARD_IFACE, "SetSensor");
        if (r >= 0)
                r = sd_bus_message_append(m, "ysv", address, argv[3], "x", (int64_t)value);
        if (r < 0)
                return ctl_error(NULL, r, "set the sensor", argv[1], NULL);
        return ctl_call_message(bus, m, ctl_call_timeout(0), true, NULL, "set the sensor", argv[1], NULL);
}
