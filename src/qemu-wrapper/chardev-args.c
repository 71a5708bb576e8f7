/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
        static const char suffix[] = ",nodelay=on";
        size_t need = 0;
        char *buf, *p;
        int n = 0;

        *storage = NULL;
        for (int i = 1; i + 1 < argc; i++)
                if (wants_nodelay(argv, i))
                        need += strlen(argv[i + 1]) + sizeof(suffix);
        if (need == 0)
                return 0;
        buf = malloc(need);
        if (!buf)
                return -ENOMEM;
        p = buf;
        for (int i = 1; i + 1 < argc; i++)
                if (wants_nodelay(argv, i)) {
                        char *v = p;
                        p = stpcpy(stpcpy(p, argv[i + 1]), suffix) + 1;
                        argv[++i] = v;
                        n++;
                }
        *storage = buf;
        return n;
}
