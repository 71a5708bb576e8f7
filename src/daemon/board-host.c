/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-host.h"

#include <unistd.h>

#include "log.h"

int board_host_tls(BoardHost *h, TlsCreds **ret, char **ret_problem) {
        int r;

        if (!h->tls) {
                /* A few small local files: read on the loop, like the image catalog's meta. */
                r = tls_creds_load(h->tls_dir, &h->tls, ret_problem);
                if (r < 0)
                        return r;
                log_info("TLS credentials for the serial lines loaded from %s", h->tls_dir);
        }
        *ret = h->tls;
        return 0;
}

bool board_host_piemu_qemu(const BoardHost *h) {
        /* One access() on the loop per Start: a local file's inode, like the image catalog's reads. */
        return h->piemu_qemu && access(h->piemu_qemu, X_OK) == 0;
}
