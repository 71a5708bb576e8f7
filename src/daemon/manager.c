/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"
#include "manager-wires.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board-dbus.h"
#include "board.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "peers.h"
#include "polkit.h"
#include "virt-event.h"
#include "vm.h"

#define WORKER_THREADS 4
#define IMPORT_THREADS 2
/* Reconnecting to libvirtd: the first try after RECONNECT_FIRST_USEC, then doubling up to the maximum. */
#define RECONNECT_FIRST_USEC (200 * UINT64_C(1000))
#define RECONNECT_MAX_USEC   (5 * UINT64_C(1000000))

static void on_libvirt_closed(virConnectPtr conn, int reason, void *opaque);
static int on_gc(sd_event_source *s, void *userdata);

/* ---- what boards report (BoardHooks): the manager sends the signals and drives the wires ---- */

static void hook_state_changed(Board *b, void *userdata) {
        Manager *m = userdata;

        board_emit_property(m->bus, b, "State");
        if (b->state == BOARD_RUNNING)
                manager_wires_board_up(m, b);
}

static void hook_property_changed(Board *b, const char *property, void *userdata) {
        Manager *m = userdata;
        board_emit_property(m->bus, b, property);
}

static void hook_pins_up(Board *b, void *userdata) {
        manager_wires_board_up(userdata, b);
}

static void hook_pin_changed(Board *b, unsigned pin, bool value, uint64_t seen_usec, void *userdata) {
        if (b->config.n_wires > 0)
                manager_wires_propagate(userdata, b, pin, value, seen_usec);
}

static void hook_defined(Board *b, void *userdata) {
        manager_emit_board_added(userdata, b);
}

static void hook_gone(Board *b, void *userdata) {
        manager_remove_board(userdata, b);
}

static const BoardHooks board_hooks = {
        .state_changed = hook_state_changed,
        .property_changed = hook_property_changed,
        .pins_up = hook_pins_up,
        .pin_changed = hook_pin_changed,
        .defined = hook_defined,
        .gone = hook_gone,
};

int manager_new(sd_event *e, Manager **ret) {
        Manager *m = calloc(1, sizeof *m);
        int r;

        if (!m)
                return -ENOMEM;
        m->host.event = sd_event_ref(e);
        m->host.hooks = &board_hooks;
        m->host.userdata = m;
        m->lifecycle_cb = m->reboot_cb = -1;
        m->libvirt_efd = -EBADF;
        m->libvirt_uri = strdup(PIEMU_LIBVIRT_URI);
        m->images_dir = strdup(PIEMU_IMAGES_DIR);
        m->host.tls_dir = strdup(TLS_DIR_DEFAULT);
        m->host.qemu_uid = (uid_t)-1;
        m->pool_dir = strdup(PIEMU_POOL_DIR);
        if (!m->libvirt_uri || !m->images_dir || !m->pool_dir || !m->host.tls_dir) {
                manager_free(m);
                return -ENOMEM;
        }
        r = sd_event_add_defer(e, &m->gc_source, on_gc, m);
        if (r >= 0) {
                (void)sd_event_source_set_description(m->gc_source, "board-gc");
                r = sd_event_source_set_enabled(m->gc_source, SD_EVENT_OFF);
        }
        if (r >= 0)
                r = worker_pool_new(e, WORKER_THREADS, &m->host.workers);
        if (r >= 0)
                r = worker_pool_new(e, IMPORT_THREADS, &m->import_workers);
        if (r >= 0)
                r = polkit_registry_new(&m->polkit);
        if (r >= 0)
                r = peers_new(&m->peers);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->host.exiting = true;
        /* Finish libvirt work first: its done callbacks still reference boards. */
        m->host.workers = worker_pool_free(m->host.workers);
        m->import_workers = worker_pool_free(m->import_workers);
        for (size_t i = 0; i < m->n_boards; i++) {
                board_level_waits_cancel(m->boards[i]);
                board_shut(m->boards[i]);
                board_unref(m->boards[i]);
        }
        free(m->boards);
        on_gc(NULL, m);
        free(m->gc);
        sd_event_source_disable_unref(m->gc_source);
        m->polkit = polkit_registry_free(m->polkit);
        m->peers = peers_free(m->peers);
        if (m->host.conn) {
                (void)virConnectUnregisterCloseCallback(m->host.conn, on_libvirt_closed);
                virResetLastError();
                if (m->lifecycle_cb >= 0)
                        virConnectDomainEventDeregisterAny(m->host.conn, m->lifecycle_cb);
                if (m->reboot_cb >= 0)
                        virConnectDomainEventDeregisterAny(m->host.conn, m->reboot_cb);
                virConnectClose(m->host.conn);
        }
        sd_event_source_disable_unref(m->reconnect_timer);
        sd_event_source_disable_unref(m->libvirt_efd_source);
        safe_close(m->libvirt_efd);
        sd_bus_flush_close_unref(m->bus);
        free(m->libvirt_uri);
        free(m->images_dir);
        free(m->pool_dir);
        free(m->host.emulator);
        free(m->host.tls_dir);
        free(m->host.qtest_dir);
        tls_creds_unref(m->host.tls);
        sd_event_unref(m->host.event);
        free(m);
        return NULL;
}

Board *manager_find_board(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_boards; i++)
                if (streq(m->boards[i]->config.name, name))
                        return m->boards[i];
        return NULL;
}

int manager_add_board(Manager *m, Board *b) {
        if (m->n_boards == m->n_alloc) {
                size_t n = m->n_alloc ? m->n_alloc * 2 : 16;
                Board **nb = realloc(m->boards, n * sizeof(Board *));
                if (!nb)
                        return -ENOMEM;
                m->boards = nb;
                m->n_alloc = n;
        }
        m->boards[m->n_boards++] = b;
        return 0;
}

static int on_gc(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        for (size_t i = 0; i < m->n_gc; i++)
                board_unref(m->gc[i]);
        m->n_gc = 0;
        return 0;
}

void manager_remove_board(Manager *m, Board *b) {
        bool announced = b->announced;
        Board **ng;

        if (b->removed)
                return;
        manager_wires_board_gone(m, b);
        /* Announced while the object still answers: InterfacesRemoved lists its interfaces. */
        if (announced && m->bus && !m->host.exiting)
                manager_emit_board_removed(m, b);
        board_level_waits_cancel(b);
        board_shut(b);
        for (size_t i = 0; i < m->n_boards; i++)
                if (m->boards[i] == b) {
                        memmove(m->boards + i, m->boards + i + 1, (m->n_boards - i - 1) * sizeof(Board *));
                        m->n_boards--;
                        break;
                }
        /* Freed later from the loop, never from inside the board's own callbacks (this may be one). */
        ng = realloc(m->gc, (m->n_gc + 1) * sizeof *ng);
        if (!ng || !m->gc_source) {
                if (ng)
                        m->gc = ng;
                /* Cannot defer: leak it rather than free it under a callback's feet. */
                log_oom();
                return;
        }
        m->gc = ng;
        m->gc[m->n_gc++] = b;
        (void)sd_event_source_set_enabled(m->gc_source, SD_EVENT_ONESHOT);
}

int manager_set_qtest_dir(Manager *m, const char *dir) {
        struct stat st;
        const char *problem = NULL;
        char *copy;

        /* At start-up, before anything is served: a blocking stat is fine. */
        if (dir[0] != '/')
                problem = "not an absolute path";
        else if (stat(dir, &st) < 0)
                problem = errno == ENOENT ? "missing (tools/start-services.sh or systemd-tmpfiles makes it)"
                                          : "cannot be read";
        else if (!S_ISDIR(st.st_mode))
                problem = "not a directory";
        else if (st.st_uid != geteuid())
                problem = "not owned by piemud's user";
        else if (st.st_mode & 0007)
                problem = "open to other users";
        else if (m->host.qemu_uid != (uid_t)-1 && m->host.qemu_uid != 0 && !(st.st_mode & S_ISGID))
                problem = "not set-group-ID (QEMU could not connect to the sockets)";
        if (problem) {
                log_warning(
                        "Not using %s for qtest channels: %s. Boards get GPIO through a guest shim only.",
                        dir, problem);
                return 0;
        }
        copy = strdup(dir);
        if (!copy)
                return log_oom();
        free(m->host.qtest_dir);
        m->host.qtest_dir = copy;
        log_info("qtest channels for agentless GPIO in %s", dir);
        return 0;
}

bool manager_image_in_use(Manager *m, const char *image) {
        for (size_t i = 0; i < m->n_boards; i++)
                if (streq(m->boards[i]->config.image, image))
                        return true;
        return false;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        Manager *m = opaque;
        const char *name = board_name_from_domain(virDomainGetName(dom));
        Board *b = name ? manager_find_board(m, name) : NULL;

        if (!b)
                return 0;
        log_debug("board %s: libvirt lifecycle event %d/%d", name, event, detail);
        if (event == VIR_DOMAIN_EVENT_STOPPED)
                board_domain_stopped(b, detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ||
                                                detail == VIR_DOMAIN_EVENT_STOPPED_FAILED);
        else if (event == VIR_DOMAIN_EVENT_CRASHED)
                board_domain_stopped(b, true);
        return 0;
}

static int on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque) {
        Manager *m = opaque;
        const char *name = board_name_from_domain(virDomainGetName(dom));
        Board *b = name ? manager_find_board(m, name) : NULL;
        if (b)
                board_guest_rebooted(b);
        return 0;
}

/* libvirt calls this on whichever thread noticed (often a worker inside an RPC): only say so to the
 * loop, which does the rest. */
static void on_libvirt_closed(virConnectPtr conn, int reason, void *opaque) {
        Manager *m = opaque;
        uint64_t one = 1;

        __atomic_store_n(&m->libvirt_close_reason, reason, __ATOMIC_RELAXED);
        /* An eventfd write cannot block, and only fails on overflow. */
        (void)!write(m->libvirt_efd, &one, sizeof one);
}

static void arm_reconnect(Manager *m);
static void reconcile_boards(Manager *m, VmDomainInfo *l, size_t n);

/* Loop thread. Boards keep running and their lines stay up (they do not go through libvirtd); calls
 * that need libvirt answer Unavailable until piemud is connected again. */
static void libvirt_lost(Manager *m) {
        virConnectPtr c;

        /* Exiting: manager_free() closes the connection. Not connected: already handled. */
        if (!m->host.conn || m->host.exiting)
                return;
        c = TAKE_PTR(m->host.conn);
        log_error("Lost the connection to libvirtd (reason %d); reconnecting. Running boards keep running; "
                  "Start, Stop, CreateBoard and DeleteBoard answer org.piemu.Error.Unavailable meanwhile.",
                  __atomic_load_n(&m->libvirt_close_reason, __ATOMIC_RELAXED));
        /* The connection is dead: these only drop libvirt's local state. Jobs in flight keep their own
         * references and fail with libvirt's error. */
        (void)virConnectUnregisterCloseCallback(c, on_libvirt_closed);
        if (m->lifecycle_cb >= 0)
                (void)virConnectDomainEventDeregisterAny(c, m->lifecycle_cb);
        if (m->reboot_cb >= 0)
                (void)virConnectDomainEventDeregisterAny(c, m->reboot_cb);
        m->lifecycle_cb = m->reboot_cb = -1;
        virResetLastError();
        virConnectClose(c);
        m->reconnect_usec = 0;
        arm_reconnect(m);
}

static int on_libvirt_efd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        (void)!read(fd, &v, sizeof v);
        libvirt_lost(userdata);
        return 0;
}

/* Everything a (re)connection needs that blocks: on a worker thread. */
typedef struct Connect {
        Manager *m;
        char *uri, *pool_dir;
        virConnectPtr conn;
        int lifecycle_cb, reboot_cb;
        VmDomainInfo *domains;
        size_t n_domains;
        char *error;
        int r;
} Connect;

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque);
static int on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque);

static int subscribe(Manager *m, virConnectPtr c, int *ret_lifecycle, int *ret_reboot) {
        if (virConnectRegisterCloseCallback(c, on_libvirt_closed, m, NULL) < 0)
                virResetLastError(); /* not fatal: only a lost libvirtd goes unnoticed */
        *ret_lifecycle = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                          VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), m, NULL);
        *ret_reboot = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_REBOOT,
                                                       VIR_DOMAIN_EVENT_CALLBACK(on_reboot), m, NULL);
        if (*ret_lifecycle < 0 || *ret_reboot < 0) {
                virResetLastError();
                return -EIO;
        }
        return 0;
}

static void connect_work(void *userdata) {
        Connect *c = userdata;
        int r;

        r = vm_connect(c->uri, &c->conn, &c->error);
        if (r >= 0)
                r = vm_ensure_pool(c->conn, PIEMU_POOL_NAME, c->pool_dir, &c->error);
        if (r >= 0 && subscribe(c->m, c->conn, &c->lifecycle_cb, &c->reboot_cb) < 0) {
                r = -EIO;
                c->error = strdup("cannot subscribe to libvirt domain events");
        }
        if (r >= 0)
                r = vm_list_piemu_domains(c->conn, &c->domains, &c->n_domains, &c->error);
        c->r = r;
}

static void connect_done(void *userdata) {
        Connect *c = userdata;
        Manager *m = c->m;

        m->reconnecting = false;
        if (c->r < 0 || m->host.exiting) {
                if (c->conn) {
                        (void)virConnectUnregisterCloseCallback(c->conn, on_libvirt_closed);
                        virResetLastError();
                        virConnectClose(c->conn);
                }
                if (!m->host.exiting) {
                        log_debug("Reconnecting to libvirtd failed: %s", strempty(c->error));
                        arm_reconnect(m);
                }
        } else {
                m->host.conn = c->conn;
                m->lifecycle_cb = c->lifecycle_cb;
                m->reboot_cb = c->reboot_cb;
                log_info("Connected to %s again; checking %zu board(s) against it", m->libvirt_uri,
                         m->n_boards);
                reconcile_boards(m, c->domains, c->n_domains);
        }
        vm_domain_info_free_many(c->domains, c->n_domains);
        free(c->uri);
        free(c->pool_dir);
        free(c->error);
        free(c);
}

static int on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        Connect *c;

        if (m->host.conn || m->reconnecting || m->host.exiting)
                return 0;
        c = calloc(1, sizeof *c);
        if (!c || !(c->uri = strdup(m->libvirt_uri)) || !(c->pool_dir = strdup(m->pool_dir))) {
                if (c)
                        free(c->uri);
                free(c);
                arm_reconnect(m);
                return 0;
        }
        c->m = m;
        c->lifecycle_cb = c->reboot_cb = -1;
        if (worker_submit(m->host.workers, connect_work, connect_done, c) < 0) {
                free(c->uri);
                free(c->pool_dir);
                free(c);
                arm_reconnect(m);
                return 0;
        }
        m->reconnecting = true;
        return 0;
}

static void arm_reconnect(Manager *m) {
        m->reconnect_usec = m->reconnect_usec == 0
                                    ? RECONNECT_FIRST_USEC
                                    : (m->reconnect_usec * 2 > RECONNECT_MAX_USEC ? RECONNECT_MAX_USEC
                                                                                  : m->reconnect_usec * 2);
        if (!m->reconnect_timer) {
                if (sd_event_add_time_relative(m->host.event, &m->reconnect_timer, CLOCK_MONOTONIC,
                                               m->reconnect_usec, 10 * 1000, on_reconnect_timer, m) < 0)
                        log_error("Cannot schedule reconnecting to libvirtd: piemud stays without it");
                return;
        }
        (void)sd_event_source_set_time_relative(m->reconnect_timer, m->reconnect_usec);
        (void)sd_event_source_set_enabled(m->reconnect_timer, SD_EVENT_ONESHOT);
}

static void quiet_libvirt_errors(void *userdata, virErrorPtr error) {
        /* libvirt prints every error to stderr by default; piemud reports the ones that matter itself. */
}

int manager_connect_libvirt(Manager *m) {
        _cleanup_free_ char *err = NULL;
        int r;

        virSetErrorFunc(NULL, quiet_libvirt_errors);
        m->libvirt_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->libvirt_efd < 0)
                return log_error_errno(negative_errno(), "Cannot create an eventfd: %m");
        r = sd_event_add_io(m->host.event, &m->libvirt_efd_source, m->libvirt_efd, EPOLLIN, on_libvirt_efd,
                            m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the eventfd: %m");
        r = virt_event_register(m->host.event);
        if (r < 0)
                return log_error_errno(r, "Cannot hook libvirt into the event loop: %m");
        /* Start-up is the one place where blocking on libvirt is fine: nobody is served yet. */
        r = vm_connect(m->libvirt_uri, &m->host.conn, &err);
        if (r < 0)
                return log_error_errno(r, "%s (is libvirtd running? piemud needs %s)", strempty(err),
                                       m->libvirt_uri);
        r = vm_ensure_pool(m->host.conn, PIEMU_POOL_NAME, m->pool_dir, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the overlay storage pool %s at %s: %s",
                                       PIEMU_POOL_NAME, m->pool_dir, strempty(err));
        if (subscribe(m, m->host.conn, &m->lifecycle_cb, &m->reboot_cb) < 0)
                return log_error_errno(-EIO, "Cannot subscribe to libvirt domain events");
        log_info("Connected to %s", m->libvirt_uri);
        return 0;
}

/* A board for a piemu domain found in libvirt (at start-up, or after a reconnect). */
static int add_found_board(Manager *m, const VmDomainInfo *d) {
        BoardConfig c = {};
        Board *b = NULL;
        int r;

        if (!d->metadata || metadata_xml_parse(d->metadata, &c) < 0) {
                log_warning("Domain %s has no valid piemu metadata, ignoring it", d->name);
                return 0;
        }
        if (!streq(board_name_from_domain(d->name), c.name)) {
                log_warning("Domain %s carries metadata of board %s, ignoring it", d->name, c.name);
                board_config_done(&c);
                return 0;
        }
        r = board_new(&m->host, &c, &b);
        board_config_done(&c);
        if (r >= 0)
                memcpy(b->uuid, d->uuid, sizeof b->uuid);
        if (r < 0 || manager_add_board(m, b) < 0) {
                board_unref(b);
                return log_oom();
        }
        b->announced = true;
        if (m->host.loaded) {
                manager_emit_board_added(m, b);
        }
        if (d->active) {
                log_info("board %s: found %s, taking over its lines", b->config.name,
                         d->paused ? "paused" : "running");
                (void)board_attach(b, d);
        } else
                log_debug("board %s: found, stopped", b->config.name);
        return 0;
}

static const VmDomainInfo *find_domain(const VmDomainInfo *l, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(l[i].name, name))
                        return &l[i];
        return NULL;
}

/* After a reconnect: what libvirt says now wins over what piemud remembers. Operations in flight
 * end by themselves (their jobs fail or succeed) and are left alone. */
static void reconcile_boards(Manager *m, VmDomainInfo *l, size_t n) {
        for (size_t i = 0; i < m->n_boards;) {
                Board *b = m->boards[i];
                const VmDomainInfo *d = find_domain(l, n, b->domain);

                if (b->op != BOARD_OP_NONE) {
                        i++;
                        continue;
                }
                if (!d) {
                        log_info("board %s: its domain is gone from libvirt; forgetting the board",
                                 b->config.name);
                        manager_remove_board(m, b); /* shifts the array: same i again */
                        continue;
                }
                board_reconcile(b, d);
                i++;
        }
        for (size_t i = 0; i < n; i++)
                if (!manager_find_board(m, board_name_from_domain(l[i].name)))
                        (void)add_found_board(m, &l[i]);
        manager_wires_prune(m);
}

int manager_load_boards(Manager *m) {
        _cleanup_free_ char *err = NULL;
        VmDomainInfo *l = NULL;
        size_t n = 0;
        int r;

        r = vm_list_piemu_domains(m->host.conn, &l, &n, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot list domains: %s", strempty(err));
        for (size_t i = 0; i < n; i++) {
                r = add_found_board(m, &l[i]);
                if (r < 0) {
                        vm_domain_info_free_many(l, n);
                        return r;
                }
        }
        log_info("Found %zu board(s) in libvirt", m->n_boards);
        vm_domain_info_free_many(l, n);
        manager_wires_prune(m);
        m->host.loaded = true;
        return 0;
}
