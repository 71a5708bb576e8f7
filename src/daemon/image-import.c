/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "image-import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "extract-run.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "piemu-errors.h"
#include "worker.h"

#define KERNEL_MAX   (256ULL << 20)
#define DTB_MAX      (4ULL << 20)
#define SD_IMAGE_MAX (64ULL << 30)
/* A Raspberry Pi OS release is ~0.5-1.2 GB of xz for ~3-6 GB of disk: decompressing it on this
 * kind of machine takes a few minutes. */
#define IMPORT_TIMEOUT_USEC (30ULL * 60 * 1000 * 1000)

struct ImportJob {
        Manager *manager;
        sd_bus_message *msg;
        char *name, *description, *cmdline, *model;
        int fds[4];    /* kernel, dtb, sd, initrd (or -1); for ImportImageFile: the image in fds[2] */
        bool one_file; /* ImportImageFile: piemu-image-extract takes the image apart */
        char *tmpdir;
        int r;
        const char *error_name; /* a named bus error for a rejected image, else NULL */
        char *error;
};

void import_job_free(ImportJob *j) {
        if (!j)
                return;
        sd_bus_message_unref(j->msg);
        free(j->name);
        free(j->description);
        free(j->cmdline);
        free(j->model);
        for (size_t i = 0; i < ELEMENTSOF(j->fds); i++)
                safe_close(j->fds[i]);
        free(j->tmpdir);
        free(j->error);
        free(j);
}

static int copy_fd(int in, const char *path, uint64_t max, uint8_t *head, size_t head_size,
                   size_t *head_len) {
        _cleanup_close_ int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        uint8_t buf[1 << 16];
        uint64_t total = 0;

        if (out < 0)
                return negative_errno();
        *head_len = 0;
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                total += (uint64_t)n;
                if (total > max)
                        return -EFBIG;
                if (*head_len < head_size) {
                        size_t k = head_size - *head_len < (size_t)n ? head_size - *head_len : (size_t)n;
                        memcpy(head + *head_len, buf, k);
                        *head_len += k;
                }
                for (ssize_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, (size_t)(n - w));
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        w += k;
                }
        }
        if (total == 0)
                return -ENODATA;
        if (fsync(out) < 0)
                return negative_errno();
        return 0;
}

_printf_(3, 4) static void set_import_error(ImportJob *j, int r, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        j->r = r;
        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        free(j->error);
        if (asprintf(&j->error, "%s: %s", strempty(what), strerror(-r)) < 0)
                j->error = NULL;
}

static void remove_tree(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        if (d) {
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                (void)unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void)rmdir(dir);
}

static void remove_tree_work(void *userdata) {
        remove_tree(userdata);
}

/* The bus error for what piemu-image-extract found wrong with an image. */
static const char *extract_error_name(ImageExtractError e) {
        switch (e) {
        case IMAGE_EXTRACT_NOT_MBR:
                return PIEMU_ERROR_IMAGE_NOT_MBR;
        case IMAGE_EXTRACT_NO_BOOT_PARTITION:
                return PIEMU_ERROR_IMAGE_NO_BOOT_PARTITION;
        case IMAGE_EXTRACT_NO_KERNEL:
                return PIEMU_ERROR_IMAGE_NO_KERNEL;
        case IMAGE_EXTRACT_NO_DTB:
                return PIEMU_ERROR_IMAGE_NO_DTB;
        case IMAGE_EXTRACT_XZ_TRUNCATED:
                return PIEMU_ERROR_IMAGE_TRUNCATED;
        case IMAGE_EXTRACT_TOO_LARGE:
                return PIEMU_ERROR_IMAGE_TOO_LARGE;
        case IMAGE_EXTRACT_XZ_CORRUPT:
        case IMAGE_EXTRACT_BAD_DTB:
        case IMAGE_EXTRACT_BAD_CMDLINE:
                return PIEMU_ERROR_IMAGE_INVALID;
        default:
                return NULL; /* the extractor itself failed: Failed */
        }
}

/* Runs the confined extractor (src/image-extract) into the job's temporary directory: the whole
 * image (one_file), or only the device tree (patched with the board revision, the console's UART
 * freed from Bluetooth). An image is hostile input; piemud itself never parses it. */
static int run_extractor(ImportJob *j, int image_fd, bool dtb_only) {
        _cleanup_(image_extract_result_done) ImageExtractResult res = {};
        _cleanup_free_ char *msg = NULL;
        _cleanup_close_ int dfd = open(j->tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ImageExtractError kind = IMAGE_EXTRACT_OK;
        int r;

        if (dfd < 0) {
                set_import_error(j, negative_errno(), "Cannot open %s", j->tmpdir);
                return j->r;
        }
        if (lseek(image_fd, 0, SEEK_SET) < 0 && errno != ESPIPE) {
                set_import_error(j, negative_errno(), "Cannot rewind the image");
                return j->r;
        }
        r = image_extract_run(PIEMU_IMAGE_EXTRACT_PATH, image_fd, dfd, j->model, dtb_only, SD_IMAGE_MAX,
                              IMPORT_TIMEOUT_USEC, &res, &kind, &msg);
        if (r < 0) {
                j->r = r;
                j->error_name = extract_error_name(kind);
                free(j->error);
                j->error = TAKE_PTR(msg);
                if (!j->error)
                        j->error = strdup(image_extract_error_to_string(kind));
                return r;
        }
        if (!dtb_only) {
                free(j->cmdline);
                j->cmdline = strdup(strempty(res.cmdline));
                if (!j->cmdline)
                        return (j->r = -ENOMEM);
                for (size_t i = 0; i < res.n_notes; i++)
                        log_info("Import of image %s: %s", j->name, res.notes[i]);
        }
        return 0;
}

static void import_work(void *userdata) {
        ImportJob *j = userdata;
        static const char *const files[] = {"kernel", "dtb", "sd.img", "initrd"};
        static const uint64_t limits[] = {KERNEL_MAX, DTB_MAX, SD_IMAGE_MAX, KERNEL_MAX};
        _cleanup_free_ char *final = NULL, *meta = NULL;
        uint8_t head[128];
        size_t head_len;
        int r;

        if (asprintf(&final, "%s/%s", j->manager->images_dir, j->name) < 0 ||
            asprintf(&j->tmpdir, "%s/.import-%s-XXXXXX", j->manager->images_dir, j->name) < 0) {
                j->r = -ENOMEM;
                return;
        }
        if (mkdir(j->manager->images_dir, 0755) < 0 && errno != EEXIST) {
                set_import_error(j, negative_errno(), "Cannot create the catalog %s",
                                 j->manager->images_dir);
                return;
        }
        if (!mkdtemp(j->tmpdir)) {
                set_import_error(j, negative_errno(), "Cannot create %s", j->tmpdir);
                return;
        }
        (void)chmod(j->tmpdir, 0755);
        if (j->one_file) {
                if (run_extractor(j, j->fds[2], false) < 0)
                        goto fail;
                goto meta;
        }
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = NULL;
                if (j->fds[i] < 0)
                        continue;
                if (i == 1) {
                        /* The device tree gets the board's revision and a free console UART. */
                        if (run_extractor(j, j->fds[1], true) < 0)
                                goto fail;
                        continue;
                }
                if (asprintf(&p, "%s/%s", j->tmpdir, files[i]) < 0) {
                        j->r = -ENOMEM;
                        goto fail;
                }
                r = copy_fd(j->fds[i], p, limits[i], head, sizeof head, &head_len);
                if (r < 0) {
                        set_import_error(j, r, "Cannot copy the %s", files[i]);
                        goto fail;
                }
                /* A qcow2 SD image naming a backing file (or an external data file) would make QEMU
                 * open a host path of the importer's choosing. */
                if (i == 2 && image_qcow2_refers_elsewhere(head, head_len)) {
                        set_import_error(j, -EPERM,
                                         "The sd image is a qcow2 file with a backing file or an external "
                                         "data file (flatten it first: qemu-img convert -O qcow2)");
                        goto fail;
                }
        }
meta:
        if (asprintf(&meta, "%s/meta", j->tmpdir) < 0) {
                j->r = -ENOMEM;
                goto fail;
        }
        {
                _cleanup_fclose_ FILE *f = fopen(meta, "wxe");
                if (!f) {
                        set_import_error(j, negative_errno(), "Cannot write %s", meta);
                        goto fail;
                }
                fprintf(f, "description=%s\ncmdline=%s\n", j->description, j->cmdline);
                if (fflush(f) != 0 || ferror(f)) {
                        set_import_error(j, -EIO, "Cannot write %s", meta);
                        goto fail;
                }
        }
        /* The rename is the commit point: a catalog entry is either complete or absent. */
        if (renameat2(AT_FDCWD, j->tmpdir, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                set_import_error(j, negative_errno(), "Cannot install image %s", j->name);
                goto fail;
        }
        j->r = 0;
        return;
fail:
        remove_tree(j->tmpdir);
}

static void import_done(void *userdata) {
        ImportJob *j = userdata;
        if (j->r < 0) {
                log_error("Import of image %s failed: %s", j->name, strempty(j->error));
                (void)sd_bus_reply_method_errorf(j->msg,
                                                 j->error_name     ? j->error_name
                                                 : j->r == -EEXIST ? PIEMU_ERROR_BUSY
                                                                   : PIEMU_ERROR_FAILED,
                                                 "Import of image %s failed: %s", j->name,
                                                 j->error ?: strerror(-j->r));
        } else {
                log_info("Imported image %s", j->name);
                (void)sd_bus_reply_method_return(j->msg, NULL);
        }
        import_job_free(j);
}

int import_job_new(Manager *m, sd_bus_message *msg, const char *name, const char *description,
                   const char *cmdline, const char *model, bool one_file, ImportJob **ret) {
        ImportJob *j = calloc(1, sizeof *j);

        if (!j)
                return -ENOMEM;
        *j = (ImportJob){.manager = m, .one_file = one_file, .fds = {-EBADF, -EBADF, -EBADF, -EBADF}};
        j->msg = sd_bus_message_ref(msg);
        j->name = strdup(name);
        j->description = strdup(description);
        j->cmdline = strdup(cmdline);
        j->model = strdup(model);
        if (!j->name || !j->description || !j->cmdline || !j->model) {
                import_job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* Hands the job its own copies of the caller's descriptors (kernel, dtb, sd, initrd; -1 for none)
 * and queues it on the import pool, where a slow import never holds up a Start. Frees the job on
 * failure. */
int import_job_submit(ImportJob *j, const int fds[4]) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(j->fds); i++)
                if (fds[i] >= 0 && (j->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0) {
                        r = negative_errno();
                        import_job_free(j);
                        return r;
                }
        r = worker_submit(j->manager->import_workers, import_work, import_done, j);
        if (r < 0)
                import_job_free(j);
        return r;
}

int image_remove_later(Manager *m, char *dir) {
        int r = worker_submit(m->import_workers, remove_tree_work, free, dir);
        if (r < 0)
                free(dir);
        return r;
}
