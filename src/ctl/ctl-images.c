/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The image verbs: "images", "import-image" and "remove-image" (the Manager's ListImages,
 * ImportImageFile, ImportImage and RemoveImage). Standard input and -H have their spooler in
 * ctl-import.c. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#define IMPORT_TIMEOUT (30 * 60 * USEC_PER_SEC) /* copying an SD card image */

int verb_images(int argc, char *argv[]) {
        static const ListColumn columns[] = {
                {"NAME", "name", false},
                {"DESCRIPTION", "description", false},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(list_freep) List *l = NULL;
        const char *name, *description;
        sd_bus *bus;
        int r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ListImages", ctl_call_timeout(0), false,
                     &reply, "list images", NULL, NULL, NULL);
        if (r != CTL_EXIT_OK)
                return r;

        l = list_new(columns, ELEMENTSOF(columns));
        if (!l)
                return ctl_oom();
        r = sd_bus_message_enter_container(reply, 'a', "(ss)");
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        while ((r = sd_bus_message_read(reply, "(ss)", &name, &description)) > 0)
                if (list_add(l, (const char *const[]){name, description}) < 0)
                        return ctl_oom();
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", NULL, NULL);
        list_sort(l);
        return list_print(l, "image", "No images. Import one with 'piemuctl import-image'.");
}

/* We open the files, with our own permissions, and pass descriptors: piemud never opens a path a client
 * names. Returns an exit status. */
int ctl_open_image_file(const char *what, const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "Cannot open the %s file %s: %s\n", what, path, strerror(errno));
                return CTL_EXIT_USAGE;
        }
        if (fstat(fd, &st) < 0) {
                fprintf(stderr, "Cannot stat the %s file %s: %s\n", what, path, strerror(errno));
                return CTL_EXIT_USAGE;
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
                fprintf(stderr, "The %s file %s is not a regular file.\n", what, path);
                return CTL_EXIT_USAGE;
        }
        *ret_fd = TAKE_FD(fd);
        return CTL_EXIT_OK;
}

/* Both forms of ImportImage end their call with options (a{sv}): opened with the description... */
static int open_import_options(sd_bus_message *m) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_description)
                r = sd_bus_message_append(m, "{sv}", "description", "s", arg_description);
        return r;
}

/* ...and closed and sent here, r being how building the call went. An import may take minutes. */
static int send_import(sd_bus *bus, sd_bus_message *m, const char *name, int r) {
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_error(NULL, r, "import the image", NULL, name);
        return ctl_call_message(bus, m, ctl_call_timeout(IMPORT_TIMEOUT), true, NULL, "import the image",
                                NULL, name);
}

/* import-image NAME FILE: one Raspberry Pi OS-style .img or .img.xz, which piemud takes apart. */
static int import_disk_image(const char *name, const char *file) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int sd = -EBADF;
        sd_bus *bus;
        int r;

        if (arg_kernel || arg_dtb || arg_sd || arg_initrd || arg_cmdline) {
                fprintf(stderr, "import-image NAME FILE takes no --kernel, --dtb, --sd, --initrd or "
                                "--cmdline: they come from FILE's boot partition.\n");
                return CTL_EXIT_USAGE;
        }
        if (arg_host)
                return ctl_import_over_ssh(name, file);
        if (streq(file, "-"))
                r = ctl_spool_stdin(&sd);
        else
                r = ctl_open_image_file("disk image", file, &sd);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_new_call(bus, &m, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ImportImageFile");
        if (r >= 0)
                r = sd_bus_message_append(m, "sh", name, sd);
        if (r >= 0)
                r = open_import_options(m);
        if (r >= 0 && arg_model)
                r = sd_bus_message_append(m, "{sv}", "model", "s", arg_model);
        return send_import(bus, m, name, r);
}

/* import-image NAME --kernel=FILE --dtb=FILE --sd=FILE [--initrd=FILE]: the files as they are. */
static int import_boot_files(const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int kernel = -EBADF, dtb = -EBADF, sd = -EBADF, initrd = -EBADF;
        sd_bus *bus;
        int r;

        if (arg_host && (arg_kernel || arg_dtb || arg_sd || arg_initrd)) {
                fprintf(stderr,
                        "import-image --kernel/--dtb/--sd does not work over -H: piemud takes those files "
                        "as "
                        "file descriptors, and the ssh bridge to %s cannot pass descriptors.\n"
                        "Import one disk image instead (piemuctl -H %s import-image NAME FILE.img[.xz], "
                        "which "
                        "copies it over ssh), or run piemuctl on %s itself.\n",
                        arg_host, arg_host, arg_host);
                return CTL_EXIT_USAGE;
        }
        if (!arg_kernel || !arg_dtb || !arg_sd) {
                fprintf(stderr, "import-image needs FILE (one disk image), or --kernel=FILE, --dtb=FILE "
                                "and --sd=FILE.\n");
                return CTL_EXIT_USAGE;
        }

        r = ctl_open_image_file("kernel", arg_kernel, &kernel);
        if (r == CTL_EXIT_OK)
                r = ctl_open_image_file("device tree", arg_dtb, &dtb);
        if (r == CTL_EXIT_OK)
                r = ctl_open_image_file("SD card image", arg_sd, &sd);
        if (r == CTL_EXIT_OK && arg_initrd)
                r = ctl_open_image_file("initrd", arg_initrd, &initrd);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_new_call(bus, &m, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "ImportImage");
        if (r >= 0)
                r = sd_bus_message_append(m, "shhh", name, kernel, dtb, sd);
        if (r >= 0)
                r = open_import_options(m);
        if (r >= 0 && arg_cmdline)
                r = sd_bus_message_append(m, "{sv}", "cmdline", "s", arg_cmdline);
        if (r >= 0 && initrd >= 0)
                r = sd_bus_message_append(m, "{sv}", "initrd", "h", initrd);
        return send_import(bus, m, name, r);
}

int verb_import_image(int argc, char *argv[]) {
        const char *name = argv[1];
        int r;

        r = ctl_check_name("image", name);
        if (r != CTL_EXIT_OK)
                return r;
        if (argc == 3)
                return import_disk_image(name, argv[2]);
        return import_boot_files(name);
}

int verb_remove_image(int argc, char *argv[]) {
        const char *name = argv[1];
        sd_bus *bus;
        int r;

        r = ctl_check_name("image", name);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_bus(&bus);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "RemoveImage", ctl_call_timeout(0),
                        true, NULL, "remove the image", NULL, name, "s", name);
}
