/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* piemu-gpio-shim: runs inside an emulated Raspberry Pi 3B and bridges the BCM2837 GPIO
 * registers to piemud over the second serial line. Statically linked, so it can be dropped into
 * any guest (initramfs, Raspberry Pi OS, Debian) without caring about its libc. */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

#include "gpio-proto.h"
#include "gpio-regs.h"
#include "macro.h"
#include "shim-edges.h"
#include "shim-loop.h"
#include "shim-tty.h"

#ifndef PIEMU_SHIM_VERSION
#define PIEMU_SHIM_VERSION "0.1.0"
#endif

/* Exit codes: 0 success, 1 the operation failed, 2 the command line was wrong. */
#define EXIT_USAGE 2

static void help(void) {
        printf("Usage:\n"
               "  piemu-gpio-shim daemon [--device DEV] [--interval-ms N] [--idle-interval-ms N]\n"
               "                         [--verbose]\n"
               "  piemu-gpio-shim get PIN\n"
               "  piemu-gpio-shim set PIN 0|1\n"
               "  piemu-gpio-shim edges PIN N TIMEOUT_MS\n"
               "  piemu-gpio-shim follow IN OUT N TIMEOUT_MS\n"
               "  piemu-gpio-shim --help | --version\n"
               "\n"
               "Bridge the GPIO pins of an emulated Raspberry Pi 3B (QEMU machine raspi3b) to\n"
               "piemud on the host, over the board's second serial line.\n"
               "\n"
               "Commands:\n"
               "  daemon        Open the host line, announce \"HELLO piemu-shim %s\", then\n"
               "                read all 54 pin levels every interval and send \"GPIO <pin> <0|1>\"\n"
               "                for each change. From the host, \"SET <pin> <0|1>\" drives a\n"
               "                level through GPSET/GPCLR (the change is reported at once) and\n"
               "                \"SYNC\" is answered with \"PINS <hex mask>\". Runs until SIGTERM\n"
               "                or SIGINT, then exits 0.\n"
               "  get PIN       Print the level of BCM pin PIN (0-53) as 0 or 1.\n"
               "  set PIN 0|1   Make BCM pin PIN an output and drive it low (0) or high (1).\n"
               "                Pins 46-53 carry the SD card on a Pi 3; changing them can\n"
               "                take the root file system away.\n"
               "  mirror IN OUT Make OUT an output and copy IN's level onto it, as fast as the\n"
               "                CPU allows (a busy loop, for latency benches), until SIGTERM or\n"
               "                SIGINT.\n"
               "  edges PIN N TIMEOUT_MS\n"
               "                Wait for N edges on PIN through the kernel's GPIO character\n"
               "                device (/dev/gpiochip0, edge events: the GPIO interrupt path a\n"
               "                program takes). Prints \"watching GPIO PIN\" once no edge can be\n"
               "                lost, then \"rising|falling <timestamp ns>\" for each edge.\n"
               "                Fails (exit 1) if one does not come within TIMEOUT_MS. Needs a GPIO\n"
               "                block that detects events: piemu's own QEMU (the board's\n"
               "                GpioInterrupts); QEMU's stock model has none.\n"
               "  follow IN OUT N TIMEOUT_MS\n"
               "                The same for IN, and copy each edge's level onto OUT (made an\n"
               "                output) as it comes: a program reacting to an interrupt.\n"
               "  blink PIN MS N\n"
               "                Make PIN an output and toggle it every MS milliseconds, N times,\n"
               "                on an absolute clock (for latency benches: the host compares\n"
               "                the arrival times of the edges with the period).\n"
               "\n"
               "Options:\n"
               "  -d, --device DEV       Host line for the daemon. Default: the tty of the\n"
               "                         BCM2835 mini UART found through the device tree\n"
               "                         (compatible \"brcm,bcm2835-aux-uart\", then\n"
               "                         aliases/serial1), else %s.\n"
               "  -i, --interval-ms N    Scan period in milliseconds while pins change or the\n"
               "                         host talks, 1-%u (default %u).\n"
               "  -I, --idle-interval-ms N\n"
               "                         Scan period once nothing happened for %u ms\n"
               "                         (default %u). Each scan wakes the emulated CPU, so\n"
               "                         this is what an idle board costs; 0 or a value not\n"
               "                         above --interval-ms scans at one speed.\n"
               "  -v, --verbose          Log every message to standard error.\n"
               "  -h, --help             Show this help and exit.\n"
               "      --version          Show the version and exit.\n"
               "\n"
               "Registers:\n"
               "  The GPIO block (at physical 0x%08X on a Pi 2 or 3, 0x%08X on a Zero or 1,\n"
               "  0x%08X on a Pi 4, after the device tree's compatible) is mapped from\n"
               "  /dev/gpiomem when the kernel provides it, else from /dev/mem; mainline kernels only allow "
               "the\n"
               "  latter when booted with iomem=relaxed. Root is needed for /dev/mem.\n"
               "\n"
               "Exit status: 0 on success, 1 on failure, 2 on invalid usage.\n",
               PIEMU_SHIM_VERSION, SHIM_TTY_FALLBACK, SHIM_INTERVAL_MS_MAX, SHIM_INTERVAL_MS_DEFAULT,
               SHIM_IDLE_AFTER_MS, SHIM_IDLE_INTERVAL_MS_DEFAULT, BCM2837_GPIO_PHYS, BCM2835_GPIO_PHYS,
               BCM2711_GPIO_PHYS);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fputs("piemu-gpio-shim: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs("\nTry 'piemu-gpio-shim --help'.\n", stderr);
        va_end(ap);
        return EXIT_USAGE;
}

static int parse_pin_arg(const char *s, unsigned *ret) {
        if (gpio_proto_parse_pin(s, strlen(s), ret) < 0) {
                fprintf(stderr, "piemu-gpio-shim: invalid pin '%s': expected a BCM pin number 0-%u.\n", s,
                        GPIO_PROTO_NPINS - 1);
                return -EINVAL;
        }
        return 0;
}

static int open_regs(GpioRegs *regs) {
        const char *dev = NULL;
        int r;

        r = gpio_regs_open(regs, &dev);
        if (r < 0) {
                fprintf(stderr,
                        "piemu-gpio-shim: cannot map the GPIO registers via /dev/gpiomem or /dev/mem: "
                        "%s%s\n",
                        strerror(-r),
                        r == -EPERM || r == -EACCES
                                ? " (are you root, and was the kernel booted with iomem=relaxed?)"
                                : "");
                return r;
        }
        return 0;
}

static int cmd_get(const char *pin_arg) {
        GpioRegs regs;
        unsigned pin;

        if (parse_pin_arg(pin_arg, &pin) < 0)
                return EXIT_USAGE;
        if (open_regs(&regs) < 0)
                return EXIT_FAILURE;
        printf("%d\n", gpio_regs_get_level(&regs, pin) ? 1 : 0);
        gpio_regs_close(&regs);
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int cmd_set(const char *pin_arg, const char *value_arg) {
        GpioRegs regs;
        unsigned pin;

        if (parse_pin_arg(pin_arg, &pin) < 0)
                return EXIT_USAGE;
        if (!streq(value_arg, "0") && !streq(value_arg, "1")) {
                fprintf(stderr, "piemu-gpio-shim: invalid value '%s': expected 0 or 1.\n", value_arg);
                return EXIT_USAGE;
        }
        if (open_regs(&regs) < 0)
                return EXIT_FAILURE;
        /* The function first, then the level. On real hardware the other order avoids a glitch
         * through the previous level, but this shim runs only in piemu's emulated boards, where the
         * other order is invisible: QEMU's model signals an output pin's change only for a
         * GPSET/GPCLR written while the pin is already an output, so piemud (which is told of
         * changes through those signals) would see the first level only at its next read of
         * GPLEV, up to half a second later, and a pulse shorter than that not at all. */
        gpio_regs_set_function(&regs, pin, GPIO_FSEL_OUTPUT);
        gpio_regs_write_level(&regs, pin, value_arg[0] == '1');
        gpio_regs_close(&regs);
        return EXIT_SUCCESS;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

static int cmd_mirror(const char *in_arg, const char *out_arg) {
        struct sigaction sa = {.sa_handler = on_stop_signal};
        GpioRegs regs;
        unsigned in, out;
        bool level;

        if (parse_pin_arg(in_arg, &in) < 0 || parse_pin_arg(out_arg, &out) < 0)
                return EXIT_USAGE;
        if (in == out) {
                fprintf(stderr, "piemu-gpio-shim: mirror needs two different pins.\n");
                return EXIT_USAGE;
        }
        if (open_regs(&regs) < 0)
                return EXIT_FAILURE;
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        gpio_regs_set_function(&regs, out, GPIO_FSEL_OUTPUT);
        level = gpio_regs_get_level(&regs, in);
        gpio_regs_write_level(&regs, out, level);
        while (!stop_requested) {
                bool now = gpio_regs_get_level(&regs, in);
                if (now != level) {
                        level = now;
                        gpio_regs_write_level(&regs, out, level);
                }
        }
        gpio_regs_close(&regs);
        return EXIT_SUCCESS;
}

static int cmd_blink(const char *pin_arg, const char *ms_arg, const char *n_arg) {
        struct timespec next;
        GpioRegs regs;
        unsigned pin;
        char *end;
        unsigned long ms, n;

        if (parse_pin_arg(pin_arg, &pin) < 0)
                return EXIT_USAGE;
        errno = 0;
        ms = strtoul(ms_arg, &end, 10);
        if (errno || *end || ms < 1 || ms > 60000) {
                fprintf(stderr, "piemu-gpio-shim: invalid period '%s': expected 1-60000 ms.\n", ms_arg);
                return EXIT_USAGE;
        }
        n = strtoul(n_arg, &end, 10);
        if (errno || *end || n < 1 || n > 1000000) {
                fprintf(stderr, "piemu-gpio-shim: invalid count '%s': expected 1-1000000.\n", n_arg);
                return EXIT_USAGE;
        }
        if (open_regs(&regs) < 0)
                return EXIT_FAILURE;
        gpio_regs_write_level(&regs, pin, false);
        gpio_regs_set_function(&regs, pin, GPIO_FSEL_OUTPUT);
        clock_gettime(CLOCK_MONOTONIC, &next);
        for (unsigned long i = 0; i < n; i++) {
                next.tv_nsec += (long)(ms % 1000) * 1000000L;
                next.tv_sec += (time_t)(ms / 1000);
                if (next.tv_nsec >= 1000000000L) {
                        next.tv_nsec -= 1000000000L;
                        next.tv_sec++;
                }
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
                        ;
                gpio_regs_write_level(&regs, pin, i % 2 == 0);
        }
        gpio_regs_close(&regs);
        return EXIT_SUCCESS;
}

static int parse_count(const char *what, const char *s, unsigned long max, unsigned long *ret) {
        char *end;

        errno = 0;
        *ret = strtoul(s, &end, 10);
        if (errno || *end || !s[0] || *ret < 1 || *ret > max) {
                fprintf(stderr, "piemu-gpio-shim: invalid %s '%s': expected 1-%lu.\n", what, s, max);
                return -EINVAL;
        }
        return 0;
}

/* edges PIN N TIMEOUT_MS, or (out_arg set) follow IN OUT N TIMEOUT_MS. */
static int cmd_edges(const char *pin_arg, const char *out_arg, const char *n_arg, const char *timeout_arg) {
        ShimEdges e = {.chip = "/dev/gpiochip0"};
        unsigned long n, timeout;
        GpioRegs regs;
        int r;

        if (parse_pin_arg(pin_arg, &e.pin) < 0 || (out_arg && parse_pin_arg(out_arg, &e.follow_pin) < 0) ||
            parse_count("count", n_arg, 1000000, &n) < 0 ||
            parse_count("timeout", timeout_arg, 3600000, &timeout) < 0)
                return EXIT_USAGE;
        if (out_arg && e.pin == e.follow_pin) {
                fprintf(stderr, "piemu-gpio-shim: follow needs two different pins.\n");
                return EXIT_USAGE;
        }
        e.count = n;
        e.timeout_ms = (unsigned)timeout;
        if (out_arg) {
                if (open_regs(&regs) < 0)
                        return EXIT_FAILURE;
                e.follow = &regs;
        }
        r = shim_edges_run(&e);
        if (out_arg)
                gpio_regs_close(&regs);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int cmd_daemon(const char *device, unsigned interval_ms, unsigned idle_interval_ms, bool verbose) {
        _cleanup_close_ int fd = -EBADF, sigfd = -EBADF;
        char found[PATH_MAX];
        GpioRegs regs;
        sigset_t mask;
        Shim shim;
        int r;

        if (!device) {
                r = shim_find_host_tty(NULL, NULL, found, sizeof(found));
                if (r < 0) {
                        fprintf(stderr, "piemu-gpio-shim: cannot name the host line: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
                if (r == 0)
                        fprintf(stderr, "piemu-gpio-shim: no mini UART in the device tree, trying %s\n",
                                found);
                device = found;
        }

        /* Signals arrive through poll() like everything else, so shutdown never races a write. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                fprintf(stderr, "piemu-gpio-shim: sigprocmask: %m\n");
                return EXIT_FAILURE;
        }
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sigfd < 0) {
                fprintf(stderr, "piemu-gpio-shim: signalfd: %m\n");
                return EXIT_FAILURE;
        }
        /* A host that closes the line must not kill us with SIGPIPE (sockets via --device). */
        signal(SIGPIPE, SIG_IGN);

        fd = shim_open_host_line(device);
        if (fd < 0) {
                fprintf(stderr, "piemu-gpio-shim: cannot open host line %s: %s\n", device, strerror(-fd));
                return EXIT_FAILURE;
        }

        if (open_regs(&regs) < 0)
                return EXIT_FAILURE;

        shim_init(&shim, &regs, fd, PIEMU_SHIM_VERSION, verbose);
        if (verbose)
                fprintf(stderr, "piemu-gpio-shim: host line %s, scanning every %u ms (%u ms when idle)\n",
                        device, interval_ms,
                        idle_interval_ms > interval_ms ? idle_interval_ms : interval_ms);
        r = shim_start(&shim);
        if (r >= 0)
                r = shim_run(&shim, interval_ms, idle_interval_ms, sigfd);
        gpio_regs_close(&regs);
        if (r < 0) {
                fprintf(stderr, "piemu-gpio-shim: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (verbose)
                fprintf(stderr,
                        "piemu-gpio-shim: sent %llu lines, dropped %llu, %llu invalid and %llu ignored "
                        "input "
                        "lines\n",
                        (unsigned long long)shim.n_lines_sent, (unsigned long long)shim.n_lines_dropped,
                        (unsigned long long)shim.parser.n_invalid, (unsigned long long)shim.n_ignored);
        return EXIT_SUCCESS;
}

static int parse_interval(const char *s, unsigned min, unsigned *ret) {
        char *end;
        unsigned long v;

        if (!s[0] || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || v < min || v > SHIM_INTERVAL_MS_MAX)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        /* clang-format off */
        static const struct option options[] = {
                { "help",             no_argument,       NULL, 'h'         },
                { "version",          no_argument,       NULL, ARG_VERSION },
                { "device",           required_argument, NULL, 'd'         },
                { "interval-ms",      required_argument, NULL, 'i'         },
                { "idle-interval-ms", required_argument, NULL, 'I'         },
                { "verbose",          no_argument,       NULL, 'v'         },
                {}
        };
        /* clang-format on */
        const char *device = NULL, *cmd;
        unsigned interval_ms = SHIM_INTERVAL_MS_DEFAULT, idle_interval_ms = SHIM_IDLE_INTERVAL_MS_DEFAULT;
        bool verbose = false, daemon_opts = false;
        int c, nargs;

        while ((c = getopt_long(argc, argv, "hd:i:I:v", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("piemu-gpio-shim %s\n", PIEMU_SHIM_VERSION);
                        return EXIT_SUCCESS;
                case 'd':
                        device = optarg;
                        daemon_opts = true;
                        break;
                case 'i':
                        if (parse_interval(optarg, 1, &interval_ms) < 0)
                                return usage_error("invalid --interval-ms '%s': expected 1-%u.", optarg,
                                                   SHIM_INTERVAL_MS_MAX);
                        daemon_opts = true;
                        break;
                case 'I':
                        if (parse_interval(optarg, 0, &idle_interval_ms) < 0)
                                return usage_error("invalid --idle-interval-ms '%s': expected 0-%u.", optarg,
                                                   SHIM_INTERVAL_MS_MAX);
                        daemon_opts = true;
                        break;
                case 'v':
                        verbose = true;
                        break;
                default:
                        /* getopt has already said what was wrong */
                        fputs("Try 'piemu-gpio-shim --help'.\n", stderr);
                        return EXIT_USAGE;
                }

        if (optind >= argc)
                return usage_error("missing command: daemon, get or set.");
        cmd = argv[optind];
        nargs = argc - optind - 1;

        if (streq(cmd, "daemon")) {
                if (nargs != 0)
                        return usage_error("unexpected argument '%s' after daemon.", argv[optind + 1]);
                return cmd_daemon(device, interval_ms, idle_interval_ms, verbose);
        }
        if (daemon_opts)
                return usage_error("--device and --*interval-ms only apply to daemon, not %s.", cmd);
        if (streq(cmd, "get")) {
                if (nargs != 1)
                        return usage_error("usage: piemu-gpio-shim get PIN");
                return cmd_get(argv[optind + 1]);
        }
        if (streq(cmd, "set")) {
                if (nargs != 2)
                        return usage_error("usage: piemu-gpio-shim set PIN 0|1");
                return cmd_set(argv[optind + 1], argv[optind + 2]);
        }
        if (streq(cmd, "mirror")) {
                if (nargs != 2)
                        return usage_error("usage: piemu-gpio-shim mirror IN OUT");
                return cmd_mirror(argv[optind + 1], argv[optind + 2]);
        }
        if (streq(cmd, "blink")) {
                if (nargs != 3)
                        return usage_error("usage: piemu-gpio-shim blink PIN MS N");
                return cmd_blink(argv[optind + 1], argv[optind + 2], argv[optind + 3]);
        }
        if (streq(cmd, "edges")) {
                if (nargs != 3)
                        return usage_error("usage: piemu-gpio-shim edges PIN N TIMEOUT_MS");
                return cmd_edges(argv[optind + 1], NULL, argv[optind + 2], argv[optind + 3]);
        }
        if (streq(cmd, "follow")) {
                if (nargs != 4)
                        return usage_error("usage: piemu-gpio-shim follow IN OUT N TIMEOUT_MS");
                return cmd_edges(argv[optind + 1], argv[optind + 2], argv[optind + 3], argv[optind + 4]);
        }
        return usage_error(
                "unknown command '%s': expected daemon, get, set, mirror, blink, edges or follow.", cmd);
}
