/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The image methods of org.piemu.Manager: ListImages, ImportImage, ImportImageFile, RemoveImage.
 * They read, validate and authorize; the import itself is image-import.c's job. */
#include "image-dbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board-config.h"
#include "bus-util.h"
#include "image-import.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "names.h"
#include "pi-models.h"
#include "piemu-errors.h"

#define CMDLINE_MAX 1024
#define DESC_MAX    256

int method_list_images(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
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

/* Both imports: authorized as managing images (1 allowed, 0 polkit is asked, < 0 refused), and a name
 * that exists is refused. */
static int authorize_import(Manager *m, sd_bus_message *msg, const char *name, sd_bus_error *error) {
        _cleanup_(image_freep) Image *existing = NULL;
        int r;

        r = manager_verify(m, msg, "org.piemu.manage-images", name, "import-image", error);
        if (r <= 0)
                return r;
        if (image_load(m->images_dir, name, &existing) >= 0)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "Image %s already exists; remove it first.", name);
        return 1;
}

int method_import_image(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
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
        const BusOption specs[] = {
                {"description", "s", &description},
                {"cmdline", "s", &cmdline},
                {"initrd", "h", &initrd},
        };
        r = bus_read_options(msg, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        if (!bus_text_is_safe(description, DESC_MAX) || !bus_text_is_safe(cmdline, CMDLINE_MAX))
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

        r = authorize_import(m, msg, name, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit is asked; the call comes back */
        r = import_job_new(m, msg, name, description, cmdline, PIEMU_DEFAULT_MODEL, false, &j);
        if (r >= 0)
                r = import_job_submit(j, fds);
        return r < 0 ? r : 1;
}

int method_import_image_file(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
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
        const BusOption specs[] = {
                {"description", "s", &description},
                {"model", "s", &model},
        };
        r = bus_read_options(msg, specs, ELEMENTSOF(specs), error);
        if (r < 0)
                return r;
        if (!bus_text_is_safe(description, DESC_MAX))
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

        r = authorize_import(m, msg, name, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* 0: polkit is asked; the call comes back */
        r = import_job_new(m, msg, name, description, "", model, true, &j);
        if (r >= 0)
                r = import_job_submit(j, (const int[4]){-EBADF, -EBADF, fd, -EBADF});
        if (r < 0)
                return r;
        log_info("Importing image %s from one file (%s)", name, model);
        return 1;
}

int method_remove_image(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *dir = NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!piemu_name_is_valid(name))
                return sd_bus_error_setf(error, PIEMU_ERROR_INVALID_NAME, "Invalid image name '%s'.", name);
        r = manager_verify(m, msg, "org.piemu.manage-images", name, "remove-image", error);
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
        (void)image_remove_later(m, TAKE_PTR(gone));
        log_info("Removed image %s", name);
        return sd_bus_reply_method_return(msg, NULL);
}

int image_bus_error(sd_bus_error *error, const char *image, int r) {
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
