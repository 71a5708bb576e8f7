/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* extract-run.c: the result parser, the exit status mapping, and image_extract_run() against fake
 * helpers. The fake helper is this very binary: image_extract_run() passes --model=MODE, which
 * main() recognizes, so the child can inspect what it was given (fds, signals, environment) and
 * misbehave in the ways a real helper might (hang, crash, flood, linger). */

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extract-run.h"
#include "macro.h"
#include "tests.h"

extern char **environ;

static const char good_result[] = "cmdline=root=PARTUUID=1234-02 rootwait console=ttyAMA0,115200\n"
                                  "kernel=kernel8.img\n"
                                  "dtb=bcm2710-rpi-3-b.dtb\n"
                                  "initrd=initramfs8\n"
                                  "sd_size=67108864\n"
                                  "arm_64bit=1\n"
                                  "note=first note\n"
                                  "future_key=whatever\n"
                                  "note=second note\n";

/* --- the fake helper -------------------------------------------------------------------------- */

_printf_(1, 2) static _Noreturn void fake_fail(const char *fmt, ...) {
        va_list ap;

        fputs("piemu-image-extract: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static void fake_check_fds(void) {
        struct stat st;
        sigset_t mask;
        struct sigaction sa;
        char buf[16] = "";
        DIR *d;

        /* 0: the image, 1 and 2: pipes, 3: the directory; nothing else */
        if (read(0, buf, sizeof(buf) - 1) != 5 || !streq(buf, "IMAGE"))
                fake_fail("stdin is not the image: '%s'", buf);
        if (fstat(1, &st) < 0 || !S_ISFIFO(st.st_mode) || fstat(2, &st) < 0 || !S_ISFIFO(st.st_mode))
                fake_fail("stdout/stderr are not pipes");
        if (fstat(3, &st) < 0 || !S_ISDIR(st.st_mode))
                fake_fail("fd 3 is not a directory");
        if (faccessat(3, "marker", F_OK, 0) < 0)
                fake_fail("fd 3 is not the output directory");
        d = opendir("/proc/self/fd");
        if (!d)
                fake_fail("opendir: %m");
        for (struct dirent *de; (de = readdir(d));) {
                int fd = atoi(de->d_name);
                if (de->d_name[0] == '.' || fd == dirfd(d))
                        continue;
                if (fd > 3)
                        fake_fail("fd %d leaked into the helper", fd);
        }
        closedir(d);
        for (int fd = 0; fd <= 3; fd++)
                if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
                        fake_fail("fd %d is O_CLOEXEC", fd);

        /* signals as new: nothing blocked, nothing ignored */
        if (sigprocmask(SIG_SETMASK, NULL, &mask) < 0)
                fake_fail("sigprocmask");
        for (int sig = 1; sig < 32; sig++)
                if (sigismember(&mask, sig))
                        fake_fail("signal %d is blocked", sig);
        if (sigaction(SIGPIPE, NULL, &sa) < 0 || sa.sa_handler != SIG_DFL)
                fake_fail("SIGPIPE is not SIG_DFL");
        if (getpgrp() != getpid())
                fake_fail("not in a process group of its own");

        /* the environment: PATH and LC_ALL, sanitizer options at most */
        for (char **e = environ; *e; e++)
                if (strncmp(*e, "PATH=", 5) != 0 && strncmp(*e, "LC_ALL=", 7) != 0 &&
                    !strstr(*e, "SAN_OPTIONS="))
                        fake_fail("unexpected environment variable %.20s", *e);
}

static int fake_helper(int argc, char *argv[]) {
        const char *mode = argv[1] + strlen("--model=");

        if (streq(mode, "checkfds")) {
                fake_check_fds();
                fputs(good_result, stdout);
                return 0;
        }
        if (streq(mode, "ok")) {
                fputs(good_result, stdout);
                return 0;
        }
        if (streq(mode, "dtbonly")) {
                if (argc != 4 || !streq(argv[2], "--max-size=123") || !streq(argv[3], "--dtb-only"))
                        fake_fail("wrong arguments");
                puts("dtb_size=1234");
                return 0;
        }
        if (streq(mode, "nomaxsize")) {
                if (argc != 2)
                        fake_fail("--max-size passed for 0");
                fputs(good_result, stdout);
                return 0;
        }
        if (streq(mode, "sleep")) {
                sleep(30);
                return 0;
        }
        if (streq(mode, "linger")) {
                /* no pipe to see the end by: only the pidfd (or the timeout) */
                close(1);
                close(2);
                sleep(30);
                return 0;
        }
        if (streq(mode, "grandchild")) {
                /* leaves a process holding stdout behind */
                if (fork() == 0) {
                        sleep(30);
                        _exit(0);
                }
                fputs(good_result, stdout);
                return 0;
        }
        if (streq(mode, "kill"))
                raise(SIGKILL);
        if (streq(mode, "xcpu"))
                raise(SIGXCPU);
        if (streq(mode, "flood")) {
                static char junk[65536];
                memset(junk, 'x', sizeof(junk));
                for (int i = 0; i < 160; i++)
                        fwrite(junk, 1, sizeof(junk), stdout);
                for (int i = 0; i < 16; i++)
                        fwrite(junk, 1, sizeof(junk), stderr);
                return 0;
        }
        if (streq(mode, "garbage")) {
                puts("hello");
                return 0;
        }
        if (streq(mode, "nokernel")) {
                fputs("some chatter\npiemu-image-extract: the boot partition has no kernel8.img\x01\n",
                      stderr);
                return 12;
        }
        if (streq(mode, "silent")) {
                return 17;
        }
        if (streq(mode, "weird"))
                return 77;
        fake_fail("unknown mode %s", mode);
}

static char *mfree_ptr(char *p) {
        free(p);
        return NULL;
}

/* --- the parser ------------------------------------------------------------------------------- */

static int parse(const char *s, bool dtb_only, ImageExtractResult *r) {
        return image_extract_result_parse(s, strlen(s), dtb_only, r);
}

static void test_parse(void) {
        ImageExtractResult r = {};

        CHECK(parse(good_result, false, &r) == 0);
        CHECK_STREQ(r.cmdline, "root=PARTUUID=1234-02 rootwait console=ttyAMA0,115200");
        CHECK_STREQ(r.kernel, "kernel8.img");
        CHECK_STREQ(r.dtb, "bcm2710-rpi-3-b.dtb");
        CHECK_STREQ(r.initrd, "initramfs8");
        CHECK(r.has_initrd && r.arm_64bit);
        CHECK(r.sd_size == 67108864);
        CHECK(r.n_notes == 2);
        CHECK_STREQ(r.notes[0], "first note");
        CHECK_STREQ(r.notes[1], "second note");
        CHECK(!r.notes[2]);
        image_extract_result_done(&r);
        CHECK(!r.cmdline && !r.notes);

        CHECK(parse("cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=18446744073709551615\n", false, &r) == 0);
        CHECK_STREQ(r.cmdline, "");
        CHECK(!r.initrd && !r.has_initrd && !r.arm_64bit);
        CHECK(r.sd_size == UINT64_MAX);
        image_extract_result_done(&r);

        /* dtb-only needs nothing */
        CHECK(parse("", true, &r) == 0);
        image_extract_result_done(&r);
        CHECK(parse("dtb_size=1234\n", true, &r) == 0);
        image_extract_result_done(&r);
        CHECK(parse("", false, &r) == -EBADMSG);

        static const char *const bad[] = {
                /* each lacks or breaks something */
                "kernel=k\ndtb=d\ninitrd=\nsd_size=1\n",
                "cmdline=\ndtb=d\ninitrd=\nsd_size=1\n",
                "cmdline=\nkernel=k\ninitrd=\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=d\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\n",
                "cmdline=\nkernel=\ndtb=d\ninitrd=\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=\ninitrd=\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1",
                "cmdline=\nkernel=k\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1x\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=-1\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=18446744073709551616\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\narm_64bit=2\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\narm_64bit=1\narm_64bit=1\n",
                "cmdline=a\tb\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n",
                "cmdline=\xc3\xa9\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\nno equals sign\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\nKernel=x\n",
                "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n=x\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (parse(bad[i], false, &r) != -EBADMSG) {
                        fprintf(stderr, "accepted bad result #%zu\n", i);
                        exit(1);
                }
        }
        /* a NUL inside */
        CHECK(image_extract_result_parse("cmdline=\0\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n", 40, false,
                                         &r) == -EBADMSG);

        /* notes are capped */
        {
                char many[200 * 8 + 64] = "cmdline=\nkernel=k\ndtb=d\ninitrd=\nsd_size=1\n";
                for (int i = 0; i < 200; i++)
                        strcat(many, "note=n\n");
                CHECK(parse(many, false, &r) == 0);
                CHECK(r.n_notes == 64 && !r.notes[64]);
                image_extract_result_done(&r);
        }
}

static void test_classify(void) {
        int e = 1;

        CHECK(image_extract_classify(W_EXITCODE(0, 0), false, &e) == IMAGE_EXTRACT_OK && e == 0);
        CHECK(image_extract_classify(W_EXITCODE(12, 0), false, &e) == IMAGE_EXTRACT_NO_KERNEL &&
              e == -EBADMSG);
        CHECK(image_extract_classify(W_EXITCODE(10, 0), false, &e) == IMAGE_EXTRACT_NOT_MBR &&
              e == -EBADMSG);
        CHECK(image_extract_classify(W_EXITCODE(18, 0), false, &e) == IMAGE_EXTRACT_BAD_CMDLINE &&
              e == -EBADMSG);
        CHECK(image_extract_classify(W_EXITCODE(16, 0), false, &e) == IMAGE_EXTRACT_TOO_LARGE &&
              e == -EFBIG);
        CHECK(image_extract_classify(W_EXITCODE(2, 0), false, &e) == IMAGE_EXTRACT_USAGE && e == -EINVAL);
        CHECK(image_extract_classify(W_EXITCODE(1, 0), false, &e) == IMAGE_EXTRACT_INTERNAL && e == -EIO);
        CHECK(image_extract_classify(W_EXITCODE(3, 0), false, &e) == IMAGE_EXTRACT_IO && e == -EIO);
        CHECK(image_extract_classify(W_EXITCODE(9, 0), false, &e) == IMAGE_EXTRACT_CRASHED && e == -EIO);
        CHECK(image_extract_classify(W_EXITCODE(19, 0), false, &e) == IMAGE_EXTRACT_CRASHED);
        CHECK(image_extract_classify(W_EXITCODE(100, 0), false, &e) == IMAGE_EXTRACT_CRASHED);
        CHECK(image_extract_classify(W_EXITCODE(0, SIGSEGV), false, &e) == IMAGE_EXTRACT_CRASHED &&
              e == -EIO);
        CHECK(image_extract_classify(W_EXITCODE(0, SIGKILL), true, &e) == IMAGE_EXTRACT_TIMEOUT &&
              e == -ETIMEDOUT);
        CHECK(image_extract_classify(W_EXITCODE(0, 0), true, &e) == IMAGE_EXTRACT_TIMEOUT);

        for (int i = 0; i < 256; i++)
                CHECK(strlen(image_extract_error_to_string((ImageExtractError)i)) > 0);
}

/* --- running fake helpers --------------------------------------------------------------------- */

static const char *self;
static int image_fd = -1, outdir_fd = -1;

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int run(const char *mode, bool dtb_only, uint64_t max_size, uint64_t timeout_usec,
               ImageExtractResult *res, ImageExtractError *err, char **msg) {
        /* each run reads the image from the start */
        CHECK(lseek(image_fd, 0, SEEK_SET) == 0);
        return image_extract_run(self, image_fd, outdir_fd, mode, dtb_only, max_size, timeout_usec, res, err,
                                 msg);
}

static void expect_fail(const char *mode, uint64_t timeout_usec, int want_r, ImageExtractError want_err,
                        const char *want_msg) {
        ImageExtractResult res = {};
        ImageExtractError err = IMAGE_EXTRACT_OK;
        _cleanup_free_ char *msg = NULL;
        int r;

        r = run(mode, false, 0, timeout_usec, &res, &err, &msg);
        if (r != want_r || err != want_err) {
                fprintf(stderr, "%s: r=%d err=%d msg=%s\n", mode, r, (int)err, strempty(msg));
                exit(1);
        }
        CHECK(msg);
        CHECK_CONTAINS(msg, want_msg);
        for (const char *p = msg; *p; p++)
                CHECK(*p >= 0x20 && *p < 0x7f);
        CHECK(!res.cmdline);
}

static void test_run(void) {
        ImageExtractResult res = {};
        ImageExtractError err;
        _cleanup_free_ char *msg = NULL;
        uint64_t t0;
        int r;

        /* fds, signals, environment as documented */
        r = run("checkfds", false, 32 << 20, 10 * 1000000, &res, &err, &msg);
        if (r < 0)
                fprintf(stderr, "checkfds: %s\n", strempty(msg));
        CHECK(r == 0 && err == IMAGE_EXTRACT_OK && !msg);
        CHECK_STREQ(res.kernel, "kernel8.img");
        CHECK(res.sd_size == 67108864 && res.n_notes == 2);
        image_extract_result_done(&res);

        CHECK(run("dtbonly", true, 123, 0, &res, &err, &msg) == 0);
        image_extract_result_done(&res);
        CHECK(run("nomaxsize", false, 0, 0, &res, &err, &msg) == 0);
        image_extract_result_done(&res);

        /* a timeout kills, and says so */
        t0 = now_ms();
        expect_fail("sleep", 300000, -ETIMEDOUT, IMAGE_EXTRACT_TIMEOUT, "timed out after 300 ms; killed");
        CHECK(now_ms() - t0 < 5000);
        t0 = now_ms();
        expect_fail("linger", 1000000, -ETIMEDOUT, IMAGE_EXTRACT_TIMEOUT, "timed out after 1 s; killed");
        CHECK(now_ms() - t0 < 5000);

        /* a process left holding stdout does not hold us up */
        t0 = now_ms();
        r = run("grandchild", false, 0, 20 * 1000000, &res, &err, &msg);
        CHECK(r == 0);
        CHECK(now_ms() - t0 < 5000);
        image_extract_result_done(&res);

        expect_fail("kill", 0, -EIO, IMAGE_EXTRACT_CRASHED, "crashed (signal SIGKILL)");
        expect_fail("xcpu", 0, -EIO, IMAGE_EXTRACT_CRASHED, "ran out of CPU time");
        expect_fail("flood", 0, -EIO, IMAGE_EXTRACT_BAD_OUTPUT, "invalid output");
        expect_fail("garbage", 0, -EIO, IMAGE_EXTRACT_BAD_OUTPUT, "invalid output");
        /* the helper's own line, prefix gone, sanitized */
        expect_fail("nokernel", 0, -EBADMSG, IMAGE_EXTRACT_NO_KERNEL,
                    "the boot partition has no kernel8.img?");
        expect_fail("nokernel", 0, -EBADMSG, IMAGE_EXTRACT_NO_KERNEL, "the boot partition");
        /* no line: the kind's own description */
        expect_fail("silent", 0, -EBADMSG, IMAGE_EXTRACT_BAD_DTB, "the device tree is invalid");
        expect_fail("weird", 0, -EIO, IMAGE_EXTRACT_CRASHED, "failed with exit status 77");

        /* bad arguments and a missing helper */
        CHECK(image_extract_run(self, image_fd, outdir_fd, "Raspi 3", false, 0, 0, &res, &err, &msg) ==
              -EINVAL);
        CHECK(err == IMAGE_EXTRACT_USAGE);
        msg = mfree_ptr(msg);
        CHECK(image_extract_run(self, -1, outdir_fd, "ok", false, 0, 0, &res, &err, &msg) == -EINVAL);
        msg = mfree_ptr(msg);
        CHECK(image_extract_run("/nonexistent/helper", image_fd, outdir_fd, "ok", false, 0, 0, &res, &err,
                                &msg) == -ENOENT);
        CHECK(err == IMAGE_EXTRACT_SPAWN_FAILED);
        CHECK_CONTAINS(msg, "/nonexistent/helper");
        /* the message and error pointers are optional */
        CHECK(image_extract_run(self, image_fd, outdir_fd, "weird", false, 0, 0, &res, NULL, NULL) == -EIO);
}

/* Several workers at once, as in piemud's thread pool. */
static void *worker(void *arg) {
        ImageExtractResult res = {};
        ImageExtractError err;
        char *msg = NULL;
        int fd, r;

        (void)arg;
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC); /* any readable file will do */
        CHECK(fd >= 0);
        for (int i = 0; i < 5; i++) {
                r = image_extract_run(self, fd, outdir_fd, i % 2 ? "ok" : "nokernel", false, 0, 10 * 1000000,
                                      &res, &err, &msg);
                if (i % 2) {
                        CHECK(r == 0 && res.sd_size == 67108864);
                        image_extract_result_done(&res);
                } else {
                        CHECK(r == -EBADMSG && err == IMAGE_EXTRACT_NO_KERNEL);
                        CHECK_CONTAINS(msg, "kernel8.img");
                }
                free(msg);
                msg = NULL;
        }
        close(fd);
        return NULL;
}

static void test_threads(void) {
        pthread_t t[8];

        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                CHECK(pthread_join(t[i], NULL) == 0);
}

int main(int argc, char *argv[]) {
        char dir[] = "/tmp/test-extract-run.XXXXXX", path[64];
        sigset_t block;
        int leak, fd;

        if (argc >= 2 && strncmp(argv[1], "--model=", 8) == 0)
                return fake_helper(argc, argv);

        test_parse();
        test_classify();

        self = "/proc/self/exe";
        {
                static char exe[4096];
                ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
                CHECK(n > 0);
                exe[n] = '\0';
                self = exe;
        }
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/image", dir);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(fd >= 0 && write(fd, "IMAGE", 5) == 5);
        image_fd = fd;
        outdir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(outdir_fd >= 0);
        CHECK(mknodat(outdir_fd, "marker", S_IFREG | 0600, 0) == 0);

        /* As in piemud: blocked signals, SIGPIPE ignored, an fd without O_CLOEXEC. */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGCHLD);
        CHECK(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0);
        signal(SIGPIPE, SIG_IGN);
        leak = open("/dev/null", O_RDONLY);
        CHECK(leak >= 0);

        test_run();
        test_threads();

        close(leak);
        unlinkat(outdir_fd, "marker", 0);
        close(outdir_fd);
        close(image_fd);
        unlink(path);
        rmdir(dir);
        printf("test-extract-run: OK\n");
        return 0;
}
