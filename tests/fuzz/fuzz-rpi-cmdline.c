/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the cmdline.txt rewriter (src/image-extract/rpi-config.c).
 *
 * The input is a cmdline.txt. Whatever is accepted must come out as printable ASCII of bounded
 * length with piemu's console as the one console= before any "--", none of the dropped words
 * left there, and rewriting the result again must change nothing. Built with -DFUZZ_REPLAY this
 * file has a main() that replays files, directories or a small built-in corpus (fuzz-replay.h). */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpi-config.h"

#ifdef FUZZ_REPLAY
static const char *const builtin_corpus[] = {
        "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes "
        "rootwait "
        "quiet init=/usr/lib/raspberrypi-sys-mods/firstboot splash plymouth.ignore-serial-consoles\n",
        "root=/dev/x dyndbg=\"file a\tb +p\" \"console=ttyS0\" -- single console=x\r\nsecond",
        "\"unterminated quote console=x",
        "--",
        "",
};
#endif

#include "fuzz-replay.h"

/* Splits s at blanks outside double quotes, as the rewriter and the kernel do. */
static size_t next_token(const char *s, size_t *pos, const char **ret) {
        size_t i = *pos, start;
        bool quoted = false;

        while (s[i] == ' ')
                i++;
        start = i;
        while (s[i] && (quoted || s[i] != ' ')) {
                if (s[i] == '"')
                        quoted = !quoted;
                i++;
        }
        *pos = i;
        *ret = s + start;
        return i - start;
}

static bool tok_is(const char *t, size_t n, const char *w) {
        return n == strlen(w) && memcmp(t, w, n) == 0;
}

static bool tok_starts(const char *t, size_t n, const char *p) {
        if (n > 0 && t[0] == '"') {
                t++;
                n--;
        }
        return n >= strlen(p) && memcmp(t, p, strlen(p)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *out = NULL, *again = NULL;
        bool root = false, root2 = false, seen_console = false;
        size_t pos = 0, n, len;
        const char *t;
        int r;

        r = rpi_cmdline_rewrite((const char *)data, size, &out, &root);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -E2BIG);
        if (r < 0)
                return 0;

        len = strlen(out);
        FUZZ_CHECK(len > 0 && len <= RPI_CMDLINE_MAX);
        FUZZ_CHECK(out[0] != ' ' && out[len - 1] != ' ');
        for (size_t i = 0; i < len; i++)
                FUZZ_CHECK(out[i] >= 0x20 && out[i] < 0x7f);

        while ((n = next_token(out, &pos, &t)) > 0) {
                if (tok_is(t, n, "--"))
                        break;
                if (tok_is(t, n, RPI_CMDLINE_CONSOLE)) {
                        FUZZ_CHECK(!seen_console);
                        seen_console = true;
                        continue;
                }
                FUZZ_CHECK(!tok_starts(t, n, "console="));
                FUZZ_CHECK(!tok_is(t, n, "quiet") && !tok_is(t, n, "splash"));
                FUZZ_CHECK(!tok_starts(t, n, "plymouth."));
        }
        FUZZ_CHECK(seen_console);

        /* a fixed point */
        r = rpi_cmdline_rewrite(out, len, &again, &root2);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(strcmp(out, again) == 0);
        FUZZ_CHECK(root == root2);

        free(out);
        free(again);
        return 0;
}
