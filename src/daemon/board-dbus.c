/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "board-dbus.h"
#include "i2c-devices.h"
#include "image-dbus.h"
#include "list.h"
#include "peers.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "names.h"
#include "piemu-errors.h"
#include "polkit.h"

/* Own boards need manage-own-board, everybody else's need manage-boards; root is
 * always allowed (inside polkit_verify_async). Returns 1 allowed, 0 pending (the
 * call is re-dispatched when the bus or polkit answers), < 0 refused. */
int board_verify(Board *b, sd_bus_message *m, const char *verb, sd_bus_error *error) {
        const char *details[] = {"board", b->config.name, "verb", verb, NULL};
        uid_t uid;
        int r;

        r = polkit_registry_sender_uid_async(board_manager(b)->polkit, m, &uid);
        if (r <= 0)
                return r; /* 0: the bus is asked, the call comes back */
        return polkit_verify_async(
                m, uid == b->config.owner ? "org.piemu.manage-own-board" : "org.piemu.manage-boards",
                details, board_manager(b)->polkit, error);
}

void board_emit_property(sd_bus *bus, Board *b, const char *property) {
        if (bus)
                (void)sd_bus_emit_properties_changed(bus, b->path, "org.piemu.Board", property, NULL);
}

#define VERIFY_OR_RETURN(b, m, verb, error)                                                                 \
        do {                                                                                                \
                int _r = board_verify((b), (m), (verb), (error));                                           \
                if (_r < 0)                                                                                 \
                        return _r;                                                                          \
                if (_r == 0)                                                                                \
                        return 1; /* answered when polkit is */                                             \
        } while (0)

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(image_freep) Image *img = NULL;
        Board *b = userdata;
        int r;

        VERIFY_OR_RETURN(b, m, "start", error);
        r = board_check_verb(b, BOARD_VERB_START, error);
        if (r < 0)
                return r;
        r = image_load(board_manager(b)->images_dir, b->config.image, &img);
        if (r < 0)
                return image_bus_error(error, b->config.image, r);
        r = board_start(b, img, m, error);
        return r < 0 ? r : 1;
}

static int method_stop(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        int r;

        VERIFY_OR_RETURN(b, m, "stop", error);
        r = board_stop(b, m, error);
        return r < 0 ? r : 1;
}

static int method_send_serial(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        const void *data;
        size_t n;
        int r;

        r = sd_bus_message_read_array(m, 'y', &data, &n);
        if (r < 0)
                return r;
        VERIFY_OR_RETURN(b, m, "send-serial", error);
        r = board_send_serial(b, data, n, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int read_pin(sd_bus_message *m, unsigned *ret, sd_bus_error *error) {
        uint32_t pin;
        int r = sd_bus_message_read(m, "u", &pin);
        if (r < 0)
                return r;
        if (pin >= GPIO_PROTO_NPINS)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_PIN,
                                         "Invalid pin %u: BCM pins are numbered 0 to %d.", pin,
                                         GPIO_PROTO_NPINS - 1);
        *ret = pin;
        return 0;
}

static int method_set_pin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        unsigned pin = 0;
        int value, r;

        r = read_pin(m, &pin, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "b", &value);
        if (r < 0)
                return r;
        VERIFY_OR_RETURN(b, m, "set-pin", error);
        r = board_set_pin(b, pin, value, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int check_running(Board *b, sd_bus_error *error);

/* A sensor property's new value: any D-Bus integer type, as long as it fits int64. */
static int read_sensor_value(sd_bus_message *m, int64_t *ret, sd_bus_error *error) {
        const char *contents = NULL;
        union {
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
        } v;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        if (!contents || strlen(contents) != 1 || !strchr("ynqiuxt", contents[0]))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "The value must be an integer (D-Bus type i or x, say), not '%s'.",
                                         strempty(contents));
        type = contents[0];
        r = sd_bus_message_read(m, "v", contents, &v);
        if (r < 0)
                return r;
        switch (type) {
        case 'y':
                *ret = v.y;
                break;
        case 'n':
                *ret = v.n;
                break;
        case 'q':
                *ret = v.q;
                break;
        case 'i':
                *ret = v.i;
                break;
        case 'u':
                *ret = v.u;
                break;
        case 'x':
                *ret = v.x;
                break;
        default:
                if (v.t > INT64_MAX)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "The value %llu is too large.", (unsigned long long)v.t);
                *ret = (int64_t)v.t;
        }
        return 0;
}

static int method_set_sensor(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        const I2cModel *model;
        const I2cProperty *prop;
        const BoardI2c *dev;
        const char *property;
        uint8_t address;
        int64_t value = 0;
        int r;

        r = sd_bus_message_read(m, "ys", &address, &property);
        if (r < 0)
                return r;
        if (address < I2C_ADDRESS_MIN || address > I2C_ADDRESS_MAX)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "Invalid I2C address 0x%02x: devices sit at 0x%02x to 0x%02x.",
                                         address, I2C_ADDRESS_MIN, I2C_ADDRESS_MAX);
        r = read_sensor_value(m, &value, error);
        if (r < 0)
                return r;
        /* Authorized as SetPin: what the board's devices are is the board's business. */
        VERIFY_OR_RETURN(b, m, "set-sensor", error);

        dev = board_config_find_i2c(&b->config, address);
        if (!dev)
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_NO_SUCH_SENSOR,
                        "Board %s has no I2C device at 0x%02x (see CreateBoard's i2c option).",
                        b->config.name, address);
        model = i2c_model_find(dev->model);
        prop = i2c_property_find(model, property);
        if (!prop) {
                char names[128] = "";
                for (size_t i = 0; model && i < model->n_properties; i++)
                        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                                 model->properties[i].name);
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "The %s at 0x%02x has no property '%s' to set (%s%s).", dev->model,
                                         address, property, *names ? "it has: " : "it has none", names);
        }
        if (value < prop->min || value > prop->max)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "%s of the %s goes from %lld to %lld %s; %lld is out of range.",
                                         prop->name, dev->model, (long long)prop->min, (long long)prop->max,
                                         prop->unit, (long long)value);
        r = check_running(b, error);
        if (r < 0)
                return r;
        r = board_set_sensor(b, address, prop->name, value, m, error);
        return r < 0 ? r : 1;
}

static int check_running(Board *b, sd_bus_error *error) {
        if (b->state != BOARD_RUNNING)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        return 0;
}

static int reply_levels(Board *b, sd_bus_message *m, int pin);

/* Levels come from QEMU itself on the qtest path: until the first read on a connection (piemud just
 * restarted, QEMU is dialing) they are not known, and guessing "low" would be a lie. A GetPin or
 * GetPins then waits for that first read (QEMU dials within a second or two), and answers Busy only
 * if it takes longer than LEVELS_WAIT_USEC. The board owns its waiting calls: board_shut() answers
 * them. */
#define LEVELS_WAIT_USEC (5 * UINT64_C(1000000))
#define LEVELS_POLL_USEC (20 * UINT64_C(1000))

typedef struct LevelWait LevelWait;
struct LevelWait {
        Board *board;
        sd_bus_message *call;
        int pin; /* -1: GetPins */
        uint64_t deadline;
        sd_event_source *timer;
        struct LevelWait *prev, *next;
};

static LevelWait *level_wait_free(LevelWait *w) {
        if (!w)
                return NULL;
        LIST_REMOVE(w->board->level_waits, w);
        sd_event_source_disable_unref(w->timer);
        sd_bus_message_unref(w->call);
        free(w);
        return NULL;
}

/* `sentence` is a whole message; the board's name follows it in parentheses. */
static void level_wait_answer_error(LevelWait *w, const char *name, const char *sentence) {
        (void)sd_bus_reply_method_errorf(w->call, name, "%s (board %s)", sentence, w->board->config.name);
        level_wait_free(w);
}

static int on_level_wait_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        LevelWait *w = userdata;
        Board *b = w->board;

        if (b->state != BOARD_RUNNING) {
                level_wait_answer_error(w, PIEMU_ERROR_NOT_RUNNING,
                                        "The board stopped before its GPIO levels were known.");
                return 0;
        }
        if (board_levels_known(b)) {
                (void)reply_levels(b, w->call, w->pin);
                level_wait_free(w);
                return 0;
        }
        if (usec >= w->deadline) {
                level_wait_answer_error(
                        w, PIEMU_ERROR_BUSY,
                        "The GPIO levels of board %s are not known yet (QEMU has not connected "
                        "its qtest channel within 5 s); try again.");
                return 0;
        }
        (void)sd_event_source_set_time_relative(s, LEVELS_POLL_USEC);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* 1: answered now; 0: the call waits for the levels (answered later); < 0: an error to answer. */
static int answer_levels_or_wait(Board *b, sd_bus_message *m, int pin) {
        LevelWait *w;
        uint64_t now;
        int r;

        if (board_levels_known(b))
                return reply_levels(b, m, pin);
        r = sd_event_now(b->host->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (LevelWait){
                .board = b, .call = sd_bus_message_ref(m), .pin = pin, .deadline = now + LEVELS_WAIT_USEC};
        LIST_PREPEND(b->level_waits, w);
        r = sd_event_add_time_relative(b->host->event, &w->timer, CLOCK_MONOTONIC, LEVELS_POLL_USEC, 1000,
                                       on_level_wait_timer, w);
        if (r < 0) {
                level_wait_free(w);
                return r;
        }
        (void)sd_event_source_set_description(w->timer, "board-level-wait");
        return 0;
}

void board_level_waits_cancel(Board *b) {
        while (b->level_waits)
                level_wait_answer_error(b->level_waits, PIEMU_ERROR_NOT_RUNNING, "The board is gone.");
}

static int method_get_pin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        unsigned pin = 0;
        int r;

        r = read_pin(m, &pin, error);
        if (r < 0)
                return r;
        VERIFY_OR_RETURN(b, m, "get-pin", error);
        r = check_running(b, error);
        if (r < 0)
                return r;
        r = answer_levels_or_wait(b, m, (int)pin);
        return r < 0 ? r : 1;
}

static int method_get_pins(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        int r;

        VERIFY_OR_RETURN(b, m, "get-pin", error);
        r = check_running(b, error);
        if (r < 0)
                return r;
        r = answer_levels_or_wait(b, m, -1);
        return r < 0 ? r : 1;
}

static int reply_levels(Board *b, sd_bus_message *m, int pin) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int values[GPIO_PROTO_NPINS];
        int r;

        if (pin >= 0)
                return sd_bus_reply_method_return(m, "b", (int)!!(b->pins.levels & (UINT64_C(1) << pin)));
        for (unsigned i = 0; i < GPIO_PROTO_NPINS; i++)
                values[i] = !!(b->pins.levels & (UINT64_C(1) << i));
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "b");
        for (unsigned i = 0; r >= 0 && i < GPIO_PROTO_NPINS; i++)
                r = sd_bus_message_append_basic(reply, 'b', &values[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_recent_serial(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Board *b = userdata;
        uint8_t buf[BOARD_RECENT_MAX];
        size_t n;
        int r;

        VERIFY_OR_RETURN(b, m, "read-serial", error);
        n = board_recent_serial(b, buf, sizeof buf);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(reply, 'y', buf, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_open_serial(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        _cleanup_close_ int fd = -EBADF;
        int r;

        VERIFY_OR_RETURN(b, m, "open-serial", error);
        r = check_running(b, error);
        if (r < 0)
                return r;
        r = board_open_console(b, &fd);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot open the console of %s: %m",
                                               b->config.name);
        return sd_bus_reply_method_return(m, "h", fd);
}

static int method_watch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        int r;

        VERIFY_OR_RETURN(b, m, "watch", error);
        r = watchers_add(&b->watchers, m);
        if (r < 0)
                return r;
        /* If the caller left while polkit was being asked, its departure went by before it was a
         * watcher: ask the bus once, so that it is not remembered for ever. */
        if (r > 0)
                (void)peers_check(board_manager(b)->peers, sd_bus_message_get_sender(m));
        return sd_bus_reply_method_return(m, NULL);
}

static int method_unwatch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Board *b = userdata;

        /* Anyone may stop watching; nothing is revealed or changed for others. */
        watchers_remove(&b->watchers, m);
        return sd_bus_reply_method_return(m, NULL);
}

/* Cmdline and LastError are the owner's business: a kernel command line may carry what its owner
 * typed (tokens, addresses) and LastError names the users who knocked on the board's lines. They are
 * shown to the board's owner and to root when they read properties (Get, GetAll,
 * GetManagedObjects); everybody else, and every signal that carries properties (InterfacesAdded),
 * sees "". The caller's uid is known by the time a getter runs: manager_filter_property_reads() asks
 * the bus for it before a property read is dispatched. */
static bool caller_sees_private(Board *b, sd_bus *bus) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        const char *iface, *member;
        uid_t uid;

        if (!m || sd_bus_message_is_method_call(m, NULL, NULL) <= 0)
                return false;
        iface = sd_bus_message_get_interface(m);
        member = sd_bus_message_get_member(m);
        if (!iface || !member)
                return false;
        if (!(streq(iface, "org.freedesktop.DBus.Properties") &&
              (streq(member, "Get") || streq(member, "GetAll"))) &&
            !(streq(iface, "org.freedesktop.DBus.ObjectManager") && streq(member, "GetManagedObjects")))
                return false; /* e.g. the InterfacesAdded a CreateBoard call emits: a broadcast */
        if (polkit_registry_peek_uid(board_manager(b)->polkit, m, &uid) <= 0)
                return false;
        return uid == 0 || uid == b->config.owner;
}

static int property_get_config_string(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply, void *userdata,
                                      sd_bus_error *error) {
        Board *b = userdata;
        const char *v = "";

        if (streq(property, "Name"))
                v = b->config.name;
        else if (streq(property, "Image"))
                v = b->config.image;
        else if (streq(property, "Model"))
                v = b->config.model;
        else if (streq(property, "Cmdline"))
                v = caller_sees_private(b, bus) ? b->config.cmdline : NULL;
        else if (streq(property, "LastError"))
                v = caller_sees_private(b, bus) ? b->last_error : NULL;
        return sd_bus_message_append(reply, "s", strempty(v));
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        return sd_bus_message_append(reply, "s", board_state_to_string(b->state));
}

static int property_get_owner(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t)b->config.owner);
}

static int property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        bool v = streq(property, "Persistent")       ? b->config.persistent
                 : streq(property, "GpioInterrupts") ? b->qtest.inputs
                                                     : b->guest_ready;
        return sd_bus_message_append(reply, "b", (int)v);
}

static int property_get_port(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        bool up = b->state == BOARD_RUNNING || b->state == BOARD_STARTING;
        /* A stopped board has no ports: 0 rather than a stale number someone else may own now. */
        uint16_t v = !up ? 0 : streq(property, "SerialPort") ? b->config.serial_port : b->config.gpio_port;
        return sd_bus_message_append(reply, "q", v);
}

static int property_get_gpio_path(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        return sd_bus_message_append(reply, "s", b->pins.backend->name);
}

static int property_get_dropped(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Board *b = userdata;
        return sd_bus_message_append(reply, "t", b->shim.dropped_lines);
}

const sd_bus_vtable board_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_config_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Image", "s", property_get_config_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Model", "s", property_get_config_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Cmdline", "s", property_get_config_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "u", property_get_owner, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("GuestReady", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* Ports change with State; watch State and re-read them. */
        SD_BUS_PROPERTY("SerialPort", "q", property_get_port, 0, 0),
        SD_BUS_PROPERTY("GpioPort", "q", property_get_port, 0, 0),
        /* Private (see caller_sees_private): the change signal names the property, not its value. */
        SD_BUS_PROPERTY("LastError", "s", property_get_config_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        /* "qtest" (QEMU's own view of the pins, no agent needed in the guest) or "shim" (a board
         * started by an older piemu, or a host without the qtest directory). Set at each Start. */
        SD_BUS_PROPERTY("GpioPath", "s", property_get_gpio_path, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("GpioInterrupts", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* A counter that a flooding guest bumps constantly: not worth a signal per change. */
        SD_BUS_PROPERTY("DroppedGpioLines", "t", property_get_dropped, 0, 0),
        SD_BUS_METHOD("Start", NULL, NULL, method_start, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Stop", NULL, NULL, method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SendSerial", SD_BUS_ARGS("ay", data), SD_BUS_NO_RESULT, method_send_serial,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetPin", SD_BUS_ARGS("u", pin, "b", value), SD_BUS_NO_RESULT,
                                method_set_pin, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPin", SD_BUS_ARGS("u", pin), SD_BUS_RESULT("b", value), method_get_pin,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPins", SD_BUS_NO_ARGS, SD_BUS_RESULT("ab", values), method_get_pins,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        /* An integer property of an I2C device on the header bus (CreateBoard's i2c option), e.g. a
         * tmp105's temperature in m°C: what the guest's driver reads from then on. */
        SD_BUS_METHOD_WITH_ARGS("SetSensor", SD_BUS_ARGS("y", address, "s", property, "v", value),
                                SD_BUS_NO_RESULT, method_set_sensor, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetRecentSerial", SD_BUS_NO_ARGS, SD_BUS_RESULT("ay", data),
                                method_get_recent_serial, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenSerial", SD_BUS_NO_ARGS, SD_BUS_RESULT("h", socket), method_open_serial,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Watch", NULL, NULL, method_watch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unwatch", NULL, NULL, method_unwatch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("SerialOutput", SD_BUS_ARGS("ay", data), 0),
        SD_BUS_SIGNAL_WITH_ARGS("GpioChanged", SD_BUS_ARGS("u", pin, "b", value, "t", timestamp_usec), 0),
        SD_BUS_VTABLE_END,
};

int board_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        Board *b;
        int r;

        r = sd_bus_path_decode(path, "/org/piemu/board", &name);
        if (r <= 0)
                return 0;
        b = manager_find_board(m, name);
        /* A board whose domain is still being defined is not on the bus yet. */
        if (!b || !b->announced)
                return 0;
        *found = b;
        return 1;
}

int board_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                          sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->n_boards + 1, sizeof(char *));
        size_t k = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_boards; i++) {
                if (!m->boards[i]->announced)
                        continue;
                l[k] = strdup(m->boards[i]->path);
                if (!l[k]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                k++;
        }
        *nodes = l;
        return 1;
}
