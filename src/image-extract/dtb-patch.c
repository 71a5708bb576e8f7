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

int dtb_patch(const void *in, size_t size, uint32_t revision, uint64_t serial, void **ret, size_t *ret_size,
              const char **ret_error) {
        _cleanup_free_ void *copy = NULL, *out = NULL;
        char pl011_path[PATH_BUF], mini_path[PATH_BUF] = "";
        const char *status, *old;
        size_t out_size;
        int r, node, aliases;

        if (size > DTB_PATCH_MAX_SIZE)
                return fail(ret_error, -EFBIG, "larger than 1 MiB");
        if (size < sizeof(struct fdt_header))
                return fail(ret_error, -EBADMSG, "too short for a device tree header");

        /* libfdt wants the tree aligned; the caller's buffer may not be. */
        copy = malloc(size);
        if (!copy)
                return fail(ret_error, -ENOMEM, "out of memory");
        memcpy(copy, in, size);

        /* The header first, and only version 17, what dtc has written since 2007: libfdt 1.6.1's
         * fdt_check_full() dereferences NULL on some version 2 trees (found by fuzz-dtb-patch). */
        r = fdt_check_header(copy);
        if (r < 0)
                return fail_fdt(ret_error, r);
        if (fdt_version(copy) < 17)
                return fail(ret_error, -EBADMSG, "device tree format older than version 17");
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

        node = find_pl011(out);
        if (node == -FDT_ERR_NOTFOUND)
                return fail(ret_error, -ENODEV, "no PL011 UART (compatible \"arm,pl011\")");
        if (node < 0)
                return fail_fdt(ret_error, node);

        /* Deleting a node moves everything after it, but not its parent, which comes first: node
         * stays valid, the iteration starts over. */
        for (bool again = true; again;) {
                int child;

                again = false;
                fdt_for_each_subnode(child, out, node) {
                        if (node_name_is(out, child, "bluetooth")) {
                                r = fdt_del_node(out, child);
                                if (r < 0)
                                        return fail_fdt(ret_error, r);
                                again = true;
                                break;
                        }
                }
                if (!again && child != -FDT_ERR_NOTFOUND)
                        return fail_fdt(ret_error, child);
        }

        r = fdt_get_path(out, node, pl011_path, sizeof(pl011_path));
        if (r < 0)
                return fail_fdt(ret_error, r);
        /* An alias is a path: it must lead back here (siblings with the same name, or "serial"
         * next to an earlier "serial@1", would make it name another node). */
        if (fdt_path_offset(out, pl011_path) != node)
                return fail(ret_error, -EBADMSG, "the PL011's path is ambiguous");

        status = getprop_string(out, node, "status");
        if (fdt_getprop(out, node, "status", NULL) &&
            (!status || (!streq(status, "okay") && !streq(status, "ok")))) {
                r = fdt_setprop_string(out, node, "status", "okay");
                if (r < 0)
                        return fail_fdt(ret_error, r);
        }

        node = fdt_node_offset_by_compatible(out, -1, "brcm,bcm2835-aux-uart");
        if (node >= 0) {
                r = fdt_get_path(out, node, mini_path, sizeof(mini_path));
                if (r < 0)
                        return fail_fdt(ret_error, r);
                if (fdt_path_offset(out, mini_path) != node)
                        return fail(ret_error, -EBADMSG, "the mini UART's path is ambiguous");
        } else if (node != -FDT_ERR_NOTFOUND)
                return fail_fdt(ret_error, node);

        aliases = ensure_root_child(out, "aliases");
        if (aliases < 0)
                return fail_fdt(ret_error, aliases);
        r = fdt_setprop_string(out, aliases, "serial0", pl011_path);
        if (r < 0)
                return fail_fdt(ret_error, r);
        if (mini_path[0])
                r = fdt_setprop_string(out, aliases, "serial1", mini_path);
        else {
                old = getprop_string(out, aliases, "serial1");
                r = old && streq(old, pl011_path) ? fdt_delprop(out, aliases, "serial1") : 0;
        }
        if (r < 0)
                return fail_fdt(ret_error, r);

        node = ensure_root_child(out, "system");
        if (node < 0)
                return fail_fdt(ret_error, node);
        r = fdt_setprop_u32(out, node, "linux,revision", revision);
        if (r >= 0)
                r = fdt_setprop_u64(out, node, "linux,serial", serial);
        if (r < 0)
                return fail_fdt(ret_error, r);

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
