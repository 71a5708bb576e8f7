/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* piemu-image-extract: turns one untrusted Raspberry Pi OS image into piemu catalog files.
 *
 * piemud runs this for every ImportImage, so that the parsing of hostile input (xz, the partition
 * table, FAT, config.txt, cmdline.txt, the dtb) happens in a throwaway process that has confined
 * itself before it reads a byte: no privileges, no network, rlimits, a seccomp filter. The interface
 * (fds, output, exit codes) is in the --help text below and in extract-errors.h; the caller's side
 * is extract-run.c. */

#include <blkid.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <lzma.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dtb-patch.h"
#include "extract-errors.h"
#include "macro.h"
#include "pi-models.h"
#include "rpi-config.h"

#ifndef PIEMU_MCOPY
#define PIEMU_MCOPY "/usr/bin/mcopy"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define BUILT_WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUILT_WITH_ASAN 1
#endif
#endif

#define KiB UINT64_C(1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)

#define DEFAULT_MAX_SIZE (32 * GiB)
#define TEXT_MAX         (64 * KiB) /* config.txt, cmdline.txt */
#define KERNEL_MAX       (64 * MiB)
#define INITRD_MAX       (256 * MiB)
#define XZ_MEMLIMIT      (512 * MiB)
#define CHUNK            (1 * MiB)
/* Zero runs are skipped at this granularity (the usual file system block). */
#define SPARSE_BLOCK 4096
/* One mcopy gets this much wall-clock time; it reads at most 256 MiB. */
#define MCOPY_TIMEOUT_SEC 120
#define MCOPY_CPU_SEC     60
#define MCOPY_STDERR_MAX  1024

#define OUTDIR_FD 3

#define PROG "piemu-image-extract"

typedef struct Ctx {
        RpiModel model;
        uint64_t max_size;
        bool dtb_only;

        /* the first failure: its exit code and message */
        ImageExtractError code;
        char msg[512];

        int sd_fd;
        uint64_t sd_size;
        uint64_t boot_offset; /* bytes */
        int boot_partno;
        char mtools_msg[256]; /* the last mcopy's complaint, sanitized */

        FILE *out; /* the key=value result, written to stdout at the very end */
        char *out_buf;
        size_t out_size;
} Ctx;

_printf_(3, 4) static int failf(Ctx *c, ImageExtractError code, const char *fmt, ...) {
        va_list ap;

        if (c->code == IMAGE_EXTRACT_OK) {
                c->code = code;
                va_start(ap, fmt);
                vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int fail_errno(Ctx *c, ImageExtractError code, int r, const char *what) {
        return failf(c, code, "%s: %s", what, strerror(r < 0 ? -r : r));
}

/* A note for the human importing the image ("note=..." on stdout). Callers pass sanitized text. */
_printf_(2, 3) static void notef(Ctx *c, const char *fmt, ...) {
        va_list ap;

        fputs("note=", c->out);
        va_start(ap, fmt);
        vfprintf(c->out, fmt, ap);
        va_end(ap);
        fputc('\n', c->out);
}

static void sanitize(char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
                        *s = '?';
}

static int write_all(int fd, const void *p, size_t n) {
        const uint8_t *b = p;

        while (n > 0) {
                ssize_t l = write(fd, b, n);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b += l;
                n -= (size_t)l;
        }
        return 0;
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off) {
        const uint8_t *b = p;

        while (n > 0) {
                ssize_t l = pwrite(fd, b, n, (off_t)off);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b += l;
                n -= (size_t)l;
                off += (uint64_t)l;
        }
        return 0;
}

/* --- confinement ------------------------------------------------------------------------------ */

static void set_limit(int resource, rlim_t want) {
        struct rlimit rl;

        /* Only ever lower: the hard limit too, so that nothing later can raise it again. */
        if (getrlimit(resource, &rl) < 0)
                return;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
                want = rl.rlim_max;
        rl.rlim_cur = rl.rlim_max = want;
        (void)setrlimit(resource, &rl);
}

static int drop_privileges(Ctx *c) {
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2] = {}, cur[2] = {};
        bool any = false;
        uid_t uid = 65534;
        gid_t gid = 65534;

        if (geteuid() == 0 || getuid() == 0) {
                const struct passwd *pw = getpwnam("nobody");

                if (pw) {
                        uid = pw->pw_uid;
                        gid = pw->pw_gid;
                }
                if (uid == 0 || gid == 0)
                        return failf(c, IMAGE_EXTRACT_INTERNAL, "user nobody is root?");
                /* With CAP_SETPCAP still ours: nothing exec'd later can get a capability back. */
                for (unsigned long cap = 0; cap <= 63; cap++)
                        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
                                break;
                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        return fail_errno(c, IMAGE_EXTRACT_INTERNAL, -errno, "cannot drop to user nobody");
                if (setresuid(0, 0, 0) == 0)
                        return failf(c, IMAGE_EXTRACT_INTERNAL, "could regain root after dropping it");
        }

        /* Whoever we run as: no capabilities at all (ambient ones would survive exec). Only if
         * there are any: piemud's unit has none, and its SystemCallFilter= denies capset(). */
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if (syscall(SYS_capget, &hdr, cur) < 0)
                return fail_errno(c, IMAGE_EXTRACT_INTERNAL, -errno, "cannot read capabilities");
        for (size_t i = 0; i < ELEMENTSOF(cur); i++)
                any = any || cur[i].effective || cur[i].permitted || cur[i].inheritable;
        if (any && syscall(SYS_capset, &hdr, data) < 0)
                return fail_errno(c, IMAGE_EXTRACT_INTERNAL, -errno, "cannot drop capabilities");

#ifdef BUILT_WITH_ASAN
        /* The credential change made us non-dumpable, which keeps LeakSanitizer's tracer from
         * attaching to us at exit. Only in sanitizer builds. */
        (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
        return 0;
}

static int seccomp_deny(scmp_filter_ctx ctx, const char *name, int err) {
        int nr = seccomp_syscall_resolve_name(name);

        /* a syscall this architecture (or libseccomp) does not know cannot be called anyway */
        if (nr == __NR_SCMP_ERROR)
                return 0;
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0);
}

static int install_seccomp(Ctx *c) {
        /* Everything a compromised parser could use to reach out of this process: the network and
         * local services (socket() itself: nothing here needs one; socketpair() stays), other
         * processes, the kernel's larger attack surfaces, namespaces, mounts. io_uring matters:
         * its operations would bypass this filter. */
        static const char *const denied[] = {
                "socket",
                "connect",
                "bind",
                "listen",
                "accept",
                "accept4",
#ifndef BUILT_WITH_ASAN
                /* LeakSanitizer ptraces its own process at exit */
                "ptrace",
#endif
                "process_vm_readv",
                "process_vm_writev",
                "pidfd_getfd",
                "kcmp",
                "mount",
                "umount2",
                "pivot_root",
                "chroot",
                "move_mount",
                "open_tree",
                "fsopen",
                "fsconfig",
                "fsmount",
                "fspick",
                "mount_setattr",
                "keyctl",
                "add_key",
                "request_key",
                "bpf",
                "unshare",
                "setns",
                "perf_event_open",
                "userfaultfd",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
                "kexec_load",
                "kexec_file_load",
                "init_module",
                "finit_module",
                "delete_module",
                "reboot",
                "swapon",
                "swapoff",
                "acct",
                "quotactl",
                "quotactl_fd",
                "open_by_handle_at",
                "name_to_handle_at",
                "fanotify_init",
                "iopl",
                "ioperm",
                "syslog",
                "vhangup",
                "uselib",
                "sethostname",
                "setdomainname",
                "settimeofday",
                "clock_settime",
                "clock_adjtime",
                "adjtimex",
                "lookup_dcookie",
                "nfsservctl",
                "_sysctl",
        };
        /* clone() with a namespace flag is unshare() by another name. CLONE_NEWTIME is left out: in
         * clone()'s flags that bit is part of the exit signal. */
        static const unsigned long ns_flags[] = {
                CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
                CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
        };
        scmp_filter_ctx ctx;
        int r = 0;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "seccomp_init failed");

        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(denied); i++)
                r = seccomp_deny(ctx, denied[i], EPERM);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(ns_flags); i++)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        /* clone3() passes its flags in memory, out of the filter's sight: say it does not exist,
         * and glibc falls back to clone(). */
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        /* Faking terminal input, should any of our fds be a terminal. */
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, (unsigned long)TIOCSTI));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, (unsigned long)TIOCLINUX));
        /* Syscalls of another ABI (i386 int 0x80, x32) kill: libseccomp's default for a foreign
         * architecture. NO_NEW_PRIVS is already set. */
        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        if (r < 0)
                return fail_errno(c, IMAGE_EXTRACT_INTERNAL, r, "cannot install the seccomp filter");
        return 0;
}

/* Everything before the first byte of input is read. The order matters: fds and limits while we
 * may still be root, NO_NEW_PRIVS before the drop, the parent-death signal after it (a credential
 * change clears it), seccomp last (it would refuse what the steps before need). */
static int confine(Ctx *c) {
        struct stat st;
        rlim_t cpu;
        int r;

        /* A backstop for piemud's own wall-clock timeout, and a CPU budget that grows with the
         * largest image allowed (xz decodes ~50 MiB/s or more on one core). */
        cpu = (rlim_t)(300 + 20 * (c->max_size / GiB));
        alarm((unsigned)(2 * cpu));

        /* A file-size overrun is an error we report (EFBIG), not a silent death. */
        signal(SIGXFSZ, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);

        /* Only stdin, stdout, stderr and the output directory: whatever else the caller leaked
         * goes now. */
        if (close_range(OUTDIR_FD + 1, ~0U, 0) < 0)
                for (int fd = OUTDIR_FD + 1; fd < 65536; fd++)
                        (void)close(fd);
        for (int fd = 0; fd <= OUTDIR_FD; fd++)
                if (fcntl(fd, F_GETFD) < 0)
                        return failf(c, IMAGE_EXTRACT_USAGE,
                                     "fd %d is not open (stdin: the image, fd 3: the output directory)", fd);
        if (fstat(OUTDIR_FD, &st) < 0 || !S_ISDIR(st.st_mode))
                return failf(c, IMAGE_EXTRACT_USAGE, "fd 3 is not a directory");
        /* Our children (mcopy) get fds of their own choosing, never these. */
        (void)fcntl(STDIN_FILENO, F_SETFD, FD_CLOEXEC);
        (void)fcntl(OUTDIR_FD, F_SETFD, FD_CLOEXEC);

        set_limit(RLIMIT_CPU, cpu);
#ifndef BUILT_WITH_ASAN
        /* ASan reserves terabytes of address space for its shadow memory. */
        set_limit(RLIMIT_AS, (rlim_t)(1 * GiB));
#endif
        /* The largest file we write is sd.img (at most max_size) or the initramfs. */
        set_limit(RLIMIT_FSIZE, (rlim_t)((c->max_size > INITRD_MAX ? c->max_size : INITRD_MAX) + 64 * MiB));
        set_limit(RLIMIT_NOFILE, 32);
        set_limit(RLIMIT_CORE, 0);
        set_limit(RLIMIT_MEMLOCK, 0);
        set_limit(RLIMIT_MSGQUEUE, 0);

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return fail_errno(c, IMAGE_EXTRACT_INTERNAL, -errno, "PR_SET_NO_NEW_PRIVS");

        r = drop_privileges(c);
        if (r < 0)
                return r;

        /* piemud gone: so are we. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

        r = install_seccomp(c);
        if (r < 0)
                return r;

        umask(022);
        return 0;
}

/* --- input and sd.img ------------------------------------------------------------------------- */

typedef struct Input {
        int fd;
        bool regular; /* pread() at pos; else read() */
        uint64_t pos, size;
} Input;

static ssize_t input_read(Input *in, void *buf, size_t n) {
        for (;;) {
                ssize_t l = in->regular ? pread(in->fd, buf, n, (off_t)in->pos) : read(in->fd, buf, n);
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0)
                        return -errno;
                in->pos += (uint64_t)l;
                return l;
        }
}

typedef struct Sink {
        int fd;
        uint64_t off, max;
        uint8_t head[512];
        bool head_checked;
} Sink;

static bool all_zero(const uint8_t *p, size_t n) {
        return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int sink_check_head(Ctx *c, Sink *s) {
        s->head_checked = true;
        /* What every MBR ends with, and what libblkid's dos prober insists on: refusing early
         * saves copying gigabytes of something else. */
        if (s->head[510] != 0x55 || s->head[511] != 0xaa)
                return failf(c, IMAGE_EXTRACT_NOT_MBR,
                             "not a disk image with an MBR partition table (no boot signature)");
        return 0;
}

/* Appends n bytes, leaving holes where whole blocks are zero. */
static int sink_put(Ctx *c, Sink *s, const uint8_t *p, size_t n) {
        size_t i = 0, run = 0;
        bool in_run = false;
        int r;

        if (n > s->max - s->off)
                return failf(c, IMAGE_EXTRACT_TOO_LARGE,
                             "the image is larger than the limit of %" PRIu64 " bytes", s->max);
        if (s->off < sizeof(s->head)) {
                size_t k = sizeof(s->head) - (size_t)s->off;
                memcpy(s->head + s->off, p, k < n ? k : n);
                if (!s->head_checked && s->off + n >= sizeof(s->head) && sink_check_head(c, s) < 0)
                        return -EBADMSG;
        }

        while (i < n) {
                size_t blk = SPARSE_BLOCK - (size_t)((s->off + i) % SPARSE_BLOCK);
                bool zero;

                if (blk > n - i)
                        blk = n - i;
                zero = all_zero(p + i, blk);
                if (!zero && !in_run) {
                        run = i;
                        in_run = true;
                } else if (zero && in_run) {
                        r = pwrite_all(s->fd, p + run, i - run, s->off + run);
                        if (r < 0)
                                goto fail;
                        in_run = false;
                }
                i += blk;
        }
        if (in_run) {
                r = pwrite_all(s->fd, p + run, n - run, s->off + run);
                if (r < 0)
                        goto fail;
        }
        s->off += n;
        return 0;

fail:
        if (r == -EFBIG)
                return failf(c, IMAGE_EXTRACT_TOO_LARGE, "the image is larger than the file size limit");
        return fail_errno(c, IMAGE_EXTRACT_IO, r, "cannot write sd.img");
}

static int sink_skip(Ctx *c, Sink *s, uint64_t n) {
        if (n > s->max - s->off)
                return failf(c, IMAGE_EXTRACT_TOO_LARGE,
                             "the image is larger than the limit of %" PRIu64 " bytes", s->max);
        if (s->off < sizeof(s->head)) {
                /* zeros: the head buffer starts zeroed */
                if (!s->head_checked && s->off + n >= sizeof(s->head) && sink_check_head(c, s) < 0)
                        return -EBADMSG;
        }
        s->off += n;
        return 0;
}

static int sink_finish(Ctx *c, Sink *s) {
        if (s->off == 0)
                return failf(c, IMAGE_EXTRACT_NOT_MBR, "the image is empty");
        if (!s->head_checked)
                return failf(c, IMAGE_EXTRACT_NOT_MBR, "not a disk image (only %" PRIu64 " bytes)", s->off);
        /* The length, including a trailing hole. */
        if (ftruncate(s->fd, (off_t)s->off) < 0)
                return fail_errno(c, IMAGE_EXTRACT_IO, -errno, "cannot set the size of sd.img");
        return 0;
}

static int copy_raw(Ctx *c, Input *in, Sink *s, uint8_t *buf, size_t have) {
        int r;

        r = sink_put(c, s, buf, have);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t l;

                /* A sparse source stays sparse without reading its holes. */
                if (in->regular && in->pos < in->size) {
                        off_t data = lseek(in->fd, (off_t)in->pos, SEEK_DATA);
                        uint64_t to = data < 0 && errno == ENXIO ? in->size : (uint64_t)data;

                        if ((data >= 0 || errno == ENXIO) && to > in->pos) {
                                if (to > in->size)
                                        to = in->size;
                                r = sink_skip(c, s, to - in->pos);
                                if (r < 0)
                                        return r;
                                in->pos = to;
                        }
                }
                l = input_read(in, buf, CHUNK);
                if (l < 0)
                        return fail_errno(c, IMAGE_EXTRACT_IO, (int)l, "cannot read the image");
                if (l == 0)
                        return 0;
                r = sink_put(c, s, buf, (size_t)l);
                if (r < 0)
                        return r;
        }
}

static int copy_xz(Ctx *c, Input *in, Sink *s, uint8_t *inbuf, size_t have) {
        _cleanup_free_ uint8_t *outbuf = NULL;
        lzma_stream strm = LZMA_STREAM_INIT;
        lzma_action action = LZMA_RUN;
        lzma_ret ret;
        int r = 0;

        outbuf = malloc(CHUNK);
        if (!outbuf)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        /* CONCATENATED: xz files may hold several streams (pixz, pxz, cat a.xz b.xz). */
        ret = lzma_stream_decoder(&strm, XZ_MEMLIMIT, LZMA_CONCATENATED);
        if (ret != LZMA_OK)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "cannot set up the xz decoder (%d)", (int)ret);

        strm.next_in = inbuf;
        strm.avail_in = have;
        for (;;) {
                if (strm.avail_in == 0 && action == LZMA_RUN) {
                        ssize_t l = input_read(in, inbuf, CHUNK);
                        if (l < 0) {
                                r = fail_errno(c, IMAGE_EXTRACT_IO, (int)l, "cannot read the image");
                                break;
                        }
                        if (l == 0)
                                action = LZMA_FINISH;
                        strm.next_in = inbuf;
                        strm.avail_in = (size_t)l;
                }
                strm.next_out = outbuf;
                strm.avail_out = CHUNK;
                ret = lzma_code(&strm, action);
                if (strm.avail_out < CHUNK) {
                        r = sink_put(c, s, outbuf, CHUNK - strm.avail_out);
                        if (r < 0)
                                break;
                }
                if (ret == LZMA_OK)
                        continue;
                if (ret == LZMA_STREAM_END)
                        break;
                switch (ret) {
                case LZMA_BUF_ERROR:
                        /* no progress possible with all input given: it ends too early */
                        r = failf(c, IMAGE_EXTRACT_XZ_TRUNCATED, "the xz-compressed image is truncated");
                        break;
                case LZMA_MEM_ERROR:
                        r = failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory decompressing the image");
                        break;
                case LZMA_MEMLIMIT_ERROR:
                        r = failf(c, IMAGE_EXTRACT_XZ_CORRUPT,
                                  "the xz-compressed image needs more than %" PRIu64 " MiB to decompress",
                                  XZ_MEMLIMIT / MiB);
                        break;
                case LZMA_OPTIONS_ERROR:
                        r = failf(c, IMAGE_EXTRACT_XZ_CORRUPT,
                                  "the xz-compressed image uses unsupported options");
                        break;
                case LZMA_FORMAT_ERROR:
                        r = failf(c, IMAGE_EXTRACT_XZ_CORRUPT,
                                  "the xz-compressed image has data that is not xz");
                        break;
                default:
                        r = failf(c, IMAGE_EXTRACT_XZ_CORRUPT, "the xz-compressed image is corrupt");
                }
                break;
        }
        lzma_end(&strm);
        return r;
}

static int write_sd_image(Ctx *c) {
        static const uint8_t xz_magic[6] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
        _cleanup_free_ uint8_t *buf = NULL;
        Input in = {.fd = STDIN_FILENO};
        Sink s = {.max = c->max_size};
        struct stat st;
        size_t have = 0;
        bool xz;
        int r;

        if (fstat(STDIN_FILENO, &st) < 0)
                return fail_errno(c, IMAGE_EXTRACT_IO, -errno, "stdin");
        if (S_ISREG(st.st_mode)) {
                in.regular = true;
                in.size = (uint64_t)st.st_size;
        } else if (S_ISDIR(st.st_mode))
                return failf(c, IMAGE_EXTRACT_USAGE, "stdin is a directory, not an image");

        buf = malloc(CHUNK);
        if (!buf)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        while (have < sizeof(xz_magic)) {
                ssize_t l = input_read(&in, buf + have, CHUNK - have);
                if (l < 0)
                        return fail_errno(c, IMAGE_EXTRACT_IO, (int)l, "cannot read the image");
                if (l == 0)
                        break;
                have += (size_t)l;
        }
        xz = have >= sizeof(xz_magic) && memcmp(buf, xz_magic, sizeof(xz_magic)) == 0;
        if (!xz && in.regular && in.size > c->max_size)
                return failf(c, IMAGE_EXTRACT_TOO_LARGE,
                             "the image (%" PRIu64 " bytes) is larger than the limit of %" PRIu64 " bytes",
                             in.size, c->max_size);

        c->sd_fd = openat(OUTDIR_FD, "sd.img", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (c->sd_fd < 0)
                return fail_errno(c, IMAGE_EXTRACT_IO, -errno,
                                  "cannot create sd.img in the output directory");
        s.fd = c->sd_fd;

        r = xz ? copy_xz(c, &in, &s, buf, have) : copy_raw(c, &in, &s, buf, have);
        if (r < 0)
                return r;
        r = sink_finish(c, &s);
        if (r < 0)
                return r;
        c->sd_size = s.off;
        return 0;
}

/* --- the partition table ---------------------------------------------------------------------- */

static bool is_fat_type(int t) {
        /* FAT12, FAT16 <32M, FAT16, FAT32 (CHS), FAT32 (LBA), FAT16 (LBA) */
        return t == 0x01 || t == 0x04 || t == 0x06 || t == 0x0b || t == 0x0c || t == 0x0e;
}

static bool probes_as_vfat(int fd, uint64_t off, uint64_t len) {
        char *types[] = {(char *)"vfat", NULL};
        const char *type = NULL;
        blkid_probe pr;
        bool ok = false;

        pr = blkid_new_probe();
        if (!pr)
                return false;
        if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)len) == 0 &&
            blkid_probe_enable_superblocks(pr, 1) == 0 &&
            blkid_probe_filter_superblocks_type(pr, BLKID_FLTR_ONLYIN, types) == 0 &&
            blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0)
                ok = type && streq(type, "vfat");
        blkid_free_probe(pr);
        return ok;
}

static int find_boot_partition(Ctx *c) {
        blkid_probe pr;
        blkid_partlist ls;
        blkid_parttable tab;
        const char *type;
        char skipped[160] = "";
        int n, r;

        pr = blkid_new_probe();
        if (!pr)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        if (blkid_probe_set_device(pr, c->sd_fd, 0, 0) < 0) {
                blkid_free_probe(pr);
                return failf(c, IMAGE_EXTRACT_IO, "cannot probe sd.img");
        }
        (void)blkid_probe_enable_superblocks(pr, 0);
        (void)blkid_probe_enable_partitions(pr, 1);

        ls = blkid_probe_get_partitions(pr);
        tab = ls ? blkid_partlist_get_table(ls) : NULL;
        type = tab ? blkid_parttable_get_type(tab) : NULL;
        if (!type || !streq(type, "dos")) {
                r = type ? failf(c, IMAGE_EXTRACT_NOT_MBR,
                                 "the image has a %s partition table, not MBR (dos)",
                                 streq(type, "gpt") ? "GPT" : "non-MBR")
                         : failf(c, IMAGE_EXTRACT_NOT_MBR, "not a disk image with an MBR partition table");
                blkid_free_probe(pr);
                return r;
        }

        n = blkid_partlist_numof_partitions(ls);
        for (int i = 0; i < n; i++) {
                blkid_partition par = blkid_partlist_get_partition(ls, i);
                blkid_loff_t start, size;
                uint64_t off, len;
                int t, no;

                if (!par)
                        continue;
                t = blkid_partition_get_type(par);
                no = blkid_partition_get_partno(par);
                if (!is_fat_type(t))
                        continue;
                start = blkid_partition_get_start(par);
                size = blkid_partition_get_size(par);
                /* libblkid counts 512-byte sectors; the partition must lie inside the image */
                if (start <= 0 || size <= 0 || (uint64_t)start > c->sd_size / 512 ||
                    (uint64_t)size > c->sd_size / 512 - (uint64_t)start) {
                        snprintf(skipped + strlen(skipped), sizeof(skipped) - strlen(skipped),
                                 "%spartition %d lies outside the image", skipped[0] ? "; " : "", no);
                        continue;
                }
                off = (uint64_t)start * 512;
                len = (uint64_t)size * 512;
                if (!probes_as_vfat(c->sd_fd, off, len)) {
                        snprintf(skipped + strlen(skipped), sizeof(skipped) - strlen(skipped),
                                 "%spartition %d (type 0x%02x) holds no FAT file system",
                                 skipped[0] ? "; " : "", no, (unsigned)t);
                        continue;
                }
                c->boot_offset = off;
                c->boot_partno = no;
                if (skipped[0])
                        notef(c, "the boot partition is partition %d (%s)", no, skipped);
                blkid_free_probe(pr);
                return 0;
        }
        blkid_free_probe(pr);
        return failf(c, IMAGE_EXTRACT_NO_BOOT_PARTITION, "the image has no FAT boot partition%s%s%s",
                     skipped[0] ? " (" : "", skipped, skipped[0] ? ")" : "");
}

/* --- reading the FAT with mcopy --------------------------------------------------------------- */

static uint64_t now_msec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct FatFile {
        int fd; /* copy the file here, or, if < 0, into data */
        uint8_t *data;
        size_t size;
        uint64_t max; /* more than this: -EFBIG */
} FatFile;

_Noreturn static void mcopy_child(Ctx *c, const char *name, int out_w, int err_w) {
        char image[64], src[RPI_BOOT_NAME_MAX + 3];
        char *argv[] = {(char *)"mcopy", (char *)"-n", (char *)"-i", image, src, (char *)"-", NULL};
        /* No configuration of anyone's: mtools still reads /etc/mtools.conf, which only defines
         * drive letters we do not use. MTOOLS_SKIP_CHECK: images from mkfs tools other than
         * DOS's have geometry mtools would otherwise refuse. */
        char *envp[] = {(char *)"MTOOLSRC=/dev/null", (char *)"MTOOLS_SKIP_CHECK=1",
                        (char *)"HOME=/nonexistent",  (char *)"PATH=/usr/bin:/bin",
                        (char *)"LC_ALL=C",           NULL};
        struct rlimit rl;
        int null;

        /* The image as fd 3 (mcopy reopens it through /proc/self/fd), nothing else of ours: not
         * the output directory, not stdin. */
        snprintf(image, sizeof(image), "/proc/self/fd/3@@%" PRIu64, c->boot_offset);
        snprintf(src, sizeof(src), "::%s", name);
        null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 ||
            dup2(c->sd_fd, 3) < 0)
                _exit(127);
        if (close_range(4, ~0U, 0) < 0)
                for (int fd = 4; fd < 64; fd++)
                        (void)close(fd);
        /* mcopy writes only to its stdout pipe: no file of any size. */
        rl = (struct rlimit){0, 0};
        (void)setrlimit(RLIMIT_FSIZE, &rl);
        rl = (struct rlimit){MCOPY_CPU_SEC, MCOPY_CPU_SEC};
        (void)setrlimit(RLIMIT_CPU, &rl);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        execve(PIEMU_MCOPY, argv, envp);
        _exit(127);
}

/* Starts mcopy on ::name, with pipes for its stdout and stderr (their read ends in *ret_out_r and
 * *ret_err_r, set as soon as they exist, for the caller to close). Returns its pid or -errno. */
static pid_t mcopy_start(Ctx *c, const char *name, int *ret_out_r, int *ret_err_r) {
        int out_p[2], err_p[2], r;
        pid_t pid;

        if (pipe2(out_p, O_CLOEXEC) < 0)
                return -errno;
        *ret_out_r = out_p[0];
        if (pipe2(err_p, O_CLOEXEC) < 0) {
                r = -errno;
                safe_close(out_p[1]);
                return r;
        }
        *ret_err_r = err_p[0];

        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(out_p[1]);
                safe_close(err_p[1]);
                return r;
        }
        if (pid == 0)
                mcopy_child(c, name, out_p[1], err_p[1]);
        safe_close(out_p[1]);
        safe_close(err_p[1]);
        return pid;
}

/* Appends n bytes of the file to f: to its fd, or to its data (*cap bytes allocated). 0, -EFBIG
 * past f->max, -ENOMEM, or the write's error. */
static int fat_file_append(FatFile *f, size_t *cap, const uint8_t *p, size_t n) {
        int r = 0;

        if ((uint64_t)n > f->max - f->size)
                return -EFBIG;
        if (f->fd >= 0)
                r = write_all(f->fd, p, n);
        else {
                if (f->size + n > *cap) {
                        size_t ncap = *cap ? *cap * 2 : 65536;
                        uint8_t *d;

                        while (ncap < f->size + n)
                                ncap *= 2;
                        d = realloc(f->data, ncap);
                        if (!d)
                                return -ENOMEM;
                        f->data = d;
                        *cap = ncap;
                }
                memcpy(f->data + f->size, p, n);
        }
        if (r < 0)
                return r;
        f->size += n;
        return 0;
}

/* Reads mcopy's stdout into f and the start of its stderr into err (*err_n bytes, at most
 * MCOPY_STDERR_MAX) until both are closed: 0, -ETIMEDOUT past deadline (msec), or what failed. */
static int mcopy_read_output(int out_r, int err_r, uint64_t deadline, FatFile *f, char *err, size_t *err_n) {
        bool out_eof = false, err_eof = false;
        uint8_t buf[65536];
        size_t cap = 0;
        int r;

        while (!out_eof || !err_eof) {
                struct pollfd p[2] = {{.fd = out_eof ? -1 : out_r, .events = POLLIN},
                                      {.fd = err_eof ? -1 : err_r, .events = POLLIN}};
                uint64_t now = now_msec();
                ssize_t l;

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(p, 2, (int)(deadline - now)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents) {
                        l = read(out_r, buf, sizeof(buf));
                        if (l < 0 && errno != EINTR && errno != EAGAIN)
                                return -errno;
                        if (l == 0)
                                out_eof = true;
                        if (l > 0) {
                                r = fat_file_append(f, &cap, buf, (size_t)l);
                                if (r < 0)
                                        return r;
                        }
                }
                if (p[1].revents) {
                        /* keep the start, drain the rest: mcopy must never block on stderr */
                        l = read(err_r, buf, sizeof(buf));
                        if (l == 0 || (l < 0 && errno != EINTR && errno != EAGAIN))
                                err_eof = true;
                        else if (l > 0 && *err_n < MCOPY_STDERR_MAX) {
                                size_t k = MCOPY_STDERR_MAX - *err_n < (size_t)l ? MCOPY_STDERR_MAX - *err_n
                                                                                 : (size_t)l;
                                memcpy(err + *err_n, buf, k);
                                *err_n += k;
                        }
                }
        }
        return 0;
}

/* Reads ::name from the boot partition: 0, -ENOENT if there is no such file, -EFBIG if it is
 * larger than f->max, -EIO if mcopy failed otherwise (c->mtools_msg says how), -ETIMEDOUT. */
static int fat_read(Ctx *c, const char *name, FatFile *f) {
        _cleanup_close_ int out_r = -EBADF, err_r = -EBADF;
        int status = 0, r;
        char err[MCOPY_STDERR_MAX + 1];
        size_t err_n = 0;
        bool killed = false;
        uint64_t deadline = now_msec() + MCOPY_TIMEOUT_SEC * 1000;
        pid_t pid;

        c->mtools_msg[0] = '\0';
        f->size = 0;
        if (!rpi_boot_name_is_valid(name))
                return -ENOENT;

        pid = mcopy_start(c, name, &out_r, &err_r);
        if (pid < 0)
                return pid;

        r = mcopy_read_output(out_r, err_r, deadline, f, err, &err_n);
        if (r < 0) {
                (void)kill(pid, SIGKILL);
                killed = true;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        if (r >= 0)
                                r = -errno;
                        break;
                }
        if (r < 0)
                return r;

        err[err_n] = '\0';
        {
                char *nl = strchr(err, '\n');
                if (nl)
                        *nl = '\0';
                snprintf(c->mtools_msg, sizeof(c->mtools_msg), "%.200s", err);
                sanitize(c->mtools_msg);
        }
        if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (strstr(err, "not found"))
                return -ENOENT;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !c->mtools_msg[0])
                snprintf(c->mtools_msg, sizeof(c->mtools_msg), "cannot run %s", PIEMU_MCOPY);
        else if (!c->mtools_msg[0])
                snprintf(c->mtools_msg, sizeof(c->mtools_msg), "mcopy failed (status 0x%x)",
                         (unsigned)status);
        return -EIO;
}

static int create_output(Ctx *c, const char *name) {
        int fd = openat(OUTDIR_FD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return fail_errno(c, IMAGE_EXTRACT_IO, -errno, name);
        return fd;
}

/* Reads a small text file (config.txt, cmdline.txt): 0 with *ret (NUL-terminated, *ret_size without
 * the NUL), -ENOENT, or a failure already recorded. */
static int read_text(Ctx *c, const char *name, char **ret, size_t *ret_size) {
        FatFile f = {.fd = -1, .max = TEXT_MAX};
        uint8_t *d;
        int r;

        r = fat_read(c, name, &f);
        if (r == -ENOENT) {
                free(f.data);
                return -ENOENT;
        }
        if (r < 0) {
                free(f.data);
                if (r == -EFBIG)
                        return failf(c, IMAGE_EXTRACT_TOO_LARGE, "%s is larger than %" PRIu64 " KiB", name,
                                     TEXT_MAX / KiB);
                if (r == -EIO)
                        return failf(c, IMAGE_EXTRACT_NO_BOOT_PARTITION,
                                     "cannot read the FAT boot partition (%d): %s", c->boot_partno,
                                     c->mtools_msg);
                if (r == -ETIMEDOUT)
                        return failf(c, IMAGE_EXTRACT_NO_BOOT_PARTITION,
                                     "reading %s from the boot partition timed out", name);
                return fail_errno(c, IMAGE_EXTRACT_IO, r, "reading the boot partition");
        }
        d = realloc(f.data, f.size + 1);
        if (!d) {
                free(f.data);
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        }
        d[f.size] = '\0';
        *ret = (char *)d;
        *ret_size = f.size;
        return 0;
}

/* Copies a boot file into the output file out_name: 0 (size in *ret_size), -ENOENT (output
 * removed), -EFBIG, -EIO (output removed, c->mtools_msg), or a failure already recorded. */
static int copy_file(Ctx *c, const char *name, const char *out_name, uint64_t max, uint64_t *ret_size) {
        FatFile f = {.max = max};
        int r;

        f.fd = create_output(c, out_name);
        if (f.fd < 0)
                return f.fd;
        r = fat_read(c, name, &f);
        safe_close(f.fd);
        if (r < 0)
                (void)unlinkat(OUTDIR_FD, out_name, 0);
        if (r == -ETIMEDOUT)
                return failf(c, IMAGE_EXTRACT_NO_BOOT_PARTITION,
                             "reading %s from the boot partition timed out", name);
        if (r < 0 && r != -ENOENT && r != -EFBIG && r != -EIO)
                return fail_errno(c, IMAGE_EXTRACT_IO, r, "reading the boot partition");
        if (r >= 0)
                *ret_size = f.size;
        return r;
}

/* --- the whole image -------------------------------------------------------------------------- */

/* Both modes end here: the board's revision and a free console UART patched in (dtb-patch.c), then
 * written as the output "dtb". `what` names the input in the error (a file name in the image, or
 * "the dtb is not usable"); *ret_size is what was written. */
static int patch_and_write_dtb(Ctx *c, const void *data, size_t size, int i2c_arm, const char *what,
                               size_t *ret_size) {
        _cleanup_free_ void *patched = NULL;
        size_t patched_size;
        const char *why = NULL;
        int r, fd;

        r = dtb_patch(data, size, rpi_model_revision(c->model), DTB_PATCH_SERIAL, i2c_arm, &patched,
                      &patched_size, &why);
        if (r == -ENOMEM)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        if (r < 0)
                return failf(c, IMAGE_EXTRACT_BAD_DTB, "%s: %s", what, why ?: "invalid device tree");

        fd = create_output(c, "dtb");
        if (fd < 0)
                return fd;
        r = write_all(fd, patched, patched_size);
        safe_close(fd);
        if (r < 0)
                return fail_errno(c, IMAGE_EXTRACT_IO, r, "cannot write dtb");
        if (ret_size)
                *ret_size = patched_size;
        return 0;
}

static int extract_dtb(Ctx *c, const RpiConfig *cfg, const char **ret_name) {
        const char *const *names, *single[2] = {cfg->device_tree, NULL};
        char tried[256] = "";
        int r;

        names = cfg->device_tree ? single : rpi_model_dtb_names(c->model, cfg->upstream_kernel);
        for (size_t i = 0; names[i]; i++) {
                FatFile f = {.fd = -1, .max = DTB_PATCH_MAX_SIZE};

                r = fat_read(c, names[i], &f);
                if (r == -ENOENT || r == -EIO) {
                        free(f.data);
                        snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s%s",
                                 tried[0] ? ", " : "", names[i]);
                        continue;
                }
                if (r < 0) {
                        free(f.data);
                        if (r == -EFBIG)
                                return failf(c, IMAGE_EXTRACT_BAD_DTB, "%s is larger than %d KiB", names[i],
                                             DTB_PATCH_MAX_SIZE / 1024);
                        if (r == -ETIMEDOUT)
                                return failf(c, IMAGE_EXTRACT_NO_BOOT_PARTITION,
                                             "reading %s from the boot partition timed out", names[i]);
                        return fail_errno(c, IMAGE_EXTRACT_IO, r, "reading the boot partition");
                }
                r = patch_and_write_dtb(c, f.data, f.size, cfg->i2c_arm, names[i], NULL);
                free(f.data);
                if (r < 0)
                        return r;
                *ret_name = names[i];
                return 0;
        }
        if (cfg->device_tree)
                return failf(c, IMAGE_EXTRACT_NO_DTB,
                             "the boot partition has no %s (device_tree= in config.txt)", cfg->device_tree);
        return failf(c, IMAGE_EXTRACT_NO_DTB, "the boot partition has no device tree for %s (looked for %s)",
                     rpi_model_to_string(c->model), tried);
}

static int extract_image(Ctx *c) {
        _cleanup_(rpi_config_done) RpiConfig cfg = {.arm_64bit = -1};
        _cleanup_free_ char *config = NULL, *cmdline_txt = NULL, *cmdline = NULL, *initrd_auto = NULL;
        const char *kernel, *dtb_name = NULL, *initrd = NULL, *cmdline_name;
        size_t config_size = 0, cmdline_size = 0;
        uint64_t size;
        bool has_root = false;
        int r;

        r = write_sd_image(c);
        if (r < 0)
                return r;
        r = find_boot_partition(c);
        if (r < 0)
                return r;

        r = read_text(c, "config.txt", &config, &config_size);
        if (r == -ENOENT)
                notef(c, "the boot partition has no config.txt: using the firmware's defaults");
        else if (r < 0)
                return r;
        r = rpi_config_parse(config ?: "", config_size, c->model, &cfg);
        if (r < 0)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        for (size_t i = 0; i < cfg.n_notes; i++)
                notef(c, "%s", cfg.notes[i]);

        /* cmdline.txt */
        cmdline_name = cfg.cmdline ?: "cmdline.txt";
        r = read_text(c, cmdline_name, &cmdline_txt, &cmdline_size);
        if (r == -ENOENT)
                notef(c, "the boot partition has no %s: the command line is piemu's console only",
                      cmdline_name);
        else if (r < 0)
                return r;
        r = rpi_cmdline_rewrite(cmdline_txt ?: "", cmdline_size, &cmdline, &has_root);
        if (r == -EBADMSG)
                return failf(c, IMAGE_EXTRACT_BAD_CMDLINE,
                             "%s has control characters, non-ASCII bytes or an unterminated quote in its "
                             "first line",
                             cmdline_name);
        if (r == -E2BIG)
                return failf(c, IMAGE_EXTRACT_BAD_CMDLINE, "%s is longer than %d bytes", cmdline_name,
                             RPI_CMDLINE_MAX);
        if (r < 0)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        if (!has_root)
                notef(c, "the command line has no root=: the kernel will not find a root file system on its "
                         "own");

        /* kernel */
        kernel = rpi_config_kernel(&cfg, c->model);
        r = copy_file(c, kernel, "kernel", KERNEL_MAX, &size);
        if (r == -ENOENT || r == -EIO)
                return failf(c, IMAGE_EXTRACT_NO_KERNEL,
                             "the boot partition has no %s, the kernel for %s%s%s%s", kernel,
                             rpi_model_to_string(c->model), cfg.kernel ? " (kernel= in config.txt)" : "",
                             r == -EIO ? ": " : "", r == -EIO ? c->mtools_msg : "");
        if (r == -EFBIG)
                return failf(c, IMAGE_EXTRACT_TOO_LARGE, "%s is larger than %" PRIu64 " MiB", kernel,
                             KERNEL_MAX / MiB);
        if (r < 0)
                return r;
        if (size == 0) {
                (void)unlinkat(OUTDIR_FD, "kernel", 0);
                return failf(c, IMAGE_EXTRACT_NO_KERNEL, "%s in the boot partition is empty", kernel);
        }

        r = extract_dtb(c, &cfg, &dtb_name);
        if (r < 0)
                return r;

        /* initramfs: one config.txt names must exist (the firmware would not boot without it,
         * we boot without and say so); auto_initramfs's is used if it is there. */
        if (cfg.initramfs)
                initrd = cfg.initramfs;
        else if (cfg.auto_initramfs && rpi_auto_initramfs_name(kernel, &initrd_auto) >= 0)
                initrd = initrd_auto;
        if (initrd) {
                r = copy_file(c, initrd, "initrd", INITRD_MAX, &size);
                if (r == -EFBIG)
                        return failf(c, IMAGE_EXTRACT_TOO_LARGE, "%s is larger than %" PRIu64 " MiB", initrd,
                                     INITRD_MAX / MiB);
                if (r == -ENOENT || r == -EIO) {
                        if (cfg.initramfs)
                                notef(c,
                                      "config.txt names the initramfs %s, which the boot partition does not "
                                      "have%s%s",
                                      initrd, r == -EIO ? ": " : "", r == -EIO ? c->mtools_msg : "");
                        initrd = NULL;
                } else if (r < 0)
                        return r;
                else if (size == 0) {
                        (void)unlinkat(OUTDIR_FD, "initrd", 0);
                        notef(c, "the initramfs %s is empty: not using it", initrd);
                        initrd = NULL;
                }
        }

        fprintf(c->out, "cmdline=%s\nkernel=%s\ndtb=%s\ninitrd=%s\nsd_size=%" PRIu64 "\narm_64bit=%d\n",
                cmdline, kernel, dtb_name, strempty(initrd), c->sd_size,
                rpi_config_arm_64bit(&cfg, c->model));
        return 0;
}

static int extract_dtb_only(Ctx *c) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0, patched_size;
        int r;

        buf = malloc(DTB_PATCH_MAX_SIZE + 1);
        if (!buf)
                return failf(c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        while (n < DTB_PATCH_MAX_SIZE + 1) {
                ssize_t l = read(STDIN_FILENO, buf + n, DTB_PATCH_MAX_SIZE + 1 - n);
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0)
                        return fail_errno(c, IMAGE_EXTRACT_IO, -errno, "cannot read the dtb");
                if (l == 0)
                        break;
                n += (size_t)l;
        }
        if (n > DTB_PATCH_MAX_SIZE)
                return failf(c, IMAGE_EXTRACT_BAD_DTB, "the dtb is larger than %d KiB",
                             DTB_PATCH_MAX_SIZE / 1024);

        r = patch_and_write_dtb(c, buf, n, -1, "the dtb is not usable", &patched_size);
        if (r < 0)
                return r;
        fprintf(c->out, "dtb_size=%zu\n", patched_size);
        return 0;
}

/* --- command line ----------------------------------------------------------------------------- */

static void help(void) {
        printf("Usage: %s [--model=MODEL] [--max-size=BYTES] [--dtb-only]\n"
               "\n"
               "Turn one untrusted Raspberry Pi OS image into piemu image catalog files.\n"
               "piemud runs this for ImportImage; it is not meant to be run by hand.\n"
               "\n"
               "Before reading any input the program confines itself: no new privileges,\n"
               "user nobody if started as root, no capabilities, resource limits (CPU time,\n"
               "address space, file size, open files, no core dumps), all fds above 3 closed,\n"
               "and a seccomp filter that denies sockets, ptrace, mounts, namespaces, keyrings,\n"
               "bpf, io_uring and similar. Its mcopy children inherit all of it.\n"
               "\n"
               "Input and output:\n"
               "  stdin   the image: a raw disk image or an xz-compressed one (recognized by\n"
               "          its magic bytes, not its name), with an MBR partition table and a\n"
               "          FAT boot partition; with --dtb-only, a bare device tree blob.\n"
               "  fd 3    an empty directory (O_DIRECTORY) in which the program creates, with\n"
               "          mode 0644 and never following or replacing anything:\n"
               "            sd.img  the raw disk, decompressed, sparse where it is zero\n"
               "            kernel  the kernel the firmware would load for MODEL\n"
               "            dtb     the model's device tree, patched for piemu\n"
               "            initrd  the initramfs, if config.txt asks for one that exists\n"
               "          With --dtb-only only dtb is created. The directory must be\n"
               "          writable by the user the program runs as (nobody if started as root).\n"
               "  stdout  on success, key=value lines:\n"
               "            cmdline=   the kernel command line: cmdline.txt's first line\n"
               "                       without console=, quiet, splash, plymouth.* and\n"
               "                       first-boot resizers, plus console=ttyAMA0,115200\n"
               "            kernel=    the kernel's file name in the boot partition\n"
               "            dtb=       the device tree's file name in the boot partition\n"
               "            initrd=    the initramfs's file name, or empty\n"
               "            sd_size=   the size of sd.img in bytes\n"
               "            arm_64bit= 1 if the firmware would start the kernel in 64-bit mode\n"
               "            note=      (any number) something a human may want to know\n"
               "          With --dtb-only: dtb_size=. Other keys may be added in the future.\n"
               "  stderr  on failure, one line: \"%s: MESSAGE\".\n"
               "\n"
               "The boot partition is the first MBR partition of a FAT type (0x01, 0x04,\n"
               "0x06, 0x0b, 0x0c, 0x0e) that holds a FAT file system. config.txt is read as\n"
               "the firmware of MODEL would: [all], [none], model filters ([pi3], [pi4], ...;\n"
               "other filters count as not matching), kernel=, arm_64bit=, device_tree=,\n"
               "initramfs, auto_initramfs=, cmdline=, upstream_kernel=, and dtparam=i2c_arm\n"
               "(alias i2c) for the base tree, which switches the header's I2C bus on or off;\n"
               "other dtparams and dtoverlay= are ignored; include is not followed.\n"
               "An initramfs that config.txt names but the partition lacks is left out (with a\n"
               "note); auto_initramfs=1 uses initramfs<N> for kernel<N>.img if it is there.\n"
               "\n"
               "The device tree is patched with libfdt: /system/linux,revision is set to the\n"
               "board revision QEMU gives MODEL (and linux,serial to a fixed value), Bluetooth\n"
               "nodes under the PL011 UART are removed (they would make ttyAMA0 a serdev\n"
               "controller, leaving no console on serial0), and /aliases/serial0 and serial1\n"
               "name the PL011 and the mini UART.\n"
               "\n"
               "Options:\n"
               "  --model=MODEL     the QEMU machine, raspi3b by default; one of\n"
               "                    %s;\n"
               "                    selects the config.txt sections, the default kernel and\n"
               "                    dtb names and the board revision written to the dtb\n"
               "  --max-size=BYTES  refuse images larger than this once decompressed\n"
               "                    (default 32 GiB; K, M, G, T suffixes are powers of 1024)\n"
               "  --dtb-only        stdin is a dtb: patch it into fd 3's directory\n"
               "  -h, --help        show this text\n"
               "      --version     show the version\n"
               "\n"
               "Limits: config.txt and cmdline.txt 64 KiB, kernel 64 MiB, dtb 1 MiB,\n"
               "initramfs 256 MiB; CPU time 300 s plus 20 s per GiB of --max-size.\n"
               "\n"
               "Exit status:\n"
               "   0  success\n"
               "   1  internal error\n"
               "   2  usage error (bad option, fd 3 not a directory)\n"
               "   3  I/O error reading the image or writing the output\n"
               "  10  not a disk image with an MBR partition table\n"
               "  11  no FAT boot partition (or it cannot be read)\n"
               "  12  no kernel for the model in the boot partition\n"
               "  13  no device tree for the model in the boot partition\n"
               "  14  the xz stream is truncated\n"
               "  15  the xz stream is corrupt\n"
               "  16  the image exceeds --max-size, or a boot file its limit\n"
               "  17  the device tree is invalid\n"
               "  18  cmdline.txt has control characters, non-ASCII bytes or an\n"
               "      unterminated quote, or is longer than 4096 bytes\n",
               PROG, PROG, pi_model_names());
}

static int parse_size(const char *s, uint64_t *ret) {
        uint64_t v = 0, mult = 1;
        const char *p = s;

        if (!*p)
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (p == s)
                return -EINVAL;
        switch (*p) {
        case '\0':
                break;
        case 'K':
                mult = KiB;
                break;
        case 'M':
                mult = MiB;
                break;
        case 'G':
                mult = GiB;
                break;
        case 'T':
                mult = GiB * 1024;
                break;
        default:
                return -EINVAL;
        }
        if (*p && p[1])
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

static int parse_argv(Ctx *c, int argc, char *argv[]) {
        enum { ARG_MODEL = 0x100, ARG_MAX_SIZE, ARG_DTB_ONLY, ARG_VERSION };
        static const struct option options[] = {
                {"model", required_argument, NULL, ARG_MODEL},
                {"max-size", required_argument, NULL, ARG_MAX_SIZE},
                {"dtb-only", no_argument, NULL, ARG_DTB_ONLY},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case ARG_MODEL:
                        c->model = rpi_model_from_string(optarg);
                        if (c->model < 0)
                                return failf(c, IMAGE_EXTRACT_USAGE, "unknown model (want one of %s)",
                                             pi_model_names());
                        break;
                case ARG_MAX_SIZE:
                        if (parse_size(optarg, &c->max_size) < 0 || c->max_size == 0)
                                return failf(c, IMAGE_EXTRACT_USAGE,
                                             "invalid --max-size (want a positive number of bytes)");
                        break;
                case ARG_DTB_ONLY:
                        c->dtb_only = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("%s %s\n", PROG, PIEMU_VERSION);
                        return 0;
                default:
                        return failf(c, IMAGE_EXTRACT_USAGE,
                                     "unknown option or missing argument (see --help)");
                }
        if (optind < argc)
                return failf(c, IMAGE_EXTRACT_USAGE, "unexpected argument (see --help)");
        return 1;
}

int main(int argc, char *argv[]) {
        Ctx c = {
                .model = RPI_MODEL_RASPI3B,
                .max_size = DEFAULT_MAX_SIZE,
                .sd_fd = -EBADF,
        };
        int r;

        r = parse_argv(&c, argc, argv);
        if (r <= 0)
                goto finish;

        r = confine(&c);
        if (r < 0)
                goto finish;

        c.out = open_memstream(&c.out_buf, &c.out_size);
        if (!c.out) {
                r = failf(&c, IMAGE_EXTRACT_INTERNAL, "out of memory");
                goto finish;
        }
        r = c.dtb_only ? extract_dtb_only(&c) : extract_image(&c);
        if (fclose(c.out) != 0 && r >= 0)
                r = failf(&c, IMAGE_EXTRACT_INTERNAL, "out of memory");
        c.out = NULL;
        if (r >= 0) {
                /* all at once, at the very end: a result on stdout always means success */
                r = write_all(STDOUT_FILENO, c.out_buf, c.out_size);
                if (r < 0)
                        r = fail_errno(&c, IMAGE_EXTRACT_IO, r, "cannot write the result to stdout");
        }

finish:
        free(c.out_buf);
        safe_close(c.sd_fd);
        if (r < 0) {
                if (c.code == IMAGE_EXTRACT_OK)
                        (void)failf(&c, IMAGE_EXTRACT_INTERNAL, "unexpected error %d", r);
                sanitize(c.msg);
                fprintf(stderr, "%s: %s\n", PROG, c.msg);
                return (int)c.code;
        }
        return 0;
}
