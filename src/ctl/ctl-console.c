/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* "piemuctl console": an interactive session on a board's serial console over the socket OpenSerial()
 * hands us, like "machinectl login". The terminal goes into raw mode so that every key (Ctrl-C, Ctrl-Z,
 * arrows) reaches the guest; pressing ^] three times within a second leaves. The saved terminal modes
 * are restored on every way out: normal return, exit(), and SIGINT/SIGTERM/SIGHUP/SIGQUIT, which are
 * taken through a signalfd so that the restore happens in ordinary code, not in a handler.
 *
 * A connection that cannot carry file descriptors (-H: ssh and systemd-stdio-bridge) gets no socket.
 * There the session goes over the bus itself: Watch() for the SerialOutput signals, SendSerial() for
 * the keys, one call in flight at a time so that keys arrive in order and a slow board holds us back.
 * Same terminal handling, same escape, same ways out.
 *
 * "piemuctl send" is here too: one line typed on the same console, through SendSerial(). */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

#define ESCAPE_CHAR   0x1d /* ^] */
#define ESCAPE_COUNT  3
#define ESCAPE_WINDOW USEC_PER_SEC
#define TO_BOARD_SIZE 4096
#define BUSY_RETRY    (100 * USEC_PER_MSEC) /* SendSerial said Busy: the line is not reading yet */

static struct termios saved_termios;
static bool termios_saved = false;

static void restore_terminal(void) {
        if (!termios_saved)
                return;
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        termios_saved = false;
}

static int set_raw_terminal(void) {
        static bool atexit_registered = false;
        struct termios raw;

        if (!isatty(STDIN_FILENO))
                return 0; /* piped input: nothing to restore, bytes pass through as they are */

        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return negative_errno();

        if (!atexit_registered) {
                if (atexit(restore_terminal) != 0)
                        return -ENOMEM;
                atexit_registered = true;
        }

        raw = saved_termios;
        cfmakeraw(&raw);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        termios_saved = true;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
                int r = negative_errno();
                restore_terminal();
                return r;
        }
        return 0;
}

static int write_all(int fd, const char *buf, size_t size) {
        while (size > 0) {
                ssize_t n = write(fd, buf, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                /* Someone left the descriptor non-blocking: wait instead of spinning. */
                                struct pollfd p = {.fd = fd, .events = POLLOUT};
                                (void)poll(&p, 1, -1);
                                continue;
                        }
                        return negative_errno();
                }
                buf += n;
                size -= (size_t)n;
        }
        return 0;
}

typedef enum ConsoleEnd {
        END_ESCAPE,
        END_STDIN_EOF,
        END_REMOTE,
        END_SIGNAL,
        END_ERROR,
        END_BUS_ERROR, /* bridge mode: a call failed; the error is in bus_error */
} ConsoleEnd;

typedef struct Console {
        int sock; /* the OpenSerial() socket, or -EBADF in bridge mode */
        int signal_fd;
        char to_board[TO_BOARD_SIZE];
        size_t to_board_len;
        unsigned n_escape;     /* ^] pressed and held back so far */
        uint64_t escape_first; /* CLOCK_MONOTONIC of the first of them */
        int error;             /* for END_ERROR: negative errno */
        int signo;             /* for END_SIGNAL */

        /* bridge mode */
        sd_bus *bus;
        const char *name;
        const char *path;
        char *owner;       /* piemud's unique name: signals from anyone else are ignored */
        sd_bus_slot *send; /* the SendSerial() in flight, carrying the first in_flight bytes */
        size_t in_flight;
        uint64_t retry_usec; /* CLOCK_MONOTONIC: send again from then on (0: now) */
        bool ended;          /* a bus callback decided how the session ends */
        ConsoleEnd end;
        sd_bus_error bus_error;
        const char *action; /* for END_BUS_ERROR */
} Console;

static void console_free(Console *c) {
        if (!c)
                return;
        sd_bus_slot_unref(c->send);
        sd_bus_error_free(&c->bus_error);
        free(c->owner);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Console *, console_free);

/* ^] is held back while it might be part of the escape; if the sequence is not completed, the held-back
 * bytes are forwarded after all, so programs in the guest that use ^] still get it. */
static void flush_escapes(Console *c) {
        for (; c->n_escape > 0; c->n_escape--)
                c->to_board[c->to_board_len++] = ESCAPE_CHAR;
}

static bool feed_input(Console *c, const char *buf, size_t n, uint64_t now) {
        for (size_t i = 0; i < n; i++) {
                if ((uint8_t)buf[i] != ESCAPE_CHAR) {
                        flush_escapes(c);
                        c->to_board[c->to_board_len++] = buf[i];
                        continue;
                }
                if (c->n_escape == 0 || now - c->escape_first >= ESCAPE_WINDOW) {
                        flush_escapes(c);
                        c->escape_first = now;
                }
                if (++c->n_escape >= ESCAPE_COUNT) {
                        c->n_escape = 0; /* the escape itself is never sent */
                        return true;
                }
        }
        return false;
}

/* Sends what is queued for the board without blocking. Returns false if the console is gone. */
static bool send_pending(Console *c) {
        while (c->to_board_len > 0) {
                ssize_t n = send(c->sock, c->to_board, c->to_board_len, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return true;
                        return false;
                }
                memmove(c->to_board, c->to_board + n, c->to_board_len - (size_t)n);
                c->to_board_len -= (size_t)n;
        }
        return true;
}

/* Best effort before leaving: what the user typed right before the escape or EOF should arrive. */
static void drain_pending(Console *c) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC;

        while (c->to_board_len > 0 && send_pending(c)) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p = {.fd = c->sock, .events = POLLOUT};

                if (now >= deadline)
                        break;
                (void)poll(&p, 1, (int)((deadline - now) / USEC_PER_MSEC) + 1);
        }
}

/* Both loops (the socket's and the bus's) wait the same way: one poll() of stdin, their own
 * descriptor and the signal fd (p[2]), then a signal ends the session and held-back ^] whose window
 * ran out go to the guest after all. Returns CONSOLE_GO_ON, CONSOLE_AGAIN (interrupted: poll again)
 * or how the session ends. */
#define CONSOLE_GO_ON (-1)
#define CONSOLE_AGAIN (-2)
static int console_poll(Console *c, struct pollfd p[3], int timeout, uint64_t *ret_now) {
        if (poll(p, 3, timeout) < 0) {
                if (errno == EINTR)
                        return CONSOLE_AGAIN;
                c->error = negative_errno();
                return END_ERROR;
        }
        *ret_now = now_usec(CLOCK_MONOTONIC);

        if (p[2].revents & POLLIN) {
                struct signalfd_siginfo si;

                if (read(c->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                        c->signo = (int)si.ssi_signo;
                        return END_SIGNAL;
                }
        }
        if (c->n_escape > 0 && *ret_now - c->escape_first >= ESCAPE_WINDOW)
                flush_escapes(c);
        return CONSOLE_GO_ON;
}

static ConsoleEnd forward(Console *c) {
        assert(c->sock >= 0);

        bool stdin_eof = false;

        for (;;) {
                /* At most ESCAPE_COUNT-1 held-back bytes get flushed per read: keep room for them. */
                size_t room = sizeof(c->to_board) - c->to_board_len;
                bool can_read = !stdin_eof && room > ESCAPE_COUNT;
                struct pollfd p[3] = {
                        {.fd = can_read ? STDIN_FILENO : -1, .events = POLLIN},
                        {.fd = c->sock, .events = POLLIN | (c->to_board_len > 0 ? POLLOUT : 0)},
                        {.fd = c->signal_fd, .events = POLLIN},
                };
                int timeout = -1;
                uint64_t now;

                if (stdin_eof && c->to_board_len == 0)
                        return END_STDIN_EOF;

                if (c->n_escape > 0) {
                        uint64_t deadline = c->escape_first + ESCAPE_WINDOW;
                        now = now_usec(CLOCK_MONOTONIC);
                        timeout = deadline > now
                                          ? (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC)
                                          : 0;
                }

                int polled = console_poll(c, p, timeout, &now);
                if (polled == CONSOLE_AGAIN)
                        continue;
                if (polled != CONSOLE_GO_ON)
                        return (ConsoleEnd)polled;

                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        char buf[16384];
                        ssize_t n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT);

                        if (n == 0)
                                return END_REMOTE;
                        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                if (errno == ECONNRESET)
                                        return END_REMOTE;
                                c->error = negative_errno();
                                return END_ERROR;
                        }
                        if (n > 0) {
                                int r = write_all(STDOUT_FILENO, buf, (size_t)n);
                                if (r < 0) {
                                        c->error = r;
                                        return END_ERROR;
                                }
                        }
                }

                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        char buf[1024];
                        size_t max = room - (ESCAPE_COUNT - 1);
                        ssize_t n = read(STDIN_FILENO, buf, max < sizeof(buf) ? max : sizeof(buf));

                        if (n == 0 || (n < 0 && errno == EIO)) { /* EIO: our terminal hung up */
                                stdin_eof = true;
                                flush_escapes(c);
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                c->error = negative_errno();
                                return END_ERROR;
                        } else if (n > 0 && feed_input(c, buf, (size_t)n, now)) {
                                drain_pending(c);
                                return END_ESCAPE;
                        }
                }

                if (!send_pending(c))
                        return END_REMOTE;
        }
}

/* ---- bridge mode: the console over the bus ---- */

static void end_session(Console *c, ConsoleEnd end) {
        if (c->ended)
                return;
        c->ended = true;
        c->end = end;
}

static int on_serial_output(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Console *c = userdata;
        const void *data;
        size_t size;
        int r;

        if (sd_bus_message_read_array(m, 'y', &data, &size) < 0)
                return 0; /* malformed: ignore rather than end the session */
        r = write_all(STDOUT_FILENO, data, size);
        if (r < 0) {
                c->error = r;
                end_session(c, END_ERROR);
        }
        return 0;
}

/* The socket of the other mode closes when the board stops, is deleted, or piemud goes away: here
 * each of those is a signal. run_console() then finds out which it was, as for the socket. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Console *c = userdata;
        const char *iface, *key, *state;

        if (sd_bus_message_read(m, "s", &iface) < 0 || !streq(iface, PIEMU_BOARD_IFACE))
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &key) < 0)
                        return 0;
                if (streq(key, "State")) {
                        if (sd_bus_message_read(m, "v", "s", &state) < 0)
                                return 0;
                        if (!streq(state, "running"))
                                end_session(c, END_REMOTE);
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int on_board_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Console *c = userdata;
        const char *name, *path;

        if (sd_bus_message_read(m, "so", &name, &path) >= 0 && streq(name, c->name))
                end_session(c, END_REMOTE);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Console *c = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 &&
            streq(name, PIEMU_BUS_NAME) && !streq(new_owner, c->owner))
                end_session(c, END_REMOTE);
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Console *c = userdata;

        if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected")) {
                c->action = "type on the serial console";
                (void)sd_bus_error_set_const(&c->bus_error, "org.freedesktop.DBus.Error.Disconnected",
                                             "the connection was closed");
                end_session(c, END_BUS_ERROR);
        }
        return 0;
}

static int send_next(Console *c);

static int on_send_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Console *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        c->send = sd_bus_slot_unref(c->send);
        if (!e) {
                memmove(c->to_board, c->to_board + c->in_flight, c->to_board_len - c->in_flight);
                c->to_board_len -= c->in_flight;
                c->in_flight = 0;
                return 0;
        }
        c->in_flight = 0;
        if (sd_bus_error_has_name(e, "org.piemu.Error.Busy")) {
                /* The line is not reading (yet): the keys wait, as they would in the socket. */
                c->retry_usec = now_usec(CLOCK_MONOTONIC) + BUSY_RETRY;
                return 0;
        }
        if (sd_bus_error_has_name(e, "org.piemu.Error.NotRunning")) {
                end_session(c, END_REMOTE);
                return 0;
        }
        c->action = "type on the serial console";
        (void)sd_bus_error_copy(&c->bus_error, e);
        end_session(c, END_BUS_ERROR);
        return 0;
}

/* Starts a SendSerial() of everything queued, unless one is in flight or a retry is pending. */
static int send_next(Console *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (c->send || c->to_board_len == 0 || now_usec(CLOCK_MONOTONIC) < c->retry_usec)
                return 0;
        c->retry_usec = 0;

        r = ctl_new_call(c->bus, &m, c->path, PIEMU_BOARD_IFACE, "SendSerial");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', c->to_board, c->to_board_len);
        if (r >= 0)
                r = sd_bus_call_async(c->bus, &c->send, m, on_send_reply, c, ctl_call_timeout(0));
        if (r < 0)
                return r;
        c->in_flight = c->to_board_len;
        return 0;
}

/* Runs sd-bus until it has nothing to do. Returns false once the session is over. */
static bool process_bus(Console *c) {
        int r;

        while (!c->ended) {
                r = sd_bus_process(c->bus, NULL);
                if (r < 0) {
                        c->action = "type on the serial console";
                        (void)sd_bus_error_set_errno(&c->bus_error, r);
                        end_session(c, END_BUS_ERROR);
                        break;
                }
                if (r == 0)
                        break;
        }
        if (!c->ended && send_next(c) < 0) {
                c->error = -ENOMEM;
                end_session(c, END_ERROR);
        }
        return !c->ended;
}

/* Milliseconds for poll() until the first of sd-bus's timeout, the Busy retry and the end of the
 * escape window; -1 for none. */
static int next_timeout(Console *c) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), until = UINT64_MAX, t;

        if (sd_bus_get_timeout(c->bus, &t) >= 0 && t < until)
                until = t;
        if (c->retry_usec > 0 && c->retry_usec < until)
                until = c->retry_usec;
        if (c->n_escape > 0 && c->escape_first + ESCAPE_WINDOW < until)
                until = c->escape_first + ESCAPE_WINDOW;
        if (until == UINT64_MAX)
                return -1;
        if (until <= now)
                return 0;
        t = (until - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return t > INT32_MAX ? INT32_MAX : (int)t;
}

/* Waits until what was typed has been delivered, for at most a second (as drain_pending()). */
static void drain_bus(Console *c) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC;

        while (process_bus(c) && (c->to_board_len > 0 || c->send)) {
                struct pollfd p = {.fd = sd_bus_get_fd(c->bus), .events = (short)sd_bus_get_events(c->bus)};
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int timeout = next_timeout(c);

                if (now >= deadline)
                        break;
                if (timeout < 0 || (uint64_t)timeout > (deadline - now) / USEC_PER_MSEC + 1)
                        timeout = (int)((deadline - now) / USEC_PER_MSEC) + 1;
                (void)poll(&p, 1, timeout);
        }
}

static ConsoleEnd forward_bus(Console *c) {
        bool stdin_eof = false;

        for (;;) {
                size_t room = sizeof(c->to_board) - c->to_board_len;
                bool can_read = !stdin_eof && room > ESCAPE_COUNT;
                struct pollfd p[3];
                int events, timeout;
                uint64_t now;

                if (!process_bus(c))
                        return c->end;
                if (stdin_eof && c->to_board_len == 0 && !c->send)
                        return END_STDIN_EOF;

                events = sd_bus_get_events(c->bus);
                if (events < 0) {
                        c->action = "type on the serial console";
                        (void)sd_bus_error_set_errno(&c->bus_error, events);
                        return END_BUS_ERROR;
                }
                p[0] = (struct pollfd){.fd = can_read ? STDIN_FILENO : -1, .events = POLLIN};
                p[1] = (struct pollfd){.fd = sd_bus_get_fd(c->bus), .events = (short)events};
                p[2] = (struct pollfd){.fd = c->signal_fd, .events = POLLIN};
                timeout = next_timeout(c);

                int polled = console_poll(c, p, timeout, &now);
                if (polled == CONSOLE_AGAIN)
                        continue;
                if (polled != CONSOLE_GO_ON)
                        return (ConsoleEnd)polled;

                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        char buf[1024];
                        size_t max = room - (ESCAPE_COUNT - 1);
                        ssize_t n = read(STDIN_FILENO, buf, max < sizeof(buf) ? max : sizeof(buf));

                        if (n == 0 || (n < 0 && errno == EIO)) {
                                stdin_eof = true;
                                flush_escapes(c);
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                c->error = negative_errno();
                                return END_ERROR;
                        } else if (n > 0 && feed_input(c, buf, (size_t)n, now)) {
                                drain_bus(c);
                                return END_ESCAPE;
                        }
                }
        }
}

static int add_match(Console *c, const char *path, const char *iface, const char *member, const char *extra,
                     sd_bus_message_handler_t handler) {
        _cleanup_free_ char *rule = NULL;

        /* sender= is piemud's unique name: nobody else can type into our terminal. */
        if (asprintf(&rule, "type='signal',sender='%s',path='%s',interface='%s',member='%s'%s", c->owner,
                     path, iface, member, strempty(extra)) < 0)
                return -ENOMEM;
        return sd_bus_add_match(c->bus, NULL, rule, handler, c);
}

/* Subscribes to what the socket would have told us, then Watch(). Returns an exit status. */
static int setup_bridge(Console *c) {
        _cleanup_free_ char *state = NULL;
        int r;

        r = ctl_daemon_owner(c->bus, &c->owner);
        if (r != CTL_EXIT_OK)
                return r;

        /* Before Watch(), so that no output falls in between. */
        r = sd_bus_add_filter(c->bus, NULL, on_disconnected, c);
        if (r >= 0)
                r = sd_bus_add_match(
                        c->bus, NULL,
                        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" PIEMU_BUS_NAME
                        "'",
                        on_name_owner_changed, c);
        if (r >= 0)
                r = add_match(c, c->path, PIEMU_BOARD_IFACE, "SerialOutput", NULL, on_serial_output);
        if (r >= 0)
                r = add_match(c, c->path, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                              ",arg0='" PIEMU_BOARD_IFACE "'", on_properties_changed);
        if (r >= 0)
                r = add_match(c, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "BoardRemoved", NULL,
                              on_board_removed);
        if (r < 0)
                return ctl_error(NULL, r, "subscribe to the console output", c->name, NULL);

        r = ctl_call(c->bus, c->path, PIEMU_BOARD_IFACE, "Watch", ctl_call_timeout(0), true, NULL,
                     "open the serial console", c->name, NULL, NULL);
        if (r != CTL_EXIT_OK)
                return r;

        /* OpenSerial() refuses a board that is not running; Watch() does not. Say what it would say. */
        r = sd_bus_get_property_string(c->bus, PIEMU_BUS_NAME, c->path, PIEMU_BOARD_IFACE, "State", NULL,
                                       &state);
        if (r >= 0 && !streq(state, "running")) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                (void)sd_bus_error_set_const(&e, "org.piemu.Error.NotRunning", "not running");
                return ctl_error(&e, -EIO, "open the serial console", c->name, NULL);
        }
        return CTL_EXIT_OK;
}

/* Tells piemud to stop sending: the bridge's connection may outlive us for a moment. Best effort. */
static void unwatch(Console *c) {
        if (!c->owner)
                return;
        (void)sd_bus_call_method(c->bus, PIEMU_BUS_NAME, c->path, PIEMU_BOARD_IFACE, "Unwatch", NULL, NULL,
                                 NULL);
}

static int run_console(sd_bus *bus, const char *name, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int sock = -EBADF, signal_fd = -EBADF;
        _cleanup_(console_freep) Console *c = NULL;
        sigset_t mask;
        ConsoleEnd end;
        int fd, r;

        c = calloc(1, sizeof(Console));
        if (!c) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        c->sock = -EBADF;
        c->bus = bus;
        c->name = name;
        c->path = path;
        c->bus_error = SD_BUS_ERROR_NULL;

        if (sd_bus_can_send(bus, SD_BUS_TYPE_UNIX_FD) > 0) {
                r = ctl_call(bus, path, PIEMU_BOARD_IFACE, "OpenSerial", ctl_call_timeout(0), true, &reply,
                             "open the serial console", name, NULL, NULL);
                if (r != CTL_EXIT_OK)
                        return r;

                r = sd_bus_message_read(reply, "h", &fd);
                if (r < 0)
                        return ctl_error(NULL, r, "read piemud's reply", name, NULL);
                /* The descriptor belongs to the message; keep our own copy. */
                sock = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (sock < 0)
                        return ctl_error(NULL, negative_errno(), "take over the console socket", name, NULL);
                reply = sd_bus_message_unref(reply);
                c->sock = sock;
        } else {
                r = setup_bridge(c);
                if (r != CTL_EXIT_OK) {
                        unwatch(c);
                        return r;
                }
        }

        /* A password agent reading the same terminal would fight us for the keys in raw mode. */
        polkit_agent_close();

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGQUIT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return ctl_error(NULL, negative_errno(), "set up signal handling", name, NULL);
        signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (signal_fd < 0)
                return ctl_error(NULL, negative_errno(), "set up signal handling", name, NULL);
        (void)signal(SIGPIPE, SIG_IGN);

        if (!arg_quiet)
                fprintf(stderr, "Connected to board %s. Press ^] three times within 1s to exit.\n", name);

        r = set_raw_terminal();
        if (r < 0) {
                unwatch(c);
                return ctl_error(NULL, r, "put the terminal into raw mode", name, NULL);
        }

        c->signal_fd = signal_fd;
        end = c->sock >= 0 ? forward(c) : forward_bus(c);
        restore_terminal();
        if (c->sock < 0)
                unwatch(c);

        switch (end) {
        case END_ESCAPE:
                if (!arg_quiet)
                        fprintf(stderr, "\nConnection to board %s terminated.\n", name);
                return CTL_EXIT_OK;
        case END_STDIN_EOF:
                return CTL_EXIT_OK;
        case END_SIGNAL:
                if (!arg_quiet)
                        fprintf(stderr, "\nConnection to board %s terminated by signal %s.\n", name,
                                sigabbrev_np(c->signo) ?: "?");
                return 128 + c->signo;
        case END_ERROR:
                fprintf(stderr, "\nConsole of board %s failed: %s\n", name, strerror(-c->error));
                return CTL_EXIT_FAILURE;
        case END_BUS_ERROR:
                fputc('\n', stderr);
                return ctl_error(&c->bus_error, -EIO, c->action, name, NULL);
        case END_REMOTE:
        default: {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *state = NULL;

                /* Say why, if we can find out: most often the board was stopped. */
                if (sd_bus_get_property_string(bus, PIEMU_BUS_NAME, path, PIEMU_BOARD_IFACE, "State", &error,
                                               &state) >= 0 &&
                    !streq(state, "running") && !streq(state, "starting")) {
                        fprintf(stderr, "\nBoard %s is no longer running (state: %s); console closed.\n",
                                name, state);
                        return CTL_EXIT_STATE;
                }
                fprintf(stderr, "\nConnection to board %s was closed by piemud.\n", name);
                return CTL_EXIT_FAILURE;
        }
        }
}

int verb_send(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        sd_bus *bus;
        int r;

        /* Like echo: the words joined by spaces, then Enter. */
        for (int i = 2; i < argc; i++)
                len += strlen(argv[i]) + 1;
        text = malloc(len + 1);
        if (!text)
                return ctl_oom();
        len = 0;
        for (int i = 2; i < argc; i++) {
                size_t k = strlen(argv[i]);

                if (i > 2)
                        text[len++] = ' ';
                memcpy(text + len, argv[i], k);
                len += k;
        }
        if (!arg_no_newline)
                text[len++] = '\n';

        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_new_call(bus, &m, path, PIEMU_BOARD_IFACE, "SendSerial");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', text, len);
        if (r < 0)
                return ctl_error(NULL, r, "send to the serial console", argv[1], NULL);
        return ctl_call_message(bus, m, ctl_call_timeout(0), true, NULL, "send to the serial console",
                                argv[1], NULL);
}

int verb_console(int argc, char *argv[]) {
        return ctl_run_on_board(argv, run_console);
}
