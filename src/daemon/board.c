/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board.h"

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

#include "board-job.h"
#include "config.h"
#include "i2c-devices.h"
#include "log.h"
#include "macro.h"
#include "piemu-errors.h"
#include "vm.h"
#include "xml-util.h"

/* Console bytes leave as SerialOutput coalesced over WATCHERS_COALESCE_USEC anyway: reading
 * them at most once a millisecond adds no delay that matters and spares a wakeup for every
 * few bytes a streaming guest prints. The GPIO line is read at once (SetPin latency). */
#define CONSOLE_BATCH_USEC 1000

/* Every verb starts here: board-fsm.c's table says whether it may run now (libvirtd reachable,
 * no operation in flight, the right state), and which named error refuses it otherwise. */
int board_check_verb(Board *b, BoardVerb verb, sd_bus_error *error) {
        BoardVerdict v = board_fsm_verb(verb, b->state, b->op, b->host->conn != NULL);
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

static void property_changed(Board *b, const char *property) {
        if (b->host->hooks->property_changed)
                b->host->hooks->property_changed(b, property, b->host->userdata);
}

void board_set_last_error(Board *b, const char *msg) {
        char *n = msg ? strdup(msg) : NULL;
        if (msg && !n)
                return;
        free(b->last_error);
        b->last_error = n;
        property_changed(b, "LastError");
}

static void set_state(Board *b, BoardState s) {
        if (b->state == s)
                return;
        log_info("board %s: %s -> %s", b->config.name, board_state_to_string(b->state),
                 board_state_to_string(s));
        b->state = s;
        if (b->host->hooks->state_changed)
                b->host->hooks->state_changed(b, b->host->userdata);
}

void board_set_guest_ready(Board *b, bool ready) {
        if (b->guest_ready == ready)
                return;
        b->guest_ready = ready;
        property_changed(b, "GuestReady");
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

int board_new(BoardHost *host, const BoardConfig *c, Board **ret) {
        Board *b = calloc(1, sizeof *b);
        int r;

        if (!b)
                return -ENOMEM;
        b->n_ref = 1;
        b->host = host;
        b->pins.backend = &pins_shim_backend; /* until a Start or a take-over says which */
        pins_shim_reset(b);
        board_console_init(&b->console, &b->lines.console);
        r = board_config_copy(c, &b->config);
        if (r < 0)
                goto fail;
        /* CreateBoard checked the model; raspi3b for a board made before models. */
        b->model =
                pi_model_find(b->config.model ?: PIEMU_DEFAULT_MODEL) ?: pi_model_find(PIEMU_DEFAULT_MODEL);
        assert(b->model);
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
        board_saver_cancel(b);
        b->waiting_for_lines = false;
        b->lines_timer = sd_event_source_disable_unref(b->lines_timer);
        board_disconnect(b);
}

static void board_disconnect(Board *b) {
        board_console_drop_clients(&b->console);
        /* piemud exits, the board runs on: systemd's store keeps its ports (fdstore.h). */
        board_lines_close(&b->lines, b->host->exiting);
        b->pins.backend->close(b);
        watchers_detach(&b->watchers);
        pins_shim_reset(b);
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
        bool is_console = board_lines_set_up(&b->lines, s, error == 0);

        if (error == 0) {
                /* After piemud or the line restarted, a running shim does not say HELLO again: ask it for
                 * the levels; its answer also tells that it is there. (Not while starting: the guest's
                 * tty would only echo it.) */
                if (!is_console && b->state == BOARD_RUNNING)
                        pins_shim_sync(b);
                if (b->state == BOARD_RUNNING)
                        log_info("board %s: %s line up", b->config.name, is_console ? "serial" : "GPIO");
                board_lines_maybe_ready(b);
                return;
        }
        if (!is_console)
                pins_shim_reset(b);
        if (serial_is_tls(s)) {
                /* QEMU dials again (<reconnect>): nothing to do but wait. */
                if (b->state == BOARD_RUNNING)
                        log_info("board %s: %s line down (%s); QEMU reconnects", b->config.name,
                                 is_console ? "serial" : "GPIO", strerror(-error));
                return;
        }
        /* A plain line of a board from before TLS lines: the socket is gone for good. */
        if (is_console)
                watchers_detach(&b->watchers);
        else
                board_set_guest_ready(b, false);
        board_lines_drop(&b->lines, s);
        if (b->state == BOARD_RUNNING)
                log_info("board %s: %s line closed (%s)", b->config.name, is_console ? "serial" : "GPIO",
                         strerror(-error));
}

static void on_console_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Board *b = userdata;

        board_console_feed(&b->console, data, n);
        watchers_push_output(&b->watchers, data, n);
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
                     s == b->lines.console ? "serial" : "GPIO", b->config.name, serial_port(s), what,
                     extra) < 0)
                m = NULL;
        log_warning("%s", m ?: "A stranger connected to a line");
        board_set_last_error(b, m);
}

/* Which GPIO back end the board has from now on: qtest where piemud has the directory for its
 * sockets, and then with piemu's own QEMU's input lines and interrupts where that QEMU runs it. */
static void set_gpio_back_end(Board *b, bool qtest, bool piemu_qemu) {
        b->pins.backend = qtest ? &pins_qtest_backend : &pins_shim_backend;
        b->qtest.inputs = qtest && piemu_qemu;
}

/* Opens both lines and the GPIO back end's channel: TLS listeners QEMU dials (`fixed`: on the ports in
 * the board's config, for a domain that runs already), or plain clients of QEMU's ports for a board
 * from before TLS lines. */
static int open_lines(Board *b, bool fixed, bool plain) {
        const SerialCallbacks console_cb = {
                .on_data = on_console_data,
                .on_state = on_serial_state,
                .on_intruder = on_serial_intruder,
                .userdata = b,
        };
        const SerialCallbacks gpio_cb = {
                .on_data = pins_shim_on_data,
                .on_state = on_serial_state,
                .on_intruder = on_serial_intruder,
                .userdata = b,
        };
        TlsCreds *creds = NULL;
        int r;

        board_disconnect(b);
        if (!plain) {
                r = board_host_tls(b->host, &creds, NULL);
                if (r < 0)
                        return r;
        }
        r = board_lines_open(&b->lines, b->host->event, creds, b->host->qemu_uid,
                             fixed || plain ? b->config.serial_port : 0,
                             fixed || plain ? b->config.gpio_port : 0, &console_cb, &gpio_cb);
        if (r < 0)
                return r;
        r = b->pins.backend->open(b);
        if (r < 0) {
                log_error_errno(r, "board %s: cannot listen for QEMU's %s channel: %m", b->config.name,
                                b->pins.backend->name);
                board_disconnect(b);
                return r;
        }
        b->config.serial_port = serial_port(b->lines.console);
        b->config.gpio_port = serial_port(b->lines.gpio);
        watchers_attach(&b->watchers, b->lines.console);
        serial_set_batch_usec(b->lines.console, CONSOLE_BATCH_USEC);
        return 0;
}

/* ---- operations ---- */

static void refresh_after_event(Board *b);

/* Every job's end passes here, after its done callback: what the operation kept waiting (a
 * lifecycle event that arrived meanwhile), then the settings changed meanwhile. */
void board_job_finished(Board *b) {
        if (!b->removed && b->op == BOARD_OP_NONE && b->deferred_event)
                refresh_after_event(b);
        board_saver_maybe(b);
}

static int submit(Board *b, BoardOp op, Job *j, worker_work_t work, worker_done_t done) {
        int r;

        assert(b->op == BOARD_OP_NONE); /* one operation per board at a time */
        assert(!b->removed);
        if (!j->conn)
                return -ENOTCONN; /* libvirtd is away: the caller answers Unavailable */
        r = job_submit(j, work, done);
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
        start_failed(
                b, -ETIMEDOUT,
                !b->lines.console_up ? "QEMU did not connect its serial line (is TLS set up? see piemud(8))"
                : !b->lines.gpio_up  ? "QEMU did not connect its GPIO line (is TLS set up? see piemud(8))"
                                    : "QEMU did not connect its qtest channel (see piemud(8), --qtest-dir)");
        return 0;
}

static bool lines_ready(Board *b) {
        return board_lines_all_up(&b->lines) && b->pins.backend->connected(b);
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
        r = sd_event_add_time_relative(b->host->event, &b->lines_timer, CLOCK_MONOTONIC, LINES_WAIT_USEC,
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
                .qtest_socket = b->qtest.socket, /* NULL unless the qtest back end listens */
                .piemu_qemu = b->qtest.inputs,
        };
        return domain_xml_build(&b->config, &paths, isempty(b->uuid) ? NULL : b->uuid, b->host->emulator,
                                ret);
}

int board_start(Board *b, const Image *img, sd_bus_message *reply_to, sd_bus_error *error) {
        _cleanup_free_ char *problem = NULL;
        TlsCreds *creds = NULL;
        Job *j = NULL;
        int r;

        r = board_check_verb(b, BOARD_VERB_START, error);
        if (r < 0)
                return r;
        r = board_host_tls(b->host, &creds, &problem);
        if (r < 0)
                return sd_bus_error_setf(
                        error, PIEMU_ERROR_FAILED,
                        "Cannot start board %s: piemud has no TLS credentials for the serial "
                        "lines (%s). See piemud(8).",
                        b->config.name, strempty(problem));
        /* piemud listens before QEMU exists: the ports are ours from the first moment, and nobody can
         * be in QEMU's way, because QEMU is the one who dials. */
        set_gpio_back_end(b, b->host->qtest_dir != NULL, board_host_piemu_qemu(b->host));
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
        b->pins.levels = 0;
        b->shim.dropped_lines = 0;
        property_changed(b, "GpioPath");
        property_changed(b, "GpioInterrupts");
        set_state(b, BOARD_STARTING);
        return 0;
}

int board_attach(Board *b, const VmDomainInfo *d) {
        bool paused = d->paused, plain_lines = !d->tls_lines;
        int r;

        set_gpio_back_end(b, d->qtest && b->host->qtest_dir, d->piemu_qemu);
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
        if (b->host->loaded)
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

        r = board_check_verb(b, BOARD_VERB_STOP, error);
        if (r < 0)
                return r;
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        j->delete_volume = !b->config.persistent;
        j->inject_failure = b->host->inject_stop_failure;
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
        b->host->hooks->gone(b, b->host->userdata);
}

int board_delete(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        Job *j = NULL;
        int r;

        r = board_check_verb(b, BOARD_VERB_DELETE, error);
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

        /* QEMU's monitor, through libvirtd: whatever the board's operation, libvirtd must answer. */
        if (!b->host->conn)
                return sd_bus_error_setf(error, PIEMU_ERROR_UNAVAILABLE,
                                         "libvirtd is not reachable; piemud is reconnecting. Try again.");
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        r = i2c_qom_set_command(address, property, value, &j->metadata);
        if (r >= 0) {
                j->call = sd_bus_message_ref(call);
                /* Not one of the board's operations (b->op): QEMU's monitor takes it while the board
                 * runs, whatever else libvirt does for it; a board that stops meanwhile gets an error. */
                r = job_submit(j, sensor_work, sensor_done);
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
                b->host->hooks->gone(b, b->host->userdata);
                return;
        }
        memcpy(b->uuid, j->uuid, sizeof b->uuid);
        b->announced = true;
        log_info("board %s: created (image %s, owner %u%s)", b->config.name, b->config.image,
                 (unsigned)b->config.owner, b->config.persistent ? ", persistent" : "");
        b->host->hooks->defined(b, b->host->userdata);
        if (m)
                (void)sd_bus_reply_method_return(m, "o", b->path);
}

int board_define(Board *b, const Image *img, sd_bus_message *reply_to, sd_bus_error *error) {
        Job *j = NULL;
        int r;

        r = board_check_verb(b, BOARD_VERB_DEFINE, error);
        if (r < 0)
                return r;
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

static void reconcile_state(Board *b, const VmDomainInfo *d) {
        if (b->needs_cleanup && (b->state == BOARD_STOPPED || b->state == BOARD_CRASHED)) {
                /* A Start that failed while libvirtd was away may have left a paused domain. */
                cleanup_leftovers(b);
                return;
        }
        if (d->active) {
                if (b->state == BOARD_STOPPED || b->state == BOARD_CRASHED) {
                        log_info("board %s: started while piemud could not see it; taking over its lines",
                                 b->config.name);
                        (void)board_attach(b, d);
                }
                return;
        }
        if (b->state == BOARD_RUNNING || (b->state == BOARD_STARTING && b->waiting_for_lines)) {
                log_info("board %s: its domain stopped while libvirtd was away", b->config.name);
                board_domain_stopped(b, d->crashed);
        }
}

void board_reconcile(Board *b, const VmDomainInfo *d) {
        assert(b->op == BOARD_OP_NONE);
        reconcile_state(b, d);
        /* Settings changed while libvirtd was away: saved now, or after what reconcile_state started. */
        board_saver_maybe(b);
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
        pins_shim_reset(b);
        board_set_guest_ready(b, false);
        b->pins.backend->guest_rebooted(b);
}

int board_open_console(Board *b, int *ret_fd) {
        return board_console_open_client(&b->console, b->host->event, ret_fd);
}

size_t board_recent_serial(Board *b, uint8_t *buf, size_t size) {
        return board_console_recent(&b->console, buf, size);
}

int board_send_serial(Board *b, const void *data, size_t n, sd_bus_error *error) {
        int r;

        if (b->state != BOARD_RUNNING)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        if (!b->lines.console)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "The serial line of board %s is not open; try again.",
                                         b->config.name);
        if (n > SERIAL_WRITE_MAX)
                /* It would never fit, however long the caller waited. */
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "SendSerial takes at most %u bytes at a time (got %zu); send it in "
                                         "parts.",
                                         SERIAL_WRITE_MAX, n);
        r = serial_write(b->lines.console, data, n);
        if (r == -ENOBUFS)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "The console of board %s is not reading; try again later.",
                                         b->config.name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot write to the console of %s: %m",
                                               b->config.name);
        return 0;
}
