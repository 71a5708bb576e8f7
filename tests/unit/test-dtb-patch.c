/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dtb_patch() on the test trees built from tests/unit/data/ (the .dts files) (paths on the command line), on
 * whatever real Raspberry Pi dtbs this machine has (piemu's default image, Debian's kernel
 * packages), and on broken and hostile trees; every result is read back with libfdt. */

#include <glob.h>
#include <libfdt.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "dtb-patch.h"
#include "macro.h"
#include "tests.h"

#define REV UINT32_C(0xa02082)

static int read_file(const char *path, void **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = NULL;
        void *buf;
        long n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0)
                return -EIO;
        buf = malloc((size_t)n + 1);
        CHECK(buf);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_size = (size_t)n;
        return 0;
}

static const char *alias(const void *fdt, const char *name) {
        int off = fdt_path_offset(fdt, "/aliases"), len;
        const char *v;

        if (off < 0)
                return NULL;
        v = fdt_getprop(fdt, off, name, &len);
        if (!v || len <= 0 || v[len - 1] != '\0')
                return NULL;
        return v;
}

static bool has_bluetooth_child(const void *fdt, int node) {
        int child, len;

        fdt_for_each_subnode(child, fdt, node) {
                const char *name = fdt_get_name(fdt, child, &len);
                if (name && strncmp(name, "bluetooth", 9) == 0 && (name[9] == '\0' || name[9] == '@'))
                        return true;
        }
        return false;
}

/* What must hold for any tree dtb_patch() accepted. */
static void check_patched(const void *fdt, size_t n, uint32_t rev) {
        const fdt32_t *r32;
        const fdt64_t *r64;
        fdt64_t v64;
        const char *s0, *s1;
        int sys, len, pl011, mini;

        CHECK(fdt_check_full(fdt, n) == 0);
        CHECK(fdt_totalsize(fdt) == n);

        sys = fdt_path_offset(fdt, "/system");
        CHECK(sys >= 0);
        r32 = fdt_getprop(fdt, sys, "linux,revision", &len);
        CHECK(r32 && len == 4 && fdt32_to_cpu(*r32) == rev);
        /* properties are only 4-byte aligned */
        r64 = fdt_getprop(fdt, sys, "linux,serial", &len);
        CHECK(r64 && len == 8);
        memcpy(&v64, r64, sizeof(v64));
        CHECK(fdt64_to_cpu(v64) == DTB_PATCH_SERIAL);

        s0 = alias(fdt, "serial0");
        CHECK(s0);
        pl011 = fdt_path_offset(fdt, s0);
        CHECK(pl011 >= 0);
        CHECK(fdt_node_check_compatible(fdt, pl011, "arm,pl011") == 0);
        CHECK(!has_bluetooth_child(fdt, pl011));
        {
                const char *status = fdt_getprop(fdt, pl011, "status", NULL);
                CHECK(!status || streq(status, "okay") || streq(status, "ok"));
        }

        mini = fdt_node_offset_by_compatible(fdt, -1, "brcm,bcm2835-aux-uart");
        s1 = alias(fdt, "serial1");
        if (mini >= 0) {
                CHECK(s1);
                CHECK(fdt_path_offset(fdt, s1) == mini);
        } else
                CHECK(!s1 || !streq(s1, s0));
}

/* Patches, checks, and checks that a second run changes nothing. */
static void *patch_ok(const void *in, size_t n, uint32_t rev, size_t *ret_n) {
        void *out = NULL, *again = NULL;
        size_t out_n = 0, again_n = 0;
        const char *why = NULL;
        int r;

        r = dtb_patch(in, n, rev, DTB_PATCH_SERIAL, -1, &out, &out_n, &why);
        if (r < 0)
                fprintf(stderr, "dtb_patch: %s (%s)\n", strerror(-r), strempty(why));
        CHECK(r == 0);
        check_patched(out, out_n, rev);

        CHECK(dtb_patch(out, out_n, rev, DTB_PATCH_SERIAL, -1, &again, &again_n, NULL) == 0);
        CHECK(again_n == out_n && memcmp(again, out, out_n) == 0);
        free(again);
        *ret_n = out_n;
        return out;
}

static const char *status_of(const void *fdt, const char *path) {
        int off = fdt_path_offset(fdt, path);
        return off >= 0 ? fdt_getprop(fdt, off, "status", NULL) : NULL;
}

/* dtparam=i2c_arm: on and off switch the header's bus, -1 leaves it; found through __overrides__
 * (Raspberry Pi OS), /aliases/i2c1 (rpi4-uarts) or, with the alias removed, the BSC1 node's name
 * (Debian's trees); a tree with none of them is refused. */
static void test_i2c_arm(const char *raspios, const char *upstream, const char *pl011_only) {
        const char *paths[] = {raspios, upstream};
        const char *why = NULL;

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_free_ void *in = NULL;
                size_t n;

                CHECK(read_file(paths[i], &in, &n) == 0);
                for (int want = -1; want <= 1; want++) {
                        _cleanup_free_ void *out = NULL, *again = NULL;
                        size_t out_n = 0, again_n = 0;

                        CHECK(dtb_patch(in, n, REV, DTB_PATCH_SERIAL, want, &out, &out_n, &why) == 0);
                        check_patched(out, out_n, REV);
                        CHECK_STREQ(status_of(out, "/soc/i2c@7e804000"), want == 1 ? "okay" : "disabled");
                        /* the same again changes nothing */
                        CHECK(dtb_patch(out, out_n, REV, DTB_PATCH_SERIAL, want, &again, &again_n, NULL) ==
                              0);
                        CHECK(again_n == out_n && memcmp(again, out, out_n) == 0);
                }
        }
        {
                _cleanup_free_ void *in = NULL, *big = NULL, *out = NULL;
                size_t n, out_n = 0;
                int a;

                CHECK(read_file(upstream, &in, &n) == 0);
                big = malloc(n);
                CHECK(big && fdt_open_into(in, big, (int)n) == 0);
                a = fdt_path_offset(big, "/aliases");
                CHECK(a >= 0 && fdt_delprop(big, a, "i2c1") == 0);
                CHECK(dtb_patch(big, fdt_totalsize(big), REV, DTB_PATCH_SERIAL, 1, &out, &out_n, &why) == 0);
                CHECK_STREQ(status_of(out, "/soc/i2c@7e804000"), "okay");
        }
        {
                _cleanup_free_ void *in = NULL, *out = NULL;
                size_t n, out_n = 0;

                CHECK(read_file(pl011_only, &in, &n) == 0);
                CHECK(dtb_patch(in, n, REV, DTB_PATCH_SERIAL, 1, &out, &out_n, &why) == -ENODEV);
                CHECK(!out && why && strstr(why, "i2c_arm"));
                CHECK(dtb_patch(in, n, REV, DTB_PATCH_SERIAL, -1, &out, &out_n, NULL) == 0);
        }
}

static void test_raspios(const char *path) {
        _cleanup_free_ void *in = NULL, *out = NULL;
        size_t n, out_n;
        int off;

        CHECK(read_file(path, &in, &n) == 0);
        out = patch_ok(in, n, REV, &out_n);
        CHECK_STREQ(alias(out, "serial0"), "/soc/serial@7e201000");
        CHECK_STREQ(alias(out, "serial1"), "/soc/serial@7e215040");
        CHECK_STREQ(alias(out, "uart0"), "/soc/serial@7e201000");
        CHECK(fdt_path_offset(out, "/soc/serial@7e201000/bluetooth") == -FDT_ERR_NOTFOUND);
        CHECK(fdt_path_offset(out, "/soc/gpio@7e200000") >= 0);
        CHECK(fdt_path_offset(out, "/soc/serial@7e215040") >= 0);
        CHECK_STREQ(fdt_getprop(out, 0, "model", NULL), "Raspberry Pi 3 Model B");
        off = fdt_path_offset(out, "/chosen");
        CHECK(off >= 0 && fdt_getprop(out, off, "stdout-path", NULL));

        /* Another model's revision, and an unaligned input buffer. */
        {
                _cleanup_free_ uint8_t *shifted = malloc(n + 1);
                _cleanup_free_ void *o2 = NULL;
                size_t n2;

                CHECK(shifted);
                memcpy(shifted + 1, in, n);
                o2 = patch_ok(shifted + 1, n, 0x9020e0, &n2);
        }

        /* A uart0 alias without its terminating NUL: ignored, the PL011 is found by compatible. */
        {
                _cleanup_free_ void *big = malloc(n + 4096), *o3 = NULL;
                size_t n3;
                int a;

                CHECK(big);
                CHECK(fdt_open_into(in, big, (int)(n + 4096)) == 0);
                a = fdt_path_offset(big, "/aliases");
                CHECK(a >= 0);
                CHECK(fdt_setprop(big, a, "uart0", "/soc/serial@7e201000", 20) == 0);
                CHECK(fdt_setprop(big, a, "serial1", "/soc/serial@7e2", 15) == 0);
                CHECK(fdt_pack(big) == 0);
                o3 = patch_ok(big, fdt_totalsize(big), REV, &n3);
                CHECK_STREQ(alias(o3, "serial0"), "/soc/serial@7e201000");
        }

        /* Duplicate names, which libfdt's own check lets through: a second serial1 property in
         * /aliases (the kernel would see one, dtb_patch() would change the other), and two
         * siblings of the same name (the path of one would lead to the other). */
        {
                _cleanup_free_ void *dup = malloc(n);
                const char *why = NULL;
                void *o = NULL;
                size_t on;
                int a, prop, s1off = -1, done = 0;

                CHECK(dup);
                memcpy(dup, in, n);
                a = fdt_path_offset(dup, "/aliases");
                fdt_for_each_property_offset(prop, dup, a) {
                        const char *name;
                        fdt_getprop_by_offset(dup, prop, &name, NULL);
                        if (streq(name, "serial1"))
                                s1off = (int)fdt32_to_cpu(
                                        ((const struct fdt_property *)fdt_offset_ptr(dup, prop, 12))
                                                ->nameoff);
                }
                CHECK(s1off >= 0);
                fdt_for_each_property_offset(prop, dup, a) {
                        const char *name;
                        fdt_getprop_by_offset(dup, prop, &name, NULL);
                        if (streq(name, "serial0")) {
                                struct fdt_property *p =
                                        (struct fdt_property *)fdt_offset_ptr(dup, prop, 12);
                                p->nameoff = cpu_to_fdt32((uint32_t)s1off);
                                done++;
                        }
                }
                CHECK(done == 1);
                CHECK(dtb_patch(dup, n, REV, DTB_PATCH_SERIAL, -1, &o, &on, &why) == -EBADMSG);
                CHECK_CONTAINS(why, "duplicate");

                memcpy(dup, in, n);
                CHECK(fdt_set_name(dup, fdt_path_offset(dup, "/soc/serial@7e215040"), "serial@7e201000") ==
                      0);
                CHECK(dtb_patch(dup, n, REV, DTB_PATCH_SERIAL, -1, &o, &on, &why) == -EBADMSG);
                CHECK_CONTAINS(why, "duplicate");
        }

        /* Every single-byte corruption: an error or a sound tree, never a crash. */
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ uint8_t *bad = malloc(n);
                void *o = NULL;
                size_t on;

                CHECK(bad);
                memcpy(bad, in, n);
                bad[i] ^= (uint8_t)(0x5a + i);
                if (dtb_patch(bad, n, REV, DTB_PATCH_SERIAL, -1, &o, &on, NULL) == 0) {
                        check_patched(o, on, REV);
                        free(o);
                }
        }
        /* Every truncation. */
        for (size_t k = 0; k < n; k += 7) {
                void *o = NULL;
                size_t on;
                CHECK(dtb_patch(in, k, REV, DTB_PATCH_SERIAL, -1, &o, &on, NULL) < 0);
        }
}

static void test_pl011_only(const char *path) {
        _cleanup_free_ void *in = NULL, *out = NULL;
        size_t n, out_n;
        int node, child, count = 0;

        CHECK(read_file(path, &in, &n) == 0);
        out = patch_ok(in, n, 0x920092, &out_n);
        CHECK_STREQ(alias(out, "serial0"), "/soc/serial@20201000");
        CHECK(!alias(out, "serial1"));
        node = fdt_path_offset(out, "/soc/serial@20201000");
        CHECK(node >= 0);
        CHECK_STREQ(fdt_getprop(out, node, "status", NULL), "okay");
        fdt_for_each_subnode(child, out, node) {
                CHECK_STREQ(fdt_get_name(out, child, NULL), "keep-me");
                count++;
        }
        CHECK(count == 1);
}

static void test_rpi4_uarts(const char *path) {
        _cleanup_free_ void *in = NULL, *out = NULL;
        size_t n, out_n;
        int other;

        CHECK(read_file(path, &in, &n) == 0);
        out = patch_ok(in, n, 0xb03115, &out_n);
        /* the aliased uart0, not the first PL011 in the tree */
        CHECK_STREQ(alias(out, "serial0"), "/soc/serial@7e201000");
        CHECK_STREQ(alias(out, "serial1"), "/soc/serial@7e215040");
        /* the other PL011 keeps its child: it is not piemu's console */
        other = fdt_path_offset(out, "/soc/serial@7e201400");
        CHECK(other >= 0 && has_bluetooth_child(out, other));
}

static void test_errors(void) {
        uint8_t empty[256], garbage[64];
        void *out = NULL;
        size_t n;
        const char *why = NULL;
        _cleanup_free_ uint8_t *huge = NULL;

        CHECK(dtb_patch("", 0, REV, 0, -1, &out, &n, &why) == -EBADMSG && why);
        memset(garbage, 'x', sizeof(garbage));
        CHECK(dtb_patch(garbage, sizeof(garbage), REV, 0, -1, &out, &n, &why) == -EBADMSG);
        CHECK_CONTAINS(why, "magic");

        /* a valid tree without a PL011 */
        CHECK(fdt_create_empty_tree(empty, sizeof(empty)) == 0);
        CHECK(dtb_patch(empty, fdt_totalsize(empty), REV, 0, -1, &out, &n, &why) == -ENODEV);
        CHECK_CONTAINS(why, "PL011");

        /* a header claiming more than the buffer has */
        CHECK(fdt_create_empty_tree(empty, sizeof(empty)) == 0);
        fdt_set_totalsize(empty, 4096);
        CHECK(dtb_patch(empty, sizeof(empty), REV, 0, -1, &out, &n, NULL) == -EBADMSG);

        huge = calloc(1, DTB_PATCH_MAX_SIZE + 1);
        CHECK(huge);
        CHECK(dtb_patch(huge, DTB_PATCH_MAX_SIZE + 1, REV, 0, -1, &out, &n, &why) == -EFBIG);
        CHECK(!out);
}

/* Real trees, if this machine has any: piemu's default image (already patched once by
 * tools/build-image.sh) and Debian's kernel packages. */
static int test_system_dtbs(void) {
        static const char *const patterns[] = {
                "/var/lib/piemu/images/default/dtb",
                "/usr/lib/linux-image-*/broadcom/bcm2837-rpi-3-b.dtb",
                "/usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb",
                "/boot/dtbs/*/broadcom/bcm2837-rpi-3-b.dtb",
        };
        int tested = 0;

        for (size_t p = 0; p < ELEMENTSOF(patterns); p++) {
                glob_t g = {};

                if (glob(patterns[p], 0, NULL, &g) != 0)
                        continue;
                for (size_t i = 0; i < g.gl_pathc; i++) {
                        _cleanup_free_ void *in = NULL, *out = NULL;
                        size_t n, out_n;

                        if (read_file(g.gl_pathv[i], &in, &n) < 0)
                                continue;
                        out = patch_ok(in, n, REV, &out_n);
                        if (strstr(g.gl_pathv[i], "bcm2837") || strstr(g.gl_pathv[i], "default/dtb")) {
                                CHECK_STREQ(alias(out, "serial0"), "/soc/serial@7e201000");
                                CHECK_STREQ(alias(out, "serial1"), "/soc/serial@7e215040");
                        }
                        printf("  patched %s (%zu -> %zu bytes)\n", g.gl_pathv[i], n, out_n);
                        tested++;
                }
                globfree(&g);
        }
        return tested;
}

int main(int argc, char *argv[]) {
        const char *raspios = NULL, *upstream = NULL, *pl011_only = NULL;
        int system_dtbs;

        for (int i = 1; i < argc; i++) {
                const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];

                if (streq(base, "rpi3b-raspios.dtb"))
                        test_raspios(raspios = argv[i]);
                else if (streq(base, "pl011-only.dtb"))
                        test_pl011_only(pl011_only = argv[i]);
                else if (streq(base, "rpi4-uarts.dtb"))
                        test_rpi4_uarts(upstream = argv[i]);
                else {
                        fprintf(stderr, "unknown test dtb %s\n", argv[i]);
                        return 1;
                }
        }
        if (raspios && upstream && pl011_only)
                test_i2c_arm(raspios, upstream, pl011_only);
        else
                CHECK(argc == 1); /* dtc missing: meson passes no trees at all */
        test_errors();
        system_dtbs = test_system_dtbs();
        printf("test-dtb-patch: OK (%d test trees, %d system dtbs)\n", argc - 1, system_dtbs);
        return 0;
}
