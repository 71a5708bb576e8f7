/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* What both argument rewrites of the wrapper share: for every option argv[i] whose value
 * argv[i + 1] `wants` says yes to, the value becomes value + `suffix`, in one block stored in
 * *storage (NULL when nothing changed; freed by the caller, or never, since it execs). Returns the
 * number of values changed or -ENOMEM. */
int args_append_suffix(int argc, char **argv, bool (*wants)(char **argv, int i), const char *suffix,
                       char **storage);
