/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board-dbus.h"
#include "board.h"
#include "bus-util.h"
#include "config.h"
#include "i2c-devices.h"
#include "image-dbus.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "manager-wires.h"
#include "peers.h"
#include "names.h"
#include "pi-models.h"
#include "piemu-errors.h"
#include "polkit.h"

#define CMDLINE_MAX 1024

int manager_verify(Manager *m, sd_bus_message *msg, const char *action, const char *name, const char *verb,
                   sd_bus_error *error) {
        const char *details[] = {"board", name, "verb", verb, NULL};
        if (streq(action, "org.piemu.manage-images"))
                details[0] = "image";
        return polkit_verify_async(msg, action, details, m->polkit, error);
}

/* CreateBoard's "i2c": entries "DEVICE@ADDRESS" of models piemu offers, one device per address. */
static int read_i2c_option(char **l, BoardConfig *c, sd_bus_error *error) {
        for (char **spec = l; spec && *spec; spec++) {
                const I2cModel *model;
                uint8_t address;
                int r;

                r = i2c_spec_parse(*spec, &model, &address);
                if (r == -ENOENT)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': no device '%.*s' (piemu offers: %s).",
                                                 (int)strcspn(*spec, "@"), *spec, i2c_model_names());
                if (r < 0)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': '%s' is not DEVICE@ADDRESS with an address "
                                                 "from 0x%02x to 0x%02x (e.g. tmp105@0x48).",
                                                 *spec, I2C_ADDRESS_MIN, I2C_ADDRESS_MAX);
                r = board_config_add_i2c(c, model->name, address);
                if (r == -EEXIST)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': two devices at address 0x%02x.", address);
                if (r == -E2BIG)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': at most %d devices.", I2C_DEVICES_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int method_create_board(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(image_freep) Image *img = NULL;
        Manager *m = userdata;
        const char *name, *image;
        BoardConfig c = {};
        Board *b = NULL;
        uid_t uid;
        int r;

        r = sd_bus_message_read(msg, "ss", &name, &image);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_INVALID_NAME,
                        "Invalid board name '%s': use 1-63 characters [A-Za-z0-9_.-], starting "
                        "with a letter or digit.",
                        name);
        if (!isempty(image) && !piemu_name_is_valid(image))
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_INVALID_NAME,
                        "Invalid image name '%s': images are named from the catalog, not by path.", image);
        const char *cmdline = NULL, *model = NULL;
        const PiModel *pi_model;
        _cleanup_strv_free_ char **i2c = NULL;
        _cleanup_(board_config_done) BoardConfig i2c_config = {};
        int persistent = false;
        const BusOption specs[] = {
                {"persistent", "b", &persistent},
                {"cmdline", "s", &cmdline},
                {"model", "s", &model},
                {"i2c", "as", &i2c},
        };
        r = bus_read_options(msg, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        r = read_i2c_option(i2c, &i2c_config, error);
        if (r < 0)
                return r;
        if (cmdline && !bus_text_is_safe(cmdline, CMDLINE_MAX))
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_INVALID_OPTION,
                        "Option 'cmdline' must be printable ASCII of at most %d characters.", CMDLINE_MAX);
        pi_model = pi_model_find(model ?: PIEMU_DEFAULT_MODEL);
        if (!pi_model)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "Unknown model '%s' (models: %s).", model, pi_model_names());
        /* "" is the model's own default image. Whether the image boots on the model is board_define's
         * question, which reads the image anyway. */
        if (isempty(image))
                image = pi_model->default_image;

        r = manager_verify(m, msg, "org.piemu.create-board", name, "create", error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        if (manager_find_board(m, name))
                return sd_bus_error_setf(error, PIEMU_ERROR_BOARD_EXISTS, "Board %s already exists.", name);
        /* Known by now (polkit's check asked for it); if not, asked without blocking and the call
         * comes back. */
        r = polkit_registry_sender_uid_async(m->polkit, msg, &uid);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        c = (BoardConfig){
                .name = (char *)name,
                .image = (char *)image,
                .model = (char *)pi_model->name,
                .cmdline = (char *)cmdline,
                .owner = uid,
                .persistent = persistent,
                .i2c = i2c_config.i2c, /* copied by board_new */
                .n_i2c = i2c_config.n_i2c,
        };
        r = board_new(&m->host, &c, &b);
        if (r < 0)
                return r;
        r = manager_add_board(m, b);
        if (r < 0) {
                board_unref(b);
                return r;
        }
        /* Hidden from the bus (and from BoardAdded) until libvirt has the domain: not `announced`. */
        r = board_check_verb(b, BOARD_VERB_DEFINE, error);
        if (r >= 0) {
                r = image_load(m->images_dir, b->config.image, &img);
                if (r < 0)
                        r = image_bus_error(error, b->config.image, r);
        }
        if (r >= 0)
                r = board_define(b, img, msg, error);
        if (r < 0) {
                manager_remove_board(m, b);
                return r;
        }
        return 1;
}

static int find_board_or_fail(Manager *m, sd_bus_message *msg, Board **ret, sd_bus_error *error) {
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid board name '%s'.", name);
        Board *b = manager_find_board(m, name);
        if (!b || !b->announced)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_BOARD, "No board named %s.", name);
        *ret = b;
        return 0;
}

static int method_delete_board(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        Board *b;
        int r;

        r = find_board_or_fail(m, msg, &b, error);
        if (r < 0)
                return r;
        r = board_verify(b, msg, "delete", error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        r = board_delete(b, msg, error);
        return r < 0 ? r : 1;
}

static int method_get_board(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        Board *b;
        int r;

        /* Board names and state are public, as in `machinectl list`. */
        r = find_board_or_fail(m, msg, &b, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", b->path);
}

static int method_list_boards(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssuo)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_boards; i++) {
                Board *b = m->boards[i];
                if (!b->announced)
                        continue;
                r = sd_bus_message_append(reply, "(ssuo)", b->config.name, board_state_to_string(b->state),
                                          (uint32_t)b->config.owner, b->path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PIEMU_VERSION);
}

/* The one model table (src/shared/pi-models.c), in its order (the default model first): name,
 * description, default image, board revision, RAM in MiB, CPUs. piemuctl models, its completion and
 * the Cockpit page read it here rather than keeping lists of their own. */
static int property_get_models(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        size_t n;
        const PiModel *models = pi_models(&n);
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sssuuu)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(sssuuu)", models[i].name, models[i].title,
                                          models[i].default_image, models[i].revision, models[i].memory_mib,
                                          models[i].vcpus);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Models", "a(sssuuu)", property_get_models, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("CreateBoard", SD_BUS_ARGS("s", name, "s", image, "a{sv}", options),
                                SD_BUS_RESULT("o", board), method_create_board, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeleteBoard", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_delete_board,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetBoard", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", board),
                                method_get_board, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListBoards", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssuo)", boards),
                                method_list_boards, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListImages", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ss)", images),
                                method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "ImportImage",
                SD_BUS_ARGS("s", name, "h", kernel, "h", dtb, "h", sd_image, "a{sv}", options),
                SD_BUS_NO_RESULT, method_import_image, SD_BUS_VTABLE_UNPRIVILEGED),
        /* One Raspberry Pi OS-style disk image (.img or .img.xz): kernel, dtb, initramfs and
         * cmdline come from its boot partition. */
        SD_BUS_METHOD_WITH_ARGS("ImportImageFile", SD_BUS_ARGS("s", name, "h", image, "a{sv}", options),
                                SD_BUS_NO_RESULT, method_import_image_file, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveImage", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove_image,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        /* Wires between boards' pins: piemud drives to_pin whenever from_pin changes. */
        SD_BUS_METHOD_WITH_ARGS("AddWire",
                                SD_BUS_ARGS("s", from_board, "u", from_pin, "s", to_board, "u", to_pin),
                                SD_BUS_RESULT("s", id), manager_method_add_wire, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveWire", SD_BUS_ARGS("s", id), SD_BUS_NO_RESULT,
                                manager_method_remove_wire, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListWires", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssusu)", wires),
                                manager_method_list_wires, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("BoardAdded", SD_BUS_ARGS("s", name, "o", board), 0),
        SD_BUS_SIGNAL_WITH_ARGS("BoardRemoved", SD_BUS_ARGS("s", name, "o", board), 0),
        SD_BUS_VTABLE_END,
};

void manager_emit_board_added(Manager *m, Board *b) {
        if (!m->bus)
                return;
        (void)sd_bus_emit_object_added(m->bus, b->path);
        (void)sd_bus_emit_signal(m->bus, "/org/piemu", "org.piemu.Manager", "BoardAdded", "so",
                                 b->config.name, b->path);
}

void manager_emit_board_removed(Manager *m, Board *b) {
        if (!m->bus)
                return;
        /* Sent while the object still answers: InterfacesRemoved lists its interfaces. */
        (void)sd_bus_emit_object_removed(m->bus, b->path);
        (void)sd_bus_emit_signal(m->bus, "/org/piemu", "org.piemu.Manager", "BoardRemoved", "so",
                                 b->config.name, b->path);
}

static void on_peer_gone(const char *name, void *userdata) {
        Manager *m = userdata;

        polkit_registry_forget(m->polkit, name);
        for (size_t i = 0; i < m->n_boards; i++)
                watchers_forget(&m->boards[i]->watchers, name);
}

static int on_bus_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        /* Off the bus piemud can do nothing for anyone, and D-Bus activation may already be starting
         * another one: leave at once. Boards keep running; the next piemud adopts them. */
        log_error("Lost the connection to the bus; exiting. Running boards keep running.");
        (void)sd_event_exit(m->host.event, -ECONNRESET);
        return 0;
}

/* Property getters cannot wait for the bus, yet two Board properties are shown only to the board's
 * owner and root (board-dbus.c). So before a property read reaches them, make sure the caller's
 * uid is remembered: if not, ask the bus without blocking, hold the call back (sd-bus puts it on the
 * read queue again when the answer is in, uid-cache.c) and let it through then. */
static int on_bus_message(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *path;
        uid_t uid;
        int r;

        if (!sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "Get") &&
            !sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "GetAll") &&
            !sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"))
                return 0;
        path = sd_bus_message_get_path(msg);
        if (!path || !(streq(path, "/org/piemu") || startswith(path, "/org/piemu/board/")))
                return 0;
        r = polkit_registry_sender_uid_async(m->polkit, msg, &uid);
        /* 0: held back until the bus answers. An error: let it through; the getters then show the
         * private properties to nobody. */
        return r == 0 ? 1 : 0;
}

int manager_connect_bus(Manager *m, bool user_bus) {
        int r;

        r = user_bus ? sd_bus_default_user(&m->bus) : sd_bus_default_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the %s bus: %m", user_bus ? "user" : "system");
        r = sd_bus_add_filter(m->bus, NULL, on_bus_message, m);
        if (r < 0)
                return log_error_errno(r, "Cannot install the bus filter: %m");
        r = sd_bus_add_object_vtable(m->bus, NULL, "/org/piemu", "org.piemu.Manager", manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Cannot register the manager object: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, "/org/piemu/board", "org.piemu.Board", board_vtable,
                                       board_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Cannot register board objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, "/org/piemu/board", board_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Cannot register the board enumerator: %m");
        r = sd_bus_add_object_manager(m->bus, NULL, "/org/piemu");
        if (r < 0)
                return log_error_errno(r, "Cannot register the object manager: %m");
        r = sd_bus_attach_event(m->bus, m->host.event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the bus to the event loop: %m");
        /* A local match: sd-bus synthesizes it when the connection goes, nothing is asked of the bus. */
        r = sd_bus_match_signal(m->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_bus_disconnected, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the bus connection: %m");
        r = peers_attach(m->peers, m->bus);
        if (r >= 0)
                r = peers_add_handler(m->peers, on_peer_gone, m);
        if (r < 0)
                return log_error_errno(r, "Cannot subscribe to callers leaving the bus: %m");
        r = sd_bus_request_name(m->bus, "org.piemu", 0);
        if (r < 0)
                return log_error_errno(
                        r, "Cannot own the name org.piemu (is another piemud running, and does the "
                           "bus policy allow this user?): %m");
        return 0;
}
