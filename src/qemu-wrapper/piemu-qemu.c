/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The emulator piemud names in its domains: runs QEMU with single-threaded TCG (see accel-args.h
 * for why) and with Nagle off on piemu's TLS serial lines (chardev-args.h), everything else passed
 * through untouched. libvirt runs it exactly as it would run QEMU,
 * capability probing included. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "accel-args.h"
#include "chardev-args.h"
#include "config.h"

int main(int argc, char *argv[]) {
        const char *prog = argc > 0 ? argv[0] : "piemu-qemu";
        char *storage = NULL, *storage2 = NULL;

        if (argc < 1)
                return 127;
        if (argc == 2 && strcmp(argv[1], "--piemu-wrapper-help") == 0) {
                printf("%s: runs %s with single-threaded TCG (-accel tcg,thread=single).\n"
                       "piemud names it as the <emulator> of its libvirt domains; see piemud(8).\n",
                       prog, PIEMU_QEMU);
                return 0;
        }
        if (accel_args_force_single_thread(argc, argv, &storage) < 0 ||
            chardev_args_nodelay(argc, argv, &storage2) < 0) {
                fprintf(stderr, "%s: out of memory\n", prog);
                return 127;
        }
        argv[0] = (char *)PIEMU_QEMU;
        execv(PIEMU_QEMU, argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", prog, PIEMU_QEMU, strerror(errno));
        return 127;
}
