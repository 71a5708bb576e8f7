/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board.h"

#include <arpa/inet.h>
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
#include "image.h"
#include "log.h"
#include "macro.h"
#include "piemu-errors.h"
#include "vm.h"

#define START_ATTEMPTS_MAX 5
/* Console bytes leave as SerialOutput coalesced over WATCHERS_COALESCE_USEC anyway: reading
 * them at most once a millisecond adds no delay that matters and spares a wakeup for every
 * few bytes a streaming guest prints. The GPIO line is read at once (SetPin latency). */
#define CONSOLE_BATCH_USEC 1000

static const char *const state_names[_BOARD_STATE_MAX] = {
        [BOARD_STOPPED] = "stopped",   [BOARD_STARTING] = "starting", [BOARD_RUNNING] = "running",
        [BOARD_STOPPING] = "stopping", [BOARD_CRASHED] = "crashed",
};

const char *board_state_to_string(BoardState s) {
        return s >= 0 && s < _BOARD_STATE_MAX ? state_names[s] : "unknown";
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
        bool resume;
        uint16_t console_local, gpio_local;
        int r;
        char *error;
        char uuid[VIR_UUID_STRING_BUFLEN];
} Job;

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        free(j->domain);
        free(j->volume);
        free(j->domain_xml);
        free(j->volume_xml);
        free(j->error);
        free(j);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);

static int job_new(Board *b, Job **ret) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->board = b;
        j->conn = b->manager->conn;
        j->domain = strdup(b->domain);
        j->volume = strdup(b->volume);
        if (!j->domain || !j->volume) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

static void set_last_error(Board *b, const char *msg) {
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
}

static void set_guest_ready(Board *b, bool ready) {
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
        board_free(b);
        return r;
}

/* ---- OpenSerial clients ---- */

typedef struct ConsoleClient {
        Board *board;
        int fd;
        sd_event_source *io;
        struct ConsoleClient *next;
} ConsoleClient;

static void console_client_free(ConsoleClient *c) {
        Board *b = c->board;
        for (ConsoleClient **p = &b->console_clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        free(c);
}

static int on_console_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ConsoleClient *c = userdata;
        uint8_t buf[4096];
        ssize_t n;

        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                console_client_free(c);
                return 0;
        }
        if (!c->board->console_up || serial_write(c->board->console, buf, (size_t)n) < 0)
                console_client_free(c);
        return 0;
}

int board_open_console(Board *b, int *ret_fd) {
        int pair[2];
        ConsoleClient *c;
        int r;

        if (!b->console_up)
                return -ENOTCONN;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
                free(c);
                return negative_errno();
        }
        c->board = b;
        c->fd = pair[0];
        r = sd_event_add_io(b->manager->event, &c->io, c->fd, EPOLLIN, on_console_client, c);
        if (r < 0) {
                safe_close(pair[0]);
                safe_close(pair[1]);
                free(c);
                return r;
        }
        c->next = b->console_clients;
        b->console_clients = c;
        *ret_fd = pair[1];
        return 0;
}

static void console_clients_write(Board *b, const uint8_t *data, size_t n) {
        ConsoleClient *next;
        for (ConsoleClient *c = b->console_clients; c; c = next) {
                next = c->next;
                ssize_t k = send(c->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                /* A terminal that cannot keep up loses output rather than making piemud buffer it. */
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        console_client_free(c);
        }
}

static void board_disconnect(Board *b) {
        while (b->console_clients)
                console_client_free(b->console_clients);
        b->console = serial_free(b->console);
        b->gpio = serial_free(b->gpio);
        b->console_up = b->gpio_up = false;
        watchers_detach(&b->watchers);
        gpio_parser_init(&b->parser);
        set_guest_ready(b, false);
}

Board *board_free(Board *b) {
        if (!b)
                return NULL;
        board_disconnect(b);
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

/* ---- guest output ---- */

static uint64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static void recent_append(Board *b, const uint8_t *data, size_t n) {
        if (n >= BOARD_RECENT_MAX) {
                memcpy(b->recent, data + n - BOARD_RECENT_MAX, BOARD_RECENT_MAX);
                b->recent_start = 0;
                b->recent_len = BOARD_RECENT_MAX;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                size_t pos = (b->recent_start + b->recent_len) % BOARD_RECENT_MAX;
                b->recent[pos] = data[i];
                if (b->recent_len < BOARD_RECENT_MAX)
                        b->recent_len++;
                else
                        b->recent_start = (b->recent_start + 1) % BOARD_RECENT_MAX;
        }
}

size_t board_recent_serial(Board *b, uint8_t *buf, size_t size) {
        size_t n = b->recent_len < size ? b->recent_len : size;
        size_t skip = b->recent_len - n;
        for (size_t i = 0; i < n; i++)
                buf[i] = b->recent[(b->recent_start + skip + i) % BOARD_RECENT_MAX];
        return n;
}

static void on_console_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Board *b = userdata;

        recent_append(b, data, n);
        console_clients_write(b, data, n);
        watchers_push_output(&b->watchers, data, n);
}

/* ---- GPIO ---- */

static void send_gpio_line(Board *b, const char *line, int len) {
        int r;
        if (!b->gpio_up || len <= 0)
                return;
        r = serial_write(b->gpio, line, (size_t)len);
        if (r < 0)
                log_warning_errno(r, "board %s: cannot write to the GPIO line: %m", b->config.name);
}

static void resend_driven(Board *b) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                if (b->driven_mask & (UINT64_C(1) << pin))
                        send_gpio_line(b, line,
                                       gpio_proto_format_set(line, sizeof line, pin,
                                                             b->driven_values & (UINT64_C(1) << pin)));
        send_gpio_line(b, line, gpio_proto_format_sync(line, sizeof line));
}

static void level_changed(Board *b, unsigned pin, bool value, uint64_t ts) {
        uint64_t bit = UINT64_C(1) << pin;
        if (!!(b->levels & bit) == value)
                return;
        b->levels = value ? (b->levels | bit) : (b->levels & ~bit);
        log_debug("board %s: GPIO %u = %d", b->config.name, pin, value);
        (void)watchers_emit(&b->watchers, "GpioChanged", "ubt", pin, (int)value, ts);
}

static int on_gpio_msg(const GpioMsg *msg, void *userdata) {
        Board *b = userdata;
        uint64_t ts = now_realtime_usec();

        switch (msg->type) {
        case GPIO_MSG_HELLO:
                log_info("board %s: guest shim %s is up", b->config.name, msg->version);
                set_guest_ready(b, true);
                resend_driven(b);
                break;
        case GPIO_MSG_GPIO:
                level_changed(b, msg->pin, msg->value, ts);
                break;
        case GPIO_MSG_PINS:
                for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                        level_changed(b, pin, msg->mask & (UINT64_C(1) << pin), ts);
                break;
        default:
                /* SET/SYNC are host-to-guest verbs; a guest sending them is talking nonsense. */
                b->parser.n_invalid++;
                break;
        }
        return 0;
}

static void on_gpio_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Board *b = userdata;
        uint64_t before = b->parser.n_invalid;

        (void)gpio_parser_feed(&b->parser, data, n, on_gpio_msg, b);
        if (b->parser.n_invalid != before) {
                uint64_t added = b->parser.n_invalid - before;
                /* Log the first few and then only powers of two: a guest must not be able to flood the log.
                 */
                uint64_t total = b->dropped_lines + added;
                if (b->dropped_lines < 8 || (total & (total - 1)) == 0 ||
                    (b->dropped_lines >> 10) != (total >> 10))
                        log_warning("board %s: dropped %" PRIu64
                                    " invalid GPIO line(s) from the guest (%" PRIu64 " in all)",
                                    b->config.name, added, total);
                b->dropped_lines = total;
        }
}

int board_set_pin(Board *b, unsigned pin, bool value, sd_bus_error *error) {
        char line[GPIO_PROTO_LINE_MAX + 1];
        uint64_t bit = UINT64_C(1) << pin;

        if (b->state != BOARD_RUNNING || !b->gpio_up)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        b->driven_mask |= bit;
        b->driven_values = value ? (b->driven_values | bit) : (b->driven_values & ~bit);
        send_gpio_line(b, line, gpio_proto_format_set(line, sizeof line, pin, value));
        return 0;
}

/* ---- serial connection set-up ---- */

static void start_failed(Board *b, int r, const char *msg);
static void verify_and_resume(Board *b);

static void on_serial_state(Serial *s, int error, void *userdata) {
        Board *b = userdata;
        bool is_console = s == b->console;

        if (error == 0) {
                if (is_console)
                        b->console_up = true;
                else
                        b->gpio_up = true;
                if (b->state == BOARD_STARTING && b->console_up && b->gpio_up)
                        verify_and_resume(b);
                return;
        }
        /* The serial socket closed: QEMU went away or refused us. */
        if (is_console) {
                watchers_detach(&b->watchers);
                b->console = serial_free(b->console);
                b->console_up = false;
        } else {
                b->gpio = serial_free(b->gpio);
                b->gpio_up = false;
                set_guest_ready(b, false);
        }
        if (b->state == BOARD_STARTING && b->op == BOARD_OP_NONE) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "cannot connect to the %s port: %s", is_console ? "serial" : "GPIO",
                             strerror(-error)) < 0)
                        m = NULL;
                start_failed(b, error, m);
        } else if (b->state == BOARD_RUNNING)
                log_info("board %s: %s line closed (%s)", b->config.name, is_console ? "serial" : "GPIO",
                         strerror(-error));
}

static int connect_serials(Board *b) {
        int r;
        board_disconnect(b);
        r = serial_connect(b->manager->event, b->config.serial_port, on_console_data, on_serial_state, b,
                           &b->console);
        if (r < 0)
                return r;
        watchers_attach(&b->watchers, b->console);
        serial_set_batch_usec(b->console, CONSOLE_BATCH_USEC);
        return serial_connect(b->manager->event, b->config.gpio_port, on_gpio_data, on_serial_state, b,
                              &b->gpio);
}

/* ---- operations ---- */

static int submit(Board *b, BoardOp op, Job *j, worker_work_t work, worker_done_t done) {
        int r = worker_submit(b->manager->workers, work, done, j);
        if (r < 0)
                return r;
        b->op = op;
        return 0;
}

static void cleanup_work(void *userdata) {
        Job *j = userdata;
        _cleanup_free_ char *e2 = NULL;
        int r;

        r = vm_destroy(j->conn, j->domain, &j->error);
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
        if (j->r < 0)
                log_warning("board %s: cleanup after a failed start: %s", b->config.name,
                            strempty(j->error));
        set_state(b, BOARD_STOPPED);
        reply_pending(b, -EIO, PIEMU_ERROR_FAILED, b->last_error);
}

static void start_failed(Board *b, int r, const char *msg) {
        _cleanup_free_ char *m = NULL;
        Job *j = NULL;

        if (asprintf(&m, "Failed to start board %s: %s", b->config.name, msg ?: strerror(-r)) < 0)
                m = NULL;
        log_error("%s", m ?: "Failed to start board");
        set_last_error(b, m);
        board_disconnect(b);
        /* Never leave a half-started domain behind: cut its power and drop a throwaway overlay. */
        if (job_new(b, &j) >= 0) {
                j->delete_volume = !b->config.persistent;
                if (submit(b, BOARD_OP_CLEANUP, j, cleanup_work, start_failed_done) >= 0)
                        return;
                job_free(j);
        }
        set_state(b, BOARD_STOPPED);
        reply_pending(b, r, PIEMU_ERROR_FAILED, b->last_error);
}

/* QEMU accepts our serial connections from its main loop, some time after the kernel completed them
 * (with several guests starting at once, tens of milliseconds later). Until then query-chardev shows
 * the chardev as disconnected: ask again rather than mistake that for a stranger. */
#define PEER_WAIT_USEC  (5 * UINT64_C(1000000))
#define PEER_RETRY_USEC (10 * UINT64_C(1000))

static int query_peers(Job *j, uint16_t *ret0, uint16_t *ret1) {
        uint64_t waited = 0;
        int r;

        for (;;) {
                _cleanup_free_ char *json = NULL;

                r = vm_query_chardev(j->conn, j->domain, &json, &j->error);
                if (r < 0)
                        return r;
                r = chardev_peer_port(json, "charserial0", ret0);
                if (r >= 0)
                        r = chardev_peer_port(json, "charserial1", ret1);
                if (r < 0) {
                        if (asprintf(&j->error, "cannot read QEMU's serial peers") < 0)
                                j->error = NULL;
                        return r;
                }
                if ((*ret0 != 0 && *ret1 != 0) || waited >= PEER_WAIT_USEC)
                        return 0;
                (void)nanosleep(&(struct timespec){.tv_nsec = PEER_RETRY_USEC * 1000}, NULL);
                waited += PEER_RETRY_USEC;
        }
}

static void verify_work(void *userdata) {
        Job *j = userdata;
        uint16_t peer0 = 0, peer1 = 0;
        int r;

        r = query_peers(j, &peer0, &peer1);
        if (r >= 0 && (peer0 == 0 || peer1 == 0)) {
                r = -ETIMEDOUT;
                if (asprintf(&j->error, "QEMU did not accept piemud's connection to its %s port",
                             peer0 == 0 ? "serial" : "GPIO") < 0)
                        j->error = NULL;
        } else if (r >= 0 && (peer0 != j->console_local || peer1 != j->gpio_local)) {
                /* Someone else reached a console port before us: never hand the guest to them. */
                r = -EPERM;
                if (asprintf(&j->error,
                             "a serial port was taken by another local process (QEMU peers %u/%u, "
                             "piemud %u/%u)",
                             peer0, peer1, j->console_local, j->gpio_local) < 0)
                        j->error = NULL;
        }
        if (r >= 0 && j->resume)
                r = vm_resume(j->conn, j->domain, &j->error);
        j->r = r;
}

static void verify_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->op = BOARD_OP_NONE;
        if (j->r < 0) {
                start_failed(b, j->r, j->error);
                return;
        }
        set_last_error(b, NULL);
        set_state(b, BOARD_RUNNING);
        log_info("board %s: running (serial 127.0.0.1:%u, gpio 127.0.0.1:%u)", b->config.name,
                 b->config.serial_port, b->config.gpio_port);
        reply_pending(b, 0, NULL, NULL);
}

static void verify_and_resume(Board *b) {
        Job *j = NULL;
        int r = job_new(b, &j);
        if (r >= 0) {
                j->console_local = serial_local_port(b->console);
                j->gpio_local = serial_local_port(b->gpio);
                /* libvirt refuses to resume a running domain, so only a fresh or paused one is resumed. */
                j->resume = !b->attach_only || b->attach_paused;
                r = submit(b, BOARD_OP_START, j, verify_work, verify_done);
                if (r >= 0)
                        return;
                job_free(j);
        }
        start_failed(b, r, NULL);
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

static int start_attempt(Board *b);

static void start_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;
        int r;

        b->op = BOARD_OP_NONE;
        if (j->r == -EADDRINUSE && b->start_attempt < START_ATTEMPTS_MAX) {
                /* Somebody bound our port between our check and QEMU's bind: pick others. */
                log_info("board %s: serial port taken, retrying with new ports", b->config.name);
                r = start_attempt(b);
                if (r >= 0)
                        return;
                start_failed(b, r, NULL);
                return;
        }
        if (j->r < 0) {
                /* Nothing is running; only a fresh overlay may need to go. */
                _cleanup_free_ char *m = TAKE_PTR(j->error);
                start_failed(b, j->r, m);
                return;
        }
        r = connect_serials(b);
        if (r < 0)
                start_failed(b, r, "cannot connect to the serial ports");
}

/* Picks two free loopback ports no other board uses. The kernel's choice for
 * port 0 is free right now; QEMU binds it a moment later, and a lost race is
 * retried with new ports. */
static int pick_port(Manager *m, const Board *b, uint16_t avoid, uint16_t *ret) {
        for (int tries = 0; tries < 32; tries++) {
                struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                socklen_t l = sizeof a;
                _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
                    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
                        return negative_errno();
                uint16_t p = ntohs(a.sin_port);
                if (p != avoid && !manager_port_in_use(m, p, b)) {
                        *ret = p;
                        return 0;
                }
        }
        return -EADDRNOTAVAIL;
}

static int board_domain_xml(Board *b, const Image *img, char **ret) {
        ImagePaths paths = {
                .kernel = img->kernel,
                .dtb = img->dtb,
                .initrd = img->initrd,
                .sd = img->sd,
                .sd_format = img->sd_format,
                .cmdline = img->cmdline,
        };
        return domain_xml_build(&b->config, &paths, isempty(b->uuid) ? NULL : b->uuid, b->manager->emulator,
                                ret);
}

static int start_attempt(Board *b) {
        _cleanup_(image_freep) Image *img = NULL;
        Job *j = NULL;
        int r;

        b->start_attempt++;
        r = image_load(b->manager->images_dir, b->config.image, &img);
        if (r < 0)
                return r;
        r = pick_port(b->manager, b, 0, &b->config.serial_port);
        if (r < 0)
                return r;
        r = pick_port(b->manager, b, b->config.serial_port, &b->config.gpio_port);
        if (r < 0)
                return r;
        r = job_new(b, &j);
        if (r < 0)
                return r;
        r = board_domain_xml(b, img, &j->domain_xml);
        if (r >= 0)
                r = volume_xml_build(b->volume, sd_capacity_for(img->sd_size), img->sd, img->sd_format,
                                     &j->volume_xml);
        if (r < 0) {
                job_free(j);
                return r;
        }
        j->fresh_volume = !b->config.persistent;
        r = submit(b, BOARD_OP_START, j, start_work, start_done);
        if (r < 0)
                job_free(j);
        return r;
}

int board_start(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        int r;

        if (b->op != BOARD_OP_NONE || b->state == BOARD_STOPPING)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY, "Board %s is busy (%s).", b->config.name,
                                         board_state_to_string(b->state));
        if (b->state == BOARD_RUNNING || b->state == BOARD_STARTING)
                return sd_bus_error_setf(error, PIEMU_ERROR_ALREADY_RUNNING, "Board %s is already %s.",
                                         b->config.name, board_state_to_string(b->state));
        b->start_attempt = 0;
        b->attach_only = false;
        r = start_attempt(b);
        if (r == -ENOENT || r == -EINVAL)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_IMAGE,
                                         "Image %s of board %s is missing or broken in the catalog.",
                                         b->config.image, b->config.name);
        if (r < 0)
                return sd_bus_error_setf(error, PIEMU_ERROR_FAILED, "Cannot start board %s: %s",
                                         b->config.name, strerror(-r));
        b->pending = sd_bus_message_ref(reply_to);
        b->levels = 0;
        b->dropped_lines = 0;
        set_state(b, BOARD_STARTING);
        return 0;
}

int board_attach(Board *b, bool paused) {
        int r;

        set_state(b, BOARD_STARTING);
        b->attach_only = true;
        b->attach_paused = paused;
        r = connect_serials(b);
        if (r < 0) {
                start_failed(b, r, "cannot connect to the serial ports");
                return r;
        }
        /* verify_and_resume() runs once both lines are connected. */
        return 0;
}

static void stop_done(void *userdata) {
        _cleanup_(job_freep) Job *j = userdata;
        Board *b = j->board;

        b->op = BOARD_OP_NONE;
        board_disconnect(b);
        if (j->r < 0) {
                set_last_error(b, j->error);
                log_error("board %s: stop failed: %s", b->config.name, strempty(j->error));
                /* The domain may still be up; state follows libvirt's next lifecycle event. */
                set_state(b, BOARD_RUNNING);
                reply_pending(b, j->r, PIEMU_ERROR_FAILED, j->error);
                return;
        }
        set_state(b, BOARD_STOPPED);
        reply_pending(b, 0, NULL, NULL);
}

int board_stop(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        Job *j = NULL;
        int r;

        if (b->op != BOARD_OP_NONE)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY, "Board %s is busy (%s).", b->config.name,
                                         board_state_to_string(b->state));
        if (b->state != BOARD_RUNNING)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        r = job_new(b, &j);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        j->delete_volume = !b->config.persistent;
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
                set_last_error(b, j->error);
                log_error("board %s: delete failed: %s", b->config.name, strempty(j->error));
                board_disconnect(b);
                set_state(b, BOARD_STOPPED);
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

        if (b->op != BOARD_OP_NONE || b->state == BOARD_STARTING || b->state == BOARD_STOPPING)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY, "Board %s is busy (%s).", b->config.name,
                                         board_state_to_string(b->state));
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
        log_info("board %s: created (image %s, owner %u%s)", b->config.name, b->config.image,
                 (unsigned)b->config.owner, b->config.persistent ? ", persistent" : "");
        (void)sd_bus_emit_object_added(b->manager->bus, b->path);
        (void)sd_bus_emit_signal(b->manager->bus, "/org/piemu", "org.piemu.Manager", "BoardAdded", "so",
                                 b->config.name, b->path);
        if (m)
                (void)sd_bus_reply_method_return(m, "o", b->path);
}

int board_define(Board *b, sd_bus_message *reply_to, sd_bus_error *error) {
        _cleanup_(image_freep) Image *img = NULL;
        Job *j = NULL;
        int r;

        r = image_load(b->manager->images_dir, b->config.image, &img);
        if (r < 0)
                return sd_bus_error_setf(error, PIEMU_ERROR_NO_SUCH_IMAGE, "No such image: %s",
                                         b->config.image);
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
        if (j->r < 0)
                log_warning("board %s: cannot discard its overlay: %s", j->board->config.name,
                            strempty(j->error));
}

void board_domain_stopped(Board *b, bool crashed) {
        Job *j = NULL;

        if (b->state != BOARD_RUNNING)
                return; /* our own Stop/Delete/failed start, handled where it was started */
        log_info("board %s: the guest %s", b->config.name, crashed ? "crashed" : "powered off");
        board_disconnect(b);
        set_state(b, crashed ? BOARD_CRASHED : BOARD_STOPPED);
        if (!b->config.persistent && b->op == BOARD_OP_NONE && job_new(b, &j) >= 0) {
                j->delete_volume = true;
                if (submit(b, BOARD_OP_CLEANUP, j, cleanup_work, volume_cleanup_done) < 0)
                        job_free(j);
        }
}

void board_guest_rebooted(Board *b) {
        /* The shim comes back with a HELLO, and then gets its driven levels again. */
        log_info("board %s: the guest rebooted", b->config.name);
        gpio_parser_init(&b->parser);
        set_guest_ready(b, false);
}

int board_send_serial(Board *b, const void *data, size_t n, sd_bus_error *error) {
        int r;
        if (b->state != BOARD_RUNNING || !b->console_up)
                return sd_bus_error_setf(error, PIEMU_ERROR_NOT_RUNNING, "Board %s is not running.",
                                         b->config.name);
        r = serial_write(b->console, data, n);
        if (r == -ENOBUFS)
                return sd_bus_error_setf(error, PIEMU_ERROR_BUSY,
                                         "The console of board %s is not reading; try again later.",
                                         b->config.name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot write to the console of %s: %m",
                                               b->config.name);
        return 0;
}
