/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The replay main() of every fuzz target: with
 * -DFUZZ_REPLAY the target runs over the files and directories named on the command line, or over
 * its builtin_corpus[] (which the including file defines before including this) without
 * arguments, so that gcc builds and CI exercise the harness too. */

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr)                                                                                    \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #expr);      \
                        abort();                                                                            \
                }                                                                                           \
        } while (0)

#ifdef FUZZ_REPLAY
static int fuzz_run_file(const char *path) {
        _Alignas(16) static uint8_t buf[2 * 1024 * 1024];
        FILE *f;
        size_t n;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "%s: %m\n", path);
                return -errno;
        }
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        return 1;
}

static int fuzz_run_path(const char *path) {
        struct stat st;
        DIR *d;
        int r, total = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %m\n", path);
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return fuzz_run_file(path);

        d = opendir(path);
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                char sub[4096];

                if (de->d_name[0] == '.')
                        continue;
                if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
                        continue;
                r = fuzz_run_path(sub);
                if (r < 0) {
                        closedir(d);
                        return r;
                }
                total += r;
        }
        closedir(d);
        return total;
}

int main(int argc, char *argv[]) {
        int total = 0;

        if (argc < 2) {
                for (size_t i = 0; i < sizeof(builtin_corpus) / sizeof(builtin_corpus[0]); i++)
                        LLVMFuzzerTestOneInput((const uint8_t *)builtin_corpus[i],
                                               strlen(builtin_corpus[i]));
                printf("ran %zu built-in inputs\n", sizeof(builtin_corpus) / sizeof(builtin_corpus[0]));
                return 0;
        }

        for (int i = 1; i < argc; i++) {
                int r = fuzz_run_path(argv[i]);
                if (r < 0)
                        return EXIT_FAILURE;
                total += r;
        }
        printf("ran %d inputs\n", total);
        return total > 0 ? 0 : EXIT_FAILURE;
}
#endif
