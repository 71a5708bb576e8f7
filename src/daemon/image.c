/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "names.h"

#define META_MAX 8192

static int dup_range(const char *s, size_t n, char **ret) {
        char *c = strndup(s, n);
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 0;
}

int image_meta_parse(const char *text, char **ret_description, char **ret_cmdline, char **ret_models) {
        _cleanup_free_ char *desc = NULL, *cmdline = NULL, *models = NULL;
        const char *p = text;
        int r;

        if (!text)
                return -EINVAL;
        while (*p) {
                const char *eol = strchrnul(p, '\n');
                const char *eq = memchr(p, '=', (size_t)(eol - p));
                if (*p != '#' && eq) {
                        size_t kl = (size_t)(eq - p);
                        const char *v = eq + 1;
                        size_t vl = (size_t)(eol - v);
                        for (size_t i = 0; i < vl; i++)
                                if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
                                        return -EINVAL;
                        if (kl == strlen("description") && strncmp(p, "description", kl) == 0)
                                r = dup_range(v, vl, &desc);
                        else if (kl == strlen("cmdline") && strncmp(p, "cmdline", kl) == 0)
                                r = dup_range(v, vl, &cmdline);
                        else if (kl == strlen("models") && strncmp(p, "models", kl) == 0)
                                r = dup_range(v, vl, &models);
                        else
                                r = 0;
                        if (r < 0)
                                return r;
                }
                p = *eol ? eol + 1 : eol;
        }
        if (!desc && !(desc = strdup("")))
                return -ENOMEM;
        if (!cmdline && !(cmdline = strdup("")))
                return -ENOMEM;
        /* Images from before there were other models boot on raspi3b. */
        if (isempty(models) && !(free(models), models = strdup(PIEMU_IMAGE_DEFAULT_MODELS)))
                return -ENOMEM;
        /* Model names only (they become file names: dtb.MODEL). */
        for (const char *m = models; *m; m++)
                if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789 ", *m))
                        return -EINVAL;
        *ret_description = TAKE_PTR(desc);
        *ret_cmdline = TAKE_PTR(cmdline);
        if (ret_models)
                *ret_models = TAKE_PTR(models);
        return 0;
}

static int regular_file(const char *path, struct stat *st);

bool image_models_include(const char *models, const char *model) {
        size_t n = model ? strlen(model) : 0;

        if (!models || n == 0)
                return false;
        for (const char *p = models; *p;) {
                size_t k;

                p += strspn(p, " ");
                k = strcspn(p, " ");
                if (k == n && strncmp(p, model, n) == 0)
                        return true;
                p += k;
        }
        return false;
}

int image_dtb_for_model(const Image *i, const char *model, char **ret_path) {
        struct stat st;
        char *path;
        size_t first;
        int r;

        if (!image_models_include(i->models, model))
                return -ENOENT;
        first = strspn(i->models, " ");
        if (strcspn(i->models + first, " ") == strlen(model) &&
            strncmp(i->models + first, model, strlen(model)) == 0)
                path = strdup(i->dtb); /* the first model's */
        else {
                /* i->dtb is DIR/NAME/dtb: the model's is beside it. */
                if (asprintf(&path, "%s.%s", i->dtb, model) < 0)
                        path = NULL;
        }
        if (!path)
                return -ENOMEM;
        r = regular_file(path, &st);
        if (r < 0) {
                free(path);
                return r == -EBADF ? -ENOENT : r;
        }
        *ret_path = path;
        return 0;
}

int image_qcow2_size(const uint8_t *h, size_t n, uint64_t *ret) {
        uint64_t v = 0;
        if (n < 32 || memcmp(h, "QFI\xfb", 4) != 0)
                return -EINVAL;
        for (int i = 24; i < 32; i++)
                v = (v << 8) | h[i];
        if (v == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

bool image_qcow2_refers_elsewhere(const uint8_t *h, size_t n) {
        uint64_t backing = 0, incompatible = 0;
        uint32_t version = 0;

        if (n < 4 || memcmp(h, "QFI\xfb", 4) != 0)
                return false; /* not qcow2: raw, nothing to follow */
        if (n < 16)
                return true; /* a qcow2 header too short to tell: refuse */
        for (int i = 4; i < 8; i++)
                version = (version << 8) | h[i];
        for (int i = 8; i < 16; i++)
                backing = (backing << 8) | h[i];
        if (backing != 0)
                return true;
        if (version >= 3) {
                if (n < 80)
                        return true;
                for (int i = 72; i < 80; i++)
                        incompatible = (incompatible << 8) | h[i];
                /* Bit 2: an external data file, another host path. */
                if (incompatible & (UINT64_C(1) << 2))
                        return true;
        }
        return false;
}

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        free(i->name);
        free(i->description);
        free(i->cmdline);
        free(i->kernel);
        free(i->dtb);
        free(i->initrd);
        free(i->sd);
        free(i->models);
        free(i);
        return NULL;
}

static int regular_file(const char *path, struct stat *st) {
        if (lstat(path, st) < 0)
                return negative_errno();
        /* No symlinks: the catalog must not be a way to point the daemon at arbitrary files. */
        return S_ISREG(st->st_mode) ? 0 : -EBADF;
}

int image_load(const char *dir, const char *name, Image **ret) {
        _cleanup_(image_freep) Image *i = NULL;
        _cleanup_free_ char *meta_path = NULL, *initrd = NULL;
        _cleanup_close_ int fd = -EBADF;
        char text[META_MAX + 1];
        uint8_t header[64];
        struct stat st;
        ssize_t n;
        int r;

        if (!piemu_name_is_valid(name))
                return -EINVAL;
        i = calloc(1, sizeof *i);
        if (!i || !(i->name = strdup(name)))
                return -ENOMEM;
        if (asprintf(&i->kernel, "%s/%s/kernel", dir, name) < 0 ||
            asprintf(&i->dtb, "%s/%s/dtb", dir, name) < 0 ||
            asprintf(&i->sd, "%s/%s/sd.img", dir, name) < 0 ||
            asprintf(&meta_path, "%s/%s/meta", dir, name) < 0 ||
            asprintf(&initrd, "%s/%s/initrd", dir, name) < 0)
                return -ENOMEM;
        if ((r = regular_file(i->kernel, &st)) < 0 || (r = regular_file(i->dtb, &st)) < 0)
                return r == -EBADF ? -ENOENT : r;
        if (regular_file(initrd, &st) >= 0)
                i->initrd = TAKE_PTR(initrd);

        fd = open(meta_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ELOOP ? -ENOENT : negative_errno();
        n = read(fd, text, META_MAX);
        if (n < 0)
                return negative_errno();
        text[n] = 0;
        if (memchr(text, 0, (size_t)n))
                return -EINVAL;
        r = image_meta_parse(text, &i->description, &i->cmdline, &i->models);
        if (r < 0)
                return r;

        fd = safe_close(fd);
        fd = open(i->sd, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ELOOP ? -ENOENT : negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        n = pread(fd, header, sizeof header, 0);
        if (n < 0)
                return negative_errno();
        if (image_qcow2_size(header, (size_t)n, &i->sd_size) >= 0)
                i->sd_format = "qcow2";
        else {
                i->sd_format = "raw";
                i->sd_size = (uint64_t)st.st_size;
        }
        *ret = TAKE_PTR(i);
        return 0;
}

void image_list_free(Image **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                image_free(l[i]);
        free(l);
}

static int cmp_image(const void *a, const void *b) {
        return strcmp((*(Image *const *)a)->name, (*(Image *const *)b)->name);
}

int image_list(const char *dir, Image ***ret, size_t *ret_n) {
        DIR *d = opendir(dir);
        Image **l = NULL;
        size_t n = 0;
        struct dirent *de;

        if (!d) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                return negative_errno();
        }
        while ((de = readdir(d))) {
                Image *i;
                if (!piemu_name_is_valid(de->d_name))
                        continue;
                /* Half-imported or broken entries are not images. */
                if (image_load(dir, de->d_name, &i) < 0)
                        continue;
                Image **nl = realloc(l, (n + 1) * sizeof *l);
                if (!nl) {
                        image_free(i);
                        image_list_free(l, n);
                        closedir(d);
                        return -ENOMEM;
                }
                l = nl;
                l[n++] = i;
        }
        closedir(d);
        if (n > 1)
                qsort(l, n, sizeof *l, cmp_image);
        *ret = l;
        *ret_n = n;
        return 0;
}
