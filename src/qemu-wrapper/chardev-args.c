/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "args-suffix.h"
#include "chardev-args.h"

/* Whether the comma-separated option list `v` has an option named `key` (e.g. "nodelay="). */
static bool has_option(const char *v, const char *key) {
        size_t k = strlen(key);
        for (const char *p = v; p; p = strchr(p, ',')) {
                if (*p == ',')
                        p++;
                if (strncmp(p, key, k) == 0)
                        return true;
        }
        return false;
}

static bool wants_nodelay(char **argv, int i) {
        const char *v = argv[i + 1];
        return strcmp(argv[i], "-chardev") == 0 && strncmp(v, "socket,", 7) == 0 &&
               has_option(v, "tls-creds=") && !has_option(v, "nodelay=");
}

int chardev_args_nodelay(int argc, char **argv, char **storage) {
        return args_append_suffix(argc, argv, wants_nodelay, ",nodelay=on", storage);
}
