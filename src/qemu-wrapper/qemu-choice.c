/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "qemu-choice.h"

#include <string.h>

#include "qemu-flavor.h"

const char *qemu_choose(const char *env_value, const char *stock, const char *own) {
        /* Only the one value: the domain XML is piemud's, but a typo must not pick a binary. */
        if (env_value && strcmp(env_value, PIEMU_QEMU_ENV_OWN) == 0)
                return own;
        return stock;
}
