/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* "piemuctl console": an interactive session on a board's serial console over the socket OpenSerial()
 * hands us, like "machinectl login". The terminal goes into raw mode so that every key (Ctrl-C, Ctrl-Z,
 * arrows) reaches the guest; pressing ^] three times within a second leaves. The saved terminal modes
 * are restored on every way out: normal return, exit(), and SIGINT/SIGTERM/SIGHUP/SIGQUIT, which are
 * taken through a signalfd so that the restore happens in ordinary code, not in a handler. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
} ConsoleEnd;

typedef struct Console {
        int sock;
        int signal_fd;
        char to_board[TO_BOARD_SIZE];
        size_t to_board_len;
        unsigned n_escape;     /* ^] pressed and held back so far */
        uint64_t escape_first; /* CLOCK_MONOTONIC of the first of them */
        int error;             /* for END_ERROR: negative errno */
        int signo;             /* for END_SIGNAL */
} Console;

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

static ConsoleEnd forward(Console *c) {
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

                if (poll(p, ELEMENTSOF(p), timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        c->error = negative_errno();
                        return END_ERROR;
                }
                now = now_usec(CLOCK_MONOTONIC);

                if (p[2].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(c->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                                c->signo = (int)si.ssi_signo;
                                return END_SIGNAL;
                        }
                }

                /* The escape window ran out: the held-back ^] were meant for the guest. */
                if (c->n_escape > 0 && now - c->escape_first >= ESCAPE_WINDOW)
                        flush_escapes(c);

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

int run_console(sd_bus *bus, const char *name, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int sock = -EBADF, signal_fd = -EBADF;
        _cleanup_free_ Console *c = NULL;
        sigset_t mask;
        ConsoleEnd end;
        int fd, r;

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

        /* A password agent reading the same terminal would fight us for the keys in raw mode. */
        polkit_agent_close();

        c = calloc(1, sizeof(Console));
        if (!c) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }

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
        if (r < 0)
                return ctl_error(NULL, r, "put the terminal into raw mode", name, NULL);

        c->sock = sock;
        c->signal_fd = signal_fd;
        end = forward(c);
        restore_terminal();

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
