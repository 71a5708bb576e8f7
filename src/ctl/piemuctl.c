/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* piemuctl: the command-line client of piemud, in the manner of machinectl. A table of verbs with
 * argument counts; global options plus per-verb options that are rejected on verbs they do not apply
 * to; tables for people and --json for programs; exit codes that say what went wrong (see ctl.h). */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "names.h"

JsonMode arg_json = JSON_OFF;
bool arg_no_pager = false;
bool arg_legend = true;
bool arg_ask_password = true;
bool arg_quiet = false;
bool arg_user = false;
const char *arg_host = NULL;
uint64_t arg_timeout_usec = 0;

const char *arg_wait_state = NULL;
bool arg_wait_ready = false;
const char *arg_wait_serial = NULL;
int arg_wait_pin = -1;
bool arg_wait_pin_value = false;
bool arg_since_now = false;

static bool arg_help = false;
static const char *arg_image = NULL;
static bool arg_persistent = false;
static const char *arg_cmdline = NULL;
static const char *arg_model = NULL;
static const char *arg_kernel = NULL;
static const char *arg_dtb = NULL;
static const char *arg_sd = NULL;
static const char *arg_initrd = NULL;
static const char *arg_description = NULL;
static unsigned arg_lines = 10;
static bool arg_no_newline = false;
static char **arg_i2c = NULL;             /* create --i2c=DEVICE@ADDRESS, repeatable */
static const char *arg_vcd = NULL;        /* trace --vcd=FILE */
static const char *arg_trace_pins = NULL; /* trace --pins=LIST */
static uint64_t arg_duration_usec = 0;    /* trace --duration=TIME; 0: until Ctrl-C */

/* Verb-specific options, as bits: a verb lists the ones it accepts, so that "start b --persistent" is
 * an error instead of being silently ignored. */
enum {
        OPT_IMAGE = 1u << 0,
        OPT_PERSISTENT = 1u << 1,
        OPT_CMDLINE = 1u << 2,
        OPT_MODEL = 1u << 3,
        OPT_KERNEL = 1u << 4,
        OPT_DTB = 1u << 5,
        OPT_SD = 1u << 6,
        OPT_INITRD = 1u << 7,
        OPT_DESCRIPTION = 1u << 8,
        OPT_LINES = 1u << 9,
        OPT_NO_NEWLINE = 1u << 10,
        OPT_STATE = 1u << 11,
        OPT_READY = 1u << 12,
        OPT_SERIAL = 1u << 13,
        OPT_PIN = 1u << 14,
        OPT_SINCE_NOW = 1u << 15,
        OPT_I2C = 1u << 16,
        OPT_VCD = 1u << 17,
        OPT_PINS = 1u << 18,
        OPT_DURATION = 1u << 19,
};
static unsigned arg_seen = 0;

#define START_TIMEOUT  (120 * USEC_PER_SEC)     /* Start waits for the domain to run */
#define CREATE_TIMEOUT (60 * USEC_PER_SEC)      /* creating the overlay volume */
#define IMPORT_TIMEOUT (30 * 60 * USEC_PER_SEC) /* copying an SD card image */

#define VERB_ANY UINT_MAX

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args; /* including the verb itself */
        int (*dispatch)(int argc, char *argv[]);
        unsigned options;
        const char *usage;
        const char *help;
} Verb;

static const Verb *find_verb(const char *name);

/* ---- small helpers ---- */

static int oom(void) {
        fprintf(stderr, "Out of memory.\n");
        return CTL_EXIT_FAILURE;
}

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

static int parse_level(const char *s, bool *ret) {
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

static const char *owner_name(uint32_t uid, char *buf, size_t size) {
        /* Over -H the uid is one of the other host's: a local name for it would be somebody else. */
        struct passwd *pw = arg_host ? NULL : getpwuid(uid);

        if (pw && pw->pw_name)
                snprintf(buf, size, "%s", pw->pw_name);
        else
                snprintf(buf, size, "%u", uid);
        return buf;
}

static bool want_json(void) {
        return arg_json != JSON_OFF;
}

/* ---- list ---- */

static int verb_list(int argc, char *argv[]) {
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
                return oom();
        r = sd_bus_message_enter_container(reply, 'a', "(ssuo)");
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        while ((r = sd_bus_message_read(reply, "(ssuo)", &name, &state, &owner, &path)) > 0) {
                char user[64], uid[16];

                snprintf(uid, sizeof(uid), "%" PRIu32, owner);
                if (list_add(l, (const char *const[]){name, state, owner_name(owner, user, sizeof(user)),
                                                      uid, path}) < 0)
                        return oom();
        }
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        list_sort(l);
        return list_print(l, "board", "No boards.");
}

/* ---- status ---- */

typedef struct BoardInfo {
        char *name, *image, *model, *cmdline, *state, *last_error, *gpio_path;
        uint32_t owner;
        int persistent, guest_ready;
        uint16_t serial_port, gpio_port;
        uint64_t dropped;
        unsigned seen;
} BoardInfo;

enum {
        SEEN_NAME = 1u << 0,
        SEEN_IMAGE = 1u << 1,
        SEEN_MODEL = 1u << 2,
        SEEN_CMDLINE = 1u << 3,
        SEEN_STATE = 1u << 4,
        SEEN_LAST_ERROR = 1u << 5,
        SEEN_OWNER = 1u << 6,
        SEEN_PERSISTENT = 1u << 7,
        SEEN_GUEST_READY = 1u << 8,
        SEEN_SERIAL_PORT = 1u << 9,
        SEEN_GPIO_PORT = 1u << 10,
        SEEN_DROPPED = 1u << 11,
        SEEN_GPIO_PATH = 1u << 12,
};

static void board_info_done(BoardInfo *i) {
        free(i->name);
        free(i->image);
        free(i->model);
        free(i->cmdline);
        free(i->state);
        free(i->last_error);
        free(i->gpio_path);
}

/* Reads the properties we know, skipping others and any of unexpected type: a newer piemud may add
 * properties, and status must keep working. */
static int read_board_info(sd_bus_message *m, BoardInfo *info) {
        static const struct {
                const char *name;
                const char *sig;
                unsigned bit;
                size_t offset;
        } props[] = {
                {"Name", "s", SEEN_NAME, offsetof(BoardInfo, name)},
                {"Image", "s", SEEN_IMAGE, offsetof(BoardInfo, image)},
                {"Model", "s", SEEN_MODEL, offsetof(BoardInfo, model)},
                {"Cmdline", "s", SEEN_CMDLINE, offsetof(BoardInfo, cmdline)},
                {"State", "s", SEEN_STATE, offsetof(BoardInfo, state)},
                {"LastError", "s", SEEN_LAST_ERROR, offsetof(BoardInfo, last_error)},
                {"Owner", "u", SEEN_OWNER, offsetof(BoardInfo, owner)},
                {"Persistent", "b", SEEN_PERSISTENT, offsetof(BoardInfo, persistent)},
                {"GuestReady", "b", SEEN_GUEST_READY, offsetof(BoardInfo, guest_ready)},
                {"SerialPort", "q", SEEN_SERIAL_PORT, offsetof(BoardInfo, serial_port)},
                {"GpioPort", "q", SEEN_GPIO_PORT, offsetof(BoardInfo, gpio_port)},
                {"DroppedGpioLines", "t", SEEN_DROPPED, offsetof(BoardInfo, dropped)},
                {"GpioPath", "s", SEEN_GPIO_PATH, offsetof(BoardInfo, gpio_path)},
        };
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                bool handled = false;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;

                for (size_t i = 0; i < ELEMENTSOF(props) && !handled; i++) {
                        void *field = (uint8_t *)info + props[i].offset;

                        if (!streq(key, props[i].name) || !streq(contents, props[i].sig))
                                continue;
                        handled = true;
                        r = sd_bus_message_enter_container(m, 'v', contents);
                        if (r < 0)
                                return r;
                        if (props[i].sig[0] == 's') {
                                const char *s;
                                char *copy;

                                r = sd_bus_message_read(m, "s", &s);
                                if (r < 0)
                                        return r;
                                copy = strdup(s);
                                if (!copy)
                                        return -ENOMEM;
                                free(*(char **)field);
                                *(char **)field = copy;
                        } else {
                                r = sd_bus_message_read_basic(m, props[i].sig[0], field);
                                if (r < 0)
                                        return r;
                        }
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                        info->seen |= props[i].bit;
                }
                if (!handled) {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void print_field(const char *label, const char *value) {
        _cleanup_free_ char *e = value ? escape_for_terminal(value, strlen(value), false) : NULL;

        printf("%13s: %s\n", label, value ? (e ?: "?") : "-");
}

static void print_port(const char *label, bool seen, uint16_t port) {
        char buf[32];

        if (seen && port > 0)
                snprintf(buf, sizeof(buf), "127.0.0.1:%u (TLS)", port); /* QEMU's only: see piemud(8) */
        print_field(label, seen && port > 0 ? buf : NULL);
}

/* Prints the last n lines of the console buffer, escaped, without \r. */
static void print_last_lines(const uint8_t *data, size_t size, unsigned n) {
        size_t start = size, end = size;
        unsigned lines = 0;

        /* A final newline does not start another (empty) line. */
        if (end > 0 && data[end - 1] == '\n')
                end--;
        start = end;
        while (start > 0 && lines < n) {
                start--;
                if (data[start] == '\n') {
                        lines++;
                        if (lines == n) {
                                start++;
                                break;
                        }
                }
        }
        if (n == 0 || end == 0) {
                printf("  (none)\n");
                return;
        }

        while (start < end) {
                const uint8_t *nl = memchr(data + start, '\n', end - start);
                size_t len = (nl ? (size_t)(nl - data) : end) - start;
                size_t k = len;
                _cleanup_free_ char *e = NULL;

                while (k > 0 && data[start + k - 1] == '\r')
                        k--;
                e = escape_for_terminal(data + start, k, false);
                printf("  %s\n", e ?: "?");
                start += len + 1;
        }
}

static int verb_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *m = NULL, *serial = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        const char *name = argv[1];
        const void *data = NULL;
        const char *serial_note = NULL;
        BoardInfo info = {};
        size_t size = 0;
        sd_bus *bus;
        int r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_board_path(bus, name, &path);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_call(bus, path, "org.freedesktop.DBus.Properties", "GetAll", ctl_call_timeout(0), false,
                     &reply, "read the board's properties", name, NULL, "s", PIEMU_BOARD_IFACE);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_board_info(reply, &info);
        if (r < 0) {
                board_info_done(&info);
                return ctl_error(NULL, r, "parse the board's properties", name, NULL);
        }

        /* The console is private to the owner (and whom polkit allows); the properties are not. Show
         * what we may see instead of failing. */
        r = ctl_new_call(bus, &m, path, PIEMU_BOARD_IFACE, "GetRecentSerial");
        if (r < 0) {
                board_info_done(&info);
                return ctl_error(NULL, r, "read the board's console output", name, NULL);
        }
        polkit_agent_open_if_enabled();
        ctl_note_call_timeout(ctl_call_timeout(0));
        r = sd_bus_call(bus, m, ctl_call_timeout(0), &error, &serial);
        if (r >= 0) {
                r = sd_bus_message_read_array(serial, 'y', &data, &size);
                if (r < 0) {
                        board_info_done(&info);
                        return ctl_error(NULL, r, "parse piemud's reply", name, NULL);
                }
        } else if (sd_bus_error_has_names(&error, "org.freedesktop.DBus.Error.AccessDenied",
                                          "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"))
                serial_note = "not available: access denied";
        else if (sd_bus_error_has_name(&error, "org.piemu.Error.NotRunning"))
                serial_note = "not available: board not running";
        else {
                board_info_done(&info);
                return ctl_error(&error, r, "read the board's console output", name, NULL);
        }

        pager_open();
        if (want_json()) {
                JsonWriter j;
                const struct {
                        const char *key;
                        unsigned bit;
                        char type;
                        const void *value;
                } fields[] = {
                        {"name", SEEN_NAME, 's', &info.name},
                        {"image", SEEN_IMAGE, 's', &info.image},
                        {"model", SEEN_MODEL, 's', &info.model},
                        {"cmdline", SEEN_CMDLINE, 's', &info.cmdline},
                        {"owner", SEEN_OWNER, 'u', &info.owner},
                        {"state", SEEN_STATE, 's', &info.state},
                        {"persistent", SEEN_PERSISTENT, 'b', &info.persistent},
                        {"guest_ready", SEEN_GUEST_READY, 'b', &info.guest_ready},
                        {"serial_port", SEEN_SERIAL_PORT, 'q', &info.serial_port},
                        {"gpio_port", SEEN_GPIO_PORT, 'q', &info.gpio_port},
                        {"last_error", SEEN_LAST_ERROR, 's', &info.last_error},
                        {"dropped_gpio_lines", SEEN_DROPPED, 't', &info.dropped},
                        {"gpio_path", SEEN_GPIO_PATH, 's', &info.gpio_path},
                };

                json_init(&j, stdout, arg_json);
                json_open(&j, '{');
                for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                        json_key(&j, fields[i].key);
                        if (!(info.seen & fields[i].bit))
                                json_null(&j);
                        else if (fields[i].type == 's')
                                json_string(&j, *(char *const *)fields[i].value);
                        else if (fields[i].type == 'u')
                                json_uint(&j, *(const uint32_t *)fields[i].value);
                        else if (fields[i].type == 'q')
                                json_uint(&j, *(const uint16_t *)fields[i].value);
                        else if (fields[i].type == 't')
                                json_uint(&j, *(const uint64_t *)fields[i].value);
                        else
                                json_bool(&j, *(const int *)fields[i].value);
                }
                json_key(&j, "path");
                json_string(&j, path);
                json_key(&j, "recent_serial");
                if (serial_note)
                        json_null(&j);
                else
                        json_text(&j, data, size);
                json_close(&j, '}');
                json_finish(&j);
        } else {
                char user[64], owner[96], dropped[32];

                printf("%s\n", name);
                print_field("State", info.seen & SEEN_STATE ? info.state : NULL);
                print_field("Image", info.seen & SEEN_IMAGE ? info.image : NULL);
                print_field("Model", info.seen & SEEN_MODEL ? info.model : NULL);
                print_field("Cmdline",
                            info.seen & SEEN_CMDLINE && !isempty(info.cmdline) ? info.cmdline : NULL);
                if (info.seen & SEEN_OWNER && arg_host)
                        snprintf(owner, sizeof(owner), "uid %u on %s", info.owner, arg_host);
                else if (info.seen & SEEN_OWNER)
                        snprintf(owner, sizeof(owner), "%s (%u)", owner_name(info.owner, user, sizeof(user)),
                                 info.owner);
                print_field("Owner", info.seen & SEEN_OWNER ? owner : NULL);
                print_field("Persistent",
                            info.seen & SEEN_PERSISTENT ? (info.persistent ? "yes" : "no") : NULL);
                print_field("Guest ready",
                            info.seen & SEEN_GUEST_READY ? (info.guest_ready ? "yes" : "no") : NULL);
                print_port("Serial port", info.seen & SEEN_SERIAL_PORT, info.serial_port);
                print_port("GPIO port", info.seen & SEEN_GPIO_PORT, info.gpio_port);
                print_field("GPIO path", info.seen & SEEN_GPIO_PATH ? info.gpio_path : NULL);
                print_field("Last error", info.seen & SEEN_LAST_ERROR && !isempty(info.last_error)
                                                  ? info.last_error
                                                  : NULL);
                snprintf(dropped, sizeof(dropped), "%" PRIu64, info.dropped);
                print_field("Dropped GPIO", info.seen & SEEN_DROPPED ? dropped : NULL);
                print_field("Path", path);

                if (serial_note)
                        printf("\nRecent console output: %s\n", serial_note);
                else {
                        printf("\nRecent console output:\n");
                        print_last_lines(data, size, arg_lines);
                }
        }

        board_info_done(&info);
        return CTL_EXIT_OK;
}

/* ---- create / delete / start / stop / restart ---- */

static int verb_create(int argc, char *argv[]) {
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

        if (want_json()) {
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

static int verb_start(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_start);
}

static int verb_stop(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_stop);
}

static int verb_restart(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_restart);
}

static int verb_delete(int argc, char *argv[]) {
        return for_each_board(argc, argv, do_delete);
}

/* ---- images ---- */

static int verb_images(int argc, char *argv[]) {
        static const ListColumn columns[] = {
                {"NAME", "name", false},
                {"DESCRIPTION", "description", false},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(list_freep) List *l = NULL;
        const char *name, *description;
        sd_bus *bus;
        int r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ListImages", ctl_call_timeout(0), false,
                     &reply, "list images", NULL, NULL, NULL);
        if (r != CTL_EXIT_OK)
                return r;

        l = list_new(columns, ELEMENTSOF(columns));
        if (!l)
                return oom();
        r = sd_bus_message_enter_container(reply, 'a', "(ss)");
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        while ((r = sd_bus_message_read(reply, "(ss)", &name, &description)) > 0)
                if (list_add(l, (const char *const[]){name, description}) < 0)
                        return oom();
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        list_sort(l);
        return list_print(l, "image", "No images. Import one with 'piemuctl import-image'.");
}

/* ---- models ---- */

/* The models come from piemud (its Models property), which is what decides which ones it accepts:
 * piemuctl keeps no list of its own. Listed in piemud's order, the default model first. */
static int verb_models(int argc, char *argv[]) {
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
                return oom();
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
                        return oom();
        }
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        return list_print(l, "model", "No models.");
}

/* We open the files, with our own permissions, and pass descriptors: piemud never opens a path a client
 * names. Returns an exit status. */
static int open_image_file(const char *what, const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "Cannot open the %s file %s: %s\n", what, path, strerror(errno));
                return CTL_EXIT_USAGE;
        }
        if (fstat(fd, &st) < 0) {
                fprintf(stderr, "Cannot stat the %s file %s: %s\n", what, path, strerror(errno));
                return CTL_EXIT_USAGE;
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
                fprintf(stderr, "The %s file %s is not a regular file.\n", what, path);
                return CTL_EXIT_USAGE;
        }
        *ret_fd = TAKE_FD(fd);
        return CTL_EXIT_OK;
}

static int write_all(int fd, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                size -= (size_t)n;
        }
        return 0;
}

static int refuse_terminal_stdin(void) {
        if (!isatty(STDIN_FILENO))
                return CTL_EXIT_OK;
        fprintf(stderr, "import-image NAME - reads the image from standard input, which is a terminal.\n"
                        "Redirect or pipe the image into it: piemuctl import-image NAME - < FILE.img\n");
        return CTL_EXIT_USAGE;
}

/* import-image NAME -: piemud takes a regular file (a pipe could keep its extractor waiting for ever), so
 * standard input is copied into a file nobody else can open: unnamed (O_TMPFILE), mode 0600, under
 * /var/tmp because images are large and /tmp is often in memory. Runs of zeros become holes: a release's
 * .img is mostly empty space. Returns an exit status; *ret_fd is a read-only descriptor of the copy. */
static int spool_stdin(int *ret_fd) {
        const size_t buf_size = 128 * 1024;
        _cleanup_close_ int fd = -EBADF, ro = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        char proc[64];
        off_t size = 0;
        int r;

        r = refuse_terminal_stdin();
        if (r != CTL_EXIT_OK)
                return r;

        fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
                /* A file system without O_TMPFILE: a named file, unlinked at once. */
                char t[] = "/var/tmp/piemuctl-import-XXXXXX";

                fd = mkostemp(t, O_CLOEXEC);
                if (fd >= 0)
                        (void)unlink(t);
        }
        if (fd < 0) {
                fprintf(stderr, "Cannot create a temporary file in /var/tmp for the image: %s\n",
                        strerror(errno));
                return CTL_EXIT_FAILURE;
        }

        buf = malloc(buf_size);
        if (!buf)
                return oom();
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, buf_size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "Cannot read the image from standard input: %s\n", strerror(errno));
                        return CTL_EXIT_USAGE;
                }
                if (n == 0)
                        break;
                if (buf[0] == 0 && memcmp(buf, buf + 1, (size_t)n - 1) == 0) {
                        if (lseek(fd, n, SEEK_CUR) < 0)
                                r = negative_errno();
                } else
                        r = write_all(fd, buf, (size_t)n);
                if (r < 0) {
                        fprintf(stderr, "Cannot store the image in /var/tmp: %s\n", strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                size += n;
        }
        if (size == 0) {
                fprintf(stderr, "Standard input was empty: there is no image to import.\n");
                return CTL_EXIT_USAGE;
        }
        /* Holes at the end only count once the size says so. */
        if (ftruncate(fd, size) < 0) {
                fprintf(stderr, "Cannot store the image in /var/tmp: %s\n", strerror(errno));
                return CTL_EXIT_FAILURE;
        }

        /* piemud only reads: hand it a read-only descriptor if /proc lets us open one. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ro = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (ro >= 0) {
                *ret_fd = TAKE_FD(ro);
                return CTL_EXIT_OK;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                fprintf(stderr, "Cannot rewind the copy of the image: %s\n", strerror(errno));
                return CTL_EXIT_FAILURE;
        }
        *ret_fd = TAKE_FD(fd);
        return CTL_EXIT_OK;
}

/* Appends s to *cmd as one word for a POSIX shell: in single quotes, each ' as '\''. */
static int append_quoted(char **cmd, const char *prefix, const char *s) {
        size_t n = strlen(*cmd) + strlen(prefix) + 4;
        char *p, *q;

        for (const char *c = s; *c; c++)
                n += *c == '\'' ? 4 : 1;
        p = realloc(*cmd, n);
        if (!p)
                return -ENOMEM;
        *cmd = p;
        q = p + strlen(p);
        q = stpcpy(q, " ");
        q = stpcpy(q, prefix);
        *q++ = '\'';
        for (const char *c = s; *c; c++)
                if (*c == '\'')
                        q = stpcpy(q, "'\\''");
                else
                        *q++ = *c;
        *q++ = '\'';
        *q = 0;
        return 0;
}

/* import-image over -H. ImportImageFile takes a descriptor, which the ssh bridge cannot carry. So the
 * image travels as ssh's standard input instead, to "piemuctl import-image NAME -" on the other host,
 * which spools it there and hands piemud a descriptor of its own. ssh joins its arguments into a
 * command line for the remote user's shell: every argument is quoted. Returns an exit status: the
 * remote piemuctl's, whose messages ssh passes through. */
static int import_over_ssh(const char *name, const char *file) {
        _cleanup_(remote_host_done) RemoteHost host = {};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *cmd = NULL;
        const char *argv[8];
        size_t n = 0;
        int status, r;
        pid_t pid;

        r = remote_host_parse(arg_host, &host);
        if (r < 0)
                return r == -ENOMEM ? oom() : CTL_EXIT_USAGE; /* parse_argv checked it */

        if (streq(file, "-")) {
                r = refuse_terminal_stdin();
                if (r != CTL_EXIT_OK)
                        return r;
        } else {
                r = open_image_file("disk image", file, &fd);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        cmd = strdup("piemuctl");
        if (!cmd)
                return oom();
        r = append_quoted(&cmd, "", "import-image");
        if (r >= 0)
                r = append_quoted(&cmd, "", name);
        if (r >= 0)
                r = append_quoted(&cmd, "", "-");
        if (r >= 0 && arg_description)
                r = append_quoted(&cmd, "--description=", arg_description);
        if (r >= 0 && arg_model)
                r = append_quoted(&cmd, "--model=", arg_model);
        if (r >= 0 && arg_quiet)
                r = append_quoted(&cmd, "", "--quiet");
        if (r >= 0 && arg_timeout_usec > 0) {
                char t[64];

                if (arg_timeout_usec == USEC_INFINITY)
                        snprintf(t, sizeof(t), "infinity");
                else
                        snprintf(t, sizeof(t), "%" PRIu64 "ms",
                                 (arg_timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                r = append_quoted(&cmd, "--timeout=", t);
        }
        if (r < 0)
                return oom();

        /* The same command line sd-bus uses for the bus, so that the same ssh configuration applies. */
        argv[n++] = "ssh";
        argv[n++] = "-xT";
        if (host.port) {
                argv[n++] = "-p";
                argv[n++] = host.port;
        }
        argv[n++] = "--";
        argv[n++] = host.destination;
        argv[n++] = cmd;
        argv[n] = NULL;
        assert(n < ELEMENTSOF(argv));

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "Cannot start ssh: %s\n", strerror(errno));
                return CTL_EXIT_FAILURE;
        }
        if (pid == 0) {
                if (fd >= 0 && dup2(fd, STDIN_FILENO) < 0)
                        _exit(255);
                execvp("ssh", (char *const *)argv);
                fprintf(stderr, "Cannot run ssh: %s\n", strerror(errno));
                _exit(255);
        }
        fd = safe_close(fd);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        fprintf(stderr, "Cannot wait for ssh: %s\n", strerror(errno));
                        return CTL_EXIT_FAILURE;
                }

        if (WIFSIGNALED(status)) {
                fprintf(stderr, "ssh to %s was killed by signal %s.\n", arg_host,
                        sigabbrev_np(WTERMSIG(status)) ?: "?");
                return 128 + WTERMSIG(status);
        }
        switch (WEXITSTATUS(status)) {
        case 255: /* ssh's own failure; it said why */
                fprintf(stderr, "Cannot reach %s over ssh to import the image.\n", arg_host);
                return CTL_EXIT_NO_DAEMON;
        case 126:
        case 127: /* the remote shell's "not found" and "not executable" */
                fprintf(stderr, "Cannot run piemuctl on %s to import the image: is piemu installed there?\n",
                        arg_host);
                return CTL_EXIT_NO_DAEMON;
        case CTL_EXIT_ACCESS:
                fprintf(stderr,
                        "(The import ran on %s as the user ssh logs in as there; importing images needs an "
                        "administrator's right on %s, org.piemu.manage-images.)\n",
                        arg_host, arg_host);
                return CTL_EXIT_ACCESS;
        default:
                return WEXITSTATUS(status);
        }
}

static int verb_import_image(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int kernel = -EBADF, dtb = -EBADF, sd = -EBADF, initrd = -EBADF;
        const char *name = argv[1];
        sd_bus *bus;
        int r;

        r = ctl_check_name("image", name);
        if (r != CTL_EXIT_OK)
                return r;
        if (argc == 3) {
                /* One Raspberry Pi OS-style .img or .img.xz: piemud takes it apart. */
                if (arg_kernel || arg_dtb || arg_sd || arg_initrd || arg_cmdline) {
                        fprintf(stderr, "import-image NAME FILE takes no --kernel, --dtb, --sd, --initrd or "
                                        "--cmdline: they come from FILE's boot partition.\n");
                        return CTL_EXIT_USAGE;
                }
                if (arg_host)
                        return import_over_ssh(name, argv[2]);
                if (streq(argv[2], "-"))
                        r = spool_stdin(&sd);
                else
                        r = open_image_file("disk image", argv[2], &sd);
                if (r != CTL_EXIT_OK)
                        return r;
                r = ctl_bus(&bus);
                if (r != CTL_EXIT_OK)
                        return r;
                r = ctl_new_call(bus, &m, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ImportImageFile");
                if (r >= 0)
                        r = sd_bus_message_append(m, "sh", name, sd);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                if (r >= 0 && arg_description)
                        r = sd_bus_message_append(m, "{sv}", "description", "s", arg_description);
                if (r >= 0 && arg_model)
                        r = sd_bus_message_append(m, "{sv}", "model", "s", arg_model);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return ctl_error(NULL, r, "import the image", NULL, name);
                return ctl_call_message(bus, m, ctl_call_timeout(IMPORT_TIMEOUT), true, NULL,
                                        "import the image", NULL, name);
        }
        if (arg_host && (arg_kernel || arg_dtb || arg_sd || arg_initrd)) {
                fprintf(stderr,
                        "import-image --kernel/--dtb/--sd does not work over -H: piemud takes those files "
                        "as "
                        "file descriptors, and the ssh bridge to %s cannot pass descriptors.\n"
                        "Import one disk image instead (piemuctl -H %s import-image NAME FILE.img[.xz], "
                        "which "
                        "copies it over ssh), or run piemuctl on %s itself.\n",
                        arg_host, arg_host, arg_host);
                return CTL_EXIT_USAGE;
        }
        if (!arg_kernel || !arg_dtb || !arg_sd) {
                fprintf(stderr, "import-image needs FILE (one disk image), or --kernel=FILE, --dtb=FILE "
                                "and --sd=FILE.\n");
                return CTL_EXIT_USAGE;
        }

        r = open_image_file("kernel", arg_kernel, &kernel);
        if (r == CTL_EXIT_OK)
                r = open_image_file("device tree", arg_dtb, &dtb);
        if (r == CTL_EXIT_OK)
                r = open_image_file("SD card image", arg_sd, &sd);
        if (r == CTL_EXIT_OK && arg_initrd)
                r = open_image_file("initrd", arg_initrd, &initrd);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_new_call(bus, &m, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ImportImage");
        if (r >= 0)
                r = sd_bus_message_append(m, "shhh", name, kernel, dtb, sd);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_description)
                r = sd_bus_message_append(m, "{sv}", "description", "s", arg_description);
        if (r >= 0 && arg_cmdline)
                r = sd_bus_message_append(m, "{sv}", "cmdline", "s", arg_cmdline);
        if (r >= 0 && initrd >= 0)
                r = sd_bus_message_append(m, "{sv}", "initrd", "h", initrd);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_error(NULL, r, "import the image", NULL, name);

        return ctl_call_message(bus, m, ctl_call_timeout(IMPORT_TIMEOUT), true, NULL, "import the image",
                                NULL, name);
}

static int verb_remove_image(int argc, char *argv[]) {
        const char *name = argv[1];
        sd_bus *bus;
        int r;

        r = ctl_check_name("image", name);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "RemoveImage", ctl_call_timeout(0),
                        true, NULL, "remove the image", NULL, name, "s", name);
}

/* ---- serial and pins ---- */

/* Connects and resolves the board named in argv[1]. Returns an exit status. */
static int open_board(char *argv[], sd_bus **ret_bus, char **ret_path) {
        int r;

        r = ctl_check_name("board", argv[1]);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_bus(ret_bus);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_board_path(*ret_bus, argv[1], ret_path);
}

static int verb_send(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        sd_bus *bus;
        int r;

        /* Like echo: the words joined by spaces, then Enter. */
        for (int i = 2; i < argc; i++)
                len += strlen(argv[i]) + 1;
        text = malloc(len + 1);
        if (!text)
                return oom();
        len = 0;
        for (int i = 2; i < argc; i++) {
                size_t k = strlen(argv[i]);

                if (i > 2)
                        text[len++] = ' ';
                memcpy(text + len, argv[i], k);
                len += k;
        }
        if (!arg_no_newline)
                text[len++] = '\n';

        r = open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_new_call(bus, &m, path, PIEMU_BOARD_IFACE, "SendSerial");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', text, len);
        if (r < 0)
                return ctl_error(NULL, r, "send to the serial console", argv[1], NULL);
        return ctl_call_message(bus, m, ctl_call_timeout(0), true, NULL, "send to the serial console",
                                argv[1], NULL);
}

static int verb_set_pin(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        uint32_t pin;
        bool level;
        sd_bus *bus;
        int r;

        r = ctl_parse_pin(argv[2], &pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = parse_level(argv[3], &level);
        if (r != CTL_EXIT_OK)
                return r;
        r = open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_call(bus, path, PIEMU_BOARD_IFACE, "SetPin", ctl_call_timeout(0), true, NULL,
                        "set the pin", argv[1], NULL, "ub", pin, (int)level);
}

static int verb_get_pin(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        uint32_t pin;
        int level;
        sd_bus *bus;
        int r;

        r = ctl_parse_pin(argv[2], &pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_call(bus, path, PIEMU_BOARD_IFACE, "GetPin", ctl_call_timeout(0), true, &reply,
                     "read the pin", argv[1], NULL, "u", pin);
        if (r != CTL_EXIT_OK)
                return r;
        r = sd_bus_message_read(reply, "b", &level);
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", argv[1], NULL);

        if (want_json()) {
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

static int verb_pins(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int levels[PIEMU_N_PINS];
        size_t n = 0;
        sd_bus *bus;
        int r;

        r = open_board(argv, &bus, &path);
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
        if (want_json()) {
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
                        return oom();
                for (size_t i = 0; i < n; i++) {
                        char pin[24];

                        snprintf(pin, sizeof(pin), "%zu", i);
                        if (table_add_row(t, (const char *const[]){pin, levels[i] ? "1" : "0"}) < 0)
                                return oom();
                }
                table_print(t, stdout);
                if (arg_legend)
                        printf("\n%zu pins.\n", n);
        }
        return CTL_EXIT_OK;
}

static int verb_watch(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        sd_bus *bus;
        int r;

        r = open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return run_watch(bus, argv[1], path);
}

static int verb_console(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        sd_bus *bus;
        int r;

        r = open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return run_console(bus, argv[1], path);
}

/* --pins=LIST: BCM numbers and ranges, "17,23" or "0-27". */
static int parse_pin_list(const char *s, uint64_t *ret) {
        _cleanup_free_ char *copy = strdup(s);
        uint64_t mask = 0;
        char *save = NULL;

        if (!copy)
                return oom();
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

static int verb_trace(int argc, char *argv[]) {
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
        r = open_board(argv, &bus, &path);
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

static int verb_wait(int argc, char *argv[]) {
        static const char *const states[] = {"stopped", "starting", "running", "stopping", "crashed"};
        _cleanup_free_ char *path = NULL;
        sd_bus *bus;
        bool ok = false;
        int r;

        if (!arg_wait_state && !arg_wait_ready && !arg_wait_serial && arg_wait_pin < 0) {
                fprintf(stderr, "wait needs a condition: --state=STATE, --ready, --serial=REGEX or "
                                "--pin=PIN=0|1.\n");
                return CTL_EXIT_USAGE;
        }
        if (arg_wait_state) {
                for (size_t i = 0; i < ELEMENTSOF(states); i++)
                        ok = ok || streq(arg_wait_state, states[i]);
                if (!ok) {
                        fprintf(stderr,
                                "Invalid state \"%s\": use stopped, starting, running, stopping or "
                                "crashed.\n",
                                arg_wait_state);
                        return CTL_EXIT_USAGE;
                }
        }

        if (arg_wait_serial) {
                /* Check the expression before bothering piemud; run_wait() compiles it again. */
                regex_t re;
                char buf[256];

                r = regcomp(&re, arg_wait_serial, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
                if (r != 0) {
                        _cleanup_free_ char *e =
                                escape_for_terminal(arg_wait_serial, strlen(arg_wait_serial), false);

                        regerror(r, &re, buf, sizeof(buf));
                        fprintf(stderr, "Invalid regular expression \"%s\": %s\n", e ?: "?", buf);
                        return CTL_EXIT_USAGE;
                }
                regfree(&re);
        }

        r = open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return run_wait(bus, argv[1], path);
}

/* ---- help ---- */

static void print_exit_codes(void) {
        printf("\nExit status:\n"
               "  0  success                      4  wrong state: not running, already running,\n"
               "  1  other failure                   already exists, busy\n"
               "  2  bad usage or argument        5  access denied\n"
               "  3  no such board or image       6  timed out (wait, or piemud too slow)\n"
               "                                  7  piemud (or the bus) not reachable\n");
}

static int help(void) {
        printf("piemuctl [OPTIONS...] COMMAND ...\n\n"
               "Create, run and wire up emulated Raspberry Pi boards managed by piemud.\n\n"
               "Boards:\n"
               "  list                     List boards (the default command)\n"
               "  status NAME              Show a board's properties and recent console output\n"
               "  create NAME              Create a board (--image, --persistent, --cmdline, --model,\n"
               "                           --i2c)\n"
               "  delete NAME...           Delete boards, stopping them first\n"
               "  start NAME...            Power boards on\n"
               "  stop NAME...             Power boards off (like pulling the cable)\n"
               "  restart NAME...          Stop and start boards\n"
               "  models                   List the Raspberry Pi models boards can be\n"
               "\nConsole and GPIO:\n"
               "  console NAME             Attach to the serial console (leave with ^]^]^])\n"
               "  send NAME TEXT...        Type TEXT and Enter on the serial console\n"
               "  watch NAME               Print console output, pin and state changes until Ctrl-C\n"
               "  wait NAME CONDITION...   Wait for --state, --ready, --serial or --pin\n"
               "  get-pin NAME PIN         Print the level of a BCM pin (0 or 1)\n"
               "  set-pin NAME PIN 0|1     Drive an input pin\n"
               "  pins NAME                Show the levels of all 54 pins\n"
               "  trace NAME --vcd=FILE    Record pin changes as a Value Change Dump\n"
               "  set-sensor NAME ADDRESS PROPERTY VALUE\n"
               "                           Set an I2C sensor's value (see create --i2c)\n"
               "\nWires between boards:\n"
               "  wire FROM:PIN TO:PIN     Drive TO's pin with FROM's level from now on\n"
               "  unwire ID...             Remove wires\n"
               "  wires                    List the wires\n"
               "\nImages:\n"
               "  images                   List images\n"
               "  import-image NAME FILE   Import a disk image (.img, .img.xz; - for stdin)\n"
               "  remove-image NAME        Remove an image\n"
               "  help [COMMAND]           Show this help, or help for a command\n"
               "\nOptions:\n"
               "  -h --help                Show this help; 'piemuctl COMMAND --help' for a command\n"
               "     --version             Show the version\n"
               "     --no-pager            Do not pipe output into a pager\n"
               "     --no-legend           Do not print column headers and the summary line\n"
               "  -j --json[=MODE]         Print JSON: short, pretty or off (default with -j:\n"
               "                           pretty on a terminal, short otherwise)\n"
               "     --no-ask-password     Do not ask for a password when polkit wants one\n"
               "  -q --quiet               Do not print informational messages\n"
               "     --timeout=TIME        wait: give up after TIME (default: infinity);\n"
               "                           others: time allowed for each call to piemud\n"
               "                           (e.g. 30, 1.5s, 500ms, 2min, infinity)\n"
               "     --user                Talk to a piemud on the user bus\n"
               "  -H --host=[USER@]HOST[:PORT]\n"
               "                           Manage the boards of another host, over ssh (its\n"
               "                           systemd-stdio-bridge); that user's rights there apply\n");
        print_exit_codes();
        printf("\nEnvironment: PIEMU_BUS_ADDRESS (use that bus instead of the system bus),\n"
               "PIEMU_PAGER or PAGER (the pager; empty or \"cat\" disables it).\n"
               "\nSee the piemuctl(1) manual page for details.\n");
        return CTL_EXIT_OK;
}

static int help_verb(const Verb *v) {
        printf("Usage: piemuctl [OPTIONS...] %s\n\n%s", v->usage, v->help);
        printf("\nGlobal options (--json, --no-pager, --no-legend, --no-ask-password, --quiet,\n"
               "--timeout, --user, -H/--host): see 'piemuctl --help'.\n");
        print_exit_codes();
        return CTL_EXIT_OK;
}

static int verb_help(int argc, char *argv[]) {
        const Verb *v;

        if (argc < 2)
                return help();
        v = find_verb(argv[1]);
        if (!v) {
                fprintf(stderr, "Unknown command \"%s\". See 'piemuctl --help'.\n", argv[1]);
                return CTL_EXIT_USAGE;
        }
        return help_verb(v);
}

static const Verb verbs[] = {
        {"list", 1, 1, verb_list, 0, "list",
         "List the boards piemud knows, with their state and owner. --json prints an array of\n"
         "{\"name\", \"state\", \"owner\" (uid), \"path\"} objects.\n"},
        {"status", 2, 2, verb_status, OPT_LINES, "status NAME [-n LINES]",
         "Show all properties of a board and the last lines of its serial console.\n\n"
         "Options:\n"
         "  -n --lines=N             Show N console lines (default 10)\n\n"
         "--json prints one object with every property (name, image, model, cmdline, owner,\n"
         "state, persistent, guest_ready, serial_port, gpio_port, last_error,\n"
         "dropped_gpio_lines, gpio_path, path) and recent_serial: the whole recent console buffer\n"
         "as text, bytes that are not UTF-8 written as \\xNN, or null if you may not read the\n"
         "console.\n"},
        {"create", 2, 2, verb_create, OPT_IMAGE | OPT_PERSISTENT | OPT_CMDLINE | OPT_MODEL | OPT_I2C,
         "create NAME [--image=IMAGE] [--persistent] [--cmdline=ARGS] [--model=MODEL]\n"
         "                                 [--i2c=DEVICE@ADDRESS...]",
         "Create a board (stopped). Names are 1-63 characters from A-Z a-z 0-9 _ . - starting\n"
         "with a letter or digit.\n\n"
         "Options:\n"
         "     --image=IMAGE        Boot this image from 'piemuctl images' (default: the model's\n"
         "                          default image)\n"
         "     --persistent         Keep the board's disk changes across stop and start\n"
         "     --cmdline=ARGS       Append ARGS to the kernel command line\n"
         "     --model=MODEL        The Raspberry Pi model, one of 'piemuctl models' (default:\n"
         "                          the first listed there), which also names each model's\n"
         "                          default image; an image that does not boot on the model\n"
         "                          is refused with the models it boots on\n"
         "     --i2c=DEVICE@ADDRESS Put a QEMU I2C device on the header's bus (the guest's i2c-1);\n"
         "                          repeat for more. Devices: tmp105, tmp421 (temperature\n"
         "                          sensors), ds1338 (clock); addresses 0x08-0x77, e.g.\n"
         "                          --i2c=tmp105@0x48. Set a sensor with 'piemuctl set-sensor'.\n"},
        {"delete", 2, VERB_ANY, verb_delete, 0, "delete NAME...",
         "Delete boards: stop them if running and remove their disk overlay.\n"},
        {"start", 2, VERB_ANY, verb_start, 0, "start NAME...",
         "Power boards on. Returns once each board is running; the guest then boots (its shell\n"
         "prompt appears on the console some seconds later: see 'piemuctl wait --serial').\n"},
        {"stop", 2, VERB_ANY, verb_stop, 0, "stop NAME...",
         "Power boards off at once, like pulling the cable of a real Pi.\n"},
        {"restart", 2, VERB_ANY, verb_restart, 0, "restart NAME...",
         "Stop boards (if running) and start them again.\n"},
        {"images", 1, 1, verb_images, 0, "images",
         "List the images boards can boot. --json prints an array of {\"name\", \"description\"}.\n"},
        {"models", 1, 1, verb_models, 0, "models",
         "List the Raspberry Pi models piemud can emulate (create --model), the default first, with\n"
         "the image a board of that model boots when create is given no --image, the board's\n"
         "revision code, RAM and CPUs. --json prints an array of {\"name\", \"description\",\n"
         "\"default_image\", \"revision\" (hex, as a string), \"memory_mib\", \"cpus\"}.\n"},
        {"import-image", 2, 3, verb_import_image,
         OPT_KERNEL | OPT_DTB | OPT_SD | OPT_INITRD | OPT_DESCRIPTION | OPT_CMDLINE | OPT_MODEL,
         "import-image NAME FILE.img[.xz]|- [--description=TEXT]\n"
         "                                 [--model=MODEL]\n"
         "  import-image NAME --kernel=FILE --dtb=FILE --sd=FILE [--initrd=FILE]\n"
         "                                 [--description=TEXT] [--cmdline=ARGS]",
         "Add an image to piemud's catalog. piemuctl opens the files with your permissions and\n"
         "passes them to piemud as file descriptors; piemud never opens a path you name.\n\n"
         "With one FILE, a Raspberry Pi OS release as downloaded (.img, or .img.xz): piemud's\n"
         "confined extractor reads its MBR and FAT boot partition (config.txt, cmdline.txt), takes\n"
         "the kernel, initramfs and device tree for the model (bcm2710-rpi-3-b.dtb for raspi3b),\n"
         "and stores them with the whole disk as the SD card. Boards then boot it with no\n"
         "--cmdline; the console is always the PL011 (ttyAMA0). Errors name what is missing:\n"
         "ImageNotMBR, ImageNoBootPartition, ImageNoKernel, ImageNoDeviceTree, ImageTruncated,\n"
         "ImageTooLarge, ImageInvalid. Expect minutes for a full release. FILE - reads the\n"
         "image from standard input (a pipe or a file, not a terminal), copied first into an\n"
         "unnamed file under /var/tmp.\n\n"
         "With --kernel, --dtb and --sd, those files as they are (the dtb gets the board's\n"
         "revision).\n\n"
         "With -H, FILE is sent over ssh to 'piemuctl import-image NAME -' on that host, which\n"
         "must have piemuctl; the ssh user's rights there apply. --kernel, --dtb and --sd need\n"
         "descriptor passing and do not work with -H.\n\n"
         "Options:\n"
         "     --model=MODEL        The board model the image is taken apart for (raspi3b)\n"
         "     --kernel=FILE        Kernel image (required)\n"
         "     --dtb=FILE           Device tree blob (required)\n"
         "     --sd=FILE            SD card image (required)\n"
         "     --initrd=FILE        Initial ramdisk\n"
         "     --description=TEXT   One line shown by 'piemuctl images'\n"
         "     --cmdline=ARGS       Default kernel command line for boards using the image\n"},
        {"remove-image", 2, 2, verb_remove_image, 0, "remove-image NAME",
         "Remove an image from the catalog. Refused while a board uses it.\n"},
        {"send", 3, VERB_ANY, verb_send, OPT_NO_NEWLINE, "send NAME [--no-newline] TEXT...",
         "Type TEXT on the board's serial console, followed by Enter (a newline). Several words\n"
         "are joined by single spaces, like echo. Put -- before TEXT that starts with '-'.\n\n"
         "Options:\n"
         "     --no-newline         Do not add the newline\n"},
        {"set-pin", 4, 4, verb_set_pin, 0, "set-pin NAME PIN 0|1",
         "Drive BCM GPIO pin PIN (0-53) of a running board low (0) or high (1), as if wired to\n"
         "an external signal.\n"},
        {"get-pin", 3, 3, verb_get_pin, 0, "get-pin NAME PIN",
         "Print the level (0 or 1) of BCM GPIO pin PIN (0-53). --json prints {\"pin\", \"level\"}.\n"},
        {"pins", 2, 2, verb_pins, 0, "pins NAME",
         "Show the levels of all 54 GPIO pins. --json prints an array of {\"pin\", \"level\"}.\n"},
        {"watch", 2, 2, verb_watch, 0, "watch NAME",
         "Print what happens on a board until Ctrl-C, one line per event, each with a timestamp:\n"
         "  2026-11-21 20:01:02.123456 serial: <console line>\n"
         "  2026-11-21 20:01:02.200000 gpio 23 = 1\n"
         "  2026-11-21 20:01:05.000000 state stopped\n"
         "  2026-11-21 20:01:05.000000 guest-ready no\n"
         "Control characters in console output are shown as \\xNN. A line without newline (a\n"
         "prompt) is printed after 1 s of quiet. With --json, one JSON object per line:\n"
         "{\"time\", \"timestamp_usec\", \"type\": \"serial\"|\"gpio\"|\"state\"|\"guest-ready\", and\n"
         "\"text\", \"pin\" and \"level\", \"state\" or \"guest_ready\"}.\n"},
        {"console", 2, 2, verb_console, 0, "console NAME",
         "Attach the terminal to the board's serial console. Every key goes to the board,\n"
         "Ctrl-C included; press ^] (Ctrl-]) three times within one second to leave. The\n"
         "terminal is restored however piemuctl ends. With stdin not a terminal, input is\n"
         "forwarded until end of file. Ends with status 4 if the board stops.\n\n"
         "Over a connection that cannot pass file descriptors (-H: ssh and\n"
         "systemd-stdio-bridge) the console goes through the bus instead: output arrives as\n"
         "Watch() signals and keys go out with SendSerial(). That is slower, and output is\n"
         "held back like watch's when the connection cannot keep up.\n"},
        {"wait", 2, 2, verb_wait, OPT_STATE | OPT_READY | OPT_SERIAL | OPT_PIN | OPT_SINCE_NOW,
         "wait NAME [--state=STATE] [--ready] [--serial=REGEX] [--pin=PIN=0|1]\n"
         "                         [--since-now] [--timeout=TIME]",
         "Wait until every given condition holds, then exit 0. Exits 6 when --timeout passes\n"
         "(default: wait forever), and 4 when waiting for --ready, --serial or --pin on a board\n"
         "that is or becomes stopped or crashed.\n\n"
         "Options:\n"
         "     --state=STATE        The board is in STATE: stopped, starting, running,\n"
         "                          stopping or crashed\n"
         "     --ready              The guest's GPIO shim has reported in (GuestReady)\n"
         "     --serial=REGEX       The console printed text matching REGEX (POSIX extended,\n"
         "                          matched line-wise: ^ and $ match at line ends; carriage\n"
         "                          returns are removed). Output already in the recent console\n"
         "                          buffer counts, unless --since-now is given\n"
         "     --since-now          Only match console output printed after wait started\n"
         "     --pin=PIN=0|1        BCM pin PIN has that level\n"
         "     --timeout=TIME       Give up after TIME (e.g. 30, 1.5s, 2min)\n\n"
         "Example: piemuctl start b && piemuctl wait b --serial='piemu:.*# ' --timeout=2min\n"},
        {"wire", 3, 3, verb_wire, 0, "wire FROM:PIN TO:PIN",
         "Connect a pin of one board to a pin of another (or the same) board: whenever FROM's pin\n"
         "changes, piemud drives TO's pin to the same level, as set-pin does (remembered, and\n"
         "applied again after TO reboots). Prints the wire's id, FROM:PIN:TO:PIN. You must be\n"
         "allowed to manage both boards. A pin takes one wire in; one pin may drive many; a\n"
         "wire that would close a loop is refused. Wires are kept with the boards (also across\n"
         "a piemud restart) and go when either board is deleted.\n"},
        {"unwire", 2, VERB_ANY, verb_unwire, 0, "unwire ID...",
         "Remove wires by id (see 'piemuctl wires'). The pin it drove keeps its last level.\n"
         "The manager of either board may remove a wire.\n"},
        {"wires", 1, 1, verb_wires, 0, "wires",
         "List the wires between boards. --json prints an array of {\"id\", \"from_board\",\n"
         "\"from_pin\", \"to_board\", \"to_pin\"}.\n"},
        {"set-sensor", 5, 5, verb_set_sensor, 0, "set-sensor NAME ADDRESS PROPERTY VALUE",
         "Set an integer property of the I2C device at ADDRESS (see create --i2c); the guest's\n"
         "driver reads it from then on. For tmp105: temperature, in m°C (42500 is 42.5 °C);\n"
         "for tmp421: temperature0..temperature3. Example:\n"
         "  piemuctl set-sensor b1 0x48 temperature 42500\n"},
        {"trace", 2, 2, verb_trace, OPT_VCD | OPT_PINS | OPT_DURATION,
         "trace NAME --vcd=FILE [--pins=LIST] [--duration=TIME]",
         "Record the board's pin changes into a Value Change Dump, for GTKWave, PulseView or\n"
         "sigrok. Time stamps are those of the GpioChanged events themselves, in microseconds\n"
         "from the start of the trace; the dump starts with the levels GetPins reads. Ends after\n"
         "--duration, on Ctrl-C, or when the board stops.\n\n"
         "Options:\n"
         "     --vcd=FILE           Write the dump to FILE (- for standard output)\n"
         "     --pins=LIST          BCM pins to record, e.g. 17,23 or 0-27 (default 0-27, the\n"
         "                          40-pin header's GPIOs)\n"
         "     --duration=TIME      Stop after TIME (e.g. 10, 2.5s, 1min); default: until Ctrl-C\n"},
        {"help", 1, 2, verb_help, 0, "help [COMMAND]", "Show the help, or the help for COMMAND.\n"},
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* ---- command line ---- */

/* The verb options: each has a bit (a verb lists the ones it takes) and, for the plain ones, where
 * its value goes (a string, or true in a flag); the others are read by parse_verb_option(). */
typedef struct VerbOption {
        unsigned bit;
        const char *name; /* without the leading "--" */
        int has_arg;
        const char **string;
        bool *flag;
} VerbOption;

static const VerbOption verb_options[] = {
        {OPT_IMAGE, "image", required_argument, &arg_image, NULL},
        {OPT_PERSISTENT, "persistent", no_argument, NULL, &arg_persistent},
        {OPT_CMDLINE, "cmdline", required_argument, &arg_cmdline, NULL},
        {OPT_MODEL, "model", required_argument, &arg_model, NULL},
        {OPT_KERNEL, "kernel", required_argument, &arg_kernel, NULL},
        {OPT_DTB, "dtb", required_argument, &arg_dtb, NULL},
        {OPT_SD, "sd", required_argument, &arg_sd, NULL},
        {OPT_INITRD, "initrd", required_argument, &arg_initrd, NULL},
        {OPT_DESCRIPTION, "description", required_argument, &arg_description, NULL},
        {OPT_LINES, "lines", required_argument, NULL, NULL},
        {OPT_NO_NEWLINE, "no-newline", no_argument, NULL, &arg_no_newline},
        {OPT_STATE, "state", required_argument, &arg_wait_state, NULL},
        {OPT_READY, "ready", no_argument, NULL, &arg_wait_ready},
        {OPT_SERIAL, "serial", required_argument, &arg_wait_serial, NULL},
        {OPT_PIN, "pin", required_argument, NULL, NULL},
        {OPT_SINCE_NOW, "since-now", no_argument, NULL, &arg_since_now},
        {OPT_I2C, "i2c", required_argument, NULL, NULL},
        {OPT_VCD, "vcd", required_argument, &arg_vcd, NULL},
        {OPT_PINS, "pins", required_argument, &arg_trace_pins, NULL},
        {OPT_DURATION, "duration", required_argument, NULL, NULL},
};

/* getopt's value for verb_options[i]. */
#define ARG_VERB_OPTION 0x200

static int parse_lines(const char *s) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v > 100000) {
                fprintf(stderr, "Invalid --lines \"%s\": use a number of lines.\n", s);
                return -CTL_EXIT_USAGE;
        }
        arg_lines = (unsigned)v;
        return 0;
}

static int parse_wait_pin(const char *s) {
        _cleanup_free_ char *pin = NULL;
        const char *eq = strchr(s, '=');
        uint32_t p;
        bool v;
        int r;

        if (!eq) {
                fprintf(stderr, "Invalid --pin \"%s\": use PIN=0 or PIN=1, e.g. --pin=17=1.\n", s);
                return -CTL_EXIT_USAGE;
        }
        pin = strndup(s, (size_t)(eq - s));
        if (!pin)
                return -oom();
        r = ctl_parse_pin(pin, &p);
        if (r == CTL_EXIT_OK)
                r = parse_level(eq + 1, &v);
        if (r != CTL_EXIT_OK)
                return -r;
        arg_wait_pin = (int)p;
        arg_wait_pin_value = v;
        return 0;
}

static int add_i2c(char *s) {
        size_t n = 0;
        char **l;

        while (arg_i2c && arg_i2c[n])
                n++;
        l = reallocarray(arg_i2c, n + 2, sizeof(char *));
        if (!l)
                return -oom();
        l[n] = s; /* points into argv: strv_free would be wrong, free(l) only */
        l[n + 1] = NULL;
        arg_i2c = l;
        return 0;
}

static int parse_duration(const char *s) {
        int r = parse_timeout(s, &arg_duration_usec);

        if (r < 0 || arg_duration_usec == 0) {
                fprintf(stderr,
                        "Invalid --duration \"%s\": use seconds (e.g. 10 or 2.5), a unit (500ms, 2min) or "
                        "infinity.\n",
                        s);
                return -CTL_EXIT_USAGE;
        }
        return 0;
}

/* Returns 0, or an exit status negated. */
static int parse_verb_option(const VerbOption *o, char *value) {
        int r = 0;

        if (o->string)
                *o->string = value;
        else if (o->flag)
                *o->flag = true;
        else if (o->bit == OPT_LINES)
                r = parse_lines(value);
        else if (o->bit == OPT_PIN)
                r = parse_wait_pin(value);
        else if (o->bit == OPT_I2C)
                r = add_i2c(value);
        else if (o->bit == OPT_DURATION)
                r = parse_duration(value);
        else
                assert(!"verb option without a parser");
        if (r == 0)
                arg_seen |= o->bit;
        return r;
}

static int parse_json_mode(const char *s) {
        if (!s)
                arg_json = isatty(STDOUT_FILENO) ? JSON_PRETTY : JSON_SHORT;
        else if (streq(s, "short"))
                arg_json = JSON_SHORT;
        else if (streq(s, "pretty"))
                arg_json = JSON_PRETTY;
        else if (streq(s, "off"))
                arg_json = JSON_OFF;
        else {
                fprintf(stderr, "Invalid --json mode \"%s\": use short, pretty or off.\n", s);
                return -CTL_EXIT_USAGE;
        }
        return 0;
}

static int parse_host(const char *s) {
        _cleanup_(remote_host_done) RemoteHost h = {};
        int r;

        r = remote_host_parse(s, &h);
        if (r == -ENOMEM)
                return -oom();
        if (r < 0) {
                _cleanup_free_ char *e = escape_for_terminal(s, strlen(s), false);
                fprintf(stderr,
                        "Invalid host \"%s\": use [USER@]HOST[:PORT], e.g. pi@lab1 or lab1:2222, with an "
                        "IPv6 "
                        "address in brackets ([fd00::1]:2222).\n",
                        e ?: "?");
                return -CTL_EXIT_USAGE;
        }
        arg_host = s;
        return 0;
}

/* The global options and after them every verb option, for getopt_long. */
static const struct option *long_options(void) {
        static const struct option global[] = {
                {"help", no_argument, NULL, 'h'},       {"version", no_argument, NULL, 'V'},
                {"no-pager", no_argument, NULL, 'P'},   {"no-legend", no_argument, NULL, 'L'},
                {"json", optional_argument, NULL, 'j'}, {"no-ask-password", no_argument, NULL, 'A'},
                {"quiet", no_argument, NULL, 'q'},      {"timeout", required_argument, NULL, 'T'},
                {"user", no_argument, NULL, 'U'},       {"host", required_argument, NULL, 'H'},
        };
        static struct option all[ELEMENTSOF(global) + ELEMENTSOF(verb_options) + 1];

        if (all[0].name)
                return all;
        memcpy(all, global, sizeof(global));
        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                all[ELEMENTSOF(global) + i] = (struct option){verb_options[i].name, verb_options[i].has_arg,
                                                              NULL, ARG_VERB_OPTION + (int)i};
        return all;
}

/* Returns 1 to run a verb, 0 to exit successfully (--version), < 0 to exit with that status negated.
 * The long-only global options have values outside the short options' string: getopt never hands
 * out 'V', 'P', 'L', 'A', 'T' or 'U' for "-V" and the like, which are unknown options. */
static int parse_argv(int argc, char *argv[]) {
        int c, r;

        /* Usage errors are reported by us, with a pointer to --help. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hjqn:H:", long_options(), NULL)) >= 0) {
                if (c >= ARG_VERB_OPTION) {
                        r = parse_verb_option(&verb_options[c - ARG_VERB_OPTION], optarg);
                        if (r < 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'h':
                        arg_help = true;
                        break;
                case 'V':
                        printf("piemuctl %s\n", PIEMU_VERSION);
                        return 0;
                case 'P':
                        arg_no_pager = true;
                        break;
                case 'L':
                        arg_legend = false;
                        break;
                case 'j':
                        r = parse_json_mode(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'A':
                        arg_ask_password = false;
                        break;
                case 'q':
                        arg_quiet = true;
                        break;
                case 'T':
                        r = parse_timeout(optarg, &arg_timeout_usec);
                        if (r < 0 || arg_timeout_usec == 0) {
                                fprintf(stderr,
                                        "Invalid --timeout \"%s\": use seconds (e.g. 30 or 1.5), a unit "
                                        "(500ms, 2min, 1h) or infinity.\n",
                                        optarg);
                                return -CTL_EXIT_USAGE;
                        }
                        break;
                case 'U':
                        arg_user = true;
                        break;
                case 'H':
                        r = parse_host(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'n':
                        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                                if (verb_options[i].bit == OPT_LINES) {
                                        r = parse_verb_option(&verb_options[i], optarg);
                                        if (r < 0)
                                                return r;
                                }
                        break;
                case ':':
                        fprintf(stderr, "Option %s needs an argument. See 'piemuctl --help'.\n",
                                argv[optind - 1]);
                        return -CTL_EXIT_USAGE;
                case '?':
                default:
                        if (optopt)
                                fprintf(stderr, "Unknown option -%c. See 'piemuctl --help'.\n", optopt);
                        else
                                fprintf(stderr, "Unknown option %s. See 'piemuctl --help'.\n",
                                        argv[optind - 1]);
                        return -CTL_EXIT_USAGE;
                }
        }

        if (arg_host && arg_user) {
                fprintf(stderr, "-H/--host reaches the system bus of another host; it cannot be combined "
                                "with --user.\n");
                return -CTL_EXIT_USAGE;
        }
        /* PIEMU_BUS_ADDRESS names a bus too: rather than guess which one is meant, refuse. */
        if (arg_host && !isempty(getenv("PIEMU_BUS_ADDRESS"))) {
                fprintf(stderr,
                        "-H/--host cannot be used while $PIEMU_BUS_ADDRESS is set: both say which bus to "
                        "talk to. Unset PIEMU_BUS_ADDRESS, or drop -H.\n");
                return -CTL_EXIT_USAGE;
        }
        return 1;
}

int main(int argc, char *argv[]) {
        const char *verb_name;
        const Verb *v;
        int n_args, r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return -r;

        verb_name = optind < argc ? argv[optind] : "list";
        v = find_verb(verb_name);
        if (!v) {
                _cleanup_free_ char *e = escape_for_terminal(verb_name, strlen(verb_name), false);
                fprintf(stderr, "Unknown command \"%s\". See 'piemuctl --help'.\n", e ?: "?");
                return CTL_EXIT_USAGE;
        }

        if (arg_help)
                return optind < argc ? help_verb(v) : help();

        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                if ((arg_seen & verb_options[i].bit) && !(v->options & verb_options[i].bit)) {
                        fprintf(stderr, "Option --%s does not apply to '%s'. See 'piemuctl %s --help'.\n",
                                verb_options[i].name, v->name, v->name);
                        return CTL_EXIT_USAGE;
                }

        n_args = optind < argc ? argc - optind : 1;
        if ((unsigned)n_args < v->min_args || (v->max_args != VERB_ANY && (unsigned)n_args > v->max_args)) {
                fprintf(stderr, "%s arguments for '%s'.\nUsage: piemuctl %s\n",
                        (unsigned)n_args < v->min_args ? "Too few" : "Too many", v->name, v->usage);
                return CTL_EXIT_USAGE;
        }

        r = v->dispatch(n_args, optind < argc ? argv + optind : (char *[]){(char *)"list", NULL});

        pager_close();
        polkit_agent_close();
        ctl_bus_close();
        return r;
}
