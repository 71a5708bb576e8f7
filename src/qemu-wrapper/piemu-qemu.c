/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The emulator piemud names in its domains: runs QEMU with single-threaded TCG (see accel-args.h
 * for why) and with Nagle off on piemu's TLS serial lines (chardev-args.h), everything else passed
 * through untouched. libvirt runs it exactly as it would run QEMU,
 * capability probing included. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel-args.h"
#include "chardev-args.h"
#include "config.h"
#include "qemu-choice.h"
#include "qemu-flavor.h"

int main(int argc, char *argv[]) {
        const char *prog = argc > 0 ? argv[0] : "piemu-qemu";
        const char *qemu = qemu_choose(getenv(PIEMU_QEMU_ENV), PIEMU_QEMU, PIEMU_OWN_QEMU);
        char *storage = NULL, *storage2 = NULL;

        if (argc < 1)
                return 127;
        if (argc == 2 && strcmp(argv[1], "--piemu-wrapper-help") == 0) {
                printf("%s: runs %s with single-threaded TCG (-accel tcg,thread=single),\n"
                       "or piemu's own QEMU %s when %s=%s is set.\n"
                       "piemud names it as the <emulator> of its libvirt domains; see piemud(8).\n",
                       prog, PIEMU_QEMU, PIEMU_OWN_QEMU, PIEMU_QEMU_ENV, PIEMU_QEMU_ENV_OWN);
                return 0;
        }
        if (accel_args_force_single_thread(argc, argv, &storage) < 0 ||
            chardev_args_nodelay(argc, argv, &storage2) < 0) {
                fprintf(stderr, "%s: out of memory\n", prog);
                return 127;
        }
        /* No fallback to the other QEMU: piemud chose this one for what it has, and a board on the
         * other would be driven the wrong way. Start fails with this in QEMU's log. */
        argv[0] = (char *)qemu;
        execv(qemu, argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", prog, qemu, strerror(errno));
        return 127;
}
