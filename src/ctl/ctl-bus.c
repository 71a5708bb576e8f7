/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Bus plumbing for piemuctl: connecting, calling piemud, turning D-Bus errors into a sentence that says
 * what to do plus a meaningful exit code, and the polkit text agent. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-login.h>

#include "config.h"
#include "ctl.h"
#include "names.h"

static sd_bus *cached_bus = NULL;
static char *bus_description = NULL;
/* The timeout of the call in flight, for the message when it runs out (0: sd-bus's default). */
static uint64_t call_timeout_usec = 0;

const char *ctl_bus_description(void) {
        return bus_description ?: "the system bus";
}

/* " on HOST" with -H, "" otherwise: for the messages that name where something happened. */
const char *ctl_on_host(void) {
        static char *s = NULL;

        if (!arg_host)
                return "";
        if (!s && asprintf(&s, " on %s", arg_host) < 0)
                return " on the remote host";
        return s;
}

void remote_host_done(RemoteHost *h) {
        free(h->destination);
        free(h->port);
        *h = (RemoteHost){};
}

static bool host_char_ok(char c, bool bracketed) {
        /* Host names and IPv4 addresses; inside [] IPv6 addresses, with a %zone. Nothing a shell, ssh or
         * the D-Bus address syntax gives meaning to. */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
            c == '-' || c == '_')
                return true;
        return bracketed && (c == ':' || c == '%');
}

/* Parses -H's [USER@]HOST[:PORT], HOST possibly an [IPv6] address: the forms sd_bus_open_system_remote()
 * understands, minus its HOST/MACHINE container syntax. Strict, because the pieces end up on ssh's
 * command line and, for import-image, in a remote shell command. Returns 0 or -EINVAL. */
int remote_host_parse(const char *s, RemoteHost *ret) {
        _cleanup_free_ char *user = NULL, *host = NULL, *port = NULL;
        const char *at, *h, *end, *p = NULL;
        char *d;

        assert(s);
        assert(ret);

        at = strchr(s, '@');
        if (at) {
                if (at == s || strchr(at + 1, '@'))
                        return -EINVAL;
                for (const char *u = s; u < at; u++)
                        if (!host_char_ok(*u, false))
                                return -EINVAL;
                if (s[0] == '-')
                        return -EINVAL;
                user = strndup(s, (size_t)(at - s));
                if (!user)
                        return -ENOMEM;
                h = at + 1;
        } else
                h = s;

        if (*h == '[') {
                end = strchr(h, ']');
                if (!end || end == h + 1)
                        return -EINVAL;
                for (const char *c = h + 1; c < end; c++)
                        if (!host_char_ok(*c, true))
                                return -EINVAL;
                host = strndup(h + 1, (size_t)(end - h - 1));
                end++;
        } else {
                end = h + strcspn(h, ":");
                if (end == h || h[0] == '-' || h[0] == '.')
                        return -EINVAL;
                for (const char *c = h; c < end; c++)
                        if (!host_char_ok(*c, false))
                                return -EINVAL;
                host = strndup(h, (size_t)(end - h));
        }
        if (!host)
                return -ENOMEM;

        if (*end == ':') {
                unsigned long v;
                char *e;

                p = end + 1;
                if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
                        return -EINVAL;
                v = strtoul(p, &e, 10);
                if (v == 0 || v > 65535)
                        return -EINVAL;
                port = strdup(p);
                if (!port)
                        return -ENOMEM;
        } else if (*end)
                return -EINVAL; /* HOST/MACHINE, or junk after "]" */

        if (asprintf(&d, "%s%s%s", strempty(user), user ? "@" : "", host) < 0)
                return -ENOMEM;
        *ret = (RemoteHost){.destination = d, .port = TAKE_PTR(port)};
        return 0;
}

static int set_bus_description(void) {
        const char *address = getenv("PIEMU_BUS_ADDRESS");
        char *d;

        if (arg_host) {
                if (asprintf(&d, "the system bus of %s", arg_host) < 0)
                        return -ENOMEM;
        } else if (!isempty(address)) {
                if (asprintf(&d, "the bus at %s", address) < 0)
                        return -ENOMEM;
        } else
                d = strdup(arg_user ? "the user bus" : "the system bus");
        if (!d)
                return -ENOMEM;
        free(bus_description);
        bus_description = d;
        return 0;
}

static int open_bus(sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        const char *address = getenv("PIEMU_BUS_ADDRESS");
        int r;

        if (arg_host) {
                const char *unique;

                /* ssh -xT [-p PORT] -- [USER@]HOST systemd-stdio-bridge, as machinectl -H does. Starting
                 * only spawns ssh; wait for the bus's answer to Hello here, so that an ssh that cannot
                 * log in (or finds no bridge) is reported as such, and not as a failure of the first
                 * call. */
                r = sd_bus_open_system_remote(&bus, arg_host);
                if (r < 0)
                        return r;
                r = sd_bus_get_unique_name(bus, &unique);
                if (r < 0)
                        return r;
        } else if (!isempty(address)) {
                /* Tests (and people running a private piemud) point us at another bus without touching
                 * the system-wide DBUS_SYSTEM_BUS_ADDRESS that other tools also read. */
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
                if (r < 0)
                        return r;
        } else if (arg_user) {
                r = sd_bus_open_user(&bus);
                if (r < 0)
                        return r;
        } else {
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(bus);
        return 0;
}

/* Returns an exit status (0 on success): the caller can return it directly from a verb. */
int ctl_bus(sd_bus **ret) {
        int r;

        if (cached_bus) {
                *ret = cached_bus;
                return CTL_EXIT_OK;
        }

        r = set_bus_description();
        if (r < 0) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }

        r = open_bus(&cached_bus);
        if (r < 0 && arg_host) {
                /* ssh has said why on stderr already (refused, host key, authentication, no
                 * systemd-stdio-bridge there): one line of ours is enough. */
                fprintf(stderr, "Cannot reach %s over ssh: %s\n", ctl_bus_description(),
                        r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN
                                ? "ssh or systemd-stdio-bridge there ended the connection"
                                : strerror(-r));
                return CTL_EXIT_NO_DAEMON;
        }
        if (r < 0) {
                fprintf(stderr, "Cannot connect to %s: %s\n", ctl_bus_description(), strerror(-r));
                if (!isempty(getenv("PIEMU_BUS_ADDRESS")))
                        fprintf(stderr, "Check the address in $PIEMU_BUS_ADDRESS, or unset it to use the "
                                        "system bus.\n");
                else
                        fprintf(stderr, "Is D-Bus running? piemud and piemuctl talk over %s.\n",
                                ctl_bus_description());
                return CTL_EXIT_NO_DAEMON;
        }

        /* Lets piemud's polkit check ask for a password (through our agent) instead of refusing. Not
         * over -H: polkit on the other host would look for an agent there, and ours cannot answer for
         * a subject on another machine. */
        (void)sd_bus_set_allow_interactive_authorization(cached_bus, arg_ask_password && !arg_host);

        *ret = cached_bus;
        return CTL_EXIT_OK;
}

void ctl_bus_close(void) {
        cached_bus = sd_bus_flush_close_unref(cached_bus);
        free(bus_description);
        bus_description = NULL;
}

/* --timeout overrides the verb's default for each call. "infinity" becomes a week: sd-bus adds the
 * timeout to the current time, and a call that takes a week has failed anyway. */
uint64_t ctl_call_timeout(uint64_t verb_default) {
        if (arg_timeout_usec == USEC_INFINITY)
                return 7 * 24 * 3600 * USEC_PER_SEC;
        return arg_timeout_usec > 0 ? arg_timeout_usec : verb_default;
}

static bool error_is(const sd_bus_error *e, const char *name) {
        return e && sd_bus_error_has_name(e, name);
}

static void print_not_running(void) {
        fprintf(stderr, "piemud is not running (%s has no owner on %s).\n", PIEMU_BUS_NAME,
                ctl_bus_description());
        if (arg_host)
                fprintf(stderr, "Start it on %s ('systemctl start piemud.service' there), then try again.\n",
                        arg_host);
        else if (!isempty(getenv("PIEMU_BUS_ADDRESS")))
                fprintf(stderr, "Start piemud on that bus, or unset $PIEMU_BUS_ADDRESS.\n");
        else if (arg_user)
                fprintf(stderr, "Start it with 'piemud --bus user', then try again.\n");
        else
                fprintf(stderr, "Start it with 'systemctl start piemud.service' (or run 'piemud' as root), "
                                "then try again.\n");
}

/* One line of the error table's text on stderr. The templates are checked by test-error-table, so
 * a failure here is memory. */
static void print_error_line(const char *template, const PiemuErrorArgs *args) {
        _cleanup_free_ char *line = NULL;

        if (piemu_error_expand(template, args, &line) < 0)
                fprintf(stderr, "Out of memory.\n");
        else
                fprintf(stderr, "%s\n", line);
}

int ctl_error(const sd_bus_error *error, int r, const char *action, const char *board, const char *image) {
        _cleanup_free_ char *escaped = NULL;
        const PiemuError *e;
        const char *raw, *msg;
        char span[32];

        if (error && !sd_bus_error_is_set(error))
                error = NULL;

        raw = error && error->message ? error->message : strerror(r < 0 ? -r : EIO);
        /* Error texts can carry libvirt or guest-derived strings; keep them from driving the terminal. */
        escaped = escape_for_terminal(raw, strlen(raw), true);
        msg = escaped ?: raw;
        board = strempty(board);
        image = strempty(image);

        if (error_is(error, "org.freedesktop.DBus.Error.ServiceUnknown") ||
            error_is(error, "org.freedesktop.DBus.Error.NameHasNoOwner")) {
                print_not_running();
                return CTL_EXIT_NO_DAEMON;
        }
        if (error && strncmp(error->name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0) {
                fprintf(stderr, "piemud is not running%s and D-Bus could not start it: %s\n", ctl_on_host(),
                        msg);
                fprintf(stderr,
                        "piemud exits at once when it cannot reach libvirt: is libvirtd (or virtqemud) "
                        "running? ('systemctl start libvirtd')\n");
                fprintf(stderr, "Check its log (journalctl -u piemud) or start it by hand with 'piemud'.\n");
                return CTL_EXIT_NO_DAEMON;
        }
        /* dbus-daemon answers NoReply both when the callee vanished and (like sd-bus) on a timeout;
         * only the former says "disconnected". */
        if (error_is(error, "org.freedesktop.DBus.Error.NoReply") && strstr(raw, "disconnected")) {
                fprintf(stderr, "piemud went away (crashed or was stopped) while trying to %s.\n", action);
                fprintf(stderr, "Check its log (journalctl -u piemud) and start it again.\n");
                return CTL_EXIT_NO_DAEMON;
        }
        if (r == -ETIMEDOUT || error_is(error, "org.freedesktop.DBus.Error.NoReply") ||
            error_is(error, "org.freedesktop.DBus.Error.Timeout") ||
            error_is(error, "org.freedesktop.DBus.Error.TimedOut")) {
                fprintf(stderr, "piemud did not answer within %s while trying to %s.\n",
                        format_timespan(span, sizeof(span), call_timeout_usec ?: 25 * USEC_PER_SEC), action);
                fprintf(stderr,
                        "It may be busy or stuck: check its log, or allow more time with --timeout.\n");
                return CTL_EXIT_TIMEOUT;
        }
        if (error_is(error, "org.freedesktop.DBus.Error.Disconnected") || r == -ECONNRESET ||
            r == -ENOTCONN || r == -EPIPE || r == -ECONNREFUSED) {
                fprintf(stderr, "Lost the connection to %s while trying to %s: %s\n", ctl_bus_description(),
                        action, msg);
                return CTL_EXIT_NO_DAEMON;
        }
        if (arg_host && (error_is(error, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") ||
                         error_is(error, "org.freedesktop.DBus.Error.AccessDenied"))) {
                /* polkit decided on the other host, about the user ssh logged in as there; no password
                 * can be asked for across the bridge (piemud's "retry allowing interactive
                 * authorization" would mislead). */
                if (error_is(error, "org.freedesktop.DBus.Error.AccessDenied"))
                        fprintf(stderr, "Access denied on %s: not allowed to %s: %s\n", arg_host, action,
                                msg);
                else
                        fprintf(stderr,
                                "Access denied on %s: not allowed to %s without authenticating there, and "
                                "piemuctl -H cannot ask for a password.\n",
                                arg_host, action);
                fprintf(stderr,
                        "On %s the rights of the user ssh logs in as apply: group piemu lets a user create "
                        "boards and manage their own; anything more needs an administrator there (ask one, "
                        "or "
                        "log in and use sudo).\n",
                        arg_host);
                return CTL_EXIT_ACCESS;
        }
        if (error_is(error, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")) {
                fprintf(stderr,
                        "Not allowed to %s without authentication, and piemuctl could not ask for a "
                        "password%s.\n",
                        action, arg_ask_password ? " (no terminal on stdin)" : " (--no-ask-password)");
                fprintf(stderr, "Run it from a terminal without --no-ask-password, or with sudo.\n");
                return CTL_EXIT_ACCESS;
        }
        if (error_is(error, "org.freedesktop.DBus.Error.AccessDenied")) {
                fprintf(stderr, "Access denied: not allowed to %s: %s\n", action, msg);
                fprintf(stderr, "Boards can be managed by their owner, root, and users polkit allows "
                                "(org.piemu.* actions); try sudo or ask an administrator.\n");
                return CTL_EXIT_ACCESS;
        }

        /* Everything else is worded by the error table (src/shared/error-table.c). A board piemud
         * has no object for is a board that does not exist. */
        e = piemu_error_find(!isempty(board) && error_is(error, "org.freedesktop.DBus.Error.UnknownObject")
                                     ? PIEMU_ERROR_NO_SUCH_BOARD
                             : error ? error->name
                                     : NULL);
        if (e && e->ctl_text) {
                const PiemuErrorArgs args = {
                        .action = action,
                        .board = board,
                        .image = image,
                        .message = msg,
                        .on_host = ctl_on_host(),
                        .version = PIEMU_VERSION,
                };

                print_error_line(e->ctl_text, &args);
                if (e->ctl_hint)
                        print_error_line(e->ctl_hint, &args);
                return e->exit_code;
        }

        fprintf(stderr, "Failed to %s: %s\n", action, msg);
        return CTL_EXIT_FAILURE;
}

int ctl_new_call(sd_bus *bus, sd_bus_message **ret, const char *path, const char *iface,
                 const char *member) {
        return sd_bus_message_new_method_call(bus, ret, PIEMU_BUS_NAME, path, iface, member);
}

void ctl_note_call_timeout(uint64_t timeout_usec) {
        call_timeout_usec = timeout_usec;
}

/* Returns an exit status. 'interactive' marks calls that piemud checks with polkit: for those we make
 * sure a password prompt can be shown first. */
int ctl_call_message(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, bool interactive,
                     sd_bus_message **ret_reply, const char *action, const char *board, const char *image) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (interactive)
                polkit_agent_open_if_enabled();

        call_timeout_usec = timeout_usec;
        r = sd_bus_call(bus, m, timeout_usec, &error, ret_reply);
        if (r < 0)
                return ctl_error(&error, r, action, board, image);
        return CTL_EXIT_OK;
}

int ctl_call(sd_bus *bus, const char *path, const char *iface, const char *member, uint64_t timeout_usec,
             bool interactive, sd_bus_message **ret_reply, const char *action, const char *board,
             const char *image, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = ctl_new_call(bus, &m, path, iface, member);
        if (r < 0)
                return ctl_error(NULL, r, action, board, image);

        if (types) {
                va_list ap;

                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return ctl_error(NULL, r, action, board, image);
        }

        return ctl_call_message(bus, m, timeout_usec, interactive, ret_reply, action, board, image);
}

int ctl_check_name(const char *kind, const char *name) {
        _cleanup_free_ char *e = NULL;

        if (piemu_name_is_valid(name))
                return CTL_EXIT_OK;

        e = escape_for_terminal(name, strlen(name), false);
        fprintf(stderr,
                "Invalid %s name \"%s\": names are 1-%d characters from A-Z a-z 0-9 _ . - and start "
                "with a letter or digit.\n",
                kind, e ?: "?", PIEMU_NAME_MAX);
        return CTL_EXIT_USAGE;
}

/* Returns an exit status; on success *ret_path is the board's object path. GetBoard (rather than
 * encoding the path ourselves) gives a clean NoSuchBoard for unknown names. */
int ctl_board_path(sd_bus *bus, const char *name, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        char *p;
        int r;

        r = ctl_check_name("board", name);
        if (r != CTL_EXIT_OK)
                return r;

        r = ctl_call(bus, PIEMU_MANAGER_PATH, PIEMU_MANAGER_IFACE, "GetBoard", ctl_call_timeout(0), false,
                     &reply, "look up the board", name, NULL, "s", name);
        if (r != CTL_EXIT_OK)
                return r;

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_error(NULL, r, "parse piemud's reply", name, NULL);

        p = strdup(path);
        if (!p) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        *ret_path = p;
        return CTL_EXIT_OK;
}

/* Connects and resolves the board named in argv[1]. Returns an exit status. */
int ctl_open_board(char *argv[], sd_bus **ret_bus, char **ret_path) {
        int r;

        r = ctl_check_name("board", argv[1]);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_bus(ret_bus);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_board_path(*ret_bus, argv[1], ret_path);
}

int ctl_run_on_board(char *argv[], ctl_board_run_t run) {
        _cleanup_free_ char *path = NULL;
        sd_bus *bus;
        int r;

        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return run(bus, argv[1], path);
}

/* The unique name currently owning org.piemu. Signals are matched on it, so that nobody else on the
 * bus can inject fake serial output or pin changes into what we print. Returns an exit status. */
int ctl_daemon_owner(sd_bus *bus, char **ret_unique) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *unique;
        char *u;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetNameOwner", &error, &reply, "s", PIEMU_BUS_NAME);
        if (r < 0)
                return ctl_error(&error, r, "find piemud on the bus", NULL, NULL);

        r = sd_bus_message_read(reply, "s", &unique);
        if (r < 0)
                return ctl_error(NULL, r, "find piemud on the bus", NULL, NULL);

        u = strdup(unique);
        if (!u) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        *ret_unique = u;
        return CTL_EXIT_OK;
}

/* ---- polkit agent, as systemd's polkit_agent_open() ---- */

static pid_t agent_pid = 0;

/* piemud checks most calls with polkit. When polkit wants a password, it asks an agent registered for
 * our process or session; on a text console there usually is none, so we start pkttyagent and wait
 * until it has registered. In a logind session, as systemd does: for the session, as a fallback, so
 * that a graphical agent in the session still wins. Outside one there is no session to register for
 * (pkttyagent fails: "User of caller and user of subject differs"), so it registers for our process
 * instead, and not as a fallback: polkitd passes over a fallback agent when the caller has no
 * session agent. Skipped when it cannot help: no terminal on stdin, --no-ask-password, -H, or root
 * (whom polkit always authorizes). */
void polkit_agent_open_if_enabled(void) {
        int fds[2];
        pid_t parent = getpid();
        _cleanup_free_ char *session = NULL;
        bool in_session = sd_pid_get_session(0, &session) >= 0;
        pid_t pid;

        /* Over -H polkit asks on the other host, where no agent of ours is registered: ours would only
         * take the terminal. */
        if (agent_pid > 0 || !arg_ask_password || arg_host || geteuid() == 0 || !isatty(STDIN_FILENO))
                return;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                safe_close(fds[0]);
                safe_close(fds[1]);
                return;
        }
        if (pid == 0) {
                char fd_str[16], pid_str[24];
                sigset_t ss;

                /* An agent outliving us would keep prompting on the terminal. */
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
                sigemptyset(&ss);
                (void)sigprocmask(SIG_SETMASK, &ss, NULL);
                /* The agent closes this descriptor once it is registered: keep it open across exec. */
                if (fcntl(fds[1], F_SETFD, 0) < 0)
                        _exit(EXIT_FAILURE);
                snprintf(fd_str, sizeof(fd_str), "%d", fds[1]);
                snprintf(pid_str, sizeof(pid_str), "%d", (int)parent);
                const char *scope = in_session ? "--fallback" : "--process";
                const char *scope_arg = in_session ? NULL : pid_str;
                /* The system copy first, as systemd does; $PATH only where polkit lives elsewhere. */
                execl("/usr/bin/pkttyagent", "pkttyagent", "--notify-fd", fd_str, scope, scope_arg,
                      (char *)NULL);
                execlp("pkttyagent", "pkttyagent", "--notify-fd", fd_str, scope, scope_arg, (char *)NULL);
                _exit(127);
        }

        safe_close(fds[1]);
        agent_pid = pid;

        /* POLLHUP arrives when the agent registered (closed the fd) or died (e.g. not installed).
         * Bounded, so that a wedged polkitd cannot hang us forever. */
        for (;;) {
                struct pollfd p = {.fd = fds[0], .events = POLLIN};
                int k = poll(&p, 1, 10000);

                if (k < 0 && errno == EINTR)
                        continue;
                break;
        }
        safe_close(fds[0]);
}

void polkit_agent_close(void) {
        if (agent_pid <= 0)
                return;

        (void)kill(agent_pid, SIGTERM);
        (void)kill(agent_pid, SIGCONT);
        while (waitpid(agent_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        agent_pid = 0;
}
