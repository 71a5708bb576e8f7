/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "error-table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DBUS_ERROR(x) "org.freedesktop.DBus.Error." x

/* piemuctl's texts are the ones it has always printed (tests/integration/test_ctl*.py match them);
 * the sentences are the ones the Cockpit page has always shown. */
static const PiemuError errors[] = {
        {PIEMU_ERROR_INVALID_NAME, CTL_EXIT_USAGE,
         "That name is not allowed: use letters, digits, '.', '_' or '-', starting with a letter or digit.",
         false, "Cannot {action}: {message}", NULL},
        {PIEMU_ERROR_NO_SUCH_BOARD, CTL_EXIT_NOT_FOUND, "That board does not exist (any more).", false,
         "No board named \"{board}\"{on_host}.",
         "'piemuctl list' shows the boards; 'piemuctl create {board:NAME}' makes a new one."},
        {PIEMU_ERROR_BOARD_EXISTS, CTL_EXIT_STATE, "A board with that name already exists.", false,
         "A board named \"{board}\" already exists.",
         "Pick another name, or remove it first with 'piemuctl delete {board}'."},
        {PIEMU_ERROR_NO_SUCH_IMAGE, CTL_EXIT_NOT_FOUND, "That image is not in the catalog.", false,
         "No image named \"{image:?}\"{on_host} ({message}).",
         "'piemuctl images' shows the images; 'piemuctl import-image' adds one."},
        {PIEMU_ERROR_NOT_RUNNING, CTL_EXIT_STATE, "The board is not running.", false,
         "Board \"{board}\" is not running.", "Start it with 'piemuctl start {board}'."},
        {PIEMU_ERROR_ALREADY_RUNNING, CTL_EXIT_STATE, "The board is already running.", false,
         "Board \"{board}\" is already running.", "Use 'piemuctl restart {board}' to reboot it."},
        {PIEMU_ERROR_INVALID_PIN, CTL_EXIT_USAGE, "That pin number does not exist on this board.", false,
         "Cannot {action}: {message}", NULL},
        {PIEMU_ERROR_INVALID_OPTION, CTL_EXIT_USAGE, "An option of the request was not accepted.", true,
         "Cannot {action}: {message}", NULL},
        /* Also PIEMU_ERROR_IMAGE_IN_USE. */
        {PIEMU_ERROR_BUSY, CTL_EXIT_STATE, "The board or image is busy; try again in a moment.", false,
         "Cannot {action} right now: {message}", "Another operation is in progress; try again in a moment."},
        {PIEMU_ERROR_UNAVAILABLE, CTL_EXIT_FAILURE,
         "The virtualization service is reconnecting; try again in a few seconds.", false,
         "Failed to {action}: {message}",
         "piemud cannot reach libvirtd right now and keeps trying. Is libvirtd (or virtqemud) running? "
         "('systemctl start libvirtd')"},
        {PIEMU_ERROR_FAILED, CTL_EXIT_FAILURE, "The operation failed.", true,
         "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_IMAGE_NOT_MBR, CTL_EXIT_FAILURE,
         "The file is not a disk image with an MBR partition table.", true, "Failed to {action}: {message}",
         NULL},
        {PIEMU_ERROR_IMAGE_NO_BOOT_PARTITION, CTL_EXIT_FAILURE, "The disk image has no FAT boot partition.",
         true, "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_IMAGE_NO_KERNEL, CTL_EXIT_FAILURE, "The disk image's boot partition has no kernel.",
         true, "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_IMAGE_NO_DTB, CTL_EXIT_FAILURE,
         "The disk image's boot partition has no device tree for this board.", true,
         "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_IMAGE_TRUNCATED, CTL_EXIT_FAILURE, "The disk image is truncated.", true,
         "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_IMAGE_TOO_LARGE, CTL_EXIT_FAILURE, "The disk image is too large.", true,
         "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_IMAGE_INVALID, CTL_EXIT_FAILURE, "The disk image is not valid.", true,
         "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_NO_SUCH_WIRE, CTL_EXIT_NOT_FOUND, "That wire does not exist (any more).", false,
         "Cannot {action}: {message}", NULL},
        {PIEMU_ERROR_WIRE_EXISTS, CTL_EXIT_STATE, "That wire exists already.", false,
         "Cannot {action}: {message}", "'piemuctl wires' shows the wires there are."},
        {PIEMU_ERROR_PIN_DRIVEN, CTL_EXIT_STATE, "That pin is driven by a wire from another board.", false,
         "Cannot {action}: {message}", "'piemuctl wires' shows the wires there are."},
        {PIEMU_ERROR_WIRE_CYCLE, CTL_EXIT_STATE, "That wire would close a loop between boards.", false,
         "Cannot {action}: {message}", "'piemuctl wires' shows the wires there are."},
        {PIEMU_ERROR_IMAGE_MODEL, CTL_EXIT_FAILURE, "That image does not boot on this model.", true,
         "Failed to {action}: {message}", NULL},
        {PIEMU_ERROR_NO_SUCH_SENSOR, CTL_EXIT_NOT_FOUND, "The board has no sensor at that address.", false,
         "Cannot {action}: {message}", NULL},

        /* The bus's and polkit's. piemuctl words the first ones itself: what to say depends on the
         * bus it used, -H, and whether it could ask for a password. */
        {DBUS_ERROR("ServiceUnknown"), CTL_EXIT_NO_DAEMON,
         "The piemu service (piemud) is not available on this host.", false, NULL, NULL},
        {DBUS_ERROR("NameHasNoOwner"), CTL_EXIT_NO_DAEMON,
         "The piemu service (piemud) is not available on this host.", false, NULL, NULL},
        {DBUS_ERROR("NoReply"), CTL_EXIT_TIMEOUT, "The piemu service did not answer in time.", false, NULL,
         NULL},
        {DBUS_ERROR("Timeout"), CTL_EXIT_TIMEOUT, "The piemu service did not answer in time.", false, NULL,
         NULL},
        {DBUS_ERROR("TimedOut"), CTL_EXIT_TIMEOUT, "The piemu service did not answer in time.", false, NULL,
         NULL},
        {DBUS_ERROR("Disconnected"), CTL_EXIT_NO_DAEMON, "The connection to the piemu service was lost.",
         false, NULL, NULL},
        {DBUS_ERROR("AccessDenied"), CTL_EXIT_ACCESS, "You are not allowed to do that.", false, NULL, NULL},
        {DBUS_ERROR("InteractiveAuthorizationRequired"), CTL_EXIT_ACCESS,
         "You are not allowed to do that without authenticating.", false, NULL, NULL},
        {DBUS_ERROR("InvalidArgs"), CTL_EXIT_FAILURE, "The request was not accepted (invalid arguments).",
         false, "Failed to {action}: {message}", NULL},
        {DBUS_ERROR("UnknownMethod"), CTL_EXIT_FAILURE,
         "The piemu service does not understand the request (it may be a different version).", true,
         "piemud does not understand the request to {action}: {message}",
         "piemuctl {version} and the running piemud are probably different versions."},
        {DBUS_ERROR("UnknownInterface"), CTL_EXIT_FAILURE,
         "The piemu service does not understand the request (it may be a different version).", true,
         "piemud does not understand the request to {action}: {message}",
         "piemuctl {version} and the running piemud are probably different versions."},
        {DBUS_ERROR("UnknownProperty"), CTL_EXIT_FAILURE,
         "The piemu service does not understand the request (it may be a different version).", true,
         "piemud does not understand the request to {action}: {message}",
         "piemuctl {version} and the running piemud are probably different versions."},
        /* piemuctl reads this one as NoSuchBoard when it asked about a board. */
        {DBUS_ERROR("UnknownObject"), CTL_EXIT_FAILURE,
         "The piemu service does not know that object (it may be a different version).", true,
         "piemud does not understand the request to {action}: {message}",
         "piemuctl {version} and the running piemud are probably different versions."},
};

const PiemuError *piemu_errors(size_t *ret_n) {
        *ret_n = sizeof errors / sizeof errors[0];
        return errors;
}

const PiemuError *piemu_error_find(const char *name) {
        for (size_t i = 0; name && i < sizeof errors / sizeof errors[0]; i++)
                if (strcmp(errors[i].name, name) == 0)
                        return &errors[i];
        return NULL;
}

static const char *arg_value(const PiemuErrorArgs *a, const char *key, size_t len) {
        static const struct {
                const char *key;
                size_t offset;
        } keys[] = {
                {"action", offsetof(PiemuErrorArgs, action)},
                {"board", offsetof(PiemuErrorArgs, board)},
                {"image", offsetof(PiemuErrorArgs, image)},
                {"message", offsetof(PiemuErrorArgs, message)},
                {"on_host", offsetof(PiemuErrorArgs, on_host)},
                {"version", offsetof(PiemuErrorArgs, version)},
        };

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (strlen(keys[i].key) == len && memcmp(keys[i].key, key, len) == 0) {
                        const char *v = *(const char *const *)((const char *)a + keys[i].offset);
                        return v ? v : "";
                }
        return NULL;
}

int piemu_error_expand(const char *template, const PiemuErrorArgs *args, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (const char *p = template; *p && r == 0; p++) {
                const char *end, *colon, *v;

                if (*p != '{') {
                        fputc(*p, f);
                        continue;
                }
                end = strchr(p, '}');
                if (!end) {
                        r = -EINVAL;
                        break;
                }
                colon = memchr(p, ':', (size_t)(end - p));
                v = arg_value(args, p + 1, (size_t)((colon ?: end) - p - 1));
                if (!v) {
                        r = -EINVAL;
                        break;
                }
                if (!*v && colon)
                        fwrite(colon + 1, 1, (size_t)(end - colon - 1), f);
                else
                        fputs(v, f);
                p = end;
        }
        if (fclose(f) != 0 && r == 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}
