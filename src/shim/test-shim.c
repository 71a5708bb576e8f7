/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tests of piemu-gpio-shim's logic, built natively: fake registers that behave like QEMU's
 * bcm2835_gpio model, a socketpair standing in for serial1, a fake sysfs/device tree for the tty
 * lookup, and the native binary for the command line (path in argv[1]). */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gpio-proto.h"
#include "gpio-regs.h"
#include "macro.h"
#include "shim-loop.h"
#include "shim-tty.h"

#define CHECK(expr)                                                                                         \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__,      \
                                #expr);                                                                     \
                        abort();                                                                            \
                }                                                                                           \
        } while (0)

#define NWORDS (GPIO_REGS_SIZE / 4)
#define W(off) ((off) / 4)

static void test_regs(void) {
        uint32_t words[NWORDS] = {0};
        GpioRegs r;

        gpio_regs_init_fake(&r, words);

        gpio_regs_write_level(&r, 17, true);
        CHECK(words[W(GPIO_REG_GPSET0)] == UINT32_C(1) << 17);
        CHECK(words[W(GPIO_REG_GPLEV0)] == UINT32_C(1) << 17);
        CHECK(gpio_regs_get_level(&r, 17));
        CHECK(gpio_regs_read_levels(&r) == UINT64_C(1) << 17);

        gpio_regs_write_level(&r, 40, true);
        CHECK(words[W(GPIO_REG_GPSET1)] == UINT32_C(1) << 8);
        gpio_regs_write_level(&r, 40, false);
        CHECK(words[W(GPIO_REG_GPCLR1)] == UINT32_C(1) << 8);
        CHECK(!gpio_regs_get_level(&r, 40));
        gpio_regs_write_level(&r, 53, true);
        CHECK(gpio_regs_read_levels(&r) == ((UINT64_C(1) << 17) | (UINT64_C(1) << 53)));
        gpio_regs_write_level(&r, 0, false);
        CHECK(words[W(GPIO_REG_GPCLR0)] == 1);

        /* out of range pins are ignored, never written past the block */
        words[W(GPIO_REG_GPSET1)] = 0;
        gpio_regs_write_level(&r, 54, true);
        gpio_regs_write_level(&r, 1000, true);
        CHECK(words[W(GPIO_REG_GPSET1)] == 0);

        /* GPLEV1 bits above pin 53 do not exist */
        words[W(GPIO_REG_GPLEV0)] = 0xffffffff;
        words[W(GPIO_REG_GPLEV1)] = 0xffffffff;
        CHECK(gpio_regs_read_levels(&r) == GPIO_PROTO_PINS_MASK);

        /* function select: 3 bits per pin, 10 per register, neighbours untouched */
        words[W(GPIO_REG_GPFSEL0) + 1] = 0x3fffffff & ~(UINT32_C(7) << 21); /* pins 10-19 */
        gpio_regs_set_function(&r, 17, GPIO_FSEL_OUTPUT);
        CHECK(words[W(GPIO_REG_GPFSEL0) + 1] == ((0x3fffffff & ~(UINT32_C(7) << 21)) | (UINT32_C(1) << 21)));
        CHECK(gpio_regs_get_function(&r, 17) == GPIO_FSEL_OUTPUT);
        CHECK(gpio_regs_get_function(&r, 16) == 7);
        gpio_regs_set_function(&r, 53, GPIO_FSEL_OUTPUT);
        CHECK(words[W(GPIO_REG_GPFSEL0) + 5] == UINT32_C(1) << 9);
        gpio_regs_set_function(&r, 0, GPIO_FSEL_OUTPUT);
        CHECK((words[W(GPIO_REG_GPFSEL0)] & 7) == 1);
        gpio_regs_set_function(&r, 0, GPIO_FSEL_INPUT);
        CHECK((words[W(GPIO_REG_GPFSEL0)] & 7) == 0);
}

/* Reads whatever the shim has written so far (the shim end is non-blocking, ours too). */
static size_t drain(int fd, char *buf, size_t size) {
        size_t n = 0;

        for (;;) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t)k;
                if (n == size - 1)
                        break;
        }
        buf[n] = '\0';
        return n;
}

static void expect_output(int peer, const char *want) {
        char buf[4096];

        drain(peer, buf, sizeof(buf));
        if (strcmp(buf, want) != 0) {
                fprintf(stderr, "expected \"%s\", got \"%s\"\n", want, buf);
                abort();
        }
}

static void make_pair(int sv[2]) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
}

static void test_logic(void) {
        uint32_t words[NWORDS] = {0};
        GpioRegs r;
        Shim s;
        int sv[2];

        make_pair(sv);
        gpio_regs_init_fake(&r, words);
        words[W(GPIO_REG_GPLEV0)] = UINT32_C(1) << 2; /* a pin that is high from the start */

        shim_init(&s, &r, sv[0], "test-1", false);
        CHECK(shim_start(&s) == 0);
        expect_output(sv[1], "HELLO piemu-shim test-1\n");
        /* the starting levels are the baseline, not changes */
        CHECK(shim_scan(&s) == 0);
        expect_output(sv[1], "");

        CHECK(shim_handle_input(&s, "SET 17 1\n", 9) == 0);
        CHECK(words[W(GPIO_REG_GPSET0)] == UINT32_C(1) << 17);
        expect_output(sv[1], "GPIO 17 1\n");

        CHECK(shim_handle_input(&s, "SYNC\n", 5) == 0);
        expect_output(sv[1], "PINS 20004\n");

        /* levels changed by the guest show up on the next scan, in pin order */
        words[W(GPIO_REG_GPLEV1)] |= UINT32_C(1) << 8;    /* 40 */
        words[W(GPIO_REG_GPLEV0)] &= ~(UINT32_C(1) << 2); /* 2 */
        words[W(GPIO_REG_GPLEV1)] |= UINT32_C(1) << 21;   /* 53 */
        CHECK(shim_scan(&s) == 3);
        expect_output(sv[1], "GPIO 2 0\nGPIO 40 1\nGPIO 53 1\n");
        CHECK(shim_scan(&s) == 0);
        expect_output(sv[1], "");

        /* a SET to the level a pin already has says nothing */
        CHECK(shim_handle_input(&s, "SET 17 1\n", 9) == 0);
        expect_output(sv[1], "");

        /* a burst: the changes first, then the snapshot that includes them, in one piece of
         * input split in odd places */
        CHECK(shim_handle_input(&s, "SET 5 1\nSE", 10) == 0);
        CHECK(shim_handle_input(&s, "T 6 1\r\nSY", 9) == 0);
        CHECK(shim_handle_input(&s, "NC\n", 3) == 0);
        expect_output(sv[1], "GPIO 5 1\nGPIO 6 1\nPINS 20010000020060\n");

        /* what the shim itself says is ignored when it comes back, and garbage is counted */
        CHECK(shim_handle_input(&s, "GPIO 3 1\nHELLO piemu-shim x\nPINS 1\n", 35) == 0);
        CHECK(shim_handle_input(&s, "SET 54 1\nset 3 1\n\n", 18) == 0);
        CHECK(words[W(GPIO_REG_GPSET0)] == UINT32_C(1) << 6); /* unchanged since SET 6 */
        expect_output(sv[1], "");
        CHECK(s.n_ignored == 3);
        CHECK(s.parser.n_invalid == 3);

        CHECK(shim_handle_input(&s, "SET 40 0\n", 9) == 0);
        CHECK(words[W(GPIO_REG_GPCLR1)] == UINT32_C(1) << 8);
        expect_output(sv[1], "GPIO 40 0\n");

        close(sv[0]);
        close(sv[1]);
}

typedef struct {
        GpioParser parser;
        uint64_t pins_seen[GPIO_PROTO_NPINS];
        int last_value[GPIO_PROTO_NPINS];
        unsigned n_pins_msgs;
} Host;

static int host_cb(const GpioMsg *m, void *userdata) {
        Host *h = userdata;

        if (m->type == GPIO_MSG_GPIO) {
                h->pins_seen[m->pin]++;
                h->last_value[m->pin] = m->value;
        } else if (m->type == GPIO_MSG_PINS)
                h->n_pins_msgs++;
        return 0;
}

static void host_read_all(int fd, Host *h) {
        char buf[65536];

        for (;;) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k <= 0)
                        break;
                CHECK(gpio_parser_feed(&h->parser, buf, (size_t)k, host_cb, h) >= 0);
        }
}

static void test_host_not_reading(void) {
        uint32_t words[NWORDS] = {0};
        GpioRegs r;
        Shim s;
        Host h;
        int sv[2], sndbuf = 4096;
        uint64_t t0, dt;
        size_t filled = 0;

        make_pair(sv);
        CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
        gpio_regs_init_fake(&r, words);
        shim_init(&s, &r, sv[0], "t", false);
        CHECK(shim_start(&s) == 0);

        /* Fill the line with lines the host will parse fine. Small writes on a unix stream
         * socket go whole or not at all, so the stream stays made of complete lines. */
        for (;;) {
                ssize_t k = write(sv[0], "PINS 0\n", 7);
                if (k < 0) {
                        CHECK(errno == EAGAIN);
                        break;
                }
                CHECK(k == 7);
                filled += 7;
                CHECK(filled < 64u * 1024 * 1024);
        }

        /* A change now cannot be sent: the scan gives up within its budget. */
        words[W(GPIO_REG_GPLEV0)] = UINT32_C(1) << 9 | UINT32_C(1) << 10;
        t0 = shim_now_usec();
        CHECK(shim_scan(&s) == 0);
        dt = shim_now_usec() - t0;
        CHECK(dt >= SHIM_WRITE_WAIT_MS * 1000u / 2);
        CHECK(dt < SHIM_WRITE_WAIT_MS * 1000u * 4);
        CHECK(s.n_lines_dropped == 1); /* the first line failed, the second was not tried */
        CHECK(s.reported == 0);

        /* SYNC while stalled neither blocks for long nor breaks anything */
        t0 = shim_now_usec();
        CHECK(shim_handle_input(&s, "SYNC\n", 5) == 0);
        CHECK(shim_now_usec() - t0 < SHIM_WRITE_WAIT_MS * 1000u * 4);

        /* Host comes back: the changes are reported on the next scan, and everything it
         * receives parses (no half line glued to a whole one). */
        memset(&h, 0, sizeof(h));
        gpio_parser_init(&h.parser);
        host_read_all(sv[1], &h);
        CHECK(shim_scan(&s) == 2);
        host_read_all(sv[1], &h);
        CHECK(h.pins_seen[9] == 1 && h.last_value[9] == 1);
        CHECK(h.pins_seen[10] == 1 && h.last_value[10] == 1);
        CHECK(h.parser.n_invalid <= 1); /* at most the fragment a partial write left */
        CHECK(s.reported == (UINT64_C(1) << 9 | UINT64_C(1) << 10));

        close(sv[0]);
        close(sv[1]);
}

static bool read_line_timeout(int fd, char *buf, size_t size, int timeout_ms) {
        size_t n = 0;
        uint64_t end = shim_now_usec() + (uint64_t)timeout_ms * 1000u;

        while (n + 1 < size && shim_now_usec() < end) {
                char c;
                ssize_t k = read(fd, &c, 1);
                if (k == 1) {
                        buf[n++] = c;
                        if (c == '\n')
                                break;
                } else
                        usleep(1000);
        }
        buf[n] = '\0';
        return n > 0 && buf[n - 1] == '\n';
}

static void test_run_loop(void) {
        uint32_t *words;
        char line[128];
        int sv[2], status;
        struct rusage ru;
        sigset_t mask;
        pid_t pid;
        long cpu_ms;

        /* Shared with the child, so the parent can play the guest's other programs. */
        words = mmap(NULL, GPIO_REGS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(words != MAP_FAILED);
        memset(words, 0, GPIO_REGS_SIZE);
        make_pair(sv);

        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                GpioRegs r;
                Shim s;
                int sigfd;

                close(sv[1]);
                sigemptyset(&mask);
                sigaddset(&mask, SIGTERM);
                sigprocmask(SIG_BLOCK, &mask, NULL);
                sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
                gpio_regs_init_fake(&r, words);
                shim_init(&s, &r, sv[0], "run", false);
                if (shim_start(&s) < 0)
                        _exit(3);
                _exit(shim_run(&s, 20, 0, sigfd) == 0 ? 0 : 4);
        }
        close(sv[0]);

        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));
        CHECK(streq(line, "HELLO piemu-shim run\n"));

        CHECK(write(sv[1], "SET 3 1\n", 8) == 8);
        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));
        CHECK(streq(line, "GPIO 3 1\n"));

        /* a change made behind the shim's back arrives within a few intervals */
        words[W(GPIO_REG_GPLEV1)] |= UINT32_C(1) << 4; /* pin 36 */
        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));
        CHECK(streq(line, "GPIO 36 1\n"));

        CHECK(write(sv[1], "SYNC\n", 5) == 5);
        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));
        CHECK(streq(line, "PINS 1000000008\n"));

        /* idle for a while, then with the host gone: must sleep, not spin */
        usleep(300 * 1000);
        shutdown(sv[1], SHUT_WR);
        usleep(300 * 1000);

        CHECK(kill(pid, SIGTERM) == 0);
        CHECK(wait4(pid, &status, 0, &ru) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
        fprintf(stderr, "run loop: %ld ms CPU over ~0.7 s at 20 ms interval\n", cpu_ms);
        CHECK(cpu_ms < 150);

        close(sv[1]);
        munmap(words, GPIO_REGS_SIZE);
}

static long ctxt_switches(pid_t pid) {
        char path[64], buf[4096];
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        CHECK(n > 0);
        buf[n] = '\0';
        p = strstr(buf, "\nvoluntary_ctxt_switches:");
        CHECK(p);
        return strtol(p + strlen("\nvoluntary_ctxt_switches:"), NULL, 10);
}

static void test_idle_backoff(void) {
        uint32_t *words;
        char line[128];
        int sv[2], status;
        long c0, fast, slow;
        pid_t pid;

        words = mmap(NULL, GPIO_REGS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(words != MAP_FAILED);
        memset(words, 0, GPIO_REGS_SIZE);
        make_pair(sv);

        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                GpioRegs r;
                Shim s;

                close(sv[1]);
                gpio_regs_init_fake(&r, words);
                shim_init(&s, &r, sv[0], "idle", false);
                if (shim_start(&s) < 0)
                        _exit(3);
                (void)shim_run(&s, 10, 250, -EBADF);
                _exit(4);
        }
        close(sv[0]);
        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));

        /* a fresh start counts as activity: fast (10 ms) for SHIM_IDLE_AFTER_MS */
        c0 = ctxt_switches(pid);
        usleep(500 * 1000);
        fast = ctxt_switches(pid) - c0;

        /* then slow (250 ms) */
        usleep((SHIM_IDLE_AFTER_MS + 300) * 1000);
        c0 = ctxt_switches(pid);
        usleep(1000 * 1000);
        slow = ctxt_switches(pid) - c0;
        fprintf(stderr, "idle backoff: %ld wakeups in 0.5 s active, %ld in 1 s idle\n", fast, slow);
        CHECK(fast >= 25);
        CHECK(slow <= 8);

        /* a change while idle is still seen, and input makes it fast again */
        words[W(GPIO_REG_GPLEV0)] |= UINT32_C(1) << 21;
        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));
        CHECK(streq(line, "GPIO 21 1\n"));
        CHECK(write(sv[1], "SYNC\n", 5) == 5);
        CHECK(read_line_timeout(sv[1], line, sizeof(line), 2000));
        CHECK(streq(line, "PINS 200000\n"));
        c0 = ctxt_switches(pid);
        usleep(500 * 1000);
        fast = ctxt_switches(pid) - c0;
        CHECK(fast >= 25);

        CHECK(kill(pid, SIGKILL) == 0);
        CHECK(waitpid(pid, &status, 0) == pid);
        close(sv[1]);
        munmap(words, GPIO_REGS_SIZE);
}

static void write_file(const char *path, const void *data, size_t size) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK(write(fd, data, size) == (ssize_t)size);
}

static void mkdir_p(const char *path) {
        char buf[4096];

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void)mkdir(buf, 0755);
                        *p = '/';
                }
        CHECK(mkdir(buf, 0755) == 0 || errno == EEXIST);
}

/* Builds sysfs and device-tree look-alikes: ttys whose of_node links to DT nodes. */
static void fake_tty(const char *root, const char *tty, const char *node) {
        char path[4096], target[4096];

        snprintf(path, sizeof(path), "%s/sys/class/tty/%s/device", root, tty);
        mkdir_p(path);
        if (!node)
                return;
        snprintf(target, sizeof(target), "%s/sys/firmware/devicetree/base%s", root, node);
        mkdir_p(target);
        strcat(path, "/of_node");
        CHECK(symlink(target, path) == 0);
}

static void fake_compatible(const char *root, const char *node, const char *compat, size_t len) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/sys/firmware/devicetree/base%s/compatible", root, node);
        write_file(path, compat, len);
}

static void fake_alias(const char *root, const char *node) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/dt/aliases", root);
        mkdir_p(path);
        strcat(path, "/serial1");
        write_file(path, node, strlen(node) + 1);
}

static void rm_rf(const char *path) {
        char cmd[4200];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        CHECK(system(cmd) == 0);
}

#define AUX   "/soc/serial@7e215040"
#define PL011 "/soc/serial@7e201000"

static void test_find_tty(void) {
        char tmpl[] = "/tmp/test-shim-XXXXXX", sys[4096], dt[4096], dev[64];
        const char *root = mkdtemp(tmpl);

        CHECK(root);
        snprintf(sys, sizeof(sys), "%s/sys", root);
        snprintf(dt, sizeof(dt), "%s/dt", root);

        /* nothing at all: the fallback */
        CHECK(shim_find_host_tty(sys, dt, dev, sizeof(dev)) == 0);
        CHECK(streq(dev, SHIM_TTY_FALLBACK));

        /* Debian/mainline: serial1 is the mini UART, it is ttyS1; legacy 8250 ports and
         * virtual consoles have no node */
        fake_tty(root, "ttyS0", NULL);
        fake_tty(root, "tty0", NULL);
        fake_tty(root, "ttyAMA0", PL011);
        fake_tty(root, "ttyS1", AUX);
        fake_compatible(root, PL011, "arm,pl011\0arm,primecell", 24);
        fake_alias(root, AUX);
        /* alias alone is enough */
        CHECK(shim_find_host_tty(sys, dt, dev, sizeof(dev)) == 1);
        CHECK(streq(dev, "/dev/ttyS1"));
        fake_compatible(root, AUX, "brcm,bcm2835-aux-uart", 22);
        CHECK(shim_find_host_tty(sys, dt, dev, sizeof(dev)) == 1);
        CHECK(streq(dev, "/dev/ttyS1"));
        CHECK(shim_find_host_tty(sys, dt, dev, 10) == -ENOBUFS);
        rm_rf(root);

        /* Raspberry Pi DTB: serial1 is the PL011 (QEMU's serial0, the console); the mini UART
         * must still win */
        CHECK(mkdir(root, 0700) == 0);
        fake_tty(root, "ttyAMA0", PL011);
        fake_tty(root, "ttyS0", AUX);
        fake_compatible(root, PL011, "arm,pl011\0arm,primecell", 24);
        fake_compatible(root, AUX, "brcm,bcm2835-aux-uart", 22);
        fake_alias(root, PL011);
        CHECK(shim_find_host_tty(sys, dt, dev, sizeof(dev)) == 1);
        CHECK(streq(dev, "/dev/ttyS0"));
        /* a compatible list where the string is not the first entry, and a prefix that must
         * not match */
        fake_compatible(root, AUX, "brcm,bcm2835-aux-uart-x\0brcm,bcm2835-aux-uart", 46);
        CHECK(shim_find_host_tty(sys, dt, dev, sizeof(dev)) == 1);
        CHECK(streq(dev, "/dev/ttyS0"));
        fake_compatible(root, AUX, "brcm,bcm2835-aux-uart-x", 24);
        CHECK(shim_find_host_tty(sys, dt, dev, sizeof(dev)) == 1);
        CHECK(streq(dev, "/dev/ttyAMA0")); /* only the alias is left */
        rm_rf(root);
}

static void test_open_host_line(void) {
        struct termios t;
        int master, fd;

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(master >= 0);
        CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
        fd = shim_open_host_line(ptsname(master));
        CHECK(fd >= 0);
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
        CHECK(tcgetattr(fd, &t) == 0);
        CHECK(!(t.c_lflag & (ECHO | ICANON | ISIG)));
        CHECK(!(t.c_oflag & OPOST));
        CHECK(!(t.c_iflag & (ICRNL | IXON)));
        CHECK((t.c_cflag & CSIZE) == CS8 && !(t.c_cflag & (PARENB | CSTOPB | CRTSCTS)));
        CHECK(cfgetospeed(&t) == SHIM_LINE_BAUD);
        close(fd);
        close(master);

        CHECK(shim_open_host_line("/nonexistent/tty") == -ENOENT);
}

static int run_cli(const char *exe, const char *const args[], char *out, size_t size) {
        int pipefd[2], status;
        const char *argv[8] = {exe};
        pid_t pid;
        size_t n = 0;

        for (size_t i = 0; args[i]; i++)
                argv[i + 1] = args[i];
        CHECK(pipe(pipefd) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                dup2(open("/dev/null", O_WRONLY), STDERR_FILENO);
                execv(exe, (char **)argv);
                _exit(127);
        }
        close(pipefd[1]);
        for (ssize_t k; n + 1 < size && (k = read(pipefd[0], out + n, size - 1 - n)) > 0;)
                n += (size_t)k;
        out[n] = '\0';
        close(pipefd[0]);
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_cli(const char *exe) {
        static const struct {
                const char *args[6];
        } usage[] = {
                {{"get", "54"}},
                {{"get", "017"}},
                {{"get", "99999999999999999999"}},
                {{"get", ""}},
                {{"get"}},
                {{"get", "1", "2"}},
                {{"set", "17", "2"}},
                {{"set", "17", ""}},
                {{"set", "17", "10"}},
                {{"set", "54", "1"}},
                {{"set", "17"}},
                {{"set", "17", "1", "--interval-ms", "5"}},
                {{"daemon", "extra"}},
                {{"daemon", "--interval-ms", "0"}},
                {{"daemon", "--interval-ms", "10001"}},
                {{"daemon", "--interval-ms", "20x"}},
                {{"daemon", "--interval-ms", "-5"}},
                {{"daemon", "--bogus"}},
                {{"daemon", "--idle-interval-ms", "10001"}},
                {{"daemon", "--idle-interval-ms", "x"}},
                {{"get", "1", "--idle-interval-ms", "5"}},
                {{"frobnicate"}},
                {{"edges", "17", "10"}},
                {{"edges", "17", "0", "1000"}},
                {{"edges", "54", "1", "1000"}},
                {{"edges", "17", "1", "0"}},
                {{"edges", "17", "1", "1000", "x"}},
                {{"follow", "17", "17", "1", "1000"}},
                {{"follow", "17", "23", "1"}},
                {{"follow", "17", "54", "1", "1000"}},
                {{NULL}},
        };
        char out[16384];

        for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
                int r = run_cli(exe, usage[i].args, out, sizeof(out));
                if (r != 2) {
                        fprintf(stderr, "usage case %zu (%s %s %s): exit %d, expected 2\n", i,
                                strempty(usage[i].args[0]), strempty(usage[i].args[1]),
                                strempty(usage[i].args[2]), r);
                        abort();
                }
        }

        CHECK(run_cli(exe, (const char *const[]){"--help", NULL}, out, sizeof(out)) == 0);
        CHECK(strstr(out, "daemon") && strstr(out, "--interval-ms") && strstr(out, "set PIN 0|1"));
        CHECK(strstr(out, "edges PIN N TIMEOUT_MS") && strstr(out, "follow IN OUT N TIMEOUT_MS"));
        /* No GPIO character device here: a failure (1), with a message, not a usage error. */
        CHECK(access("/dev/gpiochip0", F_OK) == 0 ||
              run_cli(exe, (const char *const[]){"edges", "17", "1", "10", NULL}, out, sizeof(out)) == 1);
        CHECK(run_cli(exe, (const char *const[]){"--version", NULL}, out, sizeof(out)) == 0);
        CHECK(strncmp(out, "piemu-gpio-shim ", 16) == 0);
}

/* The GPIO block's address follows the SoC the device tree names. */
static void test_phys_for(void) {
        static const char pi3[] = "raspberrypi,3-model-b\0brcm,bcm2837";
        static const char pi4[] = "raspberrypi,4-model-b\0brcm,bcm2711";
        static const char zero[] = "raspberrypi,model-zero\0brcm,bcm2835";
        static const char pi2[] = "raspberrypi,2-model-b\0brcm,bcm2836";
        static const char family[] = "brcm,bcm2835\0brcm,bcm2837";
        static const char none[] = "acme,board";

        CHECK(gpio_regs_phys_for(pi3, sizeof(pi3)) == BCM2837_GPIO_PHYS);
        CHECK(gpio_regs_phys_for(pi4, sizeof(pi4)) == BCM2711_GPIO_PHYS);
        CHECK(gpio_regs_phys_for(zero, sizeof(zero)) == BCM2835_GPIO_PHYS);
        CHECK(gpio_regs_phys_for(pi2, sizeof(pi2)) == BCM2837_GPIO_PHYS);
        CHECK(gpio_regs_phys_for(family, sizeof(family)) == BCM2837_GPIO_PHYS);
        CHECK(gpio_regs_phys_for(none, sizeof(none)) == BCM2837_GPIO_PHYS);
        CHECK(gpio_regs_phys_for(pi4, 5) == BCM2837_GPIO_PHYS); /* cut short: no match */
        CHECK(gpio_regs_phys_for("", 0) == BCM2837_GPIO_PHYS);
}

int main(int argc, char *argv[]) {
        test_regs();
        test_phys_for();
        test_logic();
        test_host_not_reading();
        test_run_loop();
        test_idle_backoff();
        test_find_tty();
        test_open_host_line();
        if (argc > 1)
                test_cli(argv[1]);
        else
                fprintf(stderr, "no shim binary given, skipping command line tests\n");
        printf("test-shim: all checks passed\n");
        return 0;
}
