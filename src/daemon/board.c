/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "i2c-devices.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "manager-wires.h"
#include "piemu-errors.h"
#include "vm.h"
#include "xml-util.h"

/* Console bytes leave as SerialOutput coalesced over WATCHERS_COALESCE_USEC anyway: reading
 * them at most once a millisecond adds no delay that matters and spares a wakeup for every
 * few bytes a streaming guest prints. The GPIO line is read at once (SetPin latency). */
#define CONSOLE_BATCH_USEC 1000

/* Every verb starts here: board-fsm.c's table says whether it may run now (libvirtd reachable,
 * no operation in flight, the right state), and which named error refuses it otherwise. */
static int check_verb(Board *b, BoardVerb verb, sd_bus_error *error) {
        BoardVerdict v = board_fsm_verb(verb, b->state, b->op, b->manager->conn != NULL);
        const char *name = board_verdict_error_name(v);

        switch (v) {
        case BOARD_VERDICT_OK:
                return 0;
        case BOARD_VERDICT_UNAVAILABLE:
                return sd_bus_error_setf(error, name,
                                         "libvirtd is not reachable; piemud is reconnecting. Try again.");
        case BOARD_VERDICT_ALREADY_RUNNING:
                return sd_bus_error_setf(error, name, "Board %s is already %s.", b->config.name,
                                         board_state_to_string(b->state));
        case BOARD_VERDICT_NOT_RUNNING:
                return sd_bus_error_setf(error, name, "Board %s is not running.", b->config.name);
        default:
                return sd_bus_error_setf(error, name, "Board %s is busy (%s).", b->config.name,
                                         board_state_to_string(b->state));
        }
}

/* Work handed to a worker thread: a self-contained copy, so the thread touches
 * nothing the loop owns. */
typedef struct Job {
        Board *board;
        virConnectPtr conn;
        char *domain;
        char *volume;
        char *domain_xml;
        char *volume_xml;
        bool fresh_volume;
        bool delete_volume;
        bool undefine;
        worker_done_t done;
        bool destroyed; /* cleanup_work cut the power (the domain is not running any more) */
        bool inactive;  /* refresh_work: libvirt says the domain is not running */
        bool inject_failure;
        char *metadata;       /* save_work: piemu's metadata element; sensor_work: the QMP command */
        char *qmp_reply;      /* sensor_work: QEMU's answer */
        sd_bus_message *call; /* sensor_done: answered when QEMU is */
        SaveWaiter *waiters;  /* save_done: who waits for this save */
        int r;
        char *error;
        char uuid[VIR_UUID_STRING_BUFLEN];
} Job;

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        board_unref(j->board);
        if (j->conn)
                virConnectClose(j->conn); /* drops the job's reference */
        free(j->domain);
        free(j->volume);
        free(j->domain_xml);
        free(j->volume_xml);
        free(j->metadata);
        free(j->qmp_reply);
        sd_bus_message_unref(j->call);
        free(j->error);
        free(j);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);

static int job_new(Board *b, Job **ret) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        /* The job owns a reference on the board (its memory stays valid whatever happens to the
         * board meanwhile) and on the libvirt connection (piemud may replace it after a libvirtd
         * restart while the job runs). */
        j->board = board_ref(b);
        j->conn = b->manager->conn;
        if (j->conn && virConnectRef(j->conn) < 0)
                j->conn = NULL;
        j->domain = strdup(b->domain);
        j->volume = strdup(b->volume);
        if (!j->domain || !j->volume) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

void board_set_last_error(Board *b, const char *msg) {
        char *n = msg ? strdup(msg) : NULL;
        if (msg && !n)
                return;
        free(b->last_error);
        b->last_error = n;
        (void)sd_bus_emit_properties_changed(b->manager->bus, b->path, "org.piemu.Board", "LastError", NULL);
}

static void set_state(Board *b, BoardState s) {
        if (b->state == s)
                return;
        log_info("board %s: %s -> %s", b->config.name, board_state_to_string(b->state),
                 board_state_to_string(s));
        b->state = s;
        if (b->manager->bus)
                (void)sd_bus_emit_properties_changed(b->manager->bus, b->path, "org.piemu.Board", "State",
                                                     NULL);
        if (s == BOARD_RUNNING)
                manager_wires_board_up(b->manager, b);
}

void board_set_guest_ready(Board *b, bool ready) {
        if (b->guest_ready == ready)
                return;
        b->guest_ready = ready;
        if (b->manager->bus)
                (void)sd_bus_emit_properties_changed(b->manager->bus, b->path, "org.piemu.Board",
                                                     "GuestReady", NULL);
}

static void reply_pending(Board *b, int r, const char *name, const char *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = TAKE_PTR(b->pending);
        if (!m)
                return;
        if (r >= 0)
                (void)sd_bus_reply_method_return(m, NULL);
        else
                (void)sd_bus_reply_method_errorf(m, name ?: PIEMU_ERROR_FAILED, "%s", msg ?: strerror(-r));
}

int board_new(Manager *m, const BoardConfig *c, Board **ret) {
        Board *b = calloc(1, sizeof *b);
        int r;

        if (!b)
                return -ENOMEM;
        b->n_ref = 1;
        b->manager = m;
        gpio_parser_init(&b->parser);
        r = board_config_copy(c, &b->config);
        if (r < 0)
                goto fail;
        r = board_domain_name(c->name, &b->domain);
        if (r < 0)
                goto fail;
        r = board_volume_name(c->name, &b->volume);
        if (r < 0)
                goto fail;
        r = sd_bus_path_encode("/org/piemu/board", c->name, &b->path);
        if (r < 0)
                goto fail;
        watchers_init(&b->watchers, b->path, b->config.name);
        *ret = b;
        return 0;
fail:
        board_unref(b);
        return r;
}

static Board *board_free(Board *b);
static void board_disconnect(Board *b);
static void waiters_notify(Board *b, SaveWaiter *l, int r, const char *error);
static void save_maybe(Board *b);

Board *board_ref(Board *b) {
        if (b)
                b->n_ref++;
        return b;
}

Board *board_unref(Board *b) {
        if (!b)
                return NULL;
        assert(b->n_ref > 0);
        if (--b->n_ref == 0)
                board_free(b);
        return NULL;
}

void board_shut(Board *b) {
        /* Nothing of the board may call back into it from now on: lines, clients, timers. Changes
         * waiting to be saved never will be: their callers hear so now. */
        b->removed = true;
        waiters_notify(b, TAKE_PTR(b->save_waiters), -ESTALE, "the board is gone");
        board_level_waits_cancel(b);
        b->waiting_for_lines = false;
        b->lines_timer = sd_event_source_disable_unref(b->lines_timer);
        board_disconnect(b);
}

static void board_disconnect(Board *b) {
        board_console_clients_drop(b);
        if (b->manager->exiting) {
                /* piemud exits, the board runs on: systemd's store keeps its ports (fdstore.h). */
                b->console = serial_free(b->console);
                b->gpio = serial_free(b->gpio);
        } else {
                b->console = serial_close(b->console);
                b->gpio = serial_close(b->gpio);
        }
        b->console_up = b->gpio_up = false;
        board_qtest_close(b);
        watchers_detach(&b->watchers);
        gpio_parser_init(&b->parser);
        board_set_guest_ready(b, false);
}

static Board *board_free(Board *b) {
        if (!b)
                return NULL;
        assert(b->n_ref == 0);
        board_disconnect(b);
        sd_event_source_disable_unref(b->lines_timer);
        sd_bus_message_unref(b->pending);
        watchers_done(&b->watchers);
        board_config_done(&b->config);
        free(b->path);
        free(b->domain);
        free(b->volume);
        free(b->last_error);
        free(b);
        return NULL;
}

/* ---- the lines ---- */

static void start_failed(Board *b, int r, const char *msg);
static void resume_guest(Board *b);

static void on_serial_state(Serial *s, int error, void *userdata) {
        Board *b = userdata;
        bool is_console = s == b->console;
        char line[GPIO_PROTO_LINE_MAX + 1];

        if (error == 0) {
                if (is_console)
                        b->console_up = true;
                else {
                        b->gpio_up = true;
                        /* After piemud or the line restarted, a running shim does not say HELLO again: ask
                         * it for the levels; its answer also tells that it is there. (Not while starting:
                         * the guest's tty would only echo it.) */
                        if (b->state == BOARD_RUNNING)
                                board_gpio_send(b, line, gpio_proto_format_sync(line, sizeof line));
                }
                if (b->state == BOARD_RUNNING)
                        log_info("board %s: %s line up", b->config.name, is_console ? "serial" : "GPIO");
                board_lines_maybe_ready(b);
                return;
        }
        if (is_console)
                b->console_up = false;
        else {
                b->gpio_up = false;
                gpio_parser_init(&b->parser);
        }
        if (serial_is_tls(s)) {
                /* QEMU dials again (<reconnect>): nothing to do but wait. */
                if (b->state == BOARD_RUNNING)
                        log_info("board %s: %s line down (%s); QEMU reconnects", b->config.name,
                                 is_console ? "serial" : "GPIO", strerror(-error));
                return;
        }
        /* A plain line of a board from before TLS lines: the socket is gone for good. */
        if (is_console) {
                watchers_detach(&b->watchers);
                b->console = serial_free(b->console);
        } else {
                b->gpio = serial_free(b->gpio);
                board_set_guest_ready(b, false);
        }
        if (b->state == BOARD_RUNNING)
                log_info("board %s: %s line closed (%s)", b->config.name, is_console ? "serial" : "GPIO",
                         strerror(-error));
}

static void on_serial_intruder(Serial *s, uid_t uid, const char *what, unsigned suppressed, void *userdata) {
        Board *b = userdata;
        _cleanup_free_ char *m = NULL;
        char who[64];

        if (uid == (uid_t)-1)
                snprintf(who, sizeof who, "a local process of unknown uid");
        else
                snprintf(who, sizeof who, "local uid %u", (unsigned)uid);
        char extra[96] = "";
        if (suppressed > 0)
                snprintf(extra, sizeof extra,
                         " (%u more such connection(s) before this one were not logged)", suppressed);
        if (asprintf(&m, "%s reached the %s line of board %s (port %u): %s; it got nothing%s", who,
                     s == b->console ? "serial" : "GPIO", b->config.name, serial_port(s), what, extra) < 0)
                m = NULL;
        log_warning("%s", m ?: "A stranger connected to a line");
        board_set_last_error(b, m);
}

/* Opens both lines: TLS listeners QEMU dials (`fixed`: on the ports in the board's config, for a
 * domain that runs already), or plain clients of QEMU's ports for a board from before TLS lines. */
static int open_lines(Board *b, bool fixed, bool plain) {
        const SerialCallbacks console_cb = {
                .on_data = board_console_on_data,
                .on_state = on_serial_state,
                .on_intruder = on_serial_intruder,
                .userdata = b,
        };
        const SerialCallbacks gpio_cb = {
                .on_data = board_gpio_on_data,
                .on_state = on_serial_state,
                .on_intruder = on_serial_intruder,
                .userdata = b,
        };
        sd_event *e = b->manager->event;
        TlsCreds *creds = NULL;
        int r;

        board_disconnect(b);
        if (plain) {
                r = serial_connect(e, b->config.serial_port, &console_cb, &b->console);
                if (r >= 0)
                        r = serial_connect(e, b->config.gpio_port, &gpio_cb, &b->gpio);
        } else {
                r = manager_tls(b->manager, &creds, NULL);
                if (r >= 0)
                        r = serial_listen(e, fixed ? b->config.serial_port : 0, creds, b->manager->qemu_uid,
                                          &console_cb, &b->console);
                if (r >= 0)
                        r = serial_listen(e, fixed ? b->config.gpio_port : 0, creds, b->manager->qemu_uid,
                                          &gpio_cb, &b->gpio);
        }
        if (r < 0) {
                board_disconnect(b);
                return r;
        }
        if (b->gpio_qtest) {
                r = board_qtest_listen(b);
                if (r < 0) {
                        log_error_errno(r, "board %s: cannot listen for QEMU's qtest channel: %m",
                                        b->config.name);
                        board_disconnect(b);
                        return r;
                }
        }
        b->config.serial_port = serial_port(b->console);
        b->config.gpio_port = serial_port(b->gpio);
        watchers_attach(&b->watchers, b->console);
        serial_set_batch_usec(b->console, CONSOLE_BATCH_USEC);
        return 0;
}

/* ---- operations ---- */

static void refresh_after_event(Board *b);

/* Every operation's end passes here: the done callback, then what the operation kept waiting
 * (a lifecycle event that arrived meanwhile). */
static void job_done(void *userdata) {
        Job *j = userdata;
        _cleanup_(board_unrefp) Board *b = board_ref(j->board);

        j->done(j); /* frees j */
        if (!b->removed && b->op == BOARD_OP_NONE && b->deferred_event)
                refresh_after_event(b);
        save_maybe(b);
}

static int submit(Board *b, BoardOp op, Job *j, worker_work_t work, worker_done_t done) {
        int r;

        assert(b->op == BOARD_OP_NONE); /* one operation per board at a time */
        assert(!b->removed);
        if (!j->conn)
                return -ENOTCONN; /* libvirtd is away: the caller answers Unavailable */
        j->done = done;
        r = worker_submit(b->manager->workers, work, job_done, j);
        if (r < 0)
                return r;
        b->op = op;
        return 0;
}

static void cleanup_work(void *userdata) {
        Job *j = userdata;
        _cleanup_free_ char *e2 = NULL;
        int r;

        if (j->inject_failure) {
                j->r = -EIO;
                j->error = strdup("injected fault (PIEMUD_INJECT_FAULT=stop): the power stays on");
                return;
        }
        r = vm_destroy(j->conn, j->domain, &j->error);
        j->destroyed = r >= 0;
        if (j->delete_volume) {
                int k = vm_volume_delete(j->conn, PIEMU_POOL_NAME, j->volume, &e2);
                if (k < 0 && r >= 0) {
                        r = k;
                        free(j->error);
                        j->error = TAKE_PTR(e2);
                }
        }
        if (j->undefine && r >= 0)
                r = vm_undefine(j->conn, j->domain, &j->error);
        j->r = r;
}

static void start_failed_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                log_warning("board %s: cleanup after a failed start: %s; tried again once libvirtd answers",
                            b->config.name, strempty(j->error));
                b->needs_cleanup = true;
        }
        set_state(b, BOARD_STOPPED);
        reply_pending(b, -EIO, PIEMU_ERROR_FAILED, b->last_error);
}

static void start_failed(Board *b, int r, const char *msg) {
        _cleanup_free_ char *m = NULL;
        Job *j = NULL;

        if (asprintf(&m, "Failed to start board %s: %s", b->config.name, msg ?: strerror(-r)) < 0)
                m = NULL;
        log_error("%s", m ?: "Failed to start board");
        board_set_last_error(b, m);
        b->waiting_for_lines = false;
        b->lines_timer = sd_event_source_disable_unref(b->lines_timer);
        board_disconnect(b);
        /* Never leave a half-started domain behind: cut its power and drop a throwaway overlay. */
        if (job_new(b, &j) >= 0) {
                j->delete_volume = !b->config.persistent;
                if (submit(b, BOARD_OP_CLEANUP, j, cleanup_work, start_failed_done) >= 0)
                        return;
                job_free(j);
        }
        /* No libvirtd to ask now: the domain may be half-started. Cleaned up after the reconnect. */
        b->needs_cleanup = true;
        set_state(b, BOARD_STOPPED);
        reply_pending(b, r, PIEMU_ERROR_FAILED, b->last_error);
}

/* QEMU dials both lines as soon as it starts (paused). If both are not up by then, something is
 * wrong with TLS on one side (the log of libvirt's QEMU says what). */
#define LINES_WAIT_USEC (15 * UINT64_C(1000000))

static void resume_work(void *userdata) {
        Job *j = userdata;
        j->r = vm_resume(j->conn, j->domain, &j->error);
}

static void resume_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                start_failed(b, j->r, j->error);
                return;
        }
        board_set_last_error(b, NULL);
        set_state(b, BOARD_RUNNING);
        log_info("board %s: running (TLS lines: serial 127.0.0.1:%u, gpio 127.0.0.1:%u)", b->config.name,
                 b->config.serial_port, b->config.gpio_port);
        reply_pending(b, 0, NULL, NULL);
}

/* Both lines are up and QEMU waits, paused: let the guest run. Nothing it prints is lost. */
static void resume_guest(Board *b) {
        Job *j = NULL;
        int r;

        assert(b->state == BOARD_STARTING && b->waiting_for_lines);
        b->waiting_for_lines = false;
        b->lines_timer = sd_event_source_disable_unref(b->lines_timer);
        r = job_new(b, &j);
        if (r >= 0) {
                r = submit(b, BOARD_OP_START, j, resume_work, resume_done);
                if (r >= 0)
                        return;
                job_free(j);
        }
        start_failed(b, r, NULL);
}

static int on_lines_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Board *b = userdata;
        b->lines_timer = sd_event_source_disable_unref(b->lines_timer);
        if (b->state != BOARD_STARTING || !b->waiting_for_lines)
                return 0;
        b->waiting_for_lines = false;
        start_failed(b, -ETIMEDOUT,
                     !b->console_up ? "QEMU did not connect its serial line (is TLS set up? see piemud(8))"
                     : !b->gpio_up  ? "QEMU did not connect its GPIO line (is TLS set up? see piemud(8))"
                                    : "QEMU did not connect its qtest channel (see piemud(8), --qtest-dir)");
        return 0;
}

static bool lines_ready(Board *b) {
        return b->console_up && b->gpio_up && (!b->gpio_qtest || board_qtest_connected(b));
}

void board_lines_maybe_ready(Board *b) {
        if (b->state == BOARD_STARTING && b->waiting_for_lines && lines_ready(b))
                resume_guest(b);
}

/* The domain exists and is paused: resume once QEMU has connected both lines (and its qtest
 * channel, on the agentless GPIO path). */
static void wait_for_lines(Board *b) {
        int r;

        b->waiting_for_lines = true;
        if (lines_ready(b)) {
                resume_guest(b);
                return;
        }
        r = sd_event_add_time_relative(b->manager->event, &b->lines_timer, CLOCK_MONOTONIC, LINES_WAIT_USEC,
                                       100 * 1000, on_lines_timeout, b);
        if (r < 0) {
                b->waiting_for_lines = false;
                start_failed(b, r, NULL);
        }
}

static void start_work(void *userdata) {
        Job *j = userdata;
        int r;

        r = vm_volume_create(j->conn, PIEMU_POOL_NAME, j->volume, j->volume_xml, j->fresh_volume, &j->error);
        if (r >= 0)
                r = vm_define(j->conn, j->domain_xml, NULL, &j->error);
        if (r >= 0)
                r = vm_start_paused(j->conn, j->domain, &j->error);
        j->r = r;
}

static void start_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                /* Nothing is running; only a fresh overlay may need to go. */
                _cleanup_free_ char *m = TAKE_PTR(j->error);
                start_failed(b, j->r, m);
                return;
        }
        wait_for_lines(b);
}

static int board_domain_xml(Board *b, const Image *img, char **ret) {
        _cleanup_free_ char *dtb = NULL;
        int r;

        /* CreateBoard checked that the image boots on the model; an image replaced since may not. */
        r = image_dtb_for_model(img, b->config.model ?: PIEMU_DEFAULT_MODEL, &dtb);
        if (r < 0)
                return r;
        ImagePaths paths = {
                .kernel = img->kernel,
                .dtb = dtb,
                .initrd = img->initrd,
                .sd = img->sd,
                .sd_format = img->sd_format,
                .cmdline = img->cmdline,
                .qtest_socket = b->gpio_qtest ? b->qtest_socket : NULL,
        };
        return domain_xml_build(&b->config, &paths, isempty(b->uuid) ? NULL : b->uuid, b->manager->emulator,
                                ret);
}

int board_start(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ char *problem = NULL;
        TlsCreds *creds = NULL;
        Job *j = NULL;
        int r;

        r = check_verb(b, BOARD_VERB_START, error);
        if (r < 0)
                return r;
        r = image_load(b->manager->images_dir, b->config.image, &img);
        if (r < 0)
                return manager_image_error(error, b->config.image, r);
        r = manager_tls(b->manager, &creds, &problem);
        if (r < 0)
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_FAILED,
                        "Cannot start board %s: piemud has no TLS credentials for the serial "
                        "lines (%s). See piemud(8).",
                        b->config.name, strempty(problem));
        /* piemud listens before QEMU exists: the ports are ours from the first moment, and nobody can
         * be in QEMU's way, because QEMU is the one who dials. */
        b->gpio_qtest = b->manager->qtest_dir != NULL;
        r = open_lines(b, false, false);
        if (r >= 0)
                r = job_new(b, &j);
        if (r >= 0)
                r = board_domain_xml(b, img, &j->domain_xml);
        if (r >= 0)
                r = volume_xml_build(b->volume, sd_capacity_for(img->sd_size), img->sd, img->sd_format,
                                     &j->volume_xml);
        if (r >= 0) {
                j->fresh_volume = !b->config.persistent;
                r = submit(b, BOARD_OP_START, j, start_work, start_done);
        }
        if (r < 0) {
                job_free(j);
                board_disconnect(b);
                return sd_bus_error_setf(error, PIEMU_ERROR_FAILED, "Cannot start board %s: %s",
                                         b->config.name, strerror(-r));
        }
        b->pending = sd_bus_message_ref(reply_to);
        b->levels = 0;
        b->dropped_lines = 0;
        (void)sd_bus_emit_properties_changed(b->manager->bus, b->path, "org.piemu.Board", "GpioPath", NULL);
        set_state(b, BOARD_STARTING);
        return 0;
}

int board_attach(Board *b, bool paused, bool plain_lines) {
        int r;

        r = open_lines(b, true, plain_lines);
        if (r < 0) {
                log_error_errno(r, "board %s: cannot open its lines on ports %u/%u: %m", b->config.name,
                                b->config.serial_port, b->config.gpio_port);
                if (paused) {
                        set_state(b, BOARD_STARTING);
                        start_failed(b, r, "cannot open the serial lines after a restart of piemud");
                } else
                        set_state(b, BOARD_RUNNING);
                return r;
        }
        if (plain_lines)
                log_warning("board %s: runs with plain TCP lines from an older piemu; it gets TLS lines at "
                            "its next Start",
                            b->config.name);
        if (paused) {
                /* piemud went away between the paused start and the resume: finish that start. */
                set_state(b, BOARD_STARTING);
                wait_for_lines(b);
                return 0;
        }
        /* A guest that runs is running, from the first moment anyone can see the board (at start-up
         * it is not on the bus yet: no transition to announce). QEMU dials its lines again within a
         * second. */
        if (b->manager->loaded)
                set_state(b, BOARD_RUNNING);
        else
                b->state = BOARD_RUNNING;
        return 0;
}

static void stop_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                board_set_last_error(b, j->error);
                log_error("board %s: stop failed: %s", b->config.name, strempty(j->error));
                /* The domain may still be up: its lines stay piemud's (a line let go of while QEMU runs
                 * is a port a stranger could take). State follows libvirt's next lifecycle event. */
                if (j->destroyed)
                        board_disconnect(b);
                set_state(b, j->destroyed ? BOARD_STOPPED : BOARD_RUNNING);
                reply_pending(b, j->r, PIEMU_ERROR_FAILED, j->error);
                return;
        }
        board_disconnect(b);
        set_state(b, BOARD_STOPPED);
        reply_pending(b, 0, NULL, NULL);
}

int board_stop(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        Job *j = NULL;
        int r;

        r = check_verb(b, BOARD_VERB_STOP, error);
        if (r < 0)
                return r;
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        j->delete_volume = !b->config.persistent;
        j->inject_failure = b->manager->inject_stop_failure;
        r = submit(b, BOARD_OP_STOP, j, cleanup_work, stop_done);
        if (r < 0) {
                job_free(j);
                return sd_bus_error_set_errno(error, r);
        }
        b->pending = sd_bus_message_ref(reply_to);
        set_state(b, BOARD_STOPPING);
        return 0;
}

static void delete_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;
        Manager *m = b->manager;

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                board_set_last_error(b, j->error);
                log_error("board %s: delete failed: %s", b->config.name, strempty(j->error));
                if (j->destroyed || b->state != BOARD_STOPPING) {
                        board_disconnect(b);
                        set_state(b, BOARD_STOPPED);
                } else
                        set_state(b, BOARD_RUNNING); /* still running, lines kept */
                reply_pending(b, j->r, PIEMU_ERROR_FAILED, j->error);
                return;
        }
        log_info("board %s: deleted", b->config.name);
        reply_pending(b, 0, NULL, NULL);
        manager_remove_board(m, b);
}

int board_delete(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        Job *j = NULL;
        int r;

        r = check_verb(b, BOARD_VERB_DELETE, error);
        if (r < 0)
                return r;
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        /* Deleting a running board stops it first (a power cut), as documented. */
        j->delete_volume = true;
        j->undefine = true;
        r = submit(b, BOARD_OP_DELETE, j, cleanup_work, delete_done);
        if (r < 0) {
                job_free(j);
                return sd_bus_error_set_errno(error, r);
        }
        b->pending = sd_bus_message_ref(reply_to);
        if (b->state == BOARD_RUNNING)
                set_state(b, BOARD_STOPPING);
        return 0;
}

/* ---- saving the config (libvirt's metadata) ----
 *
 * Not one of the board's operations (b->op): a wire added while the board starts or stops need not
 * wait for that. One save per board at a time, so that an older copy never lands after a newer one,
 * and none beside a Start or a define, which write the whole definition from the config as it was
 * when they began. Changes made meanwhile are saved right after (config_dirty). */

struct SaveWaiter {
        board_saved_t done;
        void *userdata;
        SaveWaiter *next;
};

static void waiters_notify(Board *b, SaveWaiter *l, int r, const char *error) {
        while (l) {
                SaveWaiter *next = l->next;
                l->done(b, r, error, l->userdata);
                free(l);
                l = next;
        }
}

static void save_work(void *userdata) {
        Job *j = userdata;
        j->r = vm_set_metadata(j->conn, j->domain, j->metadata, &j->error);
}

static void save_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->saving = false;
        if (j->r < 0)
                log_error("board %s: cannot save its settings: %s", b->config.name, strempty(j->error));
        else
                log_debug("board %s: settings saved", b->config.name);
        waiters_notify(b, TAKE_PTR(j->waiters), j->r, j->error);
        /* job_done() starts the next save if the config changed meanwhile. */
}

static bool can_save_now(Board *b) {
        return !b->removed && !b->saving && b->manager->conn && b->op != BOARD_OP_DEFINE &&
               b->op != BOARD_OP_START;
}

/* Starts a save of the config as it is now, for everybody waiting. On failure nothing changed. */
static int save_start(Board *b) {
        _cleanup_free_ char *meta = NULL;
        Job *j = NULL;
        int r;

        assert(can_save_now(b));
        r = metadata_xml_build(&b->config, &meta);
        if (r < 0)
                return r;
        r = job_new(b, &j);
        if (r < 0)
                return r;
        if (asprintf(&j->metadata, "<board>%s</board>", meta) < 0) {
                j->metadata = NULL;
                job_free(j);
                return -ENOMEM;
        }
        j->done = save_done;
        r = worker_submit(b->manager->workers, save_work, job_done, j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        /* This write carries every change made so far, and answers everybody who waits for one. */
        j->waiters = TAKE_PTR(b->save_waiters);
        b->saving = true;
        b->config_dirty = false;
        return 0;
}

/* From the loop's own paths (an operation ended, libvirtd is back): a failure to even start fails
 * the waiters, who would otherwise wait for ever. */
static void save_maybe(Board *b) {
        int r;

        if (!b->config_dirty || !can_save_now(b))
                return;
        r = save_start(b);
        if (r < 0) {
                log_error_errno(r, "board %s: cannot save its settings: %m", b->config.name);
                waiters_notify(b, TAKE_PTR(b->save_waiters), r, strerror(-r));
        }
}

int board_save_config(Board *b, board_saved_t done, void *userdata) {
        SaveWaiter *w = NULL, **tail;
        int r;

        if (b->removed)
                return -ESTALE;
        if (done) {
                w = calloc(1, sizeof *w);
                if (!w)
                        return -ENOMEM;
                *w = (SaveWaiter){.done = done, .userdata = userdata};
                for (tail = &b->save_waiters; *tail; tail = &(*tail)->next)
                        ;
                *tail = w;
        }
        b->config_dirty = true;
        if (!can_save_now(b)) {
                if (!b->manager->conn)
                        log_warning(
                                "board %s: libvirtd is away; its changed settings are saved when it is back",
                                b->config.name);
                return 0; /* after the save or operation in flight, or the reconnect */
        }
        r = save_start(b);
        if (r < 0 && w) {
                /* Not started: the caller answers at once, so its waiter goes. */
                for (tail = &b->save_waiters; *tail != w; tail = &(*tail)->next)
                        ;
                *tail = NULL;
                free(w);
        }
        return r;
}

void board_save_config_later(Board *b) {
        int r = board_save_config(b, NULL, NULL);
        if (r < 0)
                log_error_errno(r, "board %s: cannot save its settings: %m", b->config.name);
}

static void sensor_work(void *userdata) {
        Job *j = userdata;
        j->r = vm_qmp(j->conn, j->domain, j->metadata, &j->qmp_reply, &j->error);
}

static void sensor_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        /* QMP answers {"return": ...} or {"error": {"class": ..., "desc": ...}}; only whether it is an
         * error matters, and the answer is shown cut short and escaped (it comes from QEMU, which runs
         * the guest). */
        if (j->r >= 0 && j->qmp_reply && strstr(j->qmp_reply, "\"error\"")) {
                _cleanup_free_ char *e = NULL;
                (void)xml_escape(j->qmp_reply, &e); /* printable enough for a message, and bounded below */
                log_warning("board %s: QEMU refused %s: %.200s", b->config.name, j->metadata, strempty(e));
                (void)sd_bus_reply_method_errorf(j->call, PIEMU_ERROR_FAILED,
                                                 "QEMU refused the value: %.200s", strempty(e));
                return;
        }
        if (j->r < 0) {
                log_warning("board %s: cannot set a sensor: %s", b->config.name, strempty(j->error));
                (void)sd_bus_reply_method_errorf(j->call, PIEMU_ERROR_FAILED, "Cannot set the sensor: %s",
                                                 strempty(j->error));
                return;
        }
        log_debug("board %s: %s", b->config.name, j->metadata);
        (void)sd_bus_reply_method_return(j->call, NULL);
}

int board_set_sensor(Board *b, uint8_t address, const char *property, int64_t value, sd_bus_message *call,
                     sd_bus_error *error) {
        Job *j = NULL;
        int r;

        if (!b->manager->conn)
                return sd_bus_error_setf(error, PIEMU_ERROR_UNAVAILABLE,
                                         "libvirtd is not reachable; piemud is reconnecting. Try again.");
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        r = i2c_qom_set_command(address, property, value, &j->metadata);
        if (r >= 0) {
                j->call = sd_bus_message_ref(call);
                j->done = sensor_done;
                /* Not one of the board's operations (b->op): QEMU's monitor takes it while the board
                 * runs, whatever else libvirt does for it; a board that stops meanwhile gets an error. */
                r = worker_submit(b->manager->workers, sensor_work, job_done, j);
        }
        if (r < 0) {
                job_free(j);
                return sd_bus_error_set_errno(error, r);
        }
        return 0;
}

static void define_work(void *userdata) {
        Job *j = userdata;
        j->r = vm_define(j->conn, j->domain_xml, j->uuid, &j->error);
}

static void define_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = TAKE_PTR(b->pending);

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                log_error("board %s: cannot define its domain: %s", b->config.name, strempty(j->error));
                if (m)
                        (void)sd_bus_reply_method_errorf(m, PIEMU_ERROR_FAILED, "Cannot create board %s: %s",
                                                         b->config.name, strempty(j->error));
                manager_remove_board(b->manager, b);
                return;
        }
        memcpy(b->uuid, j->uuid, sizeof b->uuid);
        b->announced = true;
        log_info("board %s: created (image %s, owner %u%s)", b->config.name, b->config.image,
                 (unsigned)b->config.owner, b->config.persistent ? ", persistent" : "");
        manager_emit_board_added(b->manager, b);
        if (m)
                (void)sd_bus_reply_method_return(m, "o", b->path);
}

int board_define(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        _cleanup_(image_freep) Image *img = NULL;
        Job *j = NULL;
        int r;

        r = check_verb(b, BOARD_VERB_DEFINE, error);
        if (r < 0)
                return r;
        r = image_load(b->manager->images_dir, b->config.image, &img);
        if (r < 0)
                return manager_image_error(error, b->config.image, r);
        if (!image_models_include(img->models, b->config.model))
                return sd_bus_error_setf(error, PIEMU_ERROR_IMAGE_MODEL,
                                         "Image %s does not boot on %s; it boots on: %s.", b->config.image,
                                         b->config.model, img->models);
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        r = board_domain_xml(b, img, &j->domain_xml);
        if (r >= 0)
                r = submit(b, BOARD_OP_DEFINE, j, define_work, define_done);
        if (r < 0) {
                job_free(j);
                return sd_bus_error_setf(error, PIEMU_ERROR_FAILED, "Cannot create board %s: %s",
                                         b->config.name, strerror(-r));
        }
        b->pending = sd_bus_message_ref(reply_to);
        return 0;
}

static void volume_cleanup_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        j->board->op = BOARD_OP_NONE;
        if (j->r < 0) {
                log_warning("board %s: cannot clean up after it: %s", j->board->config.name,
                            strempty(j->error));
                j->board->needs_cleanup = true;
        } else if (j->board->needs_cleanup) {
                log_info("board %s: cleaned up what an interrupted operation left", j->board->config.name);
                j->board->needs_cleanup = false;
        }
}

/* Cuts the power of a domain piemud does not consider running and drops a throwaway overlay. */
static void cleanup_leftovers(Board *b) {
        Job *j = NULL;
        if (job_new(b, &j) < 0)
                return;
        j->delete_volume = !b->config.persistent;
        if (submit(b, BOARD_OP_CLEANUP, j, cleanup_work, volume_cleanup_done) < 0)
                job_free(j);
}

static void reconcile_state(Board *b, bool active, bool paused, bool crashed, bool tls_lines, bool qtest) {
        if (b->needs_cleanup && (b->state == BOARD_STOPPED || b->state == BOARD_CRASHED)) {
                /* A Start that failed while libvirtd was away may have left a paused domain. */
                cleanup_leftovers(b);
                return;
        }
        if (active) {
                if (b->state == BOARD_STOPPED || b->state == BOARD_CRASHED) {
                        log_info("board %s: started while piemud could not see it; taking over its lines",
                                 b->config.name);
                        b->gpio_qtest = qtest;
                        (void)board_attach(b, paused, !tls_lines);
                }
                return;
        }
        if (b->state == BOARD_RUNNING || (b->state == BOARD_STARTING && b->waiting_for_lines)) {
                log_info("board %s: its domain stopped while libvirtd was away", b->config.name);
                board_domain_stopped(b, crashed);
        }
}

void board_reconcile(Board *b, bool active, bool paused, bool crashed, bool tls_lines, bool qtest) {
        assert(b->op == BOARD_OP_NONE);
        reconcile_state(b, active, paused, crashed, tls_lines, qtest);
        /* Settings changed while libvirtd was away: saved now, or after what reconcile_state started. */
        save_maybe(b);
}

static void refresh_work(void *userdata) {
        Job *j = userdata;
        bool active = false, paused = false;
        j->r = vm_is_active(j->conn, j->domain, &active, &paused, &j->error);
        j->inactive = j->r >= 0 && !active;
}

static void refresh_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;
        int event = b->deferred_event;

        b->op = BOARD_OP_NONE;
        b->deferred_event = 0;
        /* Only what libvirt says now counts: the event may be about an earlier run of the domain. */
        if (j->inactive)
                board_domain_stopped(b, event == BOARD_EVENT_CRASHED);
}

/* A lifecycle event came while an operation ran: now that it is over, ask libvirt how the domain
 * really is and act on that. */
static void refresh_after_event(Board *b) {
        Job *j = NULL;
        if (job_new(b, &j) < 0)
                return;
        if (submit(b, BOARD_OP_REFRESH, j, refresh_work, refresh_done) < 0) {
                job_free(j);
                b->deferred_event = 0;
        }
}

void board_domain_stopped(Board *b, bool crashed) {
        Job *j = NULL;

        if (b->removed)
                return;
        switch (board_fsm_event(b->state, b->op, b->waiting_for_lines)) {
        case BOARD_EVENT_IGNORE:
                return;
        case BOARD_EVENT_DEFER:
                log_debug("board %s: lifecycle event during an operation, applied after it", b->config.name);
                b->deferred_event = crashed ? BOARD_EVENT_CRASHED : BOARD_EVENT_STOPPED;
                return;
        case BOARD_EVENT_START_FAILED:
                b->waiting_for_lines = false;
                start_failed(b, -ECHILD,
                             crashed ? "QEMU crashed before the guest ran"
                                     : "QEMU exited before the guest ran");
                return;
        case BOARD_EVENT_POWERED_OFF:
                break;
        }
        log_info("board %s: the guest %s", b->config.name, crashed ? "crashed" : "powered off");
        if (crashed)
                board_set_last_error(b, "The board's QEMU ended unexpectedly (it crashed or was killed).");
        board_disconnect(b);
        set_state(b, board_fsm_state_after_power_off(crashed));
        if (!b->config.persistent && b->op == BOARD_OP_NONE && job_new(b, &j) >= 0) {
                j->delete_volume = true;
                if (submit(b, BOARD_OP_CLEANUP, j, cleanup_work, volume_cleanup_done) < 0)
                        job_free(j);
        }
}

void board_guest_rebooted(Board *b) {
        /* The shim comes back with a HELLO, and then gets its driven levels again. On the qtest path,
         * QEMU reset the GPIO block: drive them again now. */
        log_info("board %s: the guest rebooted", b->config.name);
        gpio_parser_init(&b->parser);
        board_set_guest_ready(b, false);
        if (b->gpio_qtest)
                board_qtest_apply_driven(b);
}
