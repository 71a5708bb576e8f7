/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board.h"
#include "config.h"
#include "extract-run.h"
#include "i2c-devices.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "manager-wires.h"
#include "peers.h"
#include "names.h"
#include "pi-models.h"
#include "piemu-errors.h"
#include "polkit.h"

#define CMDLINE_MAX  1024
#define DESC_MAX     256
#define KERNEL_MAX   (256ULL << 20)
#define DTB_MAX      (4ULL << 20)
#define SD_IMAGE_MAX (64ULL << 30)
/* A Raspberry Pi OS release is ~0.5-1.2 GB of xz for ~3-6 GB of disk: decompressing it on this
 * kind of machine takes a few minutes. */
#define IMPORT_TIMEOUT_USEC (30ULL * 60 * 1000 * 1000)

static bool text_is_safe(const char *s, size_t max) {
        size_t n = 0;
        for (const char *p = s; *p; p++, n++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || n >= max)
                        return false;
        return true;
}

static int verify_simple(Manager *m, sd_bus_message *msg, const char *action, const char *name,
                         const char *verb, sd_bus_error *error) {
        const char *details[] = {"board", name, "verb", verb, NULL};
        if (streq(action, "org.piemu.manage-images"))
                details[0] = "image";
        return polkit_verify_async(msg, action, details, m->polkit, error);
}

/* One known a{sv} option: its key, its D-Bus type ("b", "s", "h" or "as") and where it goes (for "as",
 * a char*** the caller frees with strv_free). */
typedef struct OptionSpec {
        const char *key;
        const char *type;
        void *ret;
} OptionSpec;

/* Reads an a{sv} of options: unknown keys and wrong types are InvalidOption errors that
 * list what is accepted, so a typo never silently does nothing. */
static int read_options(sd_bus_message *msg, const OptionSpec *specs, size_t n_specs, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const OptionSpec *spec = NULL;
                const char *key, *sig = NULL;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(msg, NULL, &sig);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_specs; i++)
                        if (streq(key, specs[i].key))
                                spec = &specs[i];
                if (!spec) {
                        char known[256] = "";
                        for (size_t i = 0; i < n_specs; i++)
                                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s %s",
                                         i ? ", " : "", specs[i].key, specs[i].type);
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Unknown option '%s' (known: %s).", key, known);
                }
                if (!streq_ptr(sig, spec->type))
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option '%s' has the wrong type '%s' (expected %s).", key,
                                                 strempty(sig), spec->type);
                if (streq(spec->type, "as")) {
                        char ***l = spec->ret;
                        strv_free(*l); /* a key given twice: the last one counts, as for the others */
                        *l = NULL;
                        r = sd_bus_message_enter_container(msg, 'v', "as");
                        if (r >= 0)
                                r = sd_bus_message_read_strv(msg, l);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(msg);
                } else
                        r = sd_bus_message_read(msg, "v", spec->type, spec->ret);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* CreateBoard's "i2c": entries "DEVICE@ADDRESS" of models piemu offers, one device per address. */
static int read_i2c_option(char **l, BoardConfig *c, sd_bus_error *error) {
        for (char **spec = l; spec && *spec; spec++) {
                const I2cModel *model;
                uint8_t address;
                int r;

                r = i2c_spec_parse(*spec, &model, &address);
                if (r == -ENOENT)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': no device '%.*s' (piemu offers: %s).",
                                                 (int)strcspn(*spec, "@"), *spec, i2c_model_names());
                if (r < 0)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': '%s' is not DEVICE@ADDRESS with an address "
                                                 "from 0x%02x to 0x%02x (e.g. tmp105@0x48).",
                                                 *spec, I2C_ADDRESS_MIN, I2C_ADDRESS_MAX);
                r = board_config_add_i2c(c, model->name, address);
                if (r == -EEXIST)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': two devices at address 0x%02x.", address);
                if (r == -E2BIG)
                        return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                                 "Option 'i2c': at most %d devices.", I2C_DEVICES_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int method_create_board(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *image;
        BoardConfig c = {};
        Board *b = NULL;
        uid_t uid;
        int r;

        r = sd_bus_message_read(msg, "ss", &name, &image);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_INVALID_NAME,
                        "Invalid board name '%s': use 1-63 characters [A-Za-z0-9_.-], starting "
                        "with a letter or digit.",
                        name);
        if (!isempty(image) && !piemu_name_is_valid(image))
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_INVALID_NAME,
                        "Invalid image name '%s': images are named from the catalog, not by path.", image);
        const char *cmdline = NULL, *model = NULL;
        const PiModel *pi_model;
        _cleanup_strv_free_ char **i2c = NULL;
        _cleanup_(board_config_done) BoardConfig i2c_config = {};
        int persistent = false;
        const OptionSpec specs[] = {
                {"persistent", "b", &persistent},
                {"cmdline", "s", &cmdline},
                {"model", "s", &model},
                {"i2c", "as", &i2c},
        };
        r = read_options(msg, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        r = read_i2c_option(i2c, &i2c_config, error);
        if (r < 0)
                return r;
        if (cmdline && !text_is_safe(cmdline, CMDLINE_MAX))
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_INVALID_OPTION,
                        "Option 'cmdline' must be printable ASCII of at most %d characters.", CMDLINE_MAX);
        pi_model = pi_model_find(model ?: PIEMU_DEFAULT_MODEL);
        if (!pi_model)
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "Unknown model '%s' (models: %s).", model, pi_model_names());
        /* "" is the model's own default image. Whether the image boots on the model is board_define's
         * question, which reads the image anyway. */
        if (isempty(image))
                image = pi_model->default_image;

        r = verify_simple(m, msg, "org.piemu.create-board", name, "create", error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        if (manager_find_board(m, name))
                return sd_bus_error_setf(error, PIEMU_ERROR_BOARD_EXISTS, "Board %s already exists.", name);
        /* Known by now (polkit's check asked for it); if not, asked without blocking and the call
         * comes back. */
        r = polkit_registry_sender_uid_async(m->polkit, msg, &uid);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        c = (BoardConfig){
                .name = (char *)name,
                .image = (char *)image,
                .model = (char *)pi_model->name,
                .cmdline = (char *)cmdline,
                .owner = uid,
                .persistent = persistent,
                .i2c = i2c_config.i2c, /* copied by board_new */
                .n_i2c = i2c_config.n_i2c,
        };
        r = board_new(m, &c, &b);
        if (r < 0)
                return r;
        r = manager_add_board(m, b);
        if (r < 0) {
                board_unref(b);
                return r;
        }
        /* Hidden from the bus (and from BoardAdded) until libvirt has the domain: not `announced`. */
        r = board_define(b, msg, error);
        if (r < 0) {
                manager_remove_board(m, b);
                return r;
        }
        return 1;
}

static int find_board_or_fail(Manager *m, sd_bus_message *msg, Board **ret, sd_bus_error *error) {
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid board name '%s'.", name);
        Board *b = manager_find_board(m, name);
        if (!b || !b->announced)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_BOARD, "No board named %s.", name);
        *ret = b;
        return 0;
}

static int method_delete_board(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        Board *b;
        int r;

        r = find_board_or_fail(m, msg, &b, error);
        if (r < 0)
                return r;
        r = board_verify(b, msg, "delete", error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        r = board_delete(b, msg, error);
        return r < 0 ? r : 1;
}

static int method_get_board(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        Board *b;
        int r;

        /* Board names and state are public, as in `machinectl list`. */
        r = find_board_or_fail(m, msg, &b, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", b->path);
}

static int method_list_boards(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssuo)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_boards; i++) {
                Board *b = m->boards[i];
                if (!b->announced)
                        continue;
                r = sd_bus_message_append(reply, "(ssuo)", b->config.name, board_state_to_string(b->state),
                                          (uint32_t)b->config.owner, b->path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_images(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        Image **l = NULL;
        size_t n = 0;
        int r;

        r = image_list(m->images_dir, &l, &n);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read the image catalog %s: %m",
                                               m->images_dir);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ss)", l[i]->name, l[i]->description);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        image_list_free(l, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- ImportImage: copies from the caller's descriptors on a worker thread ---- */

typedef struct ImportJob {
        Manager *manager;
        sd_bus_message *msg;
        char *name, *description, *cmdline, *model;
        int fds[4];    /* kernel, dtb, sd, initrd (or -1); for ImportImageFile: the image in fds[2] */
        bool one_file; /* ImportImageFile: piemu-image-extract takes the image apart */
        char *tmpdir;
        int r;
        const char *error_name; /* a named bus error for a rejected image, else NULL */
        char *error;
} ImportJob;

static void import_job_free(ImportJob *j) {
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

/* What both import methods do once the arguments are valid: authorize (1 allowed, 0 polkit is asked,
 * < 0 refused), refuse a name that exists, and make the job (its descriptors still -EBADF). */
static int import_job_new(Manager *m, sd_bus_message *msg, const char *name, const char *description,
                          const char *cmdline, const char *model, ImportJob **ret, sd_bus_error *error) {
        _cleanup_(image_freep) Image *existing = NULL;
        ImportJob *j;
        int r;

        r = verify_simple(m, msg, "org.piemu.manage-images", name, "import-image", error);
        if (r <= 0)
                return r;
        if (image_load(m->images_dir, name, &existing) >= 0)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "Image %s already exists; remove it first.", name);
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (ImportJob){.manager = m, .fds = {-EBADF, -EBADF, -EBADF, -EBADF}};
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
        return 1;
}

/* Hands the job its own copies of the caller's descriptors (kernel, dtb, sd, initrd; -1 for none)
 * and queues it on the import pool, where a slow import never holds up a Start. Frees the job on
 * failure. */
static int import_job_submit(Manager *m, ImportJob *j, const int fds[4]) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(j->fds); i++)
                if (fds[i] >= 0 && (j->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0) {
                        r = negative_errno();
                        import_job_free(j);
                        return r;
                }
        r = worker_submit(m->import_workers, import_work, import_done, j);
        if (r < 0)
                import_job_free(j);
        return r;
}

static int method_import_image(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *description = "", *cmdline = "console=ttyAMA0,115200";
        int kernel, dtb, sd, initrd = -1;
        ImportJob *j;
        int r;

        r = sd_bus_message_read(msg, "shhh", &name, &kernel, &dtb, &sd);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid image name '%s'.", name);
        const OptionSpec specs[] = {
                {"description", "s", &description},
                {"cmdline", "s", &cmdline},
                {"initrd", "h", &initrd},
        };
        r = read_options(msg, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        if (!text_is_safe(description, DESC_MAX) || !text_is_safe(cmdline, CMDLINE_MAX))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "description and cmdline must be short printable ASCII.");
        int fds[4] = {kernel, dtb, sd, initrd};
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                struct stat st;
                if (fds[i] < 0)
                        continue;
                /* Regular files only: a FIFO or a device could keep an import reading for ever. */
                if (fstat(fds[i], &st) < 0 || !S_ISREG(st.st_mode))
                        return sd_bus_error_setf(
                                error, PIEMU_ERROR_INVALID_OPTION,
                                "The %s descriptor is not a regular file (pipes, FIFOs and "
                                "devices are refused).",
                                (const char *const[]){"kernel", "dtb", "sd_image", "initrd"}[i]);
        }

        r = import_job_new(m, msg, name, description, cmdline, PIEMU_DEFAULT_MODEL, &j, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit is asked; the call comes back */
        r = import_job_submit(m, j, fds);
        return r < 0 ? r : 1;
}

static int method_import_image_file(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *description = "", *model = PIEMU_DEFAULT_MODEL;
        struct stat st;
        ImportJob *j;
        int fd, r;

        r = sd_bus_message_read(msg, "sh", &name, &fd);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid image name '%s'.", name);
        const OptionSpec specs[] = {
                {"description", "s", &description},
                {"model", "s", &model},
        };
        r = read_options(msg, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        if (!text_is_safe(description, DESC_MAX))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "description must be short printable ASCII.");
        if (!streq(model, PIEMU_DEFAULT_MODEL))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "Unsupported model '%s' (supported: %s).", model,
                                         PIEMU_DEFAULT_MODEL);
        /* A regular file: a FIFO or a device could keep an import reading for ever. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_OPTION,
                                         "The image descriptor is not a regular file (pipes, FIFOs and "
                                         "devices are refused).");

        r = import_job_new(m, msg, name, description, "", model, &j, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit is asked; the call comes back */
        j->one_file = true;
        r = import_job_submit(m, j, (const int[4]){-EBADF, -EBADF, fd, -EBADF});
        if (r < 0)
                return r;
        log_info("Importing image %s from one file (%s)", name, model);
        return 1;
}

static int method_remove_image(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *dir = NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid image name '%s'.", name);
        r = verify_simple(m, msg, "org.piemu.manage-images", name, "remove-image", error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        if (asprintf(&dir, "%s/%s", m->images_dir, name) < 0)
                return -ENOMEM;
        /* A broken entry can be removed too: only its directory has to be there. */
        struct stat st;
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_IMAGE, "No such image: %s", name);
        if (manager_image_in_use(m, name))
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "Image %s is used by a board; delete it first.", name);
        /* Out of the catalog at once (a rename), deleted off the loop: an SD image can be gigabytes. */
        _cleanup_free_ char *gone = NULL;
        if (asprintf(&gone, "%s/.removing-%s-XXXXXX", m->images_dir, name) < 0)
                return -ENOMEM;
        if (!mkdtemp(gone) || rename(dir, gone) < 0) {
                r = negative_errno();
                if (gone)
                        (void)rmdir(gone);
                return sd_bus_error_setf(error, PIEMU_ERROR_FAILED, "Cannot remove image %s: %s", name,
                                         strerror(-r));
        }
        r = worker_submit(m->import_workers, remove_tree_work, free, gone);
        if (r >= 0)
                TAKE_PTR(gone);
        log_info("Removed image %s", name);
        return sd_bus_reply_method_return(msg, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PIEMU_VERSION);
}

/* The one model table (src/shared/pi-models.c), in its order (the default model first): name,
 * description, default image, board revision, RAM in MiB, CPUs. piemuctl models, its completion and
 * the Cockpit page read it here rather than keeping lists of their own. */
static int property_get_models(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        size_t n;
        const PiModel *models = pi_models(&n);
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sssuuu)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(sssuuu)", models[i].name, models[i].title,
                                          models[i].default_image, models[i].revision, models[i].memory_mib,
                                          models[i].vcpus);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Models", "a(sssuuu)", property_get_models, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("CreateBoard", SD_BUS_ARGS("s", name, "s", image, "a{sv}", options),
                                SD_BUS_RESULT("o", board), method_create_board, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeleteBoard", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_delete_board,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetBoard", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", board),
                                method_get_board, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListBoards", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssuo)", boards),
                                method_list_boards, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListImages", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ss)", images),
                                method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "ImportImage",
                SD_BUS_ARGS("s", name, "h", kernel, "h", dtb, "h", sd_image, "a{sv}", options),
                SD_BUS_NO_RESULT, method_import_image, SD_BUS_VTABLE_UNPRIVILEGED),
        /* One Raspberry Pi OS-style disk image (.img or .img.xz): kernel, dtb, initramfs and
         * cmdline come from its boot partition. */
        SD_BUS_METHOD_WITH_ARGS("ImportImageFile", SD_BUS_ARGS("s", name, "h", image, "a{sv}", options),
                                SD_BUS_NO_RESULT, method_import_image_file, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveImage", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove_image,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        /* Wires between boards' pins: piemud drives to_pin whenever from_pin changes. */
        SD_BUS_METHOD_WITH_ARGS("AddWire",
                                SD_BUS_ARGS("s", from_board, "u", from_pin, "s", to_board, "u", to_pin),
                                SD_BUS_RESULT("s", id), manager_method_add_wire, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveWire", SD_BUS_ARGS("s", id), SD_BUS_NO_RESULT,
                                manager_method_remove_wire, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListWires", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssusu)", wires),
                                manager_method_list_wires, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("BoardAdded", SD_BUS_ARGS("s", name, "o", board), 0),
        SD_BUS_SIGNAL_WITH_ARGS("BoardRemoved", SD_BUS_ARGS("s", name, "o", board), 0),
        SD_BUS_VTABLE_END,
};

int manager_image_error(sd_bus_error *error, const char *image, int r) {
        if (r == -ENOENT || r == -ENOTDIR)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_IMAGE, "No such image: %s", image);
        if (r == -ENOMEM)
                return sd_bus_error_set_errno(error, r);
        /* It is there, but unusable: saying "no such image" would send the caller looking elsewhere. */
        return sd_bus_error_setf(
                error, PIEMU_ERROR_FAILED,
                "Image %s in the catalog is broken (%s): its kernel, dtb, sd.img and meta must "
                "be regular files, meta valid text. Remove it and import it again.",
                image, r == -EINVAL ? "invalid meta" : strerror(-r));
}

static void on_peer_gone(const char *name, void *userdata) {
        Manager *m = userdata;

        polkit_registry_forget(m->polkit, name);
        for (size_t i = 0; i < m->n_boards; i++)
                watchers_forget(&m->boards[i]->watchers, name);
}

static int on_bus_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        /* Off the bus piemud can do nothing for anyone, and D-Bus activation may already be starting
         * another one: leave at once. Boards keep running; the next piemud adopts them. */
        log_error("Lost the connection to the bus; exiting. Running boards keep running.");
        (void)sd_event_exit(m->event, -ECONNRESET);
        return 0;
}

/* Property getters cannot wait for the bus, yet two Board properties are shown only to the board's
 * owner and root (board-dbus.c). So before a property read reaches them, make sure the caller's
 * uid is remembered: if not, ask the bus without blocking, hold the call back (sd-bus puts it on the
 * read queue again when the answer is in, uid-cache.c) and let it through then. */
static int on_bus_message(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *path;
        uid_t uid;
        int r;

        if (!sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "Get") &&
            !sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "GetAll") &&
            !sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"))
                return 0;
        path = sd_bus_message_get_path(msg);
        if (!path || !(streq(path, "/org/piemu") || startswith(path, "/org/piemu/board/")))
                return 0;
        r = polkit_registry_sender_uid_async(m->polkit, msg, &uid);
        /* 0: held back until the bus answers. An error: let it through; the getters then show the
         * private properties to nobody. */
        return r == 0 ? 1 : 0;
}

int manager_connect_bus(Manager *m, bool user_bus) {
        int r;

        r = user_bus ? sd_bus_default_user(&m->bus) : sd_bus_default_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the %s bus: %m", user_bus ? "user" : "system");
        r = sd_bus_add_filter(m->bus, NULL, on_bus_message, m);
        if (r < 0)
                return log_error_errno(r, "Cannot install the bus filter: %m");
        r = sd_bus_add_object_vtable(m->bus, NULL, "/org/piemu", "org.piemu.Manager", manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Cannot register the manager object: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, "/org/piemu/board", "org.piemu.Board", board_vtable,
                                       board_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Cannot register board objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, "/org/piemu/board", board_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Cannot register the board enumerator: %m");
        r = sd_bus_add_object_manager(m->bus, NULL, "/org/piemu");
        if (r < 0)
                return log_error_errno(r, "Cannot register the object manager: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the bus to the event loop: %m");
        /* A local match: sd-bus synthesizes it when the connection goes, nothing is asked of the bus. */
        r = sd_bus_match_signal(m->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_bus_disconnected, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the bus connection: %m");
        r = peers_attach(m->peers, m->bus);
        if (r >= 0)
                r = peers_add_handler(m->peers, on_peer_gone, m);
        if (r < 0)
                return log_error_errno(r, "Cannot subscribe to callers leaving the bus: %m");
        r = sd_bus_request_name(m->bus, "org.piemu", 0);
        if (r < 0)
                return log_error_errno(
                        r, "Cannot own the name org.piemu (is another piemud running, and does the "
                           "bus policy allow this user?): %m");
        return 0;
}
