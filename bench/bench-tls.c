/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bench-tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- throwaway credentials: a CA, piemud's server pair and QEMU's client pair ---- */

static const char *const tls_files[] = {
        "ca-cert.pem",    "ca-key.pem",      "server-cert.pem",
        "server-key.pem", "client-cert.pem", "client-key.pem",
};

void tls_dir_remove(char *dir) {
        if (!dir)
                return;
        for (size_t i = 0; i < ELEMENTSOF(tls_files); i++) {
                _cleanup_free_ char *f = NULL;
                if (asprintf(&f, "%s/%s", dir, tls_files[i]) >= 0)
                        (void)unlink(f);
        }
        (void)rmdir(dir);
        free(dir);
}

/* The very script an administrator runs, so that the bench's certificates have the same
 * algorithms and extensions as the ones QEMU and piemud use on a real host. */
int tls_dir_make(char **ret) {
        _cleanup_(tls_dir_removep) char *dir = NULL;
        int status;
        pid_t pid;

        dir = strdup("/tmp/piemu-bench-tls-XXXXXX");
        if (!dir)
                return -ENOMEM;
        if (!mkdtemp(dir)) {
                free(TAKE_PTR(dir));
                return negative_errno();
        }
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                execl(SETUP_TLS, SETUP_TLS, "--throwaway", dir, (char *)NULL);
                fprintf(stderr, "%s: %s\n", SETUP_TLS, strerror(errno));
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return negative_errno();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        *ret = TAKE_PTR(dir);
        return 0;
}

/* QEMU's end of the line: a blocking TLS client of 127.0.0.1:port with the client pair in `dir`,
 * which verifies piemud's certificate against the CA and the address, as QEMU does. The child
 * process it runs in exits on any failure, so nothing here is freed. */
int tls_dial(const char *dir, uint16_t port, gnutls_session_t *ret) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        gnutls_certificate_credentials_t x509;
        gnutls_session_t s;
        char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
        int fd, r, one = 1;

        snprintf(ca, sizeof ca, "%s/ca-cert.pem", dir);
        snprintf(cert, sizeof cert, "%s/client-cert.pem", dir);
        snprintf(key, sizeof key, "%s/client-key.pem", dir);
        if (gnutls_certificate_allocate_credentials(&x509) < 0 ||
            gnutls_certificate_set_x509_trust_file(x509, ca, GNUTLS_X509_FMT_PEM) <= 0 ||
            gnutls_certificate_set_x509_key_file(x509, cert, key, GNUTLS_X509_FMT_PEM) < 0 ||
            gnutls_init(&s, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s) < 0 ||
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, x509) < 0)
                return -EINVAL;
        gnutls_session_set_verify_cert(s, "127.0.0.1", 0);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
                return negative_errno();
        /* Small writes (a GPIO report) go out at once, as QEMU's would. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        gnutls_transport_set_int(s, fd);
        gnutls_handshake_set_timeout(s, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) {
                fprintf(stderr, "fake QEMU: TLS handshake: %s\n", gnutls_strerror(r));
                return -EPROTO;
        }
        *ret = s;
        return 0;
}
