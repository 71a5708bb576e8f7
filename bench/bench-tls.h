/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What both line benches need of TLS: throwaway credentials made by tools/setup-tls.sh, and QEMU's
 * end of a line (a blocking gnutls client with the client certificate). */

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "macro.h"

#define SETUP_TLS PIEMU_SOURCE_ROOT "/tools/setup-tls.sh"

/* A fresh directory with a CA, piemud's server pair and QEMU's client pair. */
int tls_dir_make(char **ret);
/* Removes the files and the directory, and frees `dir`. */
void tls_dir_remove(char *dir);
DEFINE_TRIVIAL_CLEANUP_FUNC(char *, tls_dir_remove);
int tls_dial(const char *dir, uint16_t port, gnutls_session_t *ret);
