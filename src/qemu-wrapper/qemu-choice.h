/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which QEMU the wrapper runs (see qemu-flavor.h): piemu's own when the environment asks for it
 * (piemud sets PIEMU_QEMU=piemu for a board it starts while piemu's QEMU is installed), Debian's
 * otherwise, capability probing included. env_value: getenv(PIEMU_QEMU_ENV), may be NULL. */
const char *qemu_choose(const char *env_value, const char *stock, const char *own);
