/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-bus.h>

/* Small readers shared by the bus faces (manager-dbus.c, image-dbus.c). */

/* Printable ASCII of fewer than `max` characters: what a description or a kernel command line from
 * a caller may be. */
bool bus_text_is_safe(const char *s, size_t max);

/* One known a{sv} option: its key, its D-Bus type ("b", "s", "h" or "as") and where it goes (for "as",
 * a char*** the caller frees with strv_free). */
typedef struct BusOption {
        const char *key;
        const char *type;
        void *ret;
} BusOption;

/* Reads an a{sv} of options: unknown keys and wrong types are InvalidOption errors that list what is
 * accepted, so a typo never silently does nothing. */
int bus_read_options(sd_bus_message *msg, const BusOption *specs, size_t n_specs, sd_bus_error *error);
