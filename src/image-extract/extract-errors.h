/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What piemu-image-extract's exit status means, shared by the helper and its caller (piemud, via
 * extract-run.h). Values below 64 are the helper's exit codes; the others are outcomes only the
 * caller can see (the helper never exits with them). The numbers are an interface between two
 * binaries that may come from different builds during an upgrade: never renumber, only add.
 *
 * 1 is INTERNAL on purpose: it is also what a crashing sanitizer or a stray exit(1) produces, and
 * those are internal errors too. 2 is the customary exit code for command-line errors. */
typedef enum ImageExtractError {
        IMAGE_EXTRACT_OK = 0,
        IMAGE_EXTRACT_INTERNAL = 1,           /* a bug or resource shortage in the helper */
        IMAGE_EXTRACT_USAGE = 2,              /* bad command line or fd set-up */
        IMAGE_EXTRACT_IO = 3,                 /* reading stdin or writing the output failed */
        IMAGE_EXTRACT_NOT_MBR = 10,           /* not a disk with an MBR (dos) partition table */
        IMAGE_EXTRACT_NO_BOOT_PARTITION = 11, /* no readable FAT boot partition */
        IMAGE_EXTRACT_NO_KERNEL = 12,         /* no kernel for the model in the boot partition */
        IMAGE_EXTRACT_NO_DTB = 13,            /* no device tree for the model in the boot partition */
        IMAGE_EXTRACT_XZ_TRUNCATED = 14,      /* the xz stream ends early */
        IMAGE_EXTRACT_XZ_CORRUPT = 15,        /* the xz stream is damaged or not decodable */
        IMAGE_EXTRACT_TOO_LARGE = 16,         /* image over --max-size, or a boot file over its cap */
        IMAGE_EXTRACT_BAD_DTB = 17,           /* the device tree is invalid or cannot be patched */
        IMAGE_EXTRACT_BAD_CMDLINE = 18,       /* cmdline.txt has control characters or is too long */

        /* Caller-side outcomes (extract-run.c), never exit codes. */
        IMAGE_EXTRACT_SPAWN_FAILED = 100, /* the helper could not be started */
        IMAGE_EXTRACT_TIMEOUT = 101,      /* killed after the caller's timeout */
        IMAGE_EXTRACT_CRASHED = 102,      /* died by a signal, or an unknown exit status */
        IMAGE_EXTRACT_BAD_OUTPUT = 103,   /* exit 0 but stdout is not a valid result */
} ImageExtractError;

/* A short, fixed description of each kind: what a caller says when the helper gave no message. */
static inline const char *image_extract_error_to_string(ImageExtractError e) {
        switch (e) {
        case IMAGE_EXTRACT_OK:
                return "success";
        case IMAGE_EXTRACT_INTERNAL:
                return "internal error in the image extractor";
        case IMAGE_EXTRACT_USAGE:
                return "the image extractor was called incorrectly";
        case IMAGE_EXTRACT_IO:
                return "I/O error while extracting the image";
        case IMAGE_EXTRACT_NOT_MBR:
                return "not a disk image with an MBR partition table";
        case IMAGE_EXTRACT_NO_BOOT_PARTITION:
                return "the image has no FAT boot partition";
        case IMAGE_EXTRACT_NO_KERNEL:
                return "the boot partition has no kernel for this board model";
        case IMAGE_EXTRACT_NO_DTB:
                return "the boot partition has no device tree for this board model";
        case IMAGE_EXTRACT_XZ_TRUNCATED:
                return "the xz-compressed image is truncated";
        case IMAGE_EXTRACT_XZ_CORRUPT:
                return "the xz-compressed image is corrupt";
        case IMAGE_EXTRACT_TOO_LARGE:
                return "the image is too large";
        case IMAGE_EXTRACT_BAD_DTB:
                return "the device tree is invalid";
        case IMAGE_EXTRACT_BAD_CMDLINE:
                return "the kernel command line (cmdline.txt) is invalid";
        case IMAGE_EXTRACT_SPAWN_FAILED:
                return "the image extractor could not be started";
        case IMAGE_EXTRACT_TIMEOUT:
                return "the image extractor timed out";
        case IMAGE_EXTRACT_CRASHED:
                return "the image extractor crashed";
        case IMAGE_EXTRACT_BAD_OUTPUT:
                return "the image extractor produced invalid output";
        }
        return "unknown image extractor error";
}

/* True for the exit codes the helper uses (anything else from it is a crash as far as the caller
 * is concerned). */
static inline int image_extract_exit_code_is_known(int code) {
        return (code >= IMAGE_EXTRACT_OK && code <= IMAGE_EXTRACT_IO) ||
               (code >= IMAGE_EXTRACT_NOT_MBR && code <= IMAGE_EXTRACT_BAD_CMDLINE);
}
