/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* "piemuctl status": a board's properties (Properties.GetAll) and the last lines of its console
 * (Board.GetRecentSerial), as text for people or one JSON object for programs. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

typedef struct BoardInfo {
        char *name, *image, *model, *cmdline, *state, *last_error, *gpio_path;
        uint32_t owner;
        int persistent, guest_ready, gpio_interrupts;
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
        SEEN_GPIO_INTERRUPTS = 1u << 13,
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
                {"GpioInterrupts", "b", SEEN_GPIO_INTERRUPTS, offsetof(BoardInfo, gpio_interrupts)},
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

/* The board's recent console output, or why there is none to show. */
typedef struct RecentSerial {
        sd_bus_message *reply; /* holds data */
        const void *data;
        size_t size;
        const char *note; /* instead of data: why it is not available */
} RecentSerial;

static void recent_serial_done(RecentSerial *s) {
        sd_bus_message_unref(s->reply);
}

/* The console is private to the owner (and whom polkit allows); the properties are not. Notes what we
 * may not see instead of failing. Returns an exit status. */
static int read_recent_serial(sd_bus *bus, const char *path, const char *name, RecentSerial *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_new_call(bus, &m, path, PIEMU_BOARD_IFACE, "GetRecentSerial");
        if (r < 0)
                return ctl_error(NULL, r, "read the board's console output", name, NULL);
        polkit_agent_open_if_enabled();
        ctl_note_call_timeout(ctl_call_timeout(0));
        r = sd_bus_call(bus, m, ctl_call_timeout(0), &error, &ret->reply);
        if (r >= 0) {
                r = sd_bus_message_read_array(ret->reply, 'y', &ret->data, &ret->size);
                if (r < 0)
                        return ctl_error(NULL, r, "parse piemud's reply", name, NULL);
        } else if (sd_bus_error_has_names(&error, "org.freedesktop.DBus.Error.AccessDenied",
                                          "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"))
                ret->note = "not available: access denied";
        else if (sd_bus_error_has_name(&error, "org.piemu.Error.NotRunning"))
                ret->note = "not available: board not running";
        else
                return ctl_error(&error, r, "read the board's console output", name, NULL);
        return CTL_EXIT_OK;
}

/* One object: every property (null if piemud did not send it), the path and the console buffer. */
static void print_status_json(const BoardInfo *info, const char *path, const RecentSerial *serial) {
        JsonWriter j;
        const struct {
                const char *key;
                unsigned bit;
                char type;
                const void *value;
        } fields[] = {
                {"name", SEEN_NAME, 's', &info->name},
                {"image", SEEN_IMAGE, 's', &info->image},
                {"model", SEEN_MODEL, 's', &info->model},
                {"cmdline", SEEN_CMDLINE, 's', &info->cmdline},
                {"owner", SEEN_OWNER, 'u', &info->owner},
                {"state", SEEN_STATE, 's', &info->state},
                {"persistent", SEEN_PERSISTENT, 'b', &info->persistent},
                {"guest_ready", SEEN_GUEST_READY, 'b', &info->guest_ready},
                {"serial_port", SEEN_SERIAL_PORT, 'q', &info->serial_port},
                {"gpio_port", SEEN_GPIO_PORT, 'q', &info->gpio_port},
                {"last_error", SEEN_LAST_ERROR, 's', &info->last_error},
                {"dropped_gpio_lines", SEEN_DROPPED, 't', &info->dropped},
                {"gpio_path", SEEN_GPIO_PATH, 's', &info->gpio_path},
                {"gpio_interrupts", SEEN_GPIO_INTERRUPTS, 'b', &info->gpio_interrupts},
        };

        json_init(&j, stdout, arg_json);
        json_open(&j, '{');
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                json_key(&j, fields[i].key);
                if (!(info->seen & fields[i].bit))
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
        if (serial->note)
                json_null(&j);
        else
                json_text(&j, serial->data, serial->size);
        json_close(&j, '}');
        json_finish(&j);
}

/* One "Label: value" line per property ("-" if piemud did not send it), then the console's last
 * --lines lines. */
static void print_status_text(const char *name, const BoardInfo *info, const char *path,
                              const RecentSerial *serial) {
        char user[64], owner[96], dropped[32];

        printf("%s\n", name);
        print_field("State", info->seen & SEEN_STATE ? info->state : NULL);
        print_field("Image", info->seen & SEEN_IMAGE ? info->image : NULL);
        print_field("Model", info->seen & SEEN_MODEL ? info->model : NULL);
        print_field("Cmdline", info->seen & SEEN_CMDLINE && !isempty(info->cmdline) ? info->cmdline : NULL);
        if (info->seen & SEEN_OWNER && arg_host)
                snprintf(owner, sizeof(owner), "uid %u on %s", info->owner, arg_host);
        else if (info->seen & SEEN_OWNER)
                snprintf(owner, sizeof(owner), "%s (%u)", ctl_owner_name(info->owner, user, sizeof(user)),
                         info->owner);
        print_field("Owner", info->seen & SEEN_OWNER ? owner : NULL);
        print_field("Persistent", info->seen & SEEN_PERSISTENT ? (info->persistent ? "yes" : "no") : NULL);
        print_field("Guest ready",
                    info->seen & SEEN_GUEST_READY ? (info->guest_ready ? "yes" : "no") : NULL);
        print_port("Serial port", info->seen & SEEN_SERIAL_PORT, info->serial_port);
        print_port("GPIO port", info->seen & SEEN_GPIO_PORT, info->gpio_port);
        print_field("GPIO path", info->seen & SEEN_GPIO_PATH ? info->gpio_path : NULL);
        print_field("GPIO IRQs",
                    info->seen & SEEN_GPIO_INTERRUPTS ? (info->gpio_interrupts ? "yes" : "no") : NULL);
        print_field("Last error",
                    info->seen & SEEN_LAST_ERROR && !isempty(info->last_error) ? info->last_error : NULL);
        snprintf(dropped, sizeof(dropped), "%" PRIu64, info->dropped);
        print_field("Dropped GPIO", info->seen & SEEN_DROPPED ? dropped : NULL);
        print_field("Path", path);

        if (serial->note)
                printf("\nRecent console output: %s\n", serial->note);
        else {
                printf("\nRecent console output:\n");
                print_last_lines(serial->data, serial->size, arg_lines);
        }
}

int verb_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(recent_serial_done) RecentSerial serial = {};
        _cleanup_(board_info_done) BoardInfo info = {};
        _cleanup_free_ char *path = NULL;
        const char *name = argv[1];
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
        if (r < 0)
                return ctl_error(NULL, r, "parse the board's properties", name, NULL);

        r = read_recent_serial(bus, path, name, &serial);
        if (r != CTL_EXIT_OK)
                return r;

        pager_open();
        if (arg_json != JSON_OFF)
                print_status_json(&info, path, &serial);
        else
                print_status_text(name, &info, path, &serial);
        return CTL_EXIT_OK;
}
