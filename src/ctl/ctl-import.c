/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* import-image's ways around a descriptor piemud cannot be handed directly: standard input ("-") is
 * spooled into an unnamed file first, and over -H the image goes through ssh to a piemuctl on the
 * other host. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

static int write_all(int fd, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                size -= (size_t)n;
        }
        return 0;
}

static int refuse_terminal_stdin(void) {
        if (!isatty(STDIN_FILENO))
                return CTL_EXIT_OK;
        fprintf(stderr, "import-image NAME - reads the image from standard input, which is a terminal.\n"
                        "Redirect or pipe the image into it: piemuctl import-image NAME - < FILE.img\n");
        return CTL_EXIT_USAGE;
}

/* import-image NAME -: piemud takes a regular file (a pipe could keep its extractor waiting for ever), so
 * standard input is copied into a file nobody else can open: unnamed (O_TMPFILE), mode 0600, under
 * /var/tmp because images are large and /tmp is often in memory. Runs of zeros become holes: a release's
 * .img is mostly empty space. Returns an exit status; *ret_fd is a read-only descriptor of the copy. */
int ctl_spool_stdin(int *ret_fd) {
        const size_t buf_size = 128 * 1024;
        _cleanup_close_ int fd = -EBADF, ro = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        char proc[64];
        off_t size = 0;
        int r;

        r = refuse_terminal_stdin();
        if (r != CTL_EXIT_OK)
                return r;

        fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
                /* A file system without O_TMPFILE: a named file, unlinked at once. */
                char t[] = "/var/tmp/piemuctl-import-XXXXXX";

                fd = mkostemp(t, O_CLOEXEC);
                if (fd >= 0)
                        (void)unlink(t);
        }
        if (fd < 0) {
                fprintf(stderr, "Cannot create a temporary file in /var/tmp for the image: %s\n",
                        strerror(errno));
                return CTL_EXIT_FAILURE;
        }

        buf = malloc(buf_size);
        if (!buf)
                return ctl_oom();
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, buf_size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "Cannot read the image from standard input: %s\n", strerror(errno));
                        return CTL_EXIT_USAGE;
                }
                if (n == 0)
                        break;
                if (buf[0] == 0 && memcmp(buf, buf + 1, (size_t)n - 1) == 0) {
                        if (lseek(fd, n, SEEK_CUR) < 0)
                                r = negative_errno();
                } else
                        r = write_all(fd, buf, (size_t)n);
                if (r < 0) {
                        fprintf(stderr, "Cannot store the image in /var/tmp: %s\n", strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                size += n;
        }
        if (size == 0) {
                fprintf(stderr, "Standard input was empty: there is no image to import.\n");
                return CTL_EXIT_USAGE;
        }
        /* Holes at the end only count once the size says so. */
        if (ftruncate(fd, size) < 0) {
                fprintf(stderr, "Cannot store the image in /var/tmp: %s\n", strerror(errno));
                return CTL_EXIT_FAILURE;
        }

        /* piemud only reads: hand it a read-only descriptor if /proc lets us open one. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ro = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (ro >= 0) {
                *ret_fd = TAKE_FD(ro);
                return CTL_EXIT_OK;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                fprintf(stderr, "Cannot rewind the copy of the image: %s\n", strerror(errno));
                return CTL_EXIT_FAILURE;
        }
        *ret_fd = TAKE_FD(fd);
        return CTL_EXIT_OK;
}

/* Appends s to *cmd as one word for a POSIX shell: in single quotes, each ' as '\''. */
static int append_quoted(char **cmd, const char *prefix, const char *s) {
        size_t n = strlen(*cmd) + strlen(prefix) + 4;
        char *p, *q;

        for (const char *c = s; *c; c++)
                n += *c == '\'' ? 4 : 1;
        p = realloc(*cmd, n);
        if (!p)
                return -ENOMEM;
        *cmd = p;
        q = p + strlen(p);
        q = stpcpy(q, " ");
        q = stpcpy(q, prefix);
        *q++ = '\'';
        for (const char *c = s; *c; c++)
                if (*c == '\'')
                        q = stpcpy(q, "'\\''");
                else
                        *q++ = *c;
        *q++ = '\'';
        *q = 0;
        return 0;
}

/* The command line the other host's shell runs: "piemuctl import-image NAME -" with the options that
 * matter there, every argument quoted. Returns 0 or -ENOMEM. */
static int remote_import_command(const char *name, char **ret) {
        _cleanup_free_ char *cmd = NULL;
        int r;

        cmd = strdup("piemuctl");
        if (!cmd)
                return -ENOMEM;
        r = append_quoted(&cmd, "", "import-image");
        if (r >= 0)
                r = append_quoted(&cmd, "", name);
        if (r >= 0)
                r = append_quoted(&cmd, "", "-");
        if (r >= 0 && arg_description)
                r = append_quoted(&cmd, "--description=", arg_description);
        if (r >= 0 && arg_model)
                r = append_quoted(&cmd, "--model=", arg_model);
        if (r >= 0 && arg_quiet)
                r = append_quoted(&cmd, "", "--quiet");
        if (r >= 0 && arg_timeout_usec > 0) {
                char t[64];

                if (arg_timeout_usec == USEC_INFINITY)
                        snprintf(t, sizeof(t), "infinity");
                else
                        snprintf(t, sizeof(t), "%" PRIu64 "ms",
                                 (arg_timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                r = append_quoted(&cmd, "--timeout=", t);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cmd);
        return 0;
}

/* Runs cmd on host over ssh with image_fd as ssh's standard input (ours if image_fd < 0, which this
 * takes over either way), and waits for it. Returns an exit status; *ret_status is ssh's wait status. */
static int run_ssh(const RemoteHost *host, const char *cmd, int image_fd, int *ret_status) {
        _cleanup_close_ int fd = image_fd;
        const char *argv[8];
        size_t n = 0;
        pid_t pid;

        /* The same command line sd-bus uses for the bus, so that the same ssh configuration applies. */
        argv[n++] = "ssh";
        argv[n++] = "-xT";
        if (host->port) {
                argv[n++] = "-p";
                argv[n++] = host->port;
        }
        argv[n++] = "--";
        argv[n++] = host->destination;
        argv[n++] = cmd;
        argv[n] = NULL;
        assert(n < ELEMENTSOF(argv));

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "Cannot start ssh: %s\n", strerror(errno));
                return CTL_EXIT_FAILURE;
        }
        if (pid == 0) {
                if (fd >= 0 && dup2(fd, STDIN_FILENO) < 0)
                        _exit(255);
                execvp("ssh", (char *const *)argv);
                fprintf(stderr, "Cannot run ssh: %s\n", strerror(errno));
                _exit(255);
        }
        fd = safe_close(fd);

        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR) {
                        fprintf(stderr, "Cannot wait for ssh: %s\n", strerror(errno));
                        return CTL_EXIT_FAILURE;
                }
        return CTL_EXIT_OK;
}

/* ssh's wait status as our exit status: the remote piemuctl's, whose messages ssh passed through,
 * or why there was none. */
static int ssh_exit_status(int status) {
        if (WIFSIGNALED(status)) {
                fprintf(stderr, "ssh to %s was killed by signal %s.\n", arg_host,
                        sigabbrev_np(WTERMSIG(status)) ?: "?");
                return 128 + WTERMSIG(status);
        }
        switch (WEXITSTATUS(status)) {
        case 255: /* ssh's own failure; it said why */
                fprintf(stderr, "Cannot reach %s over ssh to import the image.\n", arg_host);
                return CTL_EXIT_NO_DAEMON;
        case 126:
        case 127: /* the remote shell's "not found" and "not executable" */
                fprintf(stderr, "Cannot run piemuctl on %s to import the image: is piemu installed there?\n",
                        arg_host);
                return CTL_EXIT_NO_DAEMON;
        case CTL_EXIT_ACCESS:
                fprintf(stderr,
                        "(The import ran on %s as the user ssh logs in as there; importing images needs an "
                        "administrator's right on %s, org.piemu.manage-images.)\n",
                        arg_host, arg_host);
                return CTL_EXIT_ACCESS;
        default:
                return WEXITSTATUS(status);
        }
}

/* import-image over -H. ImportImageFile takes a descriptor, which the ssh bridge cannot carry. So the
 * image travels as ssh's standard input instead, to "piemuctl import-image NAME -" on the other host,
 * which spools it there and hands piemud a descriptor of its own. ssh joins its arguments into a
 * command line for the remote user's shell: every argument is quoted. Returns an exit status: the
 * remote piemuctl's, whose messages ssh passes through. */
int ctl_import_over_ssh(const char *name, const char *file) {
        _cleanup_(remote_host_done) RemoteHost host = {};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *cmd = NULL;
        int status, r;

        r = remote_host_parse(arg_host, &host);
        if (r < 0)
                return r == -ENOMEM ? ctl_oom() : CTL_EXIT_USAGE; /* parse_argv checked it */

        if (streq(file, "-")) {
                r = refuse_terminal_stdin();
                if (r != CTL_EXIT_OK)
                        return r;
        } else {
                r = ctl_open_image_file("disk image", file, &fd);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        if (remote_import_command(name, &cmd) < 0)
                return ctl_oom();

        r = run_ssh(&host, cmd, TAKE_FD(fd), &status);
        if (r != CTL_EXIT_OK)
                return r;
        return ssh_exit_status(status);
}
