/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "args-suffix.h"

int args_append_suffix(int argc, char **argv, bool (*wants)(char **argv, int i), const char *suffix,
                       char **storage) {
        size_t need = 0, k = strlen(suffix);
        char *buf, *p;
        int n = 0;

        *storage = NULL;
        for (int i = 1; i + 1 < argc; i++)
                if (wants(argv, i))
                        need += strlen(argv[i + 1]) + k + 1;
        if (need == 0)
                return 0;
        /* One block for all rewritten values: the caller execs right after, nothing to track. */
        buf = malloc(need);
        if (!buf)
                return -ENOMEM;
        p = buf;
        for (int i = 1; i + 1 < argc; i++)
                if (wants(argv, i)) {
                        char *v = p;
                        p = stpcpy(stpcpy(p, argv[i + 1]), suffix) + 1;
                        argv[++i] = v;
                        n++;
                }
        *storage = buf;
        return n;
}
