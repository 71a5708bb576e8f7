/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extract-run.h"
#include "macro.h"

/* What we keep of the helper's output; the rest is read and dropped, so that a chatty helper can
 * never block on a full pipe. A real result is well under 8 KiB (a 4 KiB cmdline at most). */
#define STDOUT_MAX (64 * 1024)
#define STDERR_MAX (4 * 1024)
#define NOTES_MAX  64
/* Fds of the child are first copied at or above this, so that the dup2()s to 0..3 cannot clobber
 * one another whatever numbers the caller's fds have. */
#define FD_HIGH 10

#define HELPER_PREFIX "piemu-image-extract: "

#if defined(__SANITIZE_ADDRESS__)
#define BUILT_WITH_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define BUILT_WITH_SANITIZER 1
#endif
#endif

void image_extract_result_done(ImageExtractResult *r) {
        if (!r)
                return;
        free(r->cmdline);
        free(r->kernel);
        free(r->dtb);
        free(r->initrd);
        strv_free(r->notes);
        *r = (ImageExtractResult){};
}

/* --- the result protocol ---------------------------------------------------------------------- */

static bool value_ok(const char *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)v[i];
                if (c < 0x20 || c >= 0x7f)
                        return false;
        }
        return true;
}

static bool key_ok(const char *k, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
                        return false;
        return true;
}

static int parse_u64(const char *v, size_t n, uint64_t *ret) {
        uint64_t x = 0;

        if (n == 0 || n > 20)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return -EBADMSG;
                if (x > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
                        return -EBADMSG;
                x = x * 10 + (uint64_t)(v[i] - '0');
        }
        *ret = x;
        return 0;
}

static int set_once(char **field, const char *v, size_t n) {
        if (*field)
                return -EBADMSG;
        *field = strndup(v, n);
        return *field ? 0 : -ENOMEM;
}

int image_extract_result_parse(const char *text, size_t size, bool dtb_only, ImageExtractResult *ret) {
        _cleanup_(image_extract_result_done) ImageExtractResult res = {};
        bool have_size = false, have_64 = false;
        size_t pos = 0;
        int r;

        if (size > 0 && text[size - 1] != '\n')
                return -EBADMSG; /* cut off */

        while (pos < size) {
                const char *line = text + pos, *nl = memchr(line, '\n', size - pos), *eq;
                size_t n = (size_t)(nl - line), kn, vn;
                const char *v;

                pos += n + 1;
                eq = memchr(line, '=', n);
                if (!eq)
                        return -EBADMSG;
                kn = (size_t)(eq - line);
                v = eq + 1;
                vn = n - kn - 1;
                if (!key_ok(line, kn) || !value_ok(v, vn))
                        return -EBADMSG;

#define KEY_IS(k) (kn == strlen(k) && memcmp(line, k, kn) == 0)
                if (KEY_IS("cmdline"))
                        r = set_once(&res.cmdline, v, vn);
                else if (KEY_IS("kernel"))
                        r = vn > 0 ? set_once(&res.kernel, v, vn) : -EBADMSG;
                else if (KEY_IS("dtb"))
                        r = vn > 0 ? set_once(&res.dtb, v, vn) : -EBADMSG;
                else if (KEY_IS("initrd"))
                        r = set_once(&res.initrd, v, vn);
                else if (KEY_IS("sd_size")) {
                        r = have_size ? -EBADMSG : parse_u64(v, vn, &res.sd_size);
                        have_size = true;
                } else if (KEY_IS("arm_64bit")) {
                        r = have_64 || vn != 1 || (v[0] != '0' && v[0] != '1') ? -EBADMSG : 0;
                        res.arm_64bit = v[0] == '1';
                        have_64 = true;
                } else if (KEY_IS("note")) {
                        char **l;

                        r = 0;
                        if (res.n_notes < NOTES_MAX) {
                                l = realloc(res.notes, (res.n_notes + 2) * sizeof(char *));
                                if (!l)
                                        return -ENOMEM;
                                res.notes = l;
                                l[res.n_notes] = strndup(v, vn);
                                if (!l[res.n_notes])
                                        return -ENOMEM;
                                l[++res.n_notes] = NULL;
                        }
                } else
                        r = 0; /* a newer helper's key */
#undef KEY_IS
                if (r < 0)
                        return r;
        }

        if (!dtb_only && (!res.cmdline || !res.kernel || !res.dtb || !res.initrd || !have_size))
                return -EBADMSG;

        /* "initrd=" says there is none */
        if (res.initrd && !res.initrd[0]) {
                free(res.initrd);
                res.initrd = NULL;
        }
        res.has_initrd = res.initrd;

        *ret = res;
        res = (ImageExtractResult){};
        return 0;
}

ImageExtractError image_extract_classify(int wait_status, bool timed_out, int *ret_errno) {
        ImageExtractError e;
        int err;

        if (timed_out) {
                e = IMAGE_EXTRACT_TIMEOUT;
                err = -ETIMEDOUT;
        } else if (WIFEXITED(wait_status) && image_extract_exit_code_is_known(WEXITSTATUS(wait_status))) {
                e = (ImageExtractError)WEXITSTATUS(wait_status);
                switch (e) {
                case IMAGE_EXTRACT_OK:
                        err = 0;
                        break;
                case IMAGE_EXTRACT_USAGE:
                        err = -EINVAL;
                        break;
                case IMAGE_EXTRACT_TOO_LARGE:
                        err = -EFBIG;
                        break;
                case IMAGE_EXTRACT_INTERNAL:
                case IMAGE_EXTRACT_IO:
                        err = -EIO;
                        break;
                default:
                        err = -EBADMSG;
                }
        } else {
                e = IMAGE_EXTRACT_CRASHED;
                err = -EIO;
        }
        if (ret_errno)
                *ret_errno = err;
        return e;
}

/* --- running the helper ----------------------------------------------------------------------- */

typedef struct Buf {
        char *data;
        size_t n, max;
        bool overflow, eof;
} Buf;

static int buf_read(Buf *b, int fd) {
        char tmp[8192];
        ssize_t l;

        l = read(fd, tmp, sizeof(tmp));
        if (l < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (l == 0) {
                b->eof = true;
                return 0;
        }
        if (b->n + (size_t)l > b->max) {
                b->overflow = true;
                l = (ssize_t)(b->max - b->n);
        }
        memcpy(b->data + b->n, tmp, (size_t)l);
        b->n += (size_t)l;
        return 0;
}

/* strerror() may use a static buffer; the descriptions themselves are constant. */
static const char *errstr(int e) {
        return strerrordesc_np(e) ?: "unknown error";
}

static int pidfd_open_compat(pid_t pid) {
#ifdef SYS_pidfd_open
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
#else
        return -ENOSYS;
#endif
}

/* The one line a human should see from the helper's stderr: its own "piemu-image-extract: ..."
 * line (without the prefix) if there is one, else the first non-empty line; printable ASCII only,
 * because it may end up in a D-Bus error (which must be UTF-8). */
static char *stderr_line(const char *s, size_t n) {
        const char *best = NULL;
        size_t best_n = 0;
        char *out;

        for (size_t pos = 0; pos < n;) {
                const char *line = s + pos, *nl = memchr(line, '\n', n - pos);
                size_t len = nl ? (size_t)(nl - line) : n - pos;

                pos += len + 1;
                if (len == 0)
                        continue;
                if (len > strlen(HELPER_PREFIX) && memcmp(line, HELPER_PREFIX, strlen(HELPER_PREFIX)) == 0) {
                        best = line + strlen(HELPER_PREFIX);
                        best_n = len - strlen(HELPER_PREFIX);
                        break;
                }
                if (!best) {
                        best = line;
                        best_n = len;
                }
        }
        if (!best)
                return NULL;
        if (best_n > 300)
                best_n = 300;
        out = strndup(best, best_n);
        if (!out)
                return NULL;
        for (char *c = out; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                        *c = '?';
        return out;
}

/* One run of the helper, from its spawn to the verdict. */
typedef struct Run {
        /* The helper's stdin (the image), its fd 3 (the output directory) and the write ends of its
         * stdout and stderr, copied above FD_HIGH; ours to close once it has them. */
        int in_hi, dir_hi, out_w, err_w;
        int out_r, err_r, pidfd;
        Buf out, err;
        pid_t pid;
        int status; /* its wait status */
        bool timed_out;
        /* where a failure goes, each optional */
        ImageExtractError *ret_error;
        char **ret_message;
} Run;

static void run_done(Run *run) {
        safe_close(run->in_hi);
        safe_close(run->dir_hi);
        safe_close(run->out_w);
        safe_close(run->err_w);
        safe_close(run->out_r);
        safe_close(run->err_r);
        safe_close(run->pidfd);
        free(run->out.data);
        free(run->err.data);
}

/* A failure for the caller: its kind in *ret_error, a message in *ret_message; returns errnum. Reads
 * no errno before the message is made, so that a "%m" in fmt is the caller's errno. */
_printf_(4, 5) static int run_fail(Run *run, ImageExtractError kind, int errnum, const char *fmt, ...) {
        va_list ap;
        char *m;

        if (run->ret_error)
                *run->ret_error = kind;
        if (!run->ret_message)
                return errnum;
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        free(*run->ret_message);
        *run->ret_message = m;
        return errnum;
}

static void format_duration(uint64_t usec, char *buf, size_t size) {
        if (usec % 1000000 == 0)
                snprintf(buf, size, "%" PRIu64 " s", usec / 1000000);
        else
                snprintf(buf, size, "%" PRIu64 " ms", usec / 1000);
}

static int dup_high(int fd) {
        int r = fcntl(fd, F_DUPFD_CLOEXEC, FD_HIGH);
        return r < 0 ? -errno : r;
}

static bool model_ok(const char *m) {
        size_t n = strlen(m);

        if (n == 0 || n > 32)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= '0' && m[i] <= '9')))
                        return false;
        return true;
}

/* The pipes for the helper's stdout and stderr, and copies above FD_HIGH of every fd it gets. */
static int run_open_fds(Run *run, int image_fd, int outdir_fd) {
        int pipefd[2], r;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, -errno, "cannot create a pipe: %m");
        run->out_r = pipefd[0];
        run->out_w = pipefd[1];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, -errno, "cannot create a pipe: %m");
        run->err_r = pipefd[0];
        run->err_w = pipefd[1];
        /* Copies above FD_HIGH of everything the child gets, CLOEXEC like every fd here: dup2()
         * clears the flag only on the child's 0..3. */
        if ((r = dup_high(image_fd)) < 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, r, "cannot duplicate the image fd: %s",
                                errstr(-r));
        run->in_hi = r;
        if ((r = dup_high(outdir_fd)) < 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, r,
                                "cannot duplicate the output directory fd: %s", errstr(-r));
        run->dir_hi = r;
        if ((r = dup_high(run->out_w)) < 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, r, "cannot duplicate a pipe: %s",
                                errstr(-r));
        safe_close(run->out_w);
        run->out_w = r;
        if ((r = dup_high(run->err_w)) < 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, r, "cannot duplicate a pipe: %s",
                                errstr(-r));
        safe_close(run->err_w);
        run->err_w = r;
        return 0;
}

/* Starts the helper on run's fds (stdin, stdout, stderr, 3) and nothing else, with an empty signal
 * mask, default signal dispositions and a process group of its own. */
static int run_spawn(Run *run, const char *helper_path, char *argv[], char *envp[]) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r;

        sigemptyset(&none);
        sigfillset(&all);
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, -r, "posix_spawnattr_init: %s", errstr(r));
        /* piemud blocks the signals sd-event handles and ignores SIGPIPE: the helper must start
         * with neither. Its own process group lets a timeout kill its mcopy children too. */
        r = posix_spawnattr_setflags(&attr,
                                     POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r != 0) {
                posix_spawnattr_destroy(&attr);
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, -r, "posix_spawnattr: %s", errstr(r));
        }
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0) {
                posix_spawnattr_destroy(&attr);
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, -r, "posix_spawn_file_actions_init: %s",
                                errstr(r));
        }
        r = posix_spawn_file_actions_adddup2(&fa, run->in_hi, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, run->out_w, 1);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, run->err_w, 2);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, run->dir_hi, 3);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        /* Other threads of piemud may open fds without O_CLOEXEC at any moment; the helper closes
         * everything above 3 itself too. */
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
#endif
        if (r == 0)
                r = posix_spawn(&run->pid, helper_path, &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return run_fail(run, IMAGE_EXTRACT_SPAWN_FAILED, -r, "cannot run %s: %s", helper_path,
                                errstr(r));
        return 0;
}

/* Reads the helper's stdout and stderr until it has exited and closed both, or until the deadline
 * (then run->timed_out, and it is still to be killed). The helper is not reaped here. */
static int run_collect_output(Run *run, uint64_t deadline) {
        bool exited = false;
        uint64_t grace = UINT64_MAX;
        int r, e;

        for (;;) {
                struct pollfd p[3];
                nfds_t np = 0;
                int ms = -1, out_i = -1, err_i = -1, pid_i = -1;
                uint64_t until = exited ? grace : deadline;

                if (exited && run->out.eof && run->err.eof)
                        break;
                if (!exited && run->pidfd < 0) {
                        siginfo_t si = {};
                        if (waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 &&
                            si.si_pid == run->pid)
                                goto exited;
                        ms = 50;
                }

                if (!run->out.eof) {
                        out_i = (int)np;
                        p[np++] = (struct pollfd){.fd = run->out_r, .events = POLLIN};
                }
                if (!run->err.eof) {
                        err_i = (int)np;
                        p[np++] = (struct pollfd){.fd = run->err_r, .events = POLLIN};
                }
                if (!exited && run->pidfd >= 0) {
                        pid_i = (int)np;
                        p[np++] = (struct pollfd){.fd = run->pidfd, .events = POLLIN};
                }

                if (until != UINT64_MAX) {
                        uint64_t now = now_usec(CLOCK_MONOTONIC), left;
                        if (now >= until) {
                                /* past the deadline: kill; past the grace period: stop reading */
                                run->timed_out = !exited;
                                break;
                        }
                        left = (until - now + 999) / 1000;
                        if (ms < 0 || left < (uint64_t)ms)
                                ms = left > INT32_MAX ? INT32_MAX : (int)left;
                }

                r = poll(p, np, ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        e = -errno;
                        (void)kill(-run->pid, SIGKILL);
                        (void)kill(run->pid, SIGKILL);
                        (void)waitpid(run->pid, &run->status, __WALL);
                        return run_fail(run, IMAGE_EXTRACT_INTERNAL, e, "poll: %s", errstr(-e));
                }
                if (out_i >= 0 && p[out_i].revents && buf_read(&run->out, run->out_r) < 0)
                        run->out.eof = true;
                if (err_i >= 0 && p[err_i].revents && buf_read(&run->err, run->err_r) < 0)
                        run->err.eof = true;
                if (pid_i < 0 || !p[pid_i].revents)
                        continue;
        exited:
                /* Gone: anything left in its group goes too, and whatever still holds a pipe
                 * gets a second to let go. */
                exited = true;
                (void)kill(-run->pid, SIGKILL);
                grace = now_usec(CLOCK_MONOTONIC) + 1000000;
        }
        return 0;
}

/* The verdict on a reaped helper: its result parsed into *ret, or the failure, told with the line
 * of its stderr that says why. */
static int run_verdict(Run *run, bool dtb_only, uint64_t timeout_usec, ImageExtractResult *ret) {
        _cleanup_free_ char *line = NULL;
        ImageExtractError kind;
        char dur[32];
        int r, e;

        kind = image_extract_classify(run->status, run->timed_out, &e);
        line = stderr_line(run->err.data, run->err.n);

        if (kind == IMAGE_EXTRACT_OK) {
                if (run->out.overflow)
                        return run_fail(run, IMAGE_EXTRACT_BAD_OUTPUT, -EIO, "%s (more than %d bytes)",
                                        image_extract_error_to_string(IMAGE_EXTRACT_BAD_OUTPUT), STDOUT_MAX);
                r = image_extract_result_parse(run->out.data, run->out.n, dtb_only, ret);
                if (r == -ENOMEM)
                        return run_fail(run, IMAGE_EXTRACT_INTERNAL, r, "out of memory");
                if (r < 0)
                        return run_fail(run, IMAGE_EXTRACT_BAD_OUTPUT, -EIO, "%s",
                                        image_extract_error_to_string(IMAGE_EXTRACT_BAD_OUTPUT));
                if (run->ret_error)
                        *run->ret_error = IMAGE_EXTRACT_OK;
                return 0;
        }

        switch (kind) {
        case IMAGE_EXTRACT_TIMEOUT:
                format_duration(timeout_usec, dur, sizeof(dur));
                return run_fail(run, kind, e, "the image extractor timed out after %s; killed", dur);
        case IMAGE_EXTRACT_CRASHED:
                if (WIFSIGNALED(run->status)) {
                        const char *sig = sigabbrev_np(WTERMSIG(run->status));
                        int s = WTERMSIG(run->status);
                        return run_fail(run, kind, e, "the image extractor %s (signal SIG%s)%s%s",
                                        s == SIGXCPU   ? "ran out of CPU time"
                                        : s == SIGALRM ? "ran out of time"
                                        : s == SIGXFSZ ? "exceeded its file size limit"
                                                       : "crashed",
                                        sig ? sig : "?", line ? ": " : "", strempty(line));
                }
                return run_fail(run, kind, e, "the image extractor failed with exit status %d%s%s",
                                WEXITSTATUS(run->status), line ? ": " : "", strempty(line));
        default:
                return run_fail(run, kind, e, "%s", line ?: image_extract_error_to_string(kind));
        }
}

int image_extract_run(const char *helper_path, int image_fd, int outdir_fd, const char *model, bool dtb_only,
                      uint64_t max_size, uint64_t timeout_usec, ImageExtractResult *ret,
                      ImageExtractError *ret_error, char **ret_message) {
        _cleanup_(run_done) Run run = {
                .in_hi = -EBADF,
                .dir_hi = -EBADF,
                .out_w = -EBADF,
                .err_w = -EBADF,
                .out_r = -EBADF,
                .err_r = -EBADF,
                .pidfd = -EBADF,
                .ret_error = ret_error,
                .ret_message = ret_message,
        };
        _cleanup_free_ char *model_arg = NULL, *size_arg = NULL;
        char *argv[5], *envp[8];
        size_t argc = 0, envc = 0;
        uint64_t deadline;
        int r, e;

        if (ret_message)
                *ret_message = NULL;

        if (!helper_path || !model || !model_ok(model) || image_fd < 0 || outdir_fd < 0 || !ret)
                return run_fail(&run, IMAGE_EXTRACT_USAGE, -EINVAL,
                                "invalid arguments for the image extractor");

        run.out = (Buf){.data = malloc(STDOUT_MAX), .max = STDOUT_MAX};
        run.err = (Buf){.data = malloc(STDERR_MAX), .max = STDERR_MAX};
        if (!run.out.data || !run.err.data || asprintf(&model_arg, "--model=%s", model) < 0 ||
            asprintf(&size_arg, "--max-size=%" PRIu64, max_size) < 0)
                return run_fail(&run, IMAGE_EXTRACT_SPAWN_FAILED, -ENOMEM, "out of memory");

        argv[argc++] = (char *)helper_path;
        argv[argc++] = model_arg;
        if (max_size > 0)
                argv[argc++] = size_arg;
        if (dtb_only)
                argv[argc++] = (char *)"--dtb-only";
        argv[argc] = NULL;

        /* Nothing of piemud's environment: a fixed PATH for the helper's mcopy, the C locale. */
        envp[envc++] = (char *)"PATH=/usr/bin:/bin";
        envp[envc++] = (char *)"LC_ALL=C";
#ifdef BUILT_WITH_SANITIZER
        /* A sanitized build's tests want their options to reach the helper too. */
        _cleanup_free_ char *asan = NULL, *ubsan = NULL, *lsan = NULL;
        if (getenv("ASAN_OPTIONS") && asprintf(&asan, "ASAN_OPTIONS=%s", getenv("ASAN_OPTIONS")) >= 0)
                envp[envc++] = asan;
        if (getenv("UBSAN_OPTIONS") && asprintf(&ubsan, "UBSAN_OPTIONS=%s", getenv("UBSAN_OPTIONS")) >= 0)
                envp[envc++] = ubsan;
        if (getenv("LSAN_OPTIONS") && asprintf(&lsan, "LSAN_OPTIONS=%s", getenv("LSAN_OPTIONS")) >= 0)
                envp[envc++] = lsan;
#endif
        envp[envc] = NULL;

        r = run_open_fds(&run, image_fd, outdir_fd);
        if (r < 0)
                return r;
        r = run_spawn(&run, helper_path, argv, envp);
        if (r < 0)
                return r;

        run.out_w = safe_close(run.out_w);
        run.err_w = safe_close(run.err_w);
        run.in_hi = safe_close(run.in_hi);
        run.dir_hi = safe_close(run.dir_hi);

        /* pidfd: the exit is seen even if the helper closes its stdout and stderr and lingers.
         * Without one (old kernels) the exit is polled for. The helper is never reaped before
         * the end: while it is a zombie, its process group id cannot be reused, so kill(-pid)
         * can only hit its own group. */
        run.pidfd = pidfd_open_compat(run.pid);
        deadline = timeout_usec > 0 ? now_usec(CLOCK_MONOTONIC) + timeout_usec : UINT64_MAX;

        r = run_collect_output(&run, deadline);
        if (r < 0)
                return r;

        if (run.timed_out) {
                (void)kill(-run.pid, SIGKILL);
                (void)kill(run.pid, SIGKILL);
        }
        while ((r = waitpid(run.pid, &run.status, __WALL)) < 0 && errno == EINTR)
                ;
        if (r < 0) {
                e = -errno;
                return run_fail(&run, IMAGE_EXTRACT_INTERNAL, e, "waitpid: %s", errstr(-e));
        }

        return run_verdict(&run, dtb_only, timeout_usec, ret);
}
