/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "names.h"

#include <string.h>

static bool is_alnum_ascii(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool piemu_name_is_valid(const char *name) {
        size_t n;

        if (!name || !is_alnum_ascii(name[0]))
                return false;
        n = strlen(name);
        if (n > PIEMU_NAME_MAX)
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alnum_ascii(name[i]) && !strchr("_.-", name[i]))
                        return false;
        return true;
}
