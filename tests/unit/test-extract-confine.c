/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* piemu-image-extract's confine(), checked from the inside: this file includes the helper's source
 * (its main() renamed), confines a child process exactly as the helper confines itself, and then
 * tries what a compromised parser would. Dropping to nobody is only exercised when run as root. */

#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/un.h>

#include "tests.h"

#define main helper_main
int helper_main(int argc, char *argv[]);
#include "piemu-image-extract.c"
#undef main

static int failures;

#define EXPECT(cond)                                                                                        \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "%s:%d: expected %s (errno: %m)\n", __FILE__, __LINE__, #cond);     \
                        failures++;                                                                         \
                }                                                                                           \
        } while (0)

#define EXPECT_DENIED(call) EXPECT((call) < 0 && errno == EPERM)

/* "Name:\tvalue" from /proc/self/status */
static bool status_field(const char *name, char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        size_t n = strlen(name);

        if (!f)
                return false;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, name, n) == 0 && line[n] == ':') {
                        const char *v = line + n + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        snprintf(buf, size, "%s", v);
                        buf[strcspn(buf, "\n")] = '\0';
                        return true;
                }
        return false;
}

static void check_limit(int resource, rlim_t want) {
        struct rlimit rl;

        EXPECT(getrlimit(resource, &rl) == 0);
        EXPECT(rl.rlim_cur == want && rl.rlim_max == want);
}

static _Noreturn void confined_child(bool was_root) {
        Ctx c = {.model = RPI_MODEL_RASPI3B, .max_size = DEFAULT_MAX_SIZE, .sd_fd = -EBADF};
        char v[128];
        int leak, sp[2], r;
        pid_t pid;

        leak = open("/dev/null", O_RDONLY); /* not O_CLOEXEC: confine() must close it */
        EXPECT(leak > OUTDIR_FD);

        r = confine(&c);
        if (r < 0) {
                fprintf(stderr, "confine: %s\n", c.msg);
                _exit(2);
        }

        EXPECT(fcntl(leak, F_GETFD) < 0 && errno == EBADF);
        EXPECT(fcntl(OUTDIR_FD, F_GETFD) == FD_CLOEXEC);
        EXPECT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
        EXPECT(status_field("Seccomp", v, sizeof(v)) && streq(v, "2"));
        EXPECT(status_field("CapEff", v, sizeof(v)) && streq(v, "0000000000000000"));
        EXPECT(status_field("CapPrm", v, sizeof(v)) && streq(v, "0000000000000000"));
        EXPECT(status_field("CapInh", v, sizeof(v)) && streq(v, "0000000000000000"));
        EXPECT(status_field("CapAmb", v, sizeof(v)) && streq(v, "0000000000000000"));
        if (was_root) {
                EXPECT(getuid() != 0 && geteuid() != 0 && getgid() != 0 && getegid() != 0);
                EXPECT(getgroups(0, NULL) == 0);
                EXPECT(setresuid(0, 0, 0) < 0);
                EXPECT(status_field("CapBnd", v, sizeof(v)) && streq(v, "0000000000000000"));
        }

        /* limits */
        check_limit(RLIMIT_NOFILE, 32);
        check_limit(RLIMIT_CORE, 0);
        check_limit(RLIMIT_CPU, 300 + 20 * 32);
        check_limit(RLIMIT_FSIZE, DEFAULT_MAX_SIZE + 64 * MiB);
#ifndef BUILT_WITH_ASAN
        check_limit(RLIMIT_AS, 1 * GiB);
#endif
        EXPECT(alarm(0) > 0);
        EXPECT(umask(0) == 022);

        /* no network, no local services */
        EXPECT_DENIED(socket(AF_INET, SOCK_STREAM, 0));
        EXPECT_DENIED(socket(AF_INET6, SOCK_DGRAM, 0));
        EXPECT_DENIED(socket(AF_UNIX, SOCK_STREAM, 0));
        EXPECT_DENIED(socket(AF_NETLINK, SOCK_RAW, 0));
        EXPECT_DENIED(socket(AF_PACKET, SOCK_RAW, 0));
        EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
        {
                struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/dbus/system_bus_socket"};
                struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(80)};
                EXPECT_DENIED(connect(sp[0], (struct sockaddr *)&un, sizeof(un)));
                EXPECT_DENIED(connect(sp[0], (struct sockaddr *)&in, sizeof(in)));
                EXPECT_DENIED(bind(sp[0], (struct sockaddr *)&un, sizeof(un)));
                EXPECT_DENIED(listen(sp[0], 1));
                EXPECT_DENIED(accept(sp[0], NULL, NULL));
        }

        /* other processes, the kernel's larger surfaces, namespaces, mounts */
#ifndef BUILT_WITH_ASAN
        EXPECT_DENIED(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
#endif
        EXPECT_DENIED(unshare(CLONE_NEWUSER));
        EXPECT_DENIED(unshare(CLONE_NEWNET));
        EXPECT_DENIED(setns(0, 0));
        EXPECT_DENIED(mount("none", "/tmp", "tmpfs", 0, NULL));
        EXPECT_DENIED(umount2("/tmp", MNT_DETACH));
        EXPECT_DENIED(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
        EXPECT_DENIED(syscall(SYS_add_key, "user", "k", "v", 1, KEY_SPEC_SESSION_KEYRING));
        EXPECT_DENIED(syscall(SYS_bpf, BPF_PROG_LOAD, NULL, 0));
        EXPECT_DENIED(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        EXPECT_DENIED(syscall(SYS_userfaultfd, 0));
#ifdef SYS_io_uring_setup
        EXPECT_DENIED(syscall(SYS_io_uring_setup, 1, NULL));
#endif
        EXPECT_DENIED(syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0));
        EXPECT_DENIED(ioctl(STDIN_FILENO, TIOCSTI, "x"));
        /* clone() with a namespace flag; if it were allowed, the child just leaves */
        r = (int)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
        if (r == 0)
                _exit(0);
        EXPECT(r < 0 && errno == EPERM);
#ifdef SYS_clone3
        EXPECT(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS);
#endif

        /* What the helper does need still works: fork, exec, and the children inherit it all. */
        pid = fork();
        EXPECT(pid >= 0);
        if (pid == 0) {
                execl("/bin/sh", "sh", "-c",
                      "grep -q '^Seccomp:[[:space:]]*2' /proc/self/status && "
                      "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status && "
                      "[ \"$(ulimit -n)\" = 32 ]",
                      NULL);
                _exit(127);
        }
        if (pid > 0) {
                int st = 0;
                EXPECT(waitpid(pid, &st, 0) == pid);
                EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        _exit(failures ? 1 : 0);
}

int main(void) {
        char dir[] = "/tmp/test-extract-confine.XXXXXX";
        int st = 0, fd, null;
        bool was_root = geteuid() == 0;
        pid_t pid;

        CHECK(mkdtemp(dir));
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                /* the helper's fd layout: stdin, stdout, stderr, the output directory */
                null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (null < 0 || fd < 0 || dup2(null, 0) < 0 || dup2(fd, OUTDIR_FD) < 0)
                        _exit(3);
                confined_child(was_root);
        }
        CHECK(waitpid(pid, &st, 0) == pid);
        rmdir(dir);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "confined child failed (status 0x%x)\n", (unsigned)st);
                return 1;
        }
        printf("test-extract-confine: OK%s\n",
               was_root ? "" : " (not root: the drop to nobody was not tested)");
        return 0;
}
