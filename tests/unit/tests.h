/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Failing checks print where and what, then abort the test program with exit 1. */
#define CHECK(expr)                                                                                         \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);            \
                        exit(1);                                                                            \
                }                                                                                           \
        } while (0)

#define CHECK_STREQ(a, b)                                                                                   \
        do {                                                                                                \
                const char *_a = (a), *_b = (b);                                                            \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                                    \
                        fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__, _a ? _a : "(null)",    \
                                _b ? _b : "(null)");                                                        \
                        exit(1);                                                                            \
                }                                                                                           \
        } while (0)

#define CHECK_CONTAINS(hay, needle)                                                                         \
        do {                                                                                                \
                if (!strstr((hay), (needle))) {                                                             \
                        fprintf(stderr, "%s:%d: '%s' not found in:\n%s\n", __FILE__, __LINE__, (needle),    \
                                (hay));                                                                     \
                        exit(1);                                                                            \
                }                                                                                           \
        } while (0)
