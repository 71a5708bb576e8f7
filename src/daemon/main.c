/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <libxml/parser.h>

#include "config.h"
#include "fdstore.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "virt-event.h"

static const char *arg_libvirt_uri = NULL;
static const char *arg_images_dir = NULL;
static bool arg_user_bus = false;
static bool arg_tcg_multi = false;
static const char *arg_tls_dir = NULL;
static const char *arg_qemu_user = "libvirt-qemu";
static const char *arg_qtest_dir = QTEST_DIR_DEFAULT;
static bool arg_piemu_qemu = true;

static void help(void) {
        printf("Usage: piemud [OPTIONS...]\n"
               "\n"
               "The piemu system service: runs emulated Raspberry Pi boards (QEMU's six models;\n"
               "piemuctl models lists them) through libvirt and QEMU, and exposes them on the\n"
               "D-Bus system bus as org.piemu.\n"
               "\n"
               "piemud is normally started by systemd (piemud.service) or by D-Bus activation.\n"
               "It keeps no database of its own: every board is a libvirt domain named\n"
               "piemu-<name> whose metadata holds the board's settings, so a restarted piemud\n"
               "finds its boards, running ones included.\n"
               "\n"
               "Options:\n"
               "  -h --help               Show this help and exit\n"
               "     --version            Show the version and exit\n"
               "     --libvirt-uri=URI    libvirt connection to use (default: %s)\n"
               "     --images-dir=DIR     Image catalog directory (default: %s)\n"
               "     --log-level=LEVEL    emerg, alert, crit, err, warning, notice, info or debug\n"
               "                          (default: info)\n"
               "     --bus=system|user    Bus to serve on (default: system; user is for development)\n"
               "     --tcg-threads=single|multi\n"
               "                          How QEMU runs the four vCPUs of a board (default: single).\n"
               "                          single: one host thread per board, through the wrapper\n"
               "                          %s; boots several times faster\n"
               "                          on small hosts and keeps each board to one host core.\n"
               "                          multi: libvirt's default, one host thread per vCPU.\n"
               "     --tls-dir=DIR        piemud's credentials for the TLS serial lines\n"
               "                          (default: %s; see FILES)\n"
               "     --qemu-user=USER     The user libvirt runs QEMU as; only its connections (and\n"
               "                          root's) may become a board's line (default: libvirt-qemu;\n"
               "                          \"\" checks the certificate only)\n"
               "     --qtest-dir=DIR      Where QEMU dials each board's qtest channel, piemud's view\n"
               "                          of the GPIO pins with no agent in the guest (default: %s).\n"
               "                          It must be owned by piemud's user, set-group-ID to QEMU's\n"
               "                          group and closed to others (2750): whoever reaches a qtest\n"
               "                          socket reads and writes the guest's memory. If it is not,\n"
               "                          boards get GPIO through a guest shim only. \"\" turns the\n"
               "                          qtest path off.\n"
               "     --qemu=auto|stock    Which QEMU runs a board piemud starts (default: auto).\n"
               "                          auto: piemu's own build of QEMU, %s,\n"
               "                          where it is installed (tools/build-qemu.sh; checked at each\n"
               "                          Start), else Debian's. piemu's has GPIO input lines and\n"
               "                          event detection: the guest gets GPIO interrupts (the board's\n"
               "                          GpioInterrupts property). It needs --tcg-threads=single and\n"
               "                          the qtest path. stock: always Debian's, %s.\n"
               "\n"
               "Files:\n"
               "  %s/<name>/{kernel,dtb,sd.img,meta[,initrd]}   the image catalog\n"
               "  %s   overlays (libvirt storage pool \"piemu\")\n"
               "  %s   the QEMU wrapper for --tcg-threads=single\n"
               "  %s/{ca-cert,server-cert,server-key}.pem\n"
               "        piemud's TLS credentials. A board's two serial lines are TLS listeners of\n"
               "        piemud on 127.0.0.1 (its SerialPort and GpioPort) that QEMU dials with a\n"
               "        client certificate from the same CA (libvirt's chardev_tls_x509_cert_dir).\n"
               "        tools/setup-tls.sh (run by tools/setup.sh) makes piemu's own CA and all\n"
               "        certificates; the key must be readable by the piemu user only.\n"
               "\n"
               "Signals: SIGTERM and SIGINT stop piemud cleanly; running boards keep running\n"
               "and are picked up again at the next start.\n"
               "\n"
               "See piemud(8) and piemuctl(1).\n",
               PIEMU_LIBVIRT_URI, PIEMU_IMAGES_DIR, PIEMU_QEMU_WRAPPER, TLS_DIR_DEFAULT, QTEST_DIR_DEFAULT,
               PIEMU_OWN_QEMU, PIEMU_QEMU, PIEMU_IMAGES_DIR, PIEMU_POOL_DIR, PIEMU_QEMU_WRAPPER,
               TLS_DIR_DEFAULT);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_LIBVIRT_URI,
                ARG_IMAGES_DIR,
                ARG_LOG_LEVEL,
                ARG_BUS,
                ARG_TCG_THREADS,
                ARG_TLS_DIR,
                ARG_QEMU_USER,
                ARG_QTEST_DIR,
                ARG_QEMU,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"libvirt-uri", required_argument, NULL, ARG_LIBVIRT_URI},
                {"images-dir", required_argument, NULL, ARG_IMAGES_DIR},
                {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
                {"bus", required_argument, NULL, ARG_BUS},
                {"tcg-threads", required_argument, NULL, ARG_TCG_THREADS},
                {"tls-dir", required_argument, NULL, ARG_TLS_DIR},
                {"qemu-user", required_argument, NULL, ARG_QEMU_USER},
                {"qtest-dir", required_argument, NULL, ARG_QTEST_DIR},
                {"qemu", required_argument, NULL, ARG_QEMU},
                {},
        };
        int c, l;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("piemud %s\n", PIEMU_VERSION);
                        return 0;
                case ARG_LIBVIRT_URI:
                        arg_libvirt_uri = optarg;
                        break;
                case ARG_IMAGES_DIR:
                        arg_images_dir = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        l = log_parse_level(optarg);
                        if (l < 0) {
                                fprintf(stderr, "piemud: unknown log level '%s'\n", optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(l);
                        break;
                case ARG_BUS:
                        if (streq(optarg, "user"))
                                arg_user_bus = true;
                        else if (!streq(optarg, "system")) {
                                fprintf(stderr, "piemud: --bus takes 'system' or 'user', not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_TCG_THREADS:
                        if (streq(optarg, "single") || streq(optarg, "multi"))
                                arg_tcg_multi = streq(optarg, "multi");
                        else {
                                fprintf(stderr,
                                        "piemud: --tcg-threads takes 'single' or 'multi', not '%s'\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_TLS_DIR:
                        arg_tls_dir = optarg;
                        break;
                case ARG_QEMU_USER:
                        arg_qemu_user = optarg;
                        break;
                case ARG_QTEST_DIR:
                        arg_qtest_dir = optarg;
                        break;
                case ARG_QEMU:
                        if (streq(optarg, "auto"))
                                arg_piemu_qemu = true;
                        else if (streq(optarg, "stock"))
                                arg_piemu_qemu = false;
                        else {
                                fprintf(stderr, "piemud: --qemu takes auto or stock, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "piemud: takes no arguments (got '%s'); see --help\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, shutting down.", strsignal((int)si->ssi_signo));
        sd_notify(0, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Manager *m = NULL;
        sigset_t mask;
        int r;

        log_open();
        /* Before any worker thread reads libvirt's XML (libxml2's one-time set-up is not thread-safe). */
        xmlInitParser();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&e);
        if (r < 0)
                return log_error_errno(r, "Cannot create the event loop: %m");
        r = sd_event_add_signal(e, NULL, SIGTERM, on_exit_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, on_exit_signal, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot watch signals: %m");
        (void)sd_event_set_watchdog(e, true);

        /* Before anything opens a descriptor of its own: systemd's store starts at fd 3. */
        (void)fdstore_init();
        r = manager_new(e, &m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up: %m");
        if (arg_libvirt_uri && !(free(m->libvirt_uri), m->libvirt_uri = strdup(arg_libvirt_uri)))
                r = log_oom();
        if (r >= 0 && arg_images_dir && !(free(m->images_dir), m->images_dir = strdup(arg_images_dir)))
                r = log_oom();
        if (r >= 0 && !arg_tcg_multi) {
                if (access(PIEMU_QEMU_WRAPPER, X_OK) < 0)
                        /* A build run from the source tree, or a packaging mistake: still usable. */
                        log_warning_errno(errno,
                                          "Cannot run %s (%m); boards use libvirt's default QEMU with "
                                          "multi-threaded TCG and boot slower.",
                                          PIEMU_QEMU_WRAPPER);
                else if (!(m->host.emulator = strdup(PIEMU_QEMU_WRAPPER)))
                        r = log_oom();
                /* Only the wrapper can run piemu's QEMU for a board (qemu-flavor.h). */
                else if (arg_piemu_qemu)
                        m->host.piemu_qemu = PIEMU_OWN_QEMU;
        }
        if (r >= 0 && streq_ptr(getenv("PIEMUD_INJECT_FAULT"), "stop")) {
                /* For the test suite: the failed-Stop path (the domain keeps running) on demand. */
                m->host.inject_stop_failure = true;
                log_warning("Fault injection is on (PIEMUD_INJECT_FAULT=stop): every Stop fails and leaves "
                            "the board running. For tests only.");
        }
        if (r >= 0 && arg_tls_dir && !(free(m->host.tls_dir), m->host.tls_dir = strdup(arg_tls_dir)))
                r = log_oom();
        if (r >= 0 && !isempty(arg_qemu_user)) {
                /* Start-up, nobody served yet: a blocking NSS lookup is fine here. */
                struct passwd *pw = getpwnam(arg_qemu_user);
                if (pw)
                        m->host.qemu_uid = pw->pw_uid;
                else
                        log_warning("No user %s: a line's peer is checked by its certificate only "
                                    "(see --qemu-user)",
                                    arg_qemu_user);
        }
        if (r >= 0 && !isempty(arg_qtest_dir))
                r = manager_set_qtest_dir(m, arg_qtest_dir);
        if (r >= 0) {
                _cleanup_free_ char *problem = NULL;
                TlsCreds *creds;
                /* One clear line now; Start says it again, and loads them once they are there. */
                if (board_host_tls(&m->host, &creds, &problem) < 0)
                        log_error("Boards cannot start: no TLS credentials for their serial lines (%s). "
                                  "Run tools/setup-tls.sh as root, or see piemud(8) for using your own CA.",
                                  strempty(problem));
        }
        if (r >= 0)
                r = manager_connect_libvirt(m);
        if (r >= 0)
                r = manager_connect_bus(m, arg_user_bus);
        if (r >= 0)
                r = manager_load_boards(m);
        if (r >= 0)
                /* The running boards took their ports back; the rest stopped while piemud was away. */
                fdstore_release_unclaimed();
        if (r >= 0) {
                log_info("piemud %s ready on the %s bus as org.piemu (QEMU: %s%s)", PIEMU_VERSION,
                         arg_user_bus ? "user" : "system",
                         m->host.emulator ? "single-threaded TCG via " PIEMU_QEMU_WRAPPER
                                          : "libvirt's default, multi-threaded TCG",
                         !m->host.piemu_qemu               ? ""
                         : board_host_piemu_qemu(&m->host) ? "; piemu's own QEMU with GPIO interrupts"
                                                           : "; piemu's own QEMU not installed");
                sd_notify(0, "READY=1\nSTATUS=Serving org.piemu");
                r = sd_event_loop(e);
                if (r < 0)
                        log_error_errno(r, "Event loop failed: %m");
        }
        manager_free(m);
        virt_event_unregister();
        return r;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
