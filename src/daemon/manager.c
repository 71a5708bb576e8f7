/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "board.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "peers.h"
#include "polkit.h"
#include "virt-event.h"
#include "vm.h"

#define WORKER_THREADS 4

static void on_libvirt_closed(virConnectPtr conn, int reason, void *opaque);

int manager_new(sd_event *e, Manager **ret) {
        Manager *m = calloc(1, sizeof *m);
        int r;

        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->lifecycle_cb = m->reboot_cb = -1;
        m->libvirt_uri = strdup(PIEMU_LIBVIRT_URI);
        m->images_dir = strdup(PIEMU_IMAGES_DIR);
        m->tls_dir = strdup(TLS_DIR_DEFAULT);
        m->qemu_uid = (uid_t)-1;
        m->pool_dir = strdup(PIEMU_POOL_DIR);
        if (!m->libvirt_uri || !m->images_dir || !m->pool_dir || !m->tls_dir) {
                manager_free(m);
                return -ENOMEM;
        }
        r = worker_pool_new(e, WORKER_THREADS, &m->workers);
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
        m->exiting = true;
        /* Finish libvirt work first: its done callbacks still reference boards. */
        m->workers = worker_pool_free(m->workers);
        for (size_t i = 0; i < m->n_boards; i++)
                board_free(m->boards[i]);
        free(m->boards);
        m->polkit = polkit_registry_free(m->polkit);
        m->peers = peers_free(m->peers);
        if (m->conn) {
                (void)virConnectUnregisterCloseCallback(m->conn, on_libvirt_closed);
                virResetLastError();
                if (m->lifecycle_cb >= 0)
                        virConnectDomainEventDeregisterAny(m->conn, m->lifecycle_cb);
                if (m->reboot_cb >= 0)
                        virConnectDomainEventDeregisterAny(m->conn, m->reboot_cb);
                virConnectClose(m->conn);
        }
        sd_bus_flush_close_unref(m->bus);
        free(m->libvirt_uri);
        free(m->images_dir);
        free(m->pool_dir);
        free(m->emulator);
        free(m->tls_dir);
        tls_creds_unref(m->tls);
        sd_event_unref(m->event);
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

void manager_remove_board(Manager *m, Board *b) {
        bool announced = b->op != BOARD_OP_DEFINE;

        for (size_t i = 0; i < m->n_boards; i++)
                if (m->boards[i] == b) {
                        memmove(m->boards + i, m->boards + i + 1, (m->n_boards - i - 1) * sizeof(Board *));
                        m->n_boards--;
                        break;
                }
        if (announced && m->bus && !m->exiting) {
                (void)sd_bus_emit_object_removed(m->bus, b->path);
                (void)sd_bus_emit_signal(m->bus, "/org/piemu", "org.piemu.Manager", "BoardRemoved", "so",
                                         b->config.name, b->path);
        }
        board_free(b);
}

int manager_tls(Manager *m, TlsCreds **ret, char **ret_problem) {
        int r;

        if (!m->tls) {
                /* A few small local files: read on the loop, like the image catalog's meta. */
                r = tls_creds_load(m->tls_dir, &m->tls, ret_problem);
                if (r < 0)
                        return r;
                log_info("TLS credentials for the serial lines loaded from %s", m->tls_dir);
        }
        *ret = m->tls;
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

static void on_libvirt_closed(virConnectPtr conn, int reason, void *opaque) {
        Manager *m = opaque;

        if (m->exiting)
                return;
        /* Everything piemud knows lives in libvirt, and a restarted piemud re-attaches to running
         * boards; so the simplest correct answer to a lost libvirtd is to exit and be restarted
         * (Restart=on-failure) rather than serve stale state. */
        log_error("Lost the connection to libvirtd (reason %d); exiting so that piemud is restarted. "
                  "Running boards keep running.",
                  reason);
        m->libvirt_lost = true;
        (void)sd_event_exit(m->event, -ECONNRESET);
}

static void quiet_libvirt_errors(void *userdata, virErrorPtr error) {
        /* libvirt prints every error to stderr by default; piemud reports the ones that matter itself. */
}

int manager_connect_libvirt(Manager *m) {
        _cleanup_free_ char *err = NULL;
        int r;

        virSetErrorFunc(NULL, quiet_libvirt_errors);
        r = virt_event_register(m->event);
        if (r < 0)
                return log_error_errno(r, "Cannot hook libvirt into the event loop: %m");
        /* Start-up is the one place where blocking on libvirt is fine: nobody is served yet. */
        r = vm_connect(m->libvirt_uri, &m->conn, &err);
        if (r < 0)
                return log_error_errno(r, "%s (is libvirtd running? piemud needs %s)", strempty(err),
                                       m->libvirt_uri);
        r = vm_ensure_pool(m->conn, PIEMU_POOL_NAME, m->pool_dir, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the overlay storage pool %s at %s: %s",
                                       PIEMU_POOL_NAME, m->pool_dir, strempty(err));
        if (virConnectRegisterCloseCallback(m->conn, on_libvirt_closed, m, NULL) < 0)
                virResetLastError(); /* not fatal: only a lost libvirtd goes unnoticed */
        m->lifecycle_cb = virConnectDomainEventRegisterAny(m->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                           VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), m, NULL);
        m->reboot_cb = virConnectDomainEventRegisterAny(m->conn, NULL, VIR_DOMAIN_EVENT_ID_REBOOT,
                                                        VIR_DOMAIN_EVENT_CALLBACK(on_reboot), m, NULL);
        if (m->lifecycle_cb < 0 || m->reboot_cb < 0) {
                r = log_error_errno(-EIO, "Cannot subscribe to libvirt domain events: %s",
                                    virGetLastErrorMessage());
                virResetLastError();
                return r;
        }
        log_info("Connected to %s", m->libvirt_uri);
        return 0;
}

int manager_load_boards(Manager *m) {
        _cleanup_free_ char *err = NULL;
        VmDomainInfo *l = NULL;
        size_t n = 0;
        int r;

        r = vm_list_piemu_domains(m->conn, &l, &n, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot list domains: %s", strempty(err));
        for (size_t i = 0; i < n; i++) {
                BoardConfig c = {};
                Board *b = NULL;
                if (!l[i].metadata || metadata_xml_parse(l[i].metadata, &c) < 0) {
                        log_warning("Domain %s has no valid piemu metadata, ignoring it", l[i].name);
                        continue;
                }
                if (!streq(board_name_from_domain(l[i].name), c.name)) {
                        log_warning("Domain %s carries metadata of board %s, ignoring it", l[i].name,
                                    c.name);
                        board_config_done(&c);
                        continue;
                }
                r = board_new(m, &c, &b);
                board_config_done(&c);
                if (r >= 0)
                        memcpy(b->uuid, l[i].uuid, sizeof b->uuid);
                if (r < 0 || manager_add_board(m, b) < 0) {
                        board_free(b);
                        vm_domain_info_free_many(l, n);
                        return log_oom();
                }
                if (l[i].active) {
                        log_info("board %s: found %s, taking over its lines", b->config.name,
                                 l[i].paused ? "paused" : "running");
                        (void)board_attach(b, l[i].paused, !l[i].tls_lines);
                } else
                        log_debug("board %s: found, stopped", b->config.name);
        }
        log_info("Found %zu board(s) in libvirt", m->n_boards);
        vm_domain_info_free_many(l, n);
        return 0;
}
