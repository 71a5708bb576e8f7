/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <libfdt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dtb-patch.h"
#include "macro.h"

/* Room for what we add: /system with two properties, /aliases, two paths (each < PATH_BUF) and
 * their names in the strings block, a status. Generous, so that NOSPACE cannot happen. */
#define PATH_BUF   1024
#define EXTRA_ROOM (4 * PATH_BUF + 4096)

static int fail(const char **ret_error, int r, const char *why) {
        if (ret_error)
                *ret_error = why;
        return r;
}

/* libfdt's error, as ours: everything it can say about a tree that passed fdt_check_full comes
 * from the tree's content. */
static int fail_fdt(const char **ret_error, int err) {
        return fail(ret_error, err == -FDT_ERR_NOSPACE ? -ENOMEM : -EBADMSG, fdt_strerror(err));
}

/* A string property that really is one NUL-terminated string (libfdt's fdt_get_alias() does not
 * check that, and a hostile tree could make a path run on past the property). */
static const char *getprop_string(const void *fdt, int node, const char *name) {
        const char *v;
        int len;

        v = fdt_getprop(fdt, node, name, &len);
        if (!v || len <= 0 || v[len - 1] != '\0' || strlen(v) != (size_t)len - 1)
                return NULL;
        return v;
}

static bool node_name_is(const void *fdt, int node, const char *want) {
        const char *name;
        size_t n = strlen(want);
        int len;

        name = fdt_get_name(fdt, node, &len);
        if (!name || len < 0 || (size_t)len < n || memcmp(name, want, n) != 0)
                return false;
        return (size_t)len == n || name[n] == '@';
}

static int find_pl011(const void *fdt) {
        const char *path;
        int aliases, off;

        /* Raspberry Pi OS and upstream name the first PL011 uart0; on the Pi 4 the other four
         * (uart2..5) are PL011s too, and only uart0 is QEMU's serial0. */
        aliases = fdt_path_offset(fdt, "/aliases");
        if (aliases >= 0) {
                path = getprop_string(fdt, aliases, "uart0");
                if (path && path[0] == '/') {
                        off = fdt_path_offset(fdt, path);
                        if (off >= 0 && fdt_node_check_compatible(fdt, off, "arm,pl011") == 0)
                                return off;
                }
        }
        return fdt_node_offset_by_compatible(fdt, -1, "arm,pl011");
}

/* Sets /<name> as a node, creating it; returns its offset. */
static int ensure_root_child(void *fdt, const char *name) {
        int off;

        off = fdt_subnode_offset(fdt, 0, name);
        if (off == -FDT_ERR_NOTFOUND)
                off = fdt_add_subnode(fdt, 0, name);
        return off;
}

/* --- validation ------------------------------------------------------------------------------- */

#define MAX_DEPTH 64

static uint32_t be32_at(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

typedef struct Name {
        const char *p;
        size_t n;
} Name;

/* The names of one node's properties, and of its children. */
typedef struct Frame {
        Name *props, *children;
        size_t n_props, n_children, cap_props, cap_children;
} Frame;

static int name_cmp(const void *a, const void *b) {
        const Name *x = a, *y = b;
        int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
        return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

static int names_add(Name **l, size_t *n, size_t *cap, const char *p, size_t len) {
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 16;
                Name *nl = realloc(*l, ncap * sizeof(Name));
                if (!nl)
                        return -ENOMEM;
                *l = nl;
                *cap = ncap;
        }
        (*l)[(*n)++] = (Name){p, len};
        return 0;
}

static bool names_unique(Name *l, size_t n) {
        if (n < 2)
                return true; /* l may be NULL */
        qsort(l, n, sizeof(Name), name_cmp);
        for (size_t i = 1; i < n; i++)
                if (name_cmp(&l[i - 1], &l[i]) == 0)
                        return false;
        return true;
}

static bool ranges_overlap(size_t a, size_t an, size_t b, size_t bn) {
        return an > 0 && bn > 0 && a < b + bn && b < a + an;
}

static void frames_free(Frame *f, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(f[i].props);
                free(f[i].children);
        }
}

/* Where the structure and strings blocks are, from a header that has passed dtb_check_header(). */
typedef struct Blocks {
        uint32_t off_struct, size_struct, off_strings, size_strings;
} Blocks;

/* The header, and the bounds of the three blocks it points to: within the tree, the tree within the
 * buffer, the memory reservations terminated, no two blocks overlapping. */
static int dtb_check_header(const uint8_t *b, size_t size, Blocks *ret, const char **ret_error) {
        uint32_t total, off_struct, off_strings, off_rsv, version, last_comp, size_strings, size_struct;
        size_t rsv_end;

        total = be32_at(b + 4);
        off_struct = be32_at(b + 8);
        off_strings = be32_at(b + 12);
        off_rsv = be32_at(b + 16);
        version = be32_at(b + 20);
        last_comp = be32_at(b + 24);
        size_strings = be32_at(b + 32);
        size_struct = be32_at(b + 36);

        if (be32_at(b) != FDT_MAGIC)
                return fail(ret_error, -EBADMSG, "not a device tree (bad magic)");
        /* what dtc has written since 2007; libfdt can read nothing newer */
        if (version < 17 || last_comp > 17)
                return fail(ret_error, -EBADMSG, "unsupported device tree format version");
        if (total < sizeof(struct fdt_header) || total > size)
                return fail(ret_error, -EBADMSG, "device tree size does not match the file");
        if (off_struct % 4 != 0 || size_struct % 4 != 0 || off_struct < sizeof(struct fdt_header) ||
            off_struct > total || size_struct > total - off_struct)
                return fail(ret_error, -EBADMSG, "structure block out of bounds");
        if (off_strings < sizeof(struct fdt_header) || off_strings > total ||
            size_strings > total - off_strings)
                return fail(ret_error, -EBADMSG, "strings block out of bounds");
        if (off_rsv % 8 != 0 || off_rsv < sizeof(struct fdt_header) || off_rsv > total)
                return fail(ret_error, -EBADMSG, "memory reservation block out of bounds");
        /* Reservations end with an entry of size 0 (what libfdt goes by; the specification wants
         * the address 0 too). */
        for (rsv_end = off_rsv;; rsv_end += 16) {
                if (rsv_end > total || total - rsv_end < 16)
                        return fail(ret_error, -EBADMSG, "memory reservation block not terminated");
                if (memcmp(b + rsv_end + 8, "\0\0\0\0\0\0\0\0", 8) == 0) {
                        rsv_end += 16;
                        break;
                }
        }
        /* The three blocks must not overlap: libfdt would not mind, but changing one would then
         * change another. */
        if (ranges_overlap(off_rsv, rsv_end - off_rsv, off_struct, size_struct) ||
            ranges_overlap(off_rsv, rsv_end - off_rsv, off_strings, size_strings) ||
            ranges_overlap(off_struct, size_struct, off_strings, size_strings))
                return fail(ret_error, -EBADMSG, "device tree blocks overlap");

        *ret = (Blocks){off_struct, size_struct, off_strings, size_strings};
        return 0;
}

/* A walk through the structure block: where it is, and the names seen in each open node. */
typedef struct Walk {
        const uint8_t *st, *strings;
        size_t size_struct, size_strings;
        size_t pos, depth;
        bool root_seen;
        Frame frames[MAX_DEPTH];
} Walk;

/* FDT_BEGIN_NODE, its tag read: the node's name, noted in its parent. */
static int walk_begin_node(Walk *w, const char **ret_error) {
        const uint8_t *nul = memchr(w->st + w->pos, '\0', w->size_struct - w->pos);
        size_t n;
        int r;

        if (!nul)
                return fail(ret_error, -EBADMSG, "node name not terminated");
        n = (size_t)(nul - (w->st + w->pos));
        if (w->depth == 0 ? w->root_seen || n != 0 : n == 0)
                return fail(ret_error, -EBADMSG,
                            w->depth == 0 ? "more than one root node" : "empty node name");
        if (w->depth >= MAX_DEPTH)
                return fail(ret_error, -EBADMSG, "nodes nested too deeply");
        if (w->depth > 0) {
                Frame *parent = &w->frames[w->depth - 1];
                r = names_add(&parent->children, &parent->n_children, &parent->cap_children,
                              (const char *)w->st + w->pos, n);
                if (r < 0)
                        return fail(ret_error, r, "out of memory");
        }
        w->root_seen = true;
        w->depth++;
        /* the name, its NUL, padding to 4 (within the block: size_struct % 4 == 0) */
        w->pos += (n + 1 + 3) & ~(size_t)3;
        return 0;
}

/* FDT_END_NODE: the node's property names and its children's names must each be unique. */
static int walk_end_node(Walk *w, const char **ret_error) {
        Frame *f;

        if (w->depth == 0)
                return fail(ret_error, -EBADMSG, "unbalanced end of node");
        f = &w->frames[--w->depth];
        if (!names_unique(f->props, f->n_props) || !names_unique(f->children, f->n_children))
                return fail(ret_error, -EBADMSG, "duplicate property or node names");
        frames_free(f, 1);
        *f = (Frame){};
        return 0;
}

/* FDT_PROP, its tag read: length and name offset in bounds, the name noted in its node. */
static int walk_prop(Walk *w, const char **ret_error) {
        uint32_t len, nameoff;
        const uint8_t *nul;
        Frame *f;
        int r;

        if (w->depth == 0 || w->size_struct - w->pos < 8)
                return fail(ret_error, -EBADMSG, "property outside a node");
        len = be32_at(w->st + w->pos);
        nameoff = be32_at(w->st + w->pos + 4);
        w->pos += 8;
        if (len > w->size_struct - w->pos)
                return fail(ret_error, -EBADMSG, "property value out of bounds");
        if (nameoff >= w->size_strings ||
            !(nul = memchr(w->strings + nameoff, '\0', w->size_strings - nameoff)) ||
            nul == w->strings + nameoff)
                return fail(ret_error, -EBADMSG, "property name out of bounds");
        f = &w->frames[w->depth - 1];
        r = names_add(&f->props, &f->n_props, &f->cap_props, (const char *)w->strings + nameoff,
                      (size_t)(nul - (w->strings + nameoff)));
        if (r < 0)
                return fail(ret_error, r, "out of memory");
        w->pos += ((size_t)len + 3) & ~(size_t)3;
        if (w->pos > w->size_struct)
                return fail(ret_error, -EBADMSG, "property value out of bounds");
        return 0;
}

/* The structure block, token by token up to FDT_END: a single unnamed root, balanced nodes. */
static int walk_structure(Walk *w, const char **ret_error) {
        for (;;) {
                uint32_t tag;
                int r;

                if (w->size_struct - w->pos < 4)
                        return fail(ret_error, -EBADMSG, "structure block ends without FDT_END");
                tag = be32_at(w->st + w->pos);
                w->pos += 4;

                if (tag == FDT_BEGIN_NODE)
                        r = walk_begin_node(w, ret_error);
                else if (tag == FDT_END_NODE)
                        r = walk_end_node(w, ret_error);
                else if (tag == FDT_PROP)
                        r = walk_prop(w, ret_error);
                else if (tag == FDT_NOP)
                        r = 0;
                else if (tag == FDT_END) {
                        if (w->depth != 0 || !w->root_seen)
                                return fail(ret_error, -EBADMSG, "unbalanced nodes at FDT_END");
                        return 0;
                } else
                        return fail(ret_error, -EBADMSG, "unknown structure block tag");
                if (r < 0)
                        return r;
        }
}

/* The whole tree as the devicetree specification lays it out (version 17), every offset and length
 * checked against the buffer, before any libfdt function looks at it: header, memory reservation
 * block, a single unnamed root, properties whose names lie in the strings block, no duplicate
 * property names in a node and no duplicate node names among siblings. */
static int dtb_validate(const uint8_t *b, size_t size, const char **ret_error) {
        Walk w = {};
        Blocks bl;
        int r;

        r = dtb_check_header(b, size, &bl, ret_error);
        if (r < 0)
                return r;

        w.st = b + bl.off_struct;
        w.strings = b + bl.off_strings;
        w.size_struct = bl.size_struct;
        w.size_strings = bl.size_strings;
        r = walk_structure(&w, ret_error);
        frames_free(w.frames, MAX_DEPTH);
        return r;
}

/* The node the firmware's dtparam=i2c_arm switches: the base tree's __overrides__/i2c_arm
 * (Raspberry Pi OS: <&i2c1>, "status"); else, in upstream trees, what the label i2c1
 * (/__symbols__) or the alias i2c1 names, or the BSC1 controller by its bus address, which is
 * 0x7e804000 on every Pi SoC (Debian's trees have neither label nor alias). */
static int find_i2c_arm(const void *fdt) {
        static const char *const tables[] = {"/__symbols__", "/aliases"};
        const char *v, *path;
        int node, len;

        node = fdt_path_offset(fdt, "/__overrides__");
        v = node >= 0 ? fdt_getprop(fdt, node, "i2c_arm", &len) : NULL;
        if (v && len >= 4 + (int)sizeof("status") && memcmp(v + 4, "status", sizeof("status")) == 0) {
                uint32_t ph = fdt32_ld((const fdt32_t *)(const void *)v);
                return fdt_node_offset_by_phandle(fdt, ph);
        }
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                node = fdt_path_offset(fdt, tables[i]);
                path = node >= 0 ? getprop_string(fdt, node, "i2c1") : NULL;
                if (path && path[0] == '/')
                        return fdt_path_offset(fdt, path);
        }
        for (node = fdt_node_offset_by_compatible(fdt, -1, "brcm,bcm2835-i2c"); node >= 0;
             node = fdt_node_offset_by_compatible(fdt, node, "brcm,bcm2835-i2c"))
                if (streq_ptr(fdt_get_name(fdt, node, NULL), "i2c@7e804000"))
                        return node;
        return node;
}

/* A checked copy of the tree in *ret, aligned and with EXTRA_ROOM to grow (*ret_size bytes). */
static int dtb_open_checked(const void *in, size_t size, void **ret, size_t *ret_size,
                            const char **ret_error) {
        _cleanup_free_ void *copy = NULL, *out = NULL;
        size_t out_size;
        int r;

        if (size > DTB_PATCH_MAX_SIZE)
                return fail(ret_error, -EFBIG, "larger than 1 MiB");
        if (size < sizeof(struct fdt_header))
                return fail(ret_error, -EBADMSG, "too short for a device tree header");

        /* libfdt wants the tree aligned; the caller's buffer may not be. */
        copy = malloc(size);
        if (!copy)
                return fail(ret_error, -ENOMEM, "out of memory");
        memcpy(copy, in, size);

        /* Our own walk first: libfdt 1.6.1's fdt_check_full() dereferences NULL on some version 2
         * trees and accepts duplicate names (both found by fuzz-dtb-patch). Then libfdt's, so that
         * the tree is sound by both measures. */
        r = dtb_validate(copy, size, ret_error);
        if (r < 0)
                return r;
        r = fdt_check_full(copy, size);
        if (r < 0)
                return fail_fdt(ret_error, r);

        out_size = fdt_totalsize(copy) + EXTRA_ROOM;
        out = calloc(1, out_size);
        if (!out)
                return fail(ret_error, -ENOMEM, "out of memory");
        r = fdt_open_into(copy, out, (int)out_size);
        if (r < 0)
                return fail_fdt(ret_error, r);

        *ret_size = out_size;
        *ret = TAKE_PTR(out);
        return 0;
}

/* Deletes the "bluetooth" children of node. */
static int delete_bluetooth_children(void *fdt, int node, const char **ret_error) {
        int r;

        /* Deleting a node moves everything after it, but not its parent, which comes first: node
         * stays valid, the iteration starts over. */
        for (bool again = true; again;) {
                int child;

                again = false;
                fdt_for_each_subnode(child, fdt, node) {
                        if (node_name_is(fdt, child, "bluetooth")) {
                                r = fdt_del_node(fdt, child);
                                if (r < 0)
                                        return fail_fdt(ret_error, r);
                                again = true;
                                break;
                        }
                }
                if (!again && child != -FDT_ERR_NOTFOUND)
                        return fail_fdt(ret_error, child);
        }
        return 0;
}

/* The PL011 made QEMU's serial0: without bluetooth children, enabled; its path in path. */
static int prepare_pl011(void *fdt, char path[static PATH_BUF], const char **ret_error) {
        const char *status;
        int r, node;

        node = find_pl011(fdt);
        if (node == -FDT_ERR_NOTFOUND)
                return fail(ret_error, -ENODEV, "no PL011 UART (compatible \"arm,pl011\")");
        if (node < 0)
                return fail_fdt(ret_error, node);

        r = delete_bluetooth_children(fdt, node, ret_error);
        if (r < 0)
                return r;

        r = fdt_get_path(fdt, node, path, PATH_BUF);
        if (r < 0)
                return fail_fdt(ret_error, r);
        /* An alias is a path: it must lead back here (siblings with the same name, or "serial"
         * next to an earlier "serial@1", would make it name another node). */
        if (fdt_path_offset(fdt, path) != node)
                return fail(ret_error, -EBADMSG, "the PL011's path is ambiguous");

        status = getprop_string(fdt, node, "status");
        if (fdt_getprop(fdt, node, "status", NULL) &&
            (!status || (!streq(status, "okay") && !streq(status, "ok")))) {
                r = fdt_setprop_string(fdt, node, "status", "okay");
                if (r < 0)
                        return fail_fdt(ret_error, r);
        }
        return 0;
}

/* The mini UART's path in path, or "" if there is none. */
static int find_mini_uart_path(const void *fdt, char path[static PATH_BUF], const char **ret_error) {
        int r, node;

        node = fdt_node_offset_by_compatible(fdt, -1, "brcm,bcm2835-aux-uart");
        if (node >= 0) {
                r = fdt_get_path(fdt, node, path, PATH_BUF);
                if (r < 0)
                        return fail_fdt(ret_error, r);
                if (fdt_path_offset(fdt, path) != node)
                        return fail(ret_error, -EBADMSG, "the mini UART's path is ambiguous");
        } else if (node != -FDT_ERR_NOTFOUND)
                return fail_fdt(ret_error, node);
        return 0;
}

/* /aliases: serial0 the PL011, serial1 the mini UART if there is one, else not the PL011. */
static int set_serial_aliases(void *fdt, const char *pl011_path, const char *mini_path,
                              const char **ret_error) {
        const char *old;
        int r, aliases;

        aliases = ensure_root_child(fdt, "aliases");
        if (aliases < 0)
                return fail_fdt(ret_error, aliases);
        r = fdt_setprop_string(fdt, aliases, "serial0", pl011_path);
        if (r < 0)
                return fail_fdt(ret_error, r);
        if (mini_path[0])
                r = fdt_setprop_string(fdt, aliases, "serial1", mini_path);
        else {
                old = getprop_string(fdt, aliases, "serial1");
                r = old && streq(old, pl011_path) ? fdt_delprop(fdt, aliases, "serial1") : 0;
        }
        if (r < 0)
                return fail_fdt(ret_error, r);
        return 0;
}

/* dtparam=i2c_arm=on/off: the header's I2C bus enabled or disabled. */
static int set_i2c_arm(void *fdt, bool on, const char *pl011_path, const char **ret_error) {
        int r, node;

        node = find_i2c_arm(fdt);
        if (node == -FDT_ERR_NOTFOUND)
                return fail(ret_error, -ENODEV,
                            "dtparam=i2c_arm: the tree has no I2C bus for it "
                            "(__overrides__/i2c_arm, i2c1, i2c@7e804000)");
        if (node < 0)
                return fail_fdt(ret_error, node);
        /* Only a forged tree names its console UART as the I2C bus: switching it would undo the
         * console just set up (and a second patch would differ from the first). */
        if (node == fdt_path_offset(fdt, pl011_path))
                return fail(ret_error, -EBADMSG, "dtparam=i2c_arm: the tree's I2C bus is its console UART");
        r = fdt_setprop_string(fdt, node, "status", on ? "okay" : "disabled");
        if (r < 0)
                return fail_fdt(ret_error, r);
        return 0;
}

/* /system's linux,revision and linux,serial, which the firmware sets on real hardware. */
static int set_board_identity(void *fdt, uint32_t revision, uint64_t serial, const char **ret_error) {
        int r, node;

        node = ensure_root_child(fdt, "system");
        if (node < 0)
                return fail_fdt(ret_error, node);
        r = fdt_setprop_u32(fdt, node, "linux,revision", revision);
        if (r >= 0)
                r = fdt_setprop_u64(fdt, node, "linux,serial", serial);
        if (r < 0)
                return fail_fdt(ret_error, r);
        return 0;
}

int dtb_patch(const void *in, size_t size, uint32_t revision, uint64_t serial, int i2c_arm, void **ret,
              size_t *ret_size, const char **ret_error) {
        _cleanup_free_ void *out = NULL;
        char pl011_path[PATH_BUF], mini_path[PATH_BUF] = "";
        size_t out_size;
        int r;

        r = dtb_open_checked(in, size, &out, &out_size, ret_error);
        if (r < 0)
                return r;
        r = prepare_pl011(out, pl011_path, ret_error);
        if (r < 0)
                return r;
        r = find_mini_uart_path(out, mini_path, ret_error);
        if (r < 0)
                return r;
        r = set_serial_aliases(out, pl011_path, mini_path, ret_error);
        if (r < 0)
                return r;
        if (i2c_arm >= 0) {
                r = set_i2c_arm(out, i2c_arm, pl011_path, ret_error);
                if (r < 0)
                        return r;
        }
        r = set_board_identity(out, revision, serial, ret_error);
        if (r < 0)
                return r;

        r = fdt_pack(out);
        if (r < 0)
                return fail_fdt(ret_error, r);
        out_size = fdt_totalsize(out);
        /* What we hand on must be as sound as what we demanded. */
        r = fdt_check_full(out, out_size);
        if (r < 0)
                return fail(ret_error, -EBADMSG, "the patched tree does not check out");

        *ret_size = out_size;
        *ret = TAKE_PTR(out);
        return 0;
}
