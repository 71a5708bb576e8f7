/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "args-suffix.h"
#include "accel-args.h"

static bool selects_tcg(const char *v) {
        return strncmp(v, "tcg", 3) == 0 && (v[3] == '\0' || v[3] == ',');
}

static bool names_thread(const char *v) {
        /* Options are comma separated; a value "thread=" can only start after a comma. */
        for (const char *p = strchr(v, ','); p; p = strchr(p + 1, ','))
                if (strncmp(p + 1, "thread=", 7) == 0)
                        return true;
        return false;
}

/* Whether argv[i], argv[i + 1] is an -accel that selects tcg without a thread mode. */
static bool wants_single_thread(char **argv, int i) {
        return (strcmp(argv[i], "-accel") == 0 || strcmp(argv[i], "--accel") == 0) &&
               selects_tcg(argv[i + 1]) && !names_thread(argv[i + 1]);
}

int accel_args_force_single_thread(int argc, char **argv, char **storage) {
        return args_append_suffix(argc, argv, wants_single_thread, ",thread=single", storage);
}
