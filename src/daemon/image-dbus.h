/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* The image methods in org.piemu.Manager's vtable (manager-dbus.c); userdata is the Manager. */
int method_list_images(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_import_image(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_import_image_file(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_remove_image(sd_bus_message *msg, void *userdata, sd_bus_error *error);

/* The bus error for image_load()'s failure r: NoSuchImage when it is not there, Failed saying what
 * is wrong when it is there but broken. */
int image_bus_error(sd_bus_error *error, const char *image, int r);
