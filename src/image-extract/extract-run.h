/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* piemud's side of piemu-image-extract: runs the helper on one image and reads its verdict.
 * Blocking (run it on a worker thread), thread-safe (no global state, every fd it makes is
 * O_CLOEXEC), no sd-bus. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extract-errors.h"

typedef struct ImageExtractResult {
        char *cmdline;    /* the final kernel command line */
        char *kernel;     /* the kernel's name in the boot partition, e.g. "kernel8.img" */
        char *dtb;        /* the dtb's name in the boot partition */
        char *initrd;     /* the initramfs's name in the boot partition, NULL if none */
        bool has_initrd;  /* an "initrd" file was written */
        bool arm_64bit;   /* the kernel is started in 64-bit mode (per config.txt) */
        uint64_t sd_size; /* bytes in sd.img */
        char **notes;     /* NULL-terminated remarks for a human (ignored settings...), or NULL */
        size_t n_notes;
} ImageExtractResult;

void image_extract_result_done(ImageExtractResult *r);

/* Runs helper_path (normally PIEMU_IMAGE_EXTRACT_PATH) with stdin = image_fd and fd 3 = outdir_fd
 * (an empty directory the helper fills with sd.img, kernel, dtb and initrd, or with dtb alone if
 * dtb_only), nothing else inherited, an empty signal mask, default signal dispositions, a minimal
 * environment, in a process group of its own. model is a QEMU machine name ("raspi3b"); max_size
 * 0 means the helper's default. After timeout_usec (0: none) the whole process group is killed
 * with SIGKILL.
 *
 * Returns 0 with *ret filled in, or a negative errno with *ret_error (optional) telling the kind
 * and *ret_message (optional, malloc'd) a one-line human message that says what happened, e.g.
 * "image has no FAT boot partition" or "timed out after 600 s; killed": -EBADMSG for a rejected
 * image (the helper's exit codes NOT_MBR...BAD_CMDLINE), -EFBIG for TOO_LARGE, -ETIMEDOUT, -EIO
 * for the helper's I/O and internal errors, crashes and bad output, -EINVAL for bad arguments,
 * and the errno of a failed fork/exec (with IMAGE_EXTRACT_SPAWN_FAILED). */
int image_extract_run(const char *helper_path, int image_fd, int outdir_fd, const char *model, bool dtb_only,
                      uint64_t max_size, uint64_t timeout_usec, ImageExtractResult *ret,
                      ImageExtractError *ret_error, char **ret_message);

/* Pure, for the tests: parses the helper's stdout (key=value lines; unknown keys are ignored for
 * forward compatibility, note= lines collected). A full extraction must name kernel, dtb and
 * sd_size and give cmdline and initrd (either may be empty); dtb_only needs none of them.
 * -EBADMSG on anything malformed (duplicate keys, control characters, bad numbers), -ENOMEM. */
int image_extract_result_parse(const char *text, size_t size, bool dtb_only, ImageExtractResult *ret);

/* Pure, for the tests: the kind and the errno image_extract_run() reports for a wait status
 * (as from waitpid()), given whether the caller killed the helper for its timeout. */
ImageExtractError image_extract_classify(int wait_status, bool timed_out, int *ret_errno);
