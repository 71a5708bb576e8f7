/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The board verbs: "list", "create", "start", "stop", "restart", "delete" (the Manager's ListBoards,
 * CreateBoard and DeleteBoard, the Board's Start and Stop) and "models" (the Manager's Models). "status"
 * has its own file, ctl-status.c. */

#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define START_TIMEOUT  (120 * USEC_PER_SEC) /* Start waits for the domain to run */
#define CREATE_TIMEOUT (60 * USEC_PER_SEC)  /* creating the overlay volume */

const char *ctl_owner_name(uint32_t uid, char *buf, size_t size) {
        /* Over -H the uid is one of the other host's: a local name for it would be somebody else. */
        struct passwd *pw = arg_host ? NULL : getpwuid(uid);

        if (pw && pw->pw_name)
                snprintf(buf, size, "%s", pw->pw_name);
        else
                snprintf(buf, size, "%u", uid);
        return buf;
}

/* ---- list ---- */

int verb_list(int argc, char *argv[]) {
        static const ListColumn columns[] = {
                {"NAME", "name", false}, {"STATE", "state", false},
                {"OWNER", NULL, false}, /* the user's name, for people */
                {NULL, "owner", true},  /* the uid, for programs */
                {NULL, "path", false},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(list_freep) List *l = NULL;
        const char *name, *state, *path;
        uint32_t owner;
        sd_bus *bus;
        int r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ListBoards", ctl_call_timeout(0), false,
                     &reply, "list boards", NULL, NULL, NULL);
        if (r != CTL_EXIT_OK)
                return r;

        l = list_new(columns, ELEMENTSOF(columns));
        if (!l)
                return ctl_oom();
        r = sd_bus_message_enter_container(reply, 'a', "(ssuo)");
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        while ((r = sd_bus_message_read(reply, "(ssuo)", &name, &state, &owner, &path)) > 0) {
                char user[64], uid[16];

                snprintf(uid, sizeof(uid), "%" PRIu32, owner);
                if (list_add(l, (const char *const[]){name, state, ctl_owner_name(owner, user, sizeof(user)),
                                                      uid, path}) < 0)
                        return ctl_oom();
        }
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        list_sort(l);
        return list_print(l, "board", "No boards.");
}

/* ---- create / delete / start / stop / restart ---- */

int verb_create(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *name = argv[1], *path;
        sd_bus *bus;
        int r;

        r = ctl_check_name("board", name);
        if (r != CTL_EXIT_OK)
                return r;
        if (arg_image) {
                r = ctl_check_name("image", arg_image);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_new_call(bus, &m, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "CreateBoard");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", name, strempty(arg_image));
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        /* Only what the user gave: the daemon owns the defaults. */
        if (r >= 0 && (arg_seen & OPT_PERSISTENT))
                r = sd_bus_message_append(m, "{sv}", "persistent", "b", arg_persistent);
        if (r >= 0 && arg_cmdline)
                r = sd_bus_message_append(m, "{sv}", "cmdline", "s", arg_cmdline);
        if (r >= 0 && arg_model)
                r = sd_bus_message_append(m, "{sv}", "model", "s", arg_model);
        if (r >= 0 && arg_i2c) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "i2c");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, arg_i2c);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_error(NULL, r, "create the board", name, arg_image);

        r = ctl_call_message(bus, m, ctl_call_timeout(CREATE_TIMEOUT), true, &reply, "create the board",
                             name, arg_image);
        if (r != CTL_EXIT_OK)
                return r;

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", name, NULL);

        if (arg_json != JSON_OFF) {
                JsonWriter j;

                json_init(&j, stdout, arg_json);
                json_open(&j, '{');
                json_key(&j, "name");
                json_string(&j, name);
                json_key(&j, "path");
                json_string(&j, path);
                json_close(&j, '}');
                json_finish(&j);
        }
        return CTL_EXIT_OK;
}

/* Runs one board method on every NAME given; the first failure decides the exit status, but all
 * boards are tried, as "machinectl stop a b c" does. */
static int for_each_board(int argc, char *argv[], int (*fn)(sd_bus *bus, const char *name)) {
        sd_bus *bus;
        int ret = CTL_EXIT_OK, r;

        for (int i = 1; i < argc; i++) {
                r = ctl_check_name("board", argv[i]);
                if (r != CTL_EXIT_OK && ret == CTL_EXIT_OK)
                        ret = r;
        }
        if (ret != CTL_EXIT_OK)
                return ret;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        for (int i = 1; i < argc; i++) {
                r = fn(bus, argv[i]);
                if (r != CTL_EXIT_OK && ret == CTL_EXIT_OK)
                        ret = r;
                /* Without piemud the remaining names would fail the same way. */
                if (r == CTL_EXIT_NO_DAEMON)
                        break;
        }
        return ret;
}

static int board_method(sd_bus *bus, const char *name, const char *method, uint64_t timeout,
                        const char *action) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = ctl_board_path(bus, name, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_call(bus, path, PIEMU_BOARD_IFACE, method, ctl_call_timeout(timeout), true, NULL, action,
                        name, NULL, NULL);
}

static int do_start(sd_bus *bus, const char *name) {
        return board_method(bus, name, "Start", START_TIMEOUT, "start the board");
}

static int do_stop(sd_bus *bus, const char *name) {
        return board_method(bus, name, "Stop", START_TIMEOUT, "stop the board");
}

static int do_restart(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = ctl_board_path(bus, name, &path);
        if (r != CTL_EXIT_OK)
                return r;

        /* A board that is not running is simply started. */
        r = ctl_new_call(bus, &m, path, PIEMU_BOARD_IFACE, "Stop");
        if (r < 0)
                return ctl_error(NULL, r, "stop the board", name, NULL);
        polkit_agent_open_if_enabled();
        ctl_note_call_timeout(ctl_call_timeout(START_TIMEOUT));
        r = sd_bus_call(bus, m, ctl_call_timeout(START_TIMEOUT), &error, NULL);
        if (r < 0 && !sd_bus_error_has_name(&error, "org.piemu.Error.NotRunning"))
                return ctl_error(&error, r, "stop the board", name, NULL);

        return ctl_call(bus, path, PIEMU_BOARD_IFACE, "Start", ctl_call_timeout(START_TIMEOUT), true, NULL,
                        "start the board", name, NULL, NULL);
}

static int do_delete(sd_bus *bus, const char *name) {
        return ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "DeleteBoard",
                        ctl_call_timeout(START_TIMEOUT), true, NULL, "delete the board", name, NULL, "s",
                        name);
}

int verb_start(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_start);
}

int verb_stop(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_stop);
}

int verb_restart(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_restart);
}

int verb_delete(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_delete);
}

/* ---- models ---- */

/* The models come from piemud (its Models property), which is what decides which ones it accepts:
 * piemuctl keeps no list of its own. Listed in piemud's order, the default model first. */
int verb_models(int argc, char *argv[]) {
        static const ListColumn columns[] = {
                {"NAME", "name", false},
                {"DESCRIPTION", "description", false},
                {"IMAGE", "default_image", false},
                {"REVISION", "revision", false},
                {"RAM", NULL, false},
                {NULL, "memory_mib", true},
                {"CPUS", "cpus", true},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(list_freep) List *l = NULL;
        const char *name, *description, *image;
        uint32_t revision, memory, cpus;
        sd_bus *bus;
        int r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_call(bus, PIEMU_MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get", ctl_call_timeout(0),
                     false, &reply, "list the models", NULL, NULL, "ss", PIEMU_MANAGER_IFACE, "Models");
        if (r != CTL_EXIT_OK)
                return r;

        l = list_new(columns, ELEMENTSOF(columns));
        if (!l)
                return ctl_oom();
        r = sd_bus_message_enter_container(reply, 'v', "a(sssuuu)");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(sssuuu)");
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        while ((r = sd_bus_message_read(reply, "(sssuuu)", &name, &description, &image, &revision, &memory,
                                        &cpus)) > 0) {
                char rev[16], ram[24], mib[16], n[16];

                /* Revision codes are written in hex, as /proc/cpuinfo shows them. */
                snprintf(rev, sizeof(rev), "%06" PRIx32, revision);
                if (memory >= 1024 && memory % 1024 == 0)
                        snprintf(ram, sizeof(ram), "%" PRIu32 " GiB", memory / 1024);
                else
                        snprintf(ram, sizeof(ram), "%" PRIu32 " MiB", memory);
                snprintf(mib, sizeof(mib), "%" PRIu32, memory);
                snprintf(n, sizeof(n), "%" PRIu32, cpus);
                if (list_add(l, (const char *const[]){name, description, image, rev, ram, mib, n}) < 0)
                        return ctl_oom();
        }
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        return list_print(l, "model", "No models.");
}
