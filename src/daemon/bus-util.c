/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-util.h"

#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "piemu-errors.h"

bool bus_text_is_safe(const char *s, size_t max) {
        size_t n = 0;
        for (const char *p = s; *p; p++, n++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || n >= max)
                        return false;
        return true;
}

int bus_read_options(sd_bus_message *msg, const BusOption *specs, size_t n_specs, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const BusOption *spec = NULL;
                const char *key, *sig = NULL;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(msg, NULL, &sig);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_specs; i++)
                        if (streq(key, specs[i].key))
                                spec = &specs[i];
                if (!spec) {
                        char known[256] = "";
                        for (size_t i = 0; i < n_specs; i++)
                                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s %s",
                                         i ? ", " : "", specs[i].key, specs[i].type);
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Unknown option '%s' (known: %s).", key, known);
                }
                if (!streq_ptr(sig, spec->type))
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option '%s' has the wrong type '%s' (expected %s).", key,
                                                 strempty(sig), spec->type);
                if (streq(spec->type, "as")) {
                        char ***l = spec->ret;
                        strv_free(*l); /* a key given twice: the last one counts, as for the others */
                        *l = NULL;
                        r = sd_bus_message_enter_container(msg, 'v', "as");
                        if (r >= 0)
                                r = sd_bus_message_read_strv(msg, l);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(msg);
                } else
                        r = sd_bus_message_read(msg, "v", spec->type, spec->ret);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}
