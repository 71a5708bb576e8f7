/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "manager.h"

/* An image import, the manager's long operation for ImportImage and ImportImageFile: on the import
 * workers it copies the caller's descriptors (kernel, dtb, SD card, initrd) into a temporary
 * directory of the catalog, or has the confined extractor (src/image-extract) take one Raspberry Pi
 * OS image apart there, writes its meta and renames it into place, so that a catalog entry is
 * complete or absent. The job answers its bus call when it is done. Authorization and argument
 * checks are the bus face's (image-dbus.c). */
typedef struct ImportJob ImportJob;

/* A job for image `name` (its descriptors not yet taken). */
int import_job_new(Manager *m, sd_bus_message *msg, const char *name, const char *description,
                   const char *cmdline, const char *model, bool one_file, ImportJob **ret);
/* Takes copies of the caller's descriptors (kernel, dtb, sd, initrd; -1 for none) and queues the job,
 * where a slow import never holds up a Start. Frees the job on failure. */
int import_job_submit(ImportJob *j, const int fds[4]);
void import_job_free(ImportJob *j);

/* Deletes a directory of the catalog (a removed image, already renamed out of the way) on the import
 * workers: an SD image can be gigabytes. Takes `dir`. */
int image_remove_later(Manager *m, char *dir);
