/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* watchers.c on a real, private dbus-daemon: guest bytes reach a watcher complete, in order
 * and coalesced; a listener that did not watch gets nothing, even with a match on everything;
 * a watcher that left gets nothing more; a long bus queue pauses the serial line and the
 * line resumes once the queue drains. The serial peer is a loopback socket standing in for
 * QEMU, as in bench/. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "serial.h"
#include "tests.h"
#include "peers.h"
#include "watchers.h"

#define PATH "/org/piemu/board/test"

typedef struct Client {
        sd_bus *bus;
        bool count_only; /* keep only the length and the last bytes */
        uint8_t *data;
        size_t len, cap;
        uint8_t tail[8];
        unsigned serial_signals, gpio_signals;
        unsigned last_pin;
        int last_value;
        uint64_t last_ts;
} Client;

static sd_event *event;
static pid_t bus_pid;
static char bus_address[512];

static void stop_private_bus(void) {
        if (bus_pid <= 0)
                return;
        kill(bus_pid, SIGTERM);
        waitpid(bus_pid, NULL, 0);
        bus_pid = 0;
}

static void start_private_bus(void) {
        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        bus_pid = fork();
        CHECK(bus_pid >= 0);
        if (bus_pid == 0) {
                char fdarg[32];
                int fd = dup(p[1]); /* without O_CLOEXEC, for dbus-daemon */
                /* The bus dies with the test, even one that aborts under ASan, and never holds
                 * the test's stdout open for whoever reads it. */
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDOUT_FILENO);
                snprintf(fdarg, sizeof fdarg, "--print-address=%d", fd);
                execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile", fdarg,
                       (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        ssize_t n = read(p[0], bus_address, sizeof bus_address - 1);
        CHECK(n > 0);
        bus_address[strcspn(bus_address, "\n")] = 0;
        close(p[0]);
        atexit(stop_private_bus); /* CHECK() failures exit(1) */
}

static sd_bus *connect_bus(void) {
        sd_bus *bus = NULL;
        CHECK(sd_bus_new(&bus) >= 0);
        CHECK(sd_bus_set_address(bus, bus_address) >= 0);
        CHECK(sd_bus_set_bus_client(bus, true) >= 0);
        CHECK(sd_bus_start(bus) >= 0);
        CHECK(sd_bus_attach_event(bus, event, 0) >= 0);
        return bus;
}

static int on_serial_output(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        const void *p;
        size_t n;
        CHECK(sd_bus_message_read_array(m, 'y', &p, &n) >= 0);
        if (n >= sizeof c->tail)
                memcpy(c->tail, (const uint8_t *)p + n - sizeof c->tail, sizeof c->tail);
        else {
                memmove(c->tail, c->tail + n, sizeof c->tail - n);
                memcpy(c->tail + sizeof c->tail - n, p, n);
        }
        if (c->count_only) {
                c->len += n;
                c->serial_signals++;
                return 0;
        }
        if (c->len + n > c->cap) {
                c->cap = (c->len + n) * 2;
                c->data = realloc(c->data, c->cap);
                CHECK(c->data);
        }
        memcpy(c->data + c->len, p, n);
        c->len += n;
        c->serial_signals++;
        return 0;
}

static int on_gpio_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        CHECK(sd_bus_message_read(m, "ubt", &c->last_pin, &c->last_value, &c->last_ts) >= 0);
        c->gpio_signals++;
        return 0;
}

static void client_init(Client *c) {
        *c = (Client){.bus = connect_bus()};
        /* A match on everything of the interface: what a curious user on the bus would add. */
        CHECK(sd_bus_match_signal(c->bus, NULL, NULL, NULL, "org.piemu.Board", "SerialOutput",
                                  on_serial_output, c) >= 0);
        CHECK(sd_bus_match_signal(c->bus, NULL, NULL, NULL, "org.piemu.Board", "GpioChanged",
                                  on_gpio_changed, c) >= 0);
}

static void client_done(Client *c) {
        sd_bus_flush_close_unref(c->bus);
        free(c->data);
}

/* Runs the loop until pred() holds, for at most about 10 s. */
static void run_until(bool (*pred)(void *), void *userdata) {
        for (int i = 0; i < 10000 && !pred(userdata); i++)
                CHECK(sd_event_run(event, 1000) >= 0);
        CHECK(pred(userdata));
}

static void run_for_ms(unsigned ms) {
        for (unsigned i = 0; i < ms; i++)
                CHECK(sd_event_run(event, 1000) >= 0);
}

typedef struct Wait {
        Client *c;
        size_t len;
} Wait;

static bool has_len(void *userdata) {
        Wait *w = userdata;
        return w->c->len >= w->len;
}

static void add_watcher(Watchers *w, sd_bus *daemon_bus, Client *c) {
        const char *unique;
        CHECK(sd_bus_get_unique_name(c->bus, &unique) >= 0);
        CHECK(watchers_add_name(w, daemon_bus, unique) == 1);
        CHECK(watchers_add_name(w, daemon_bus, unique) == 0); /* once is enough */
}

/* As in piemud: the daemon's one subscription to callers leaving tells the watchers. */
static Watchers *current;
static void on_peer_gone(const char *name, void *userdata) {
        if (current)
                watchers_forget(current, name);
}

/* A loopback pair: `peer` is the guest's end, the Serial is piemud's. */
typedef struct Line {
        int listen_fd, peer;
        Serial *serial;
        Watchers *watchers;
        bool up;
} Line;

static void on_line_state(Serial *s, int error, void *userdata) {
        Line *l = userdata;
        CHECK(error == 0);
        l->up = true;
}

static void on_line_data(Serial *s, const uint8_t *data, size_t n, void *userdata) {
        Line *l = userdata;
        watchers_push_output(l->watchers, data, n);
}

static bool line_up(void *userdata) {
        return ((Line *)userdata)->up;
}

static void line_open(Line *l, Watchers *w) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        *l = (Line){.watchers = w};
        l->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(l->listen_fd >= 0);
        CHECK(bind(l->listen_fd, (struct sockaddr *)&a, sizeof a) == 0);
        CHECK(listen(l->listen_fd, 1) == 0);
        CHECK(getsockname(l->listen_fd, (struct sockaddr *)&a, &len) == 0);
        CHECK(serial_connect(
                      event, ntohs(a.sin_port),
                      &(SerialCallbacks){.on_data = on_line_data, .on_state = on_line_state, .userdata = l},
                      &l->serial) >= 0);
        l->peer = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        CHECK(l->peer >= 0);
        run_until(line_up, l);
        watchers_attach(w, l->serial);
}

static void line_close(Line *l, Watchers *w) {
        watchers_detach(w);
        l->serial = serial_free(l->serial);
        close(l->peer);
        close(l->listen_fd);
}

static void test_output_reaches_only_watchers(sd_bus *daemon_bus) {
        Watchers w;
        Client watcher, listener;
        Line line;
        enum { SIZE = 1 << 20 };
        uint8_t *pattern = malloc(SIZE);

        CHECK(pattern);
        for (size_t i = 0; i < SIZE; i++)
                pattern[i] = (uint8_t)(i % 251);
        watchers_init(&w, PATH, "test");
        client_init(&watcher);
        client_init(&listener);
        add_watcher(&w, daemon_bus, &watcher);
        CHECK(watchers_count(&w) == 1);
        line_open(&line, &w);

        /* The guest writes 1 MiB in pieces; the loop reads and forwards as it goes. */
        for (size_t off = 0; off < SIZE;) {
                ssize_t n =
                        send(line.peer, pattern + off, SIZE - off < 4096 ? SIZE - off : 4096, MSG_DONTWAIT);
                if (n > 0)
                        off += (size_t)n;
                else
                        CHECK(errno == EAGAIN);
                CHECK(sd_event_run(event, 0) >= 0);
        }
        run_until(has_len, &(Wait){&watcher, SIZE});
        CHECK(watcher.len == SIZE);
        CHECK(memcmp(watcher.data, pattern, SIZE) == 0);
        /* Coalesced: never one signal per write, let alone per byte. */
        CHECK(watcher.serial_signals >= SIZE / WATCHERS_COALESCE_MAX);
        CHECK(watcher.serial_signals < SIZE / 4096);
        CHECK(w.n_bytes == SIZE);

        CHECK(watchers_emit(&w, "GpioChanged", "ubt", 23u, 1, UINT64_C(123456)) >= 0);
        for (int i = 0; i < 1000 && watcher.gpio_signals == 0; i++)
                CHECK(sd_event_run(event, 1000) >= 0);
        CHECK(watcher.gpio_signals == 1);
        CHECK(watcher.last_pin == 23 && watcher.last_value == 1 && watcher.last_ts == 123456);

        /* Give stray signals time to arrive before saying none did. */
        run_for_ms(50);
        CHECK(listener.len == 0 && listener.serial_signals == 0 && listener.gpio_signals == 0);

        line_close(&line, &w);
        watchers_done(&w);
        client_done(&watcher);
        client_done(&listener);
        free(pattern);
}

static void test_watcher_that_left_gets_nothing(sd_bus *daemon_bus) {
        Watchers w;
        Client a, b;

        watchers_init(&w, PATH, "test");
        client_init(&a);
        client_init(&b);
        add_watcher(&w, daemon_bus, &a);
        add_watcher(&w, daemon_bus, &b);
        CHECK(watchers_count(&w) == 2);
        current = &w;
        watchers_push_output(&w, (const uint8_t *)"hello", 5);
        /* Small output waits for the coalescing timer; sd-event's default accuracy (250 ms)
         * once held a quiet guest's prompt back that long. */
        uint64_t accuracy = UINT64_MAX;
        CHECK(w.flush_timer);
        CHECK(sd_event_source_get_time_accuracy(w.flush_timer, &accuracy) >= 0);
        CHECK(accuracy <= 1000);
        run_until(has_len, &(Wait){&a, 5});
        run_until(has_len, &(Wait){&b, 5});
        CHECK(memcmp(a.data, "hello", 5) == 0 && memcmp(b.data, "hello", 5) == 0);

        /* b disconnects: forgotten once the bus says it left (one match rule for all callers). */
        client_done(&b);
        for (int i = 0; i < 1000 && watchers_count(&w) != 1; i++)
                CHECK(sd_event_run(event, 1000) >= 0);
        CHECK(watchers_count(&w) == 1);
        watchers_push_output(&w, (const uint8_t *)"again", 5);
        run_until(has_len, &(Wait){&a, 10});
        CHECK(memcmp(a.data + 5, "again", 5) == 0);

        /* Output held but not yet sent is dropped with the line, not sent later. */
        watchers_push_output(&w, (const uint8_t *)"lost", 4);
        watchers_detach(&w);
        run_for_ms(20);
        CHECK(a.len == 10);

        current = NULL;
        watchers_done(&w);
        client_done(&a);
}

static bool resumed(void *userdata) {
        Watchers *w = userdata;
        return !w->throttle_timer;
}

static void test_long_queue_pauses_the_line(sd_bus *daemon_bus) {
        enum { SIGNALS_MAX = 1000 };
        size_t pushed = 0;
        Watchers w;
        Client watcher;
        Line line;
        uint8_t *chunk = malloc(WATCHERS_COALESCE_MAX);
        uint64_t queued = 0;

        CHECK(chunk);
        memset(chunk, 'x', WATCHERS_COALESCE_MAX);
        watchers_init(&w, PATH, "test");
        client_init(&watcher);
        watcher.count_only = true;
        add_watcher(&w, daemon_bus, &watcher);
        line_open(&line, &w);

        /* Faster than dbus-daemon can take it: the queue grows past the bound and the line
         * pauses. Whether dbus-daemon keeps up for a while depends on the machine and its load
         * (a busy 2-core host once let it drain 1000 signals as fast as they came), so it is
         * stopped (our own child: SIGSTOP by PID) while we push, and the bound must be reached. */
        CHECK(kill(bus_pid, SIGSTOP) == 0);
        while (w.n_pauses == 0 && pushed < SIGNALS_MAX) {
                watchers_push_output(&w, chunk, WATCHERS_COALESCE_MAX);
                pushed++;
        }
        CHECK(kill(bus_pid, SIGCONT) == 0);
        CHECK(w.n_pauses == 1);
        CHECK(w.throttle_timer);
        CHECK(sd_bus_get_n_queued_write(daemon_bus, &queued) >= 0);
        CHECK(queued > WATCHERS_BUS_QUEUE_MAX);

        /* While paused, what the guest writes waits in TCP, not in piemud. */
        CHECK(write(line.peer, "after", 5) == 5);
        run_until(resumed, &w);
        run_until(has_len, &(Wait){&watcher, pushed * WATCHERS_COALESCE_MAX + 5});
        CHECK(watcher.len == pushed * WATCHERS_COALESCE_MAX + 5);
        CHECK(memcmp(watcher.tail + sizeof watcher.tail - 5, "after", 5) == 0);
        fprintf(stderr, "paused after %zu signals of %u KiB\n", pushed, WATCHERS_COALESCE_MAX / 1024);

        line_close(&line, &w);
        watchers_done(&w);
        client_done(&watcher);
        free(chunk);
}

int main(void) {
        sd_bus *daemon_bus;

        signal(SIGPIPE, SIG_IGN);
        CHECK(sd_event_new(&event) >= 0);
        start_private_bus();
        daemon_bus = connect_bus();
        Peers *peers = NULL;
        CHECK(peers_new(&peers) >= 0);
        CHECK(peers_attach(peers, daemon_bus) >= 0);
        CHECK(peers_add_handler(peers, on_peer_gone, NULL) >= 0);

        test_output_reaches_only_watchers(daemon_bus);
        test_watcher_that_left_gets_nothing(daemon_bus);
        test_long_queue_pauses_the_line(daemon_bus);

        CHECK(peers_n_gone(peers) >= 1);
        peers_free(peers);
        sd_bus_flush_close_unref(daemon_bus);
        sd_event_unref(event);
        stop_private_bus();
        printf("test-watchers: ok\n");
        return 0;
}
