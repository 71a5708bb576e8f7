/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for dtb_patch() (src/image-extract/dtb-patch.c), which runs on device trees from
 * untrusted images.
 *
 * The input is a dtb. A rejection must say why; an accepted tree must come out sound
 * (fdt_check_full), with the revision and serial in /system, serial0 naming a PL011 without a
 * bluetooth child, and patching it once more must change nothing. libfdt itself is linked, not
 * instrumented. Built with -DFUZZ_REPLAY this file has a main() that replays files, directories or
 * a small built-in corpus (fuzz-replay.h); the seed dtbs are in corpus/fuzz-dtb-patch/. */

#include <errno.h>
#include <libfdt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtb-patch.h"

#ifdef FUZZ_REPLAY
static const char *const builtin_corpus[] = {
        "\xd0\x0d\xfe\xed",
        "",
};
#endif

#include "fuzz-replay.h"

#define REV UINT32_C(0xa02082)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        void *out = NULL, *again = NULL;
        size_t n = 0, n2 = 0;
        const char *why = NULL, *s0;
        const fdt32_t *rev;
        const fdt64_t *serial;
        fdt64_t v64;
        int r, off, len, child;

        /* dtparam=i2c_arm on, off or unset, by the input's size: all three paths get inputs. */
        r = dtb_patch(data, size, REV, DTB_PATCH_SERIAL, (int)(size % 3) - 1, &out, &n, &why);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EFBIG || r == -ENODEV || r == -ENOMEM);
        if (r < 0) {
                FUZZ_CHECK(why && *why);
                FUZZ_CHECK(!out);
                return 0;
        }

        FUZZ_CHECK(fdt_check_full(out, n) == 0);
        off = fdt_path_offset(out, "/system");
        FUZZ_CHECK(off >= 0);
        rev = fdt_getprop(out, off, "linux,revision", &len);
        FUZZ_CHECK(rev && len == 4 && fdt32_to_cpu(*rev) == REV);
        /* properties are only 4-byte aligned */
        serial = fdt_getprop(out, off, "linux,serial", &len);
        FUZZ_CHECK(serial && len == 8);
        memcpy(&v64, serial, sizeof(v64));
        FUZZ_CHECK(fdt64_to_cpu(v64) == DTB_PATCH_SERIAL);

        off = fdt_path_offset(out, "/aliases");
        FUZZ_CHECK(off >= 0);
        s0 = fdt_getprop(out, off, "serial0", &len);
        FUZZ_CHECK(s0 && len > 0 && s0[len - 1] == '\0');
        off = fdt_path_offset(out, s0);
        FUZZ_CHECK(off >= 0);
        FUZZ_CHECK(fdt_node_check_compatible(out, off, "arm,pl011") == 0);
        fdt_for_each_subnode(child, out, off) {
                const char *name = fdt_get_name(out, child, &len);
                FUZZ_CHECK(name);
                FUZZ_CHECK(!(strncmp(name, "bluetooth", 9) == 0 && (name[9] == '\0' || name[9] == '@')));
        }

        r = dtb_patch(out, n, REV, DTB_PATCH_SERIAL, -1, &again, &n2, &why);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(n2 == n && memcmp(out, again, n) == 0);

        free(out);
        free(again);
        return 0;
}
