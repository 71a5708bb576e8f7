/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agentless GPIO path: QEMU's qtest channel, next to normal TCG emulation.
 *
 * piemud listens on a Unix socket in a directory only it and QEMU can reach (manager_set_qtest_dir)
 * and QEMU dials it (`-qtest unix:PATH,reconnect-ms=…`, board-config.c), like the TLS lines: nobody
 * else can be in QEMU's way, and QEMU dials again after piemud restarts. Through the channel:
 *   - QEMU pushes "IRQ raise|lower N" as the guest drives an output pin (irq_intercept_out);
 *   - SetPin is a writel to GPSET/GPCLR, which sets the level the guest reads;
 *   - GPLEV is read every QTEST_RECONCILE_USEC while the pins are busy and every QTEST_IDLE_USEC
 *     after QTEST_BUSY_USEC of quiet, because QEMU fires no IRQ for a level written while the pin
 *     is an input and then switched to output (measured: GPLEV changes, nothing fires); and after
 *     each SetPin, so that a host-driven input's new level is reported at once. An idle board thus
 *     costs piemud a couple of wakeups a second, not fifty.
 * The qtest socket reads and writes all guest memory: only QEMU's uid (or root) is served. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "log.h"
#include "macro.h"
#include "qtest.h"

/* The model's GPIO block (BCM2835 0x20200000, BCM2836/7 0x3f200000, BCM2711 0xfe200000). */
static uint64_t gpio_base(const Board *b) {
        return b->model->periph_base + PI_MODEL_GPIO_OFFSET;
}

int pins_qtest_socket_path(Board *b, char **ret) {
        char *s;

        if (!b->host->qtest_dir)
                return -EOPNOTSUPP;
        if (asprintf(&s, "%s/%s.sock", b->host->qtest_dir, b->config.name) < 0)
                return -ENOMEM;
        if (strlen(s) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
                free(s);
                return -ENAMETOOLONG;
        }
        *ret = s;
        return 0;
}

static void read_levels(Board *b);

/* piemu's QEMU has input lines: the host drives the pin as an input (an output pin stays the
 * guest's). Stock QEMU has none: GPSET/GPCLR set the level whatever the pin's function. */
static int drive(Board *b, unsigned pin, bool value) {
        if (b->qtest.inputs)
                return qtest_set_irq_in(b->qtest.conn, QTEST_GPIO_QOM_PATH, pin, value, NULL, NULL);
        return qtest_gpio_set(b->qtest.conn, gpio_base(b), pin, value, NULL, NULL);
}
static void qtest_close(Board *b);

/* Stock QEMU fires no IRQ for some changes, so GPLEV is always read. piemu's QEMU fires one for
 * every change of an output, but qtest itself keeps its own idea of each intercepted line and sends
 * an IRQ only when the level differs from it: that idea starts at 0 on every new connection (a
 * pin high when piemud reconnects has its first fall swallowed), and a guest reboot resets the pins
 * without telling qtest (a pin high before has its first rise swallowed). Until each such pin has
 * changed once, GPLEV is read as on stock QEMU. */
static bool wants_polling(const Board *b) {
        return !b->qtest.inputs || (b->qtest.unsynced_high | b->qtest.unsynced_low) != 0;
}

/* Pins out of step with qtest's idea stop being so once they are seen at that idea's level. */
static void sync_seen(Board *b, uint64_t levels) {
        b->qtest.unsynced_high &= levels;
        b->qtest.unsynced_low &= ~levels;
}

/* Something happened on the pins: read GPLEV often for a while, starting within
 * QTEST_RECONCILE_USEC. */
static void mark_busy(Board *b) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), next = 0;

        if (!wants_polling(b))
                return;
        b->qtest.busy_until = now + QTEST_BUSY_USEC;
        if (b->qtest.timer &&
            (sd_event_source_get_time(b->qtest.timer, &next) < 0 || next > now + QTEST_RECONCILE_USEC ||
             !sd_event_source_get_enabled(b->qtest.timer, NULL))) {
                (void)sd_event_source_set_time(b->qtest.timer, now + QTEST_RECONCILE_USEC);
                (void)sd_event_source_set_enabled(b->qtest.timer, SD_EVENT_ONESHOT);
        }
}

static void on_levels(Qtest *q, int r, uint64_t levels, void *userdata) {
        Board *b = userdata;
        uint64_t ts = now_usec(CLOCK_REALTIME);

        b->qtest.reading = false;
        if (r < 0)
                return; /* cancelled with the connection, or the connection failed (on_closed says) */
        if (b->qtest.reread) {
                /* A SetPin came after this read was sent: its level is not in it. */
                b->qtest.reread = false;
                read_levels(b);
        }
        bool first = !b->qtest.levels_known;
        b->qtest.levels_known = true;
        if (first && b->qtest.inputs)
                /* qtest's idea of every line is 0 on this connection; a pin the host drives high is an
                 * input, whose level no output IRQ reports anyway. */
                b->qtest.unsynced_high =
                        levels & ~(b->pins.driven_mask & b->pins.driven_values) & QTEST_GPIO_MASK;
        sync_seen(b, levels);
        if (((levels ^ b->pins.levels) & QTEST_GPIO_MASK) != 0) {
                mark_busy(b);
                for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                        board_pins_changed(b, pin, levels & (UINT64_C(1) << pin), ts);
        }
        /* The first read on this connection (QEMU dialed: a start, or piemud restarted): the wires
         * into and out of this board carry what the pins are now, changed or not. */
        if (first && b->host->hooks->pins_up)
                b->host->hooks->pins_up(b, b->host->userdata);
}

static void read_levels(Board *b) {
        int r;

        if (!b->qtest.conn || b->qtest.reading)
                return;
        r = qtest_gpio_read_levels(b->qtest.conn, gpio_base(b), on_levels, b);
        if (r >= 0)
                b->qtest.reading = true;
}

static int on_reconcile_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Board *b = userdata;
        int r;

        read_levels(b);
        if (!wants_polling(b))
                return sd_event_source_set_enabled(s, SD_EVENT_OFF); /* until mark_busy() wants it */
        r = sd_event_source_set_time_relative(
                s, now_usec(CLOCK_MONOTONIC) < b->qtest.busy_until ? QTEST_RECONCILE_USEC : QTEST_IDLE_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

static void on_irq(Qtest *q, unsigned line, bool level, void *userdata) {
        Board *b = userdata;
        uint64_t ts = now_usec(CLOCK_REALTIME);

        /* QEMU raises or lowers an output line only when its level changes. A lower for a pin piemud
         * knows as low (or a raise for one it knows as high) therefore means the change before it was
         * missed: QEMU's model fires nothing for a level written while the pin is an input that then
         * becomes an output (piemu-gpio-shim set does that, to avoid a glitch on real hardware), and
         * such a pulse can fall between two GPLEV reads. Both changes are reported, in order. When the
         * missed one happened is not known, only that it was after the last read: it carries the
         * moment piemud learned of it. */
        if (b->qtest.levels_known && line < GPIO_PROTO_NPINS &&
            !!(b->pins.levels & (UINT64_C(1) << line)) == level) {
                log_debug("board %s: GPIO %u went %s without an IRQ (seen at the next one)", b->config.name,
                          line, level ? "low" : "high");
                board_pins_changed(b, line, !level, ts);
        }
        board_pins_changed(b, line, level, ts);
        if (line < GPIO_PROTO_NPINS) {
                /* qtest sent it: its idea of the line is the pin's level again */
                b->qtest.unsynced_high &= ~(UINT64_C(1) << line);
                b->qtest.unsynced_low &= ~(UINT64_C(1) << line);
        }
        mark_busy(b);
}

static void on_closed(Qtest *q, int error, void *userdata) {
        Board *b = userdata;

        assert(q == b->qtest.conn);
        if (b->state == BOARD_RUNNING)
                log_info("board %s: qtest channel closed (%s); QEMU reconnects", b->config.name,
                         strerror(-error));
        b->qtest.conn = qtest_free(q);
        b->qtest.reading = false;
        b->qtest.timer = sd_event_source_disable_unref(b->qtest.timer);
}

static void on_intercepted(Qtest *q, int r, void *userdata) {
        Board *b = userdata;

        if (r < 0)
                return; /* the connection is being closed: on_closed logs it */
        if (b->state == BOARD_RUNNING)
                log_info("board %s: GPIO through qtest is up", b->config.name);
        if (b->state == BOARD_STARTING && b->waiting_for_lines)
                board_lines_maybe_ready(b);
}

/* Levels the host drives are the board's, not the connection's: given again to every new
 * connection (piemud restarted) and after the guest rebooted (QEMU reset the GPIO block). */
static void qtest_apply_driven(Board *b) {
        if (!b->qtest.conn)
                return;
        for (unsigned pin = 0; pin < GPIO_PROTO_NPINS; pin++)
                if (b->pins.driven_mask & (UINT64_C(1) << pin))
                        (void)drive(b, pin, b->pins.driven_values & (UINT64_C(1) << pin));
        read_levels(b);
}

static void take_connection(Board *b, int fd) {
        static const QtestCallbacks cb = {.on_irq = on_irq, .on_closed = on_closed};
        _cleanup_close_ int owned = fd;
        int r;

        /* One QEMU per board: a new connection means the old one is gone (QEMU dialed again). */
        b->qtest.conn = qtest_free(b->qtest.conn);
        b->qtest.reading = false;
        b->qtest.timer = sd_event_source_disable_unref(b->qtest.timer);
        b->qtest.levels_known = false;
        b->qtest.unsynced_high = b->qtest.unsynced_low = 0; /* a new connection: qtest's idea is all 0 */
        b->qtest.busy_until = now_usec(CLOCK_MONOTONIC) + QTEST_BUSY_USEC;

        r = qtest_new(b->host->event, owned, &cb, b, &b->qtest.conn);
        if (r < 0) {
                log_warning_errno(r, "board %s: cannot use the qtest connection: %m", b->config.name);
                return;
        }
        TAKE_FD(owned);
        r = qtest_intercept_gpio(b->qtest.conn, QTEST_GPIO_QOM_PATH, on_intercepted, b);
        /* On piemu's QEMU the timer runs only while wants_polling() (from the first read on). */
        if (r >= 0)
                r = sd_event_add_time_relative(b->host->event, &b->qtest.timer, CLOCK_MONOTONIC,
                                               QTEST_RECONCILE_USEC, 1000, on_reconcile_timer, b);
        if (r < 0) {
                log_warning_errno(r, "board %s: cannot set up the qtest channel: %m", b->config.name);
                b->qtest.conn = qtest_free(b->qtest.conn);
                return;
        }
        qtest_apply_driven(b);
}

static int on_listener(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Board *b = userdata;
        struct ucred cred = {};
        socklen_t len = sizeof cred;
        int c;

        c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(-errno, "board %s: accept on the qtest socket: %m",
                                          b->config.name);
                return 0;
        }
        /* The directory lets only QEMU's group in; the kernel's word on the peer is checked anyway,
         * since whoever holds this channel holds the guest's memory. */
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
            (cred.uid != 0 && (b->host->qemu_uid == (uid_t)-1 || cred.uid != b->host->qemu_uid))) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "local uid %u reached the qtest socket of board %s; refused",
                             (unsigned)cred.uid, b->config.name) >= 0) {
                        log_warning("%s", m);
                        board_set_last_error(b, m);
                }
                close(c);
                return 0;
        }
        take_connection(b, c);
        return 0;
}

static int qtest_open(Board *b) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *path = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        mode_t old;
        int r;

        qtest_close(b);
        r = pins_qtest_socket_path(b, &path);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        strcpy(sa.sun_path, path);
        /* A socket left by an earlier piemud (killed): the directory is ours, so is the name. */
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        /* 0660: the directory is set-group-ID to QEMU's group, so QEMU may connect and no one else
         * may even reach the name. umask is per process: the loop thread is the only one binding. */
        old = umask(0117);
        r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
        umask(old);
        if (r < 0)
                return -errno;
        if (listen(fd, 4) < 0) {
                r = -errno;
                (void)unlink(path);
                return r;
        }
        r = sd_event_add_io(b->host->event, &b->qtest.listener, fd, EPOLLIN, on_listener, b);
        if (r < 0) {
                (void)unlink(path);
                return r;
        }
        (void)sd_event_source_set_io_fd_own(b->qtest.listener, true);
        TAKE_FD(fd);
        b->qtest.socket = TAKE_PTR(path);
        return 0;
}

static void qtest_close(Board *b) {
        b->qtest.conn = qtest_free(b->qtest.conn);
        b->qtest.reading = false;
        b->qtest.levels_known = false;
        b->qtest.timer = sd_event_source_disable_unref(b->qtest.timer);
        b->qtest.listener = sd_event_source_disable_unref(b->qtest.listener);
        if (b->qtest.socket) {
                (void)unlink(b->qtest.socket);
                free(b->qtest.socket);
                b->qtest.socket = NULL;
        }
}

static bool qtest_connected(Board *b) {
        return b->qtest.conn && qtest_is_open(b->qtest.conn);
}

static int qtest_set(Board *b, unsigned pin, bool value) {
        int r;

        if (!b->qtest.conn)
                return 0; /* remembered in driven_*: applied when QEMU dials */
        r = drive(b, pin, value);
        if (r < 0)
                return r;
        mark_busy(b);
        /* An input's new level fires no IRQ: read it back now rather than at the next tick (after
         * the read in flight, if any, which was sent before this write). */
        if (b->qtest.reading)
                b->qtest.reread = true;
        else
                read_levels(b);
        return 0;
}

static bool qtest_levels_known(Board *b) {
        return b->qtest.levels_known;
}

static void qtest_guest_rebooted(Board *b) {
        /* QEMU reset the GPIO block without telling qtest: outputs that were high are low now, and
         * qtest still thinks them high (wants_polling). The driven levels go in again now. */
        if (b->qtest.inputs)
                b->qtest.unsynced_low |=
                        b->pins.levels & ~(b->pins.driven_mask & b->pins.driven_values) & QTEST_GPIO_MASK;
        mark_busy(b);
        qtest_apply_driven(b);
}

const PinBackend pins_qtest_backend = {
        .name = "qtest",
        .levels_from_shim = false,
        .open = qtest_open,
        .close = qtest_close,
        .connected = qtest_connected,
        .levels_known = qtest_levels_known,
        .set = qtest_set,
        .apply_driven = qtest_apply_driven,
        .guest_rebooted = qtest_guest_rebooted,
};
