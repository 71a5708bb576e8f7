/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#define PIEMU_NAME_MAX 63

/* Board and image names: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}. The same rule keeps image
 * names from ever being a path ("..", "/", "") and domain names within libvirt's limits. */
bool piemu_name_is_valid(const char *name);
