/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <stdint.h>

#include "macro.h"

/* What an image boots on when its meta names no models. */
#define PIEMU_IMAGE_DEFAULT_MODELS "raspi3b"

/* The image catalog: <dir>/<name>/{kernel,dtb,sd.img,meta[,initrd]}, filled by an
 * admin or ImportImage. Boards can only name images from here, never paths. */
typedef struct Image {
        char *name;
        char *description;
        char *cmdline;
        char *kernel, *dtb, *initrd, *sd;
        char *models;          /* the models it boots on, space-separated; the first one's dtb is "dtb", each
                                * other's "dtb.MODEL" (meta's models=; "raspi3b" when it has none) */
        const char *sd_format; /* static string: "raw" or "qcow2" */
        uint64_t sd_size;      /* virtual size in bytes */
} Image;

/* Pure: parses the key=value meta file. Unknown keys are ignored (forward compatible). ret_models
 * (may be NULL) gets models= as given, or "raspi3b" when it is missing. */
int image_meta_parse(const char *text, char **ret_description, char **ret_cmdline, char **ret_models);
/* Pure: whether the space-separated list names model. */
bool image_models_include(const char *models, const char *model);
/* The device tree of the image for model: its dtb for the first model it names, dtb.MODEL for the
 * others; -ENOENT when it does not boot on that model (or the file is missing). */
int image_dtb_for_model(const Image *i, const char *model, char **ret_path);
/* Pure: recognises a qcow2 header and returns its virtual size; -EINVAL if not qcow2. */
/* True if a qcow2 header (the file's first bytes) names a backing file or an external data file,
 * or is too short to tell; false for a self-contained qcow2 or anything that is not qcow2. */
bool image_qcow2_refers_elsewhere(const uint8_t *header, size_t n);
int image_qcow2_size(const uint8_t *header, size_t n, uint64_t *ret);

int image_load(const char *dir, const char *name, Image **ret);
Image *image_free(Image *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);
int image_list(const char *dir, Image ***ret, size_t *ret_n);
void image_list_free(Image **l, size_t n);
