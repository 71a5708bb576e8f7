/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* "piemuctl watch" (print a board's serial output, pin changes and state changes as they happen) and
 * "piemuctl wait" (block until a condition holds, for scripts). Both subscribe to the same signals: the
 * board's PropertiesChanged (public, broadcast), and after Watch() the SerialOutput and GpioChanged
 * signals piemud sends only to its watchers. Everything runs on one sd-event loop together with
 * SIGINT/SIGTERM/SIGHUP, the wait timeout, and the flush timer for partial serial lines. run_trace()
 * records GpioChanged the same way for "piemuctl trace" (ctl-pins.c). */

#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "ctl.h"
#include "vcd.h"

#define PARTIAL_LINE_DELAY USEC_PER_SEC
#define MAX_LINE           4096
#define MATCH_WINDOW       (64 * 1024)

typedef struct Watcher {
        sd_event *event;
        sd_bus *bus;
        const char *name;
        const char *path;
        char *owner;      /* unique bus name of piemud */
        bool waiting;     /* wait rather than watch */
        bool initialized; /* the current values were read: changes from now on are events */
        bool watching;    /* Watch() succeeded: say Unwatch() when done */

        /* watch: serial output is printed line by line, each line stamped with the arrival of its
         * first byte; a line without newline (a shell prompt) is printed after a short pause. */
        char line[MAX_LINE];
        size_t line_len;
        uint64_t line_usec;
        sd_event_source *flush_source;

        /* the board as last seen */
        char *state;
        bool guest_ready;
        bool pin_known;
        bool pin_level;

        /* trace: GpioChanged into a Value Change Dump */
        VcdWriter *vcd;
        int vcd_error; /* the first write error, negative errno */

        /* wait --serial */
        regex_t regex;
        bool regex_compiled;
        bool serial_matched;
        char *match_buf;
        size_t match_len;
} Watcher;

static void watcher_done(Watcher *w) {
        w->flush_source = sd_event_source_unref(w->flush_source);
        if (w->regex_compiled)
                regfree(&w->regex);
        free(w->match_buf);
        free(w->state);
        free(w->owner);
        if (w->bus)
                (void)sd_bus_detach_event(w->bus);
        w->event = sd_event_unref(w->event);
}

static void quit(Watcher *w, int code) {
        /* Leaving the bus ends the subscription too, but say so: piemud stops sending at once, and
         * a connection that outlives the command (a bridge to another host) is not left subscribed.
         * Sent without waiting; sd-bus flushes it when the loop exits. A board or piemud already
         * gone is no error here. */
        if (w->watching && w->bus) {
                (void)sd_bus_call_method_async(w->bus, NULL, PIEMU_BUS_NAME, w->path, PIEMU_BOARD_IFACE,
                                               "Unwatch", NULL, NULL, NULL);
                w->watching = false;
        }
        (void)sd_event_exit(w->event, code);
}

/* ---- watch output ---- */

static void print_prefix(JsonWriter *j, uint64_t usec, const char *type) {
        char ts[64];

        format_timestamp(ts, sizeof(ts), usec);
        if (arg_json == JSON_OFF) {
                printf("%s %s", ts, type);
                return;
        }
        /* One compact object per line (JSON Lines), whatever --json mode: a stream cannot be one
         * pretty-printed document. */
        json_init(j, stdout, JSON_SHORT);
        json_open(j, '{');
        json_key(j, "time");
        json_string(j, ts);
        json_key(j, "timestamp_usec");
        json_uint(j, usec);
        json_key(j, "type");
        json_string(j, type);
}

static void print_end(JsonWriter *j) {
        if (arg_json == JSON_OFF)
                fputc('\n', stdout);
        else {
                json_close(j, '}');
                fputc('\n', stdout);
        }
        /* Readers are often pipes (tests, scripts): each event must go out now. */
        fflush(stdout);
}

static void emit_line(Watcher *w) {
        JsonWriter j;
        size_t n = w->line_len;

        /* The guest's tty ends lines with \r\n; the \r is noise here. */
        while (n > 0 && w->line[n - 1] == '\r')
                n--;

        print_prefix(&j, w->line_usec, "serial");
        if (arg_json == JSON_OFF) {
                _cleanup_free_ char *e = escape_for_terminal(w->line, n, false);
                printf(": %s", e ?: "(out of memory)");
        } else {
                json_key(&j, "text");
                json_text(&j, w->line, n);
        }
        print_end(&j);
        w->line_len = 0;
}

static void print_gpio(uint64_t usec, unsigned pin, bool level) {
        JsonWriter j;

        print_prefix(&j, usec, "gpio");
        if (arg_json == JSON_OFF)
                printf(" %u = %d", pin, level);
        else {
                json_key(&j, "pin");
                json_uint(&j, pin);
                json_key(&j, "level");
                json_uint(&j, level);
        }
        print_end(&j);
}

static void print_state(const char *state) {
        _cleanup_free_ char *e = escape_for_terminal(state, strlen(state), false);
        JsonWriter j;

        print_prefix(&j, now_usec(CLOCK_REALTIME), "state");
        if (arg_json == JSON_OFF)
                printf(" %s", e ?: "?");
        else {
                json_key(&j, "state");
                json_string(&j, state);
        }
        print_end(&j);
}

static void print_guest_ready(bool ready) {
        JsonWriter j;

        print_prefix(&j, now_usec(CLOCK_REALTIME), "guest-ready");
        if (arg_json == JSON_OFF)
                printf(" %s", ready ? "yes" : "no");
        else {
                json_key(&j, "guest_ready");
                json_bool(&j, ready);
        }
        print_end(&j);
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Watcher *w = userdata;

        if (w->line_len > 0)
                emit_line(w);
        return 0;
}

static void watch_serial(Watcher *w, const uint8_t *data, size_t size) {
        uint64_t now = now_usec(CLOCK_REALTIME);

        for (size_t i = 0; i < size; i++) {
                if (w->line_len == 0)
                        w->line_usec = now;
                if (data[i] == '\n') {
                        emit_line(w);
                        continue;
                }
                w->line[w->line_len++] = (char)data[i];
                if (w->line_len == sizeof(w->line))
                        emit_line(w);
        }

        if (w->line_len > 0) {
                (void)sd_event_source_set_time_relative(w->flush_source, PARTIAL_LINE_DELAY);
                (void)sd_event_source_set_enabled(w->flush_source, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_source_set_enabled(w->flush_source, SD_EVENT_OFF);
}

/* ---- wait conditions ---- */

static bool state_is_down(const char *state) {
        return streq_ptr(state, "stopped") || streq_ptr(state, "crashed");
}

static bool wait_needs_running(void) {
        return arg_wait_ready || arg_wait_serial || arg_wait_pin >= 0;
}

static void wait_check(Watcher *w) {
        if ((!arg_wait_state || streq_ptr(w->state, arg_wait_state)) &&
            (!arg_wait_ready || w->guest_ready) && (!arg_wait_serial || w->serial_matched) &&
            (arg_wait_pin < 0 || (w->pin_known && w->pin_level == arg_wait_pin_value))) {
                quit(w, CTL_EXIT_OK);
                return;
        }

        /* Readiness, console output and pin levels need a running board: once it is down they will not
         * come (unless someone starts it again, which a script waiting here would not expect). */
        if (wait_needs_running() && state_is_down(w->state)) {
                fprintf(stderr, "Board %s is %s; what piemuctl wait is waiting for will not happen.\n",
                        w->name, w->state);
                fprintf(stderr, "Start it with 'piemuctl start %s' first.\n", w->name);
                quit(w, CTL_EXIT_STATE);
        }
}

static void wait_serial(Watcher *w, const uint8_t *data, size_t size) {
        char *p;

        if (!arg_wait_serial || w->serial_matched)
                return;

        p = realloc(w->match_buf, w->match_len + size + 1);
        if (!p) {
                fprintf(stderr, "Out of memory.\n");
                quit(w, CTL_EXIT_FAILURE);
                return;
        }
        w->match_buf = p;

        /* regexec() needs a C string: NUL bytes go, and so does \r, so that "$" works on the guest's
         * \r\n line ends. */
        for (size_t i = 0; i < size; i++)
                if (data[i] != 0 && data[i] != '\r')
                        w->match_buf[w->match_len++] = (char)data[i];
        w->match_buf[w->match_len] = 0;

        if (regexec(&w->regex, w->match_buf, 0, NULL, 0) == 0) {
                w->serial_matched = true;
                return;
        }

        /* Keep only a window of recent output; cut at a line start so that "^" keeps its meaning. */
        if (w->match_len > MATCH_WINDOW) {
                size_t cut = w->match_len - MATCH_WINDOW / 2;
                char *nl = memchr(w->match_buf + cut, '\n', w->match_len - cut);

                if (nl)
                        cut = (size_t)(nl + 1 - w->match_buf);
                memmove(w->match_buf, w->match_buf + cut, w->match_len - cut + 1);
                w->match_len -= cut;
        }
}

/* ---- signal handlers (bus and Unix) ---- */

static int on_serial_output(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;
        const void *data;
        size_t size;
        int r;

        r = sd_bus_message_read_array(m, 'y', &data, &size);
        if (r < 0)
                return 0; /* malformed signal: ignore rather than die */

        if (w->vcd)
                return 0; /* a trace records pins only */
        if (w->waiting) {
                wait_serial(w, data, size);
                wait_check(w);
        } else
                watch_serial(w, data, size);
        return 0;
}

static int on_gpio_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;
        uint32_t pin;
        int level;
        uint64_t usec;
        int r;

        r = sd_bus_message_read(m, "ubt", &pin, &level, &usec);
        if (r < 0)
                return 0;

        if (w->vcd) {
                r = vcd_change(w->vcd, pin, level, usec);
                if (r < 0 && w->vcd_error == 0) {
                        w->vcd_error = r;
                        quit(w, CTL_EXIT_FAILURE);
                }
                return 0;
        }
        if (!w->waiting) {
                print_gpio(usec, pin, level);
                return 0;
        }
        if (arg_wait_pin >= 0 && pin == (uint32_t)arg_wait_pin) {
                w->pin_known = true;
                w->pin_level = level;
                wait_check(w);
        }
        return 0;
}

static int set_state(Watcher *w, const char *state) {
        char *s;

        if (streq_ptr(w->state, state))
                return 0;
        s = strdup(state);
        if (!s)
                return -ENOMEM;
        free(w->state);
        w->state = s;
        if (w->vcd) {
                /* Powered off: its pins say nothing any more; what was recorded is kept. */
                if (w->initialized && state_is_down(state)) {
                        if (!arg_quiet)
                                fprintf(stderr, "Board %s is %s; the trace ends.\n", w->name, state);
                        quit(w, CTL_EXIT_OK);
                }
                return 0;
        }
        if (!w->waiting && w->initialized)
                print_state(state);
        return 0;
}

static void set_guest_ready(Watcher *w, bool ready) {
        if (w->guest_ready == ready)
                return;
        w->guest_ready = ready;
        if (!w->waiting && w->initialized)
                print_guest_ready(ready);
}

/* Reads State and GuestReady out of an a{sv}, skipping everything else. */
static int read_properties(Watcher *w, sd_bus_message *m) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "State")) {
                        const char *s;

                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r < 0)
                                return r;
                        r = set_state(w, s);
                        if (r < 0)
                                return r;
                } else if (streq(key, "GuestReady")) {
                        int b;

                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return r;
                        set_guest_ready(w, b);
                } else {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int fetch_properties(Watcher *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = ctl_call(w->bus, w->path, "org.freedesktop.DBus.Properties", "GetAll", ctl_call_timeout(0),
                     false, &reply, "read the board's properties", w->name, NULL, "s", PIEMU_BOARD_IFACE);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_properties(w, reply);
        if (r < 0)
                return ctl_error(NULL, r, "parse the board's properties", w->name, NULL);
        return CTL_EXIT_OK;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;
        bool refetch = false;
        const char *iface;
        int r;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || !streq(iface, PIEMU_BOARD_IFACE))
                return 0;

        r = read_properties(w, m);
        if (r < 0)
                return 0;

        /* Invalidated properties are announced without value: fetch them. */
        if (sd_bus_message_enter_container(m, 'a', "s") > 0) {
                const char *p;
                while (sd_bus_message_read(m, "s", &p) > 0)
                        if (streq(p, "State") || streq(p, "GuestReady"))
                                refetch = true;
        }
        if (refetch) {
                r = fetch_properties(w);
                if (r != CTL_EXIT_OK) {
                        quit(w, r);
                        return 0;
                }
        }

        if (w->waiting)
                wait_check(w);
        return 0;
}

static int on_board_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;
        const char *name, *path;

        if (sd_bus_message_read(m, "so", &name, &path) < 0 || !streq(name, w->name))
                return 0;

        if (!w->waiting)
                fflush(stdout);
        fprintf(stderr, "Board %s was deleted.\n", w->name);
        quit(w, CTL_EXIT_NOT_FOUND);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, PIEMU_BUS_NAME))
                return 0;
        if (streq(new_owner, w->owner))
                return 0;

        fprintf(stderr, "piemud went away (stopped or restarted); no more events from board %s.\n", w->name);
        quit(w, CTL_EXIT_NO_DAEMON);
        return 0;
}

/* Filters see the synthetic Disconnected message sd-bus generates when the bus connection dies. */
static int on_any_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;

        if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected")) {
                fprintf(stderr, "Lost the connection to %s.\n", ctl_bus_description());
                quit(w, CTL_EXIT_NO_DAEMON);
        }
        return 0;
}

static int on_unix_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Watcher *w = userdata;

        if (w->vcd) {
                /* Ctrl-C (or the end of --duration) is how a trace is meant to end. */
                quit(w, si->ssi_signo == SIGINT ? CTL_EXIT_OK : 128 + (int)si->ssi_signo);
                return 0;
        }
        if (!w->waiting) {
                /* Ctrl-C is how watch is meant to end: print what is pending and succeed. */
                if (w->line_len > 0)
                        emit_line(w);
                quit(w, si->ssi_signo == SIGINT ? CTL_EXIT_OK : 128 + (int)si->ssi_signo);
                return 0;
        }
        fprintf(stderr, "Interrupted while waiting for board %s.\n", w->name);
        quit(w, 128 + (int)si->ssi_signo);
        return 0;
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Watcher *w = userdata;
        char span[32];

        fprintf(stderr, "Timed out after %s waiting for board %s",
                format_timespan(span, sizeof(span), arg_timeout_usec), w->name);
        if (arg_wait_state)
                fprintf(stderr, " to be %s (it is %s)", arg_wait_state, strempty(w->state));
        if (arg_wait_ready)
                fprintf(stderr, "%s to report the guest ready", arg_wait_state ? "," : "");
        if (arg_wait_serial && !w->serial_matched)
                fprintf(stderr, "%s to print a line matching \"%s\"",
                        arg_wait_state || arg_wait_ready ? "," : "", arg_wait_serial);
        if (arg_wait_pin >= 0)
                fprintf(stderr, "%s for pin %d to be %d",
                        arg_wait_state || arg_wait_ready || arg_wait_serial ? "," : "", arg_wait_pin,
                        arg_wait_pin_value);
        fprintf(stderr, ".\n");
        quit(w, CTL_EXIT_TIMEOUT);
        return 0;
}

/* ---- setup ---- */

static int add_match(Watcher *w, const char *member, const char *iface, const char *path, const char *extra,
                     sd_bus_message_handler_t handler) {
        _cleanup_free_ char *rule = NULL;
        int r;

        /* sender= is piemud's unique name: nobody else can feed us events. */
        if (asprintf(&rule, "type='signal',sender='%s',path='%s',interface='%s',member='%s'%s", w->owner,
                     path, iface, member, strempty(extra)) < 0)
                return -ENOMEM;
        r = sd_bus_add_match(w->bus, NULL, rule, handler, w);
        return r;
}

static int setup(Watcher *w, bool call_watch) {
        sigset_t mask;
        int r;

        r = ctl_daemon_owner(w->bus, &w->owner);
        if (r != CTL_EXIT_OK)
                return r;

        r = sd_event_default(&w->event);
        if (r < 0)
                return ctl_error(NULL, r, "set up the event loop", w->name, NULL);
        r = sd_bus_attach_event(w->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return ctl_error(NULL, r, "set up the event loop", w->name, NULL);

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return ctl_error(NULL, negative_errno(), "set up signal handling", w->name, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(&mask, sig) == 1) {
                        r = sd_event_add_signal(w->event, NULL, sig, on_unix_signal, w);
                        if (r < 0)
                                return ctl_error(NULL, r, "set up signal handling", w->name, NULL);
                }

        r = sd_event_add_time_relative(w->event, &w->flush_source, CLOCK_MONOTONIC, PARTIAL_LINE_DELAY,
                                       10 * USEC_PER_MSEC, on_flush_timer, w);
        if (r < 0)
                return ctl_error(NULL, r, "set up a timer", w->name, NULL);
        (void)sd_event_source_set_enabled(w->flush_source, SD_EVENT_OFF);

        r = sd_bus_add_filter(w->bus, NULL, on_any_message, w);
        if (r < 0)
                return ctl_error(NULL, r, "subscribe to events", w->name, NULL);

        /* Subscribe before reading the current values, so that no change can fall in between. */
        r = sd_bus_add_match(
                w->bus, NULL,
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" PIEMU_BUS_NAME "'",
                on_name_owner_changed, w);
        if (r >= 0)
                r = add_match(w, "PropertiesChanged", "org.freedesktop.DBus.Properties", w->path,
                              ",arg0='" PIEMU_BOARD_IFACE "'", on_properties_changed);
        if (r >= 0)
                r = add_match(w, "BoardRemoved", PIEMU_MANAGER_IFACE, PIEMU_MANAGER_PATH, NULL,
                              on_board_removed);
        if (r >= 0)
                r = add_match(w, "SerialOutput", PIEMU_BOARD_IFACE, w->path, NULL, on_serial_output);
        if (r >= 0)
                r = add_match(w, "GpioChanged", PIEMU_BOARD_IFACE, w->path, NULL, on_gpio_changed);
        if (r < 0)
                return ctl_error(NULL, r, "subscribe to events", w->name, NULL);

        if (call_watch) {
                r = ctl_call(w->bus, w->path, PIEMU_BOARD_IFACE, "Watch", ctl_call_timeout(0), true, NULL,
                             "watch the board", w->name, NULL, NULL);
                if (r != CTL_EXIT_OK)
                        return r;
                w->watching = true;
        }
        /* From here on nothing asks for a password: free the terminal. */
        polkit_agent_close();

        r = fetch_properties(w);
        if (r != CTL_EXIT_OK)
                return r;
        w->initialized = true;
        return CTL_EXIT_OK;
}

static int run_loop(Watcher *w) {
        int r = sd_event_loop(w->event);

        if (r < 0)
                return ctl_error(NULL, r, "run the event loop", w->name, NULL);
        return r;
}

static int run_watch(sd_bus *bus, const char *name, const char *path) {
        Watcher w = {.bus = bus, .name = name, .path = path};
        int r;

        r = setup(&w, true);
        if (r == CTL_EXIT_OK) {
                if (!arg_quiet)
                        fprintf(stderr, "Watching board %s (state: %s). Press Ctrl-C to stop.\n", name,
                                strempty(w.state));
                r = run_loop(&w);
        }
        watcher_done(&w);
        return r;
}

static int run_wait(sd_bus *bus, const char *name, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Watcher w = {.bus = bus, .name = name, .path = path, .waiting = true};
        /* --timeout counts from now, not from the end of the set-up calls: it is the caller's budget. */
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        int r;

        if (arg_wait_serial) {
                r = regcomp(&w.regex, arg_wait_serial, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
                if (r != 0) {
                        char buf[256];

                        regerror(r, &w.regex, buf, sizeof(buf));
                        fprintf(stderr, "Invalid regular expression \"%s\": %s\n", arg_wait_serial, buf);
                        return CTL_EXIT_USAGE;
                }
                w.regex_compiled = true;
        }

        r = setup(&w, arg_wait_serial || arg_wait_pin >= 0);
        if (r != CTL_EXIT_OK)
                goto finish;

        /* Output printed before we started counts (unless --since-now): "start; wait --serial PROMPT" must
         * not miss a prompt that came quickly. Watch() came first, so nothing falls in between; a chunk
         * may be seen twice, which cannot hide a match. */
        if (arg_wait_serial && !arg_since_now) {
                const void *data;
                size_t size;

                r = ctl_call(bus, path, PIEMU_BOARD_IFACE, "GetRecentSerial", ctl_call_timeout(0), true,
                             &reply, "read recent serial output", name, NULL, NULL);
                if (r != CTL_EXIT_OK)
                        goto finish;
                r = sd_bus_message_read_array(reply, 'y', &data, &size);
                if (r < 0) {
                        r = ctl_error(NULL, r, "parse piemud's reply", name, NULL);
                        goto finish;
                }
                wait_serial(&w, data, size);
                reply = sd_bus_message_unref(reply);
        }

        if (arg_wait_pin >= 0 && !(wait_needs_running() && state_is_down(w.state))) {
                int level;

                r = ctl_call(bus, path, PIEMU_BOARD_IFACE, "GetPin", ctl_call_timeout(0), true, &reply,
                             "read the pin", name, NULL, "u", (uint32_t)arg_wait_pin);
                if (r != CTL_EXIT_OK)
                        goto finish;
                r = sd_bus_message_read(reply, "b", &level);
                if (r < 0) {
                        r = ctl_error(NULL, r, "parse piemud's reply", name, NULL);
                        goto finish;
                }
                w.pin_known = true;
                w.pin_level = level;
        }
        polkit_agent_close();

        if (arg_timeout_usec > 0 && arg_timeout_usec != USEC_INFINITY) {
                r = sd_event_add_time(w.event, NULL, CLOCK_MONOTONIC, start + arg_timeout_usec,
                                      USEC_PER_MSEC, on_wait_timeout, &w);
                if (r < 0) {
                        r = ctl_error(NULL, r, "set up the timeout", name, NULL);
                        goto finish;
                }
        }

        wait_check(&w);
        r = run_loop(&w);

finish:
        watcher_done(&w);
        return r;
}

/* ---- trace ---- */

static int on_trace_end(sd_event_source *s, uint64_t usec, void *userdata) {
        quit(userdata, CTL_EXIT_OK);
        return 0;
}

/* The levels to start the dump with: GetPins, asked again while piemud does not know them yet (its
 * qtest channel connecting: Busy). -1 for every pin until then is not a state VCD readers like. */
static int read_initial_levels(Watcher *w, int8_t levels[VCD_NPINS]) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                size_t n = 0;
                int r, v;

                r = sd_bus_call_method(w->bus, PIEMU_BUS_NAME, w->path, PIEMU_BOARD_IFACE, "GetPins", &error,
                                       &reply, NULL);
                if (r < 0 && sd_bus_error_has_name(&error, "org.piemu.Error.Busy") &&
                    now_usec(CLOCK_MONOTONIC) < end) {
                        (void)usleep(200 * 1000);
                        continue;
                }
                if (r < 0)
                        return ctl_error(&error, r, "read the pins", w->name, NULL);
                r = sd_bus_message_enter_container(reply, 'a', "b");
                while (r >= 0 && n < VCD_NPINS && (r = sd_bus_message_read_basic(reply, 'b', &v)) > 0)
                        levels[n++] = v ? 1 : 0;
                if (r < 0)
                        return ctl_error(NULL, r, "parse piemud's reply", w->name, NULL);
                while (n < VCD_NPINS)
                        levels[n++] = -1;
                return CTL_EXIT_OK;
        }
}

int run_trace(sd_bus *bus, const char *name, const char *path, FILE *out, const char *out_name,
              uint64_t pins, uint64_t duration_usec) {
        Watcher w = {.bus = bus, .name = name, .path = path};
        VcdWriter vcd;
        int8_t levels[VCD_NPINS];
        char date[64];
        time_t now;
        uint64_t start;
        int r;

        r = setup(&w, true);
        if (r != CTL_EXIT_OK)
                goto finish;
        if (state_is_down(w.state)) {
                fprintf(stderr, "Board %s is %s: there is nothing to trace.\n", name, strempty(w.state));
                fprintf(stderr, "Start it with 'piemuctl start %s' first.\n", name);
                r = CTL_EXIT_STATE;
                goto finish;
        }
        /* Watch() came first: a change from now on arrives as a GpioChanged, with its own time stamp.
         * One that happened before GetPins answers is in both, which the writer takes as a repeat. */
        r = read_initial_levels(&w, levels);
        if (r != CTL_EXIT_OK)
                goto finish;

        start = now_usec(CLOCK_REALTIME);
        now = (time_t)(start / USEC_PER_SEC);
        if (strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y UTC", gmtime(&now)) == 0)
                date[0] = 0;
        r = vcd_begin(&vcd, out, name, pins, levels, start, date);
        if (r < 0) {
                fprintf(stderr, "Cannot write %s: %s\n", out_name, strerror(-r));
                r = CTL_EXIT_FAILURE;
                goto finish;
        }
        w.vcd = &vcd;

        if (duration_usec > 0 && duration_usec != USEC_INFINITY) {
                r = sd_event_add_time_relative(w.event, NULL, CLOCK_MONOTONIC, duration_usec, USEC_PER_MSEC,
                                               on_trace_end, &w);
                if (r < 0) {
                        r = ctl_error(NULL, r, "set up the duration", name, NULL);
                        goto finish;
                }
        }
        if (!arg_quiet)
                fprintf(stderr, "Tracing board %s into %s%s.\n", name, out_name,
                        duration_usec > 0 && duration_usec != USEC_INFINITY ? "" : "; press Ctrl-C to stop");
        r = run_loop(&w);

        /* The last time stamp is the end of the trace, so that viewers draw the last levels to it. */
        int k = vcd_end(&vcd, now_usec(CLOCK_REALTIME));
        if (w.vcd_error < 0 || k < 0) {
                fprintf(stderr, "Cannot write %s: %s\n", out_name,
                        strerror(-(w.vcd_error < 0 ? w.vcd_error : k)));
                r = CTL_EXIT_FAILURE;
        } else if (!arg_quiet)
                fprintf(stderr, "Recorded %u change%s in %.1f s.\n", vcd.n_changes,
                        vcd.n_changes == 1 ? "" : "s",
                        (double)(now_usec(CLOCK_REALTIME) - start) / USEC_PER_SEC);
finish:
        watcher_done(&w);
        return r;
}

int verb_watch(int argc, char *argv[]) {
        return ctl_run_on_board(argv, run_watch);
}

int verb_wait(int argc, char *argv[]) {
        static const char *const states[] = {"stopped", "starting", "running", "stopping", "crashed"};
        _cleanup_free_ char *path = NULL;
        sd_bus *bus;
        bool ok = false;
        int r;

        if (!arg_wait_state && !arg_wait_ready && !arg_wait_serial && arg_wait_pin < 0) {
                fprintf(stderr, "wait needs a condition: --state=STATE, --ready, --serial=REGEX or "
                                "--pin=PIN=0|1.\n");
                return CTL_EXIT_USAGE;
        }
        if (arg_wait_state) {
                for (size_t i = 0; i < ELEMENTSOF(states); i++)
                        ok = ok || streq(arg_wait_state, states[i]);
                if (!ok) {
                        fprintf(stderr,
                                "Invalid state \"%s\": use stopped, starting, running, stopping or "
                                "crashed.\n",
                                arg_wait_state);
                        return CTL_EXIT_USAGE;
                }
        }

        if (arg_wait_serial) {
                /* Check the expression before bothering piemud; run_wait() compiles it again. */
                regex_t re;
                char buf[256];

                r = regcomp(&re, arg_wait_serial, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
                if (r != 0) {
                        _cleanup_free_ char *e =
                                escape_for_terminal(arg_wait_serial, strlen(arg_wait_serial), false);

                        regerror(r, &re, buf, sizeof(buf));
                        fprintf(stderr, "Invalid regular expression \"%s\": %s\n", e ?: "?", buf);
                        return CTL_EXIT_USAGE;
                }
                regfree(&re);
        }

        r = ctl_open_board(argv, &bus, &path);
        if (r != CTL_EXIT_OK)
                return r;
        return run_wait(bus, argv[1], path);
}
