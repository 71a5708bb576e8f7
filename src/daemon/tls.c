/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <gnutls/x509.h>

#include "macro.h"

struct TlsCreds {
        unsigned n_ref;
        gnutls_certificate_credentials_t x509;
        gnutls_priority_t priority;
};

/* "<what>: <why>" into *ret_problem, for the one line piemud logs. */
static int problem(char **ret_problem, int r, const char *what, const char *why) {
        if (ret_problem && asprintf(ret_problem, "%s%s%s", what, *what ? ": " : "", why) < 0)
                *ret_problem = NULL;
        return r;
}

/* The key must be ours alone: a key others can read authenticates nothing. */
static int check_key_file(const char *path, char **ret_problem) {
        struct stat st;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                int r = negative_errno();
                return problem(ret_problem, r, path, strerror(-r));
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return problem(ret_problem, -EBADF, path, "not a regular file");
        if (st.st_mode & 0077)
                return problem(ret_problem, -EPERM, path,
                               "readable or writable by others than its owner (chmod 0400 it)");
        if (st.st_uid != geteuid())
                return problem(ret_problem, -EPERM, path, "not owned by the user piemud runs as");
        return 0;
}

int tls_creds_load(const char *dir, TlsCreds **ret, char **ret_problem) {
        _cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL;
        TlsCreds *c;
        int r;

        if (asprintf(&ca, "%s/ca-cert.pem", dir) < 0 || asprintf(&cert, "%s/server-cert.pem", dir) < 0 ||
            asprintf(&key, "%s/server-key.pem", dir) < 0)
                return -ENOMEM;
        if (access(ca, R_OK) < 0)
                return problem(ret_problem, negative_errno(), ca, strerror(errno));
        if (access(cert, R_OK) < 0)
                return problem(ret_problem, negative_errno(), cert, strerror(errno));
        r = check_key_file(key, ret_problem);
        if (r < 0)
                return r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        if (gnutls_certificate_allocate_credentials(&c->x509) < 0) {
                free(c);
                return -ENOMEM;
        }
        r = gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
        if (r <= 0) {
                tls_creds_unref(c);
                return problem(ret_problem, -EINVAL, ca,
                               r < 0 ? gnutls_strerror(r) : "holds no CA certificate");
        }
        r = gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
        if (r < 0) {
                tls_creds_unref(c);
                return problem(ret_problem, -EINVAL, cert, gnutls_strerror(r));
        }
        /* The system's default priorities (TLS 1.3 where both ends have it). */
        r = gnutls_priority_init(&c->priority, NULL, NULL);
        if (r < 0) {
                tls_creds_unref(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

TlsCreds *tls_creds_ref(TlsCreds *c) {
        if (c)
                c->n_ref++;
        return c;
}

TlsCreds *tls_creds_unref(TlsCreds *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        if (c->priority)
                gnutls_priority_deinit(c->priority);
        gnutls_certificate_free_credentials(c->x509);
        free(c);
        return NULL;
}

int tls_session_new_server(TlsCreds *c, int fd, gnutls_session_t *ret) {
        gnutls_session_t s;
        int r;

        r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK);
        if (r < 0)
                return -ENOMEM;
        r = gnutls_priority_set(s, c->priority);
        if (r >= 0)
                r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->x509);
        if (r < 0) {
                gnutls_deinit(s);
                return -EINVAL;
        }
        /* A client without a certificate, or with one that does not chain to our CA, fails the
         * handshake itself: nothing of the line is ever sent to it. */
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_cert(s, NULL, 0);
        gnutls_transport_set_int(s, fd);
        /* A stalled peer is dropped by the caller's own deadline, not by gnutls. */
        gnutls_handshake_set_timeout(s, 0);
        *ret = s;
        return 0;
}

int tls_session_verify_peer(gnutls_session_t s, char **ret_problem) {
        unsigned status = 0;
        int r;

        /* Checked again after the handshake: whatever the handshake did, no line is handed to a peer
         * whose chain does not verify. */
        r = gnutls_certificate_verify_peers2(s, &status);
        if (r < 0)
                return problem(ret_problem, -EACCES, "cannot verify the peer", gnutls_strerror(r));
        if (status != 0) {
                gnutls_datum_t out = {};
                if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) >= 0) {
                        problem(ret_problem, 0, "", (const char *)out.data);
                        gnutls_free(out.data);
                } else
                        problem(ret_problem, 0, "", "the certificate did not verify");
                return -EACCES;
        }
        return 0;
}
