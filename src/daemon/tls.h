/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gnutls/gnutls.h>

/* piemud's side of the TLS serial lines. QEMU dials piemud (a TLS client with piemu's client
 * certificate, see tools/setup-tls.sh); piemud is the TLS server and accepts only a peer whose
 * certificate chains to the CA in its credentials directory. No crypto is written here: this
 * only loads the files and sets gnutls up. */

/* The documented place of piemud's credentials (piemud(8)): ca-cert.pem, server-cert.pem and
 * server-key.pem, the key readable by the piemu user only. */
#define TLS_DIR_DEFAULT "/etc/piemu/tls"
/* piemud listens there for QEMU's qtest channels (board-qtest.c). */
#define QTEST_DIR_DEFAULT "/run/piemu/qtest"

typedef struct TlsCreds TlsCreds;

/* Loads <dir>/ca-cert.pem, server-cert.pem, server-key.pem. On failure, *ret_problem says in one
 * sentence what is missing or wrong (which file, and why). */
int tls_creds_load(const char *dir, TlsCreds **ret, char **ret_problem);
TlsCreds *tls_creds_ref(TlsCreds *c);
TlsCreds *tls_creds_unref(TlsCreds *c);

/* A non-blocking server session on `fd` that requires and verifies the client's certificate
 * during the handshake (a peer without one, or with one from another CA, fails it). */
int tls_session_new_server(TlsCreds *c, int fd, gnutls_session_t *ret);
/* After a completed handshake: 0 if the peer's certificate chain verified against the CA. */
int tls_session_verify_peer(gnutls_session_t s, char **ret_problem);
