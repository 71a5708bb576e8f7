/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* polkit-probe: exercises src/daemon/polkit.c against the real polkitd.
 *
 *   polkit-probe BUS-NAME [--manual-loop]
 *
 * Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured, so a private bus works too),
 * takes BUS-NAME and serves /org/piemu/test/PolkitProbe, interface org.piemu.test.PolkitProbe:
 *
 *   Check(s action) -> u            polkit_verify_async(action, board=probe-board, verb=check);
 *                                   returns how many times the handler ran for this call
 *                                   (a client's first call runs once more: it waits for the bus
 *                                   to say the caller's uid; then 1: decided at once, e.g. root;
 *                                   2: answered by polkitd)
 *   CheckBoard(s action, s board) -> u  the same with board=BOARD
 *   CheckTwo(s first, s second) -> u  verifies two actions in one call, one after the other
 *   CheckParallel(s first, s second) -> u  asks both at once (ignores the first 0): one reply
 *   Stats() -> uuuuu                handler runs, CheckAuthorization queries sent, live registry
 *                                   entries, clients whose uid is cached, uid questions to the bus
 *
 * --manual-loop drives the bus with sd_bus_process()/sd_bus_wait() and no sd-event loop, the mode in
 * which answers are freed when consumed instead of at idle time.
 *
 * Prints "READY" on stdout once the name is owned. SIGTERM/SIGINT exit cleanly (exit status 0),
 * freeing the registry with whatever is pending, so a sanitizer build reports leaks. */

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "peers.h"
#include "polkit.h"

#define PROBE_PATH      "/org/piemu/test/PolkitProbe"
#define PROBE_INTERFACE "org.piemu.test.PolkitProbe"

static PolkitRegistry *registry;
static unsigned n_runs;

/* Handler runs per call, keyed by (sender, cookie): a small ring is plenty for a test driver. */
static struct {
        char sender[64];
        uint64_t cookie;
        unsigned runs;
} seen[64];
static unsigned seen_next;

static unsigned count_run(sd_bus_message *m) {
        const char *sender = strempty(sd_bus_message_get_sender(m));
        uint64_t cookie = 0;
        unsigned i;

        (void)sd_bus_message_get_cookie(m, &cookie);
        n_runs++;
        for (i = 0; i < ELEMENTSOF(seen); i++)
                if (seen[i].cookie == cookie && streq(seen[i].sender, sender))
                        return ++seen[i].runs;

        i = seen_next++ % ELEMENTSOF(seen);
        snprintf(seen[i].sender, sizeof(seen[i].sender), "%s", sender);
        seen[i].cookie = cookie;
        seen[i].runs = 1;
        return 1;
}

static const char *probe_details[] = {"board", "probe-board", "verb", "check", NULL};

static int method_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *action, *board = "probe-board";
        unsigned runs;
        int r;

        runs = count_run(m);

        r = sd_bus_message_read(m, "s", &action);
        if (r < 0)
                return r;
        if (sd_bus_message_has_signature(m, "ss")) {
                r = sd_bus_message_read(m, "s", &board);
                if (r < 0)
                        return r;
        }

        const char *details[] = {"board", board, "verb", "check", NULL};
        r = polkit_verify_async(m, action, details, registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* the bus or polkitd will answer; we run again then */

        return sd_bus_reply_method_return(m, "u", runs);
}

static int method_check_two(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *first, *second;
        unsigned runs;
        int r;

        runs = count_run(m);

        r = sd_bus_message_read(m, "ss", &first, &second);
        if (r < 0)
                return r;

        r = polkit_verify_async(m, first, probe_details, registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        r = polkit_verify_async(m, second, probe_details, registry, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        return sd_bus_reply_method_return(m, "u", runs);
}

static int method_check_parallel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *first, *second;
        unsigned runs;
        int r1, r2, r;

        runs = count_run(m);

        r = sd_bus_message_read(m, "ss", &first, &second);
        if (r < 0)
                return r;

        r1 = polkit_verify_async(m, first, probe_details, registry, error);
        if (r1 < 0)
                return r1;
        r2 = polkit_verify_async(m, second, probe_details, registry, error);
        if (r2 < 0)
                return r2;
        if (r1 == 0 || r2 == 0)
                return 1;

        return sd_bus_reply_method_return(m, "u", runs);
}

static int method_stats(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, "uuuuu", n_runs, polkit_registry_n_sent(registry),
                                          polkit_registry_size(registry), polkit_registry_n_uids(registry),
                                          polkit_registry_n_uid_lookups(registry));
}

static const sd_bus_vtable probe_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Check", SD_BUS_ARGS("s", action), SD_BUS_RESULT("u", runs), method_check,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckBoard", SD_BUS_ARGS("s", action, "s", board), SD_BUS_RESULT("u", runs),
                                method_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckTwo", SD_BUS_ARGS("s", first, "s", second), SD_BUS_RESULT("u", runs),
                                method_check_two, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckParallel", SD_BUS_ARGS("s", first, "s", second),
                                SD_BUS_RESULT("u", runs), method_check_parallel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "Stats", SD_BUS_NO_ARGS,
                SD_BUS_RESULT("u", runs, "u", queries, "u", registry, "u", uids, "u", lookups), method_stats,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static volatile sig_atomic_t quit;

static void on_signal(int sig) {
        quit = 1;
}

/* Without sd-event: process until idle, then wait; a signal interrupts the wait (-EINTR). */
static Peers *peers;

static void on_peer_gone(const char *name, void *userdata) {
        polkit_registry_forget(registry, name);
}

static int manual_loop(sd_bus *bus) {
        struct sigaction sa = {.sa_handler = on_signal};
        int r;

        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -errno;

        while (!quit) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool manual = false;
        sigset_t mask;
        int r;

        if (argc == 3 && streq(argv[2], "--manual-loop"))
                manual = true;
        else if (argc != 2) {
                fprintf(stderr, "usage: %s BUS-NAME [--manual-loop]\n", argv[0]);
                return 2;
        }

        r = polkit_registry_new(&registry);
        if (r < 0)
                return 1;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, PROBE_PATH, PROBE_INTERFACE, probe_vtable, NULL);
        /* As in piemud: one subscription to callers leaving, which forgets their uids and questions. */
        if (r >= 0)
                r = peers_new(&peers);
        if (r >= 0)
                r = peers_attach(peers, bus);
        if (r >= 0)
                r = peers_add_handler(peers, on_peer_gone, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, argv[1], 0);
        if (r < 0) {
                fprintf(stderr, "bus: %s\n", strerror(-r));
                registry = polkit_registry_free(registry);
                return 1;
        }

        if (manual) {
                printf("READY\n");
                fflush(stdout);
                r = manual_loop(bus);
        } else {
                sigemptyset(&mask);
                sigaddset(&mask, SIGTERM);
                sigaddset(&mask, SIGINT);
                r = sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ? -errno : 0;
                if (r >= 0)
                        r = sd_event_default(&event);
                if (r >= 0)
                        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
                if (r >= 0)
                        r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
                if (r >= 0)
                        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
                if (r >= 0) {
                        printf("READY\n");
                        fflush(stdout);
                        r = sd_event_loop(event);
                }
        }

        /* Cancel what is pending before the bus goes away. */
        registry = polkit_registry_free(registry);
        peers = peers_free(peers);
        if (r < 0) {
                fprintf(stderr, "loop: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
