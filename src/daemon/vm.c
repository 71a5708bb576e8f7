/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "board-config.h"
#include "macro.h"

static void virDomainFreep(virDomainPtr *d) {
        if (*d)
                virDomainFree(*d);
}
static void virStoragePoolFreep(virStoragePoolPtr *p) {
        if (*p)
                virStoragePoolFree(*p);
}
static void virStorageVolFreep(virStorageVolPtr *v) {
        if (*v)
                virStorageVolFree(*v);
}
#define _cleanup_domain_ _cleanup_(virDomainFreep)
#define _cleanup_pool_   _cleanup_(virStoragePoolFreep)
#define _cleanup_vol_    _cleanup_(virStorageVolFreep)

/* Turns libvirt's last error into (negative errno, message). */
static int fail(const char *what, char **ret_error) {
        virErrorPtr e = virGetLastError();
        int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
        const char *msg = e && e->message ? e->message : "unknown libvirt error";
        int r;

        switch (code) {
        case VIR_ERR_NO_DOMAIN:
        case VIR_ERR_NO_STORAGE_VOL:
        case VIR_ERR_NO_STORAGE_POOL:
                r = -ENOENT;
                break;
        case VIR_ERR_OPERATION_INVALID:
                r = -EBUSY;
                break;
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_SYSTEM_ERROR:
        case VIR_ERR_RPC:
                r = strstr(msg, "Address already in use") ? -EADDRINUSE : -ECONNREFUSED;
                break;
        default:
                r = strstr(msg, "Address already in use") ? -EADDRINUSE : -EIO;
        }
        if (ret_error) {
                free(*ret_error);
                if (asprintf(ret_error, "%s: %s", what, msg) < 0)
                        *ret_error = NULL;
        }
        virResetLastError();
        return r;
}

int vm_connect(const char *uri, virConnectPtr *ret, char **ret_error) {
        virConnectPtr c = virConnectOpen(uri);
        if (!c)
                return fail("cannot connect to libvirt", ret_error);
        *ret = c;
        return 0;
}

int vm_ensure_pool(virConnectPtr c, const char *pool, const char *path, char **ret_error) {
        _cleanup_pool_ virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);
        _cleanup_free_ char *xml = NULL;
        int r, active;

        if (!p) {
                virResetLastError();
                r = pool_xml_build(pool, path, &xml);
                if (r < 0)
                        return r;
                p = virStoragePoolDefineXML(c, xml, 0);
                if (!p)
                        return fail("cannot define storage pool", ret_error);
                if (virStoragePoolBuild(p, 0) < 0)
                        return fail("cannot build storage pool", ret_error);
                /* Autostart so that libvirtd restarts bring the pool back without piemud. */
                (void)virStoragePoolSetAutostart(p, 1);
        }
        active = virStoragePoolIsActive(p);
        if (active < 0)
                return fail("cannot query storage pool", ret_error);
        if (!active && virStoragePoolCreate(p, 0) < 0)
                return fail("cannot start storage pool", ret_error);
        /* Volumes made by an earlier run must be known to the pool. */
        if (virStoragePoolRefresh(p, 0) < 0)
                return fail("cannot refresh storage pool", ret_error);
        return 0;
}

int vm_define(virConnectPtr c, const char *xml, char *ret_uuid, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = virDomainDefineXML(c, xml);
        if (!d)
                return fail("cannot define domain", ret_error);
        if (ret_uuid && virDomainGetUUIDString(d, ret_uuid) < 0)
                return fail("cannot read the domain UUID", ret_error);
        return 0;
}

static int lookup(virConnectPtr c, const char *domain, virDomainPtr *ret, char **ret_error) {
        virDomainPtr d = virDomainLookupByName(c, domain);
        if (!d)
                return fail("cannot find domain", ret_error);
        *ret = d;
        return 0;
}

int vm_start_paused(virConnectPtr c, const char *domain, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r = lookup(c, domain, &d, ret_error);
        if (r < 0)
                return r;
        if (virDomainCreateWithFlags(d, VIR_DOMAIN_START_PAUSED) < 0)
                return fail("cannot start domain", ret_error);
        return 0;
}

int vm_resume(virConnectPtr c, const char *domain, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r = lookup(c, domain, &d, ret_error);
        if (r < 0)
                return r;
        if (virDomainResume(d) < 0)
                return fail("cannot resume domain", ret_error);
        return 0;
}

int vm_destroy(virConnectPtr c, const char *domain, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r = lookup(c, domain, &d, ret_error);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = virDomainIsActive(d);
        if (r == 0)
                return 0;
        if (virDomainDestroy(d) < 0) {
                r = fail("cannot stop domain", ret_error);
                /* It may have gone down by itself in between. */
                return virDomainIsActive(d) == 0 ? 0 : r;
        }
        return 0;
}

int vm_undefine(virConnectPtr c, const char *domain, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r = lookup(c, domain, &d, ret_error);
        if (r == -ENOENT) {
                if (ret_error) {
                        free(*ret_error);
                        *ret_error = NULL;
                }
                return 0;
        }
        if (r < 0)
                return r;
        if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                              VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0)
                return fail("cannot undefine domain", ret_error);
        return 0;
}

int vm_set_metadata(virConnectPtr c, const char *domain, const char *element, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = virDomainLookupByName(c, domain);
        unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
        int active;

        if (!d)
                return fail("cannot find the domain", ret_error);
        active = virDomainIsActive(d);
        if (active < 0)
                return fail("cannot ask whether the domain runs", ret_error);
        if (active)
                flags |= VIR_DOMAIN_AFFECT_LIVE;
        if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, element, PIEMU_METADATA_PREFIX,
                                 PIEMU_METADATA_URI, flags) < 0) {
                if (!active)
                        return fail("cannot save the board's settings", ret_error);
                /* It stopped in between: the persistent definition is what counts. */
                virResetLastError();
                if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, element, PIEMU_METADATA_PREFIX,
                                         PIEMU_METADATA_URI, VIR_DOMAIN_AFFECT_CONFIG) < 0)
                        return fail("cannot save the board's settings", ret_error);
        }
        return 0;
}

int vm_qmp(virConnectPtr c, const char *domain, const char *command, char **ret_reply, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = virDomainLookupByName(c, domain);
        char *reply = NULL;

        if (!d)
                return fail("cannot find the domain", ret_error);
        if (virDomainQemuMonitorCommand(d, command, &reply, VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT) < 0)
                return fail("QEMU refused", ret_error);
        *ret_reply = reply;
        return 0;
}

int vm_is_active(virConnectPtr c, const char *domain, bool *ret_active, bool *ret_paused, char **ret_error) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int state = 0, reason = 0;
        int r = lookup(c, domain, &d, ret_error);
        if (r < 0)
                return r;
        if (virDomainGetState(d, &state, &reason, 0) < 0)
                return fail("cannot get domain state", ret_error);
        *ret_active =
                state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_CRASHED && state != VIR_DOMAIN_NOSTATE;
        *ret_paused = state == VIR_DOMAIN_PAUSED;
        return 0;
}

static int lookup_pool(virConnectPtr c, const char *pool, virStoragePoolPtr *ret, char **ret_error) {
        virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);
        if (!p)
                return fail("cannot find storage pool", ret_error);
        *ret = p;
        return 0;
}

int vm_volume_delete(virConnectPtr c, const char *pool, const char *vol, char **ret_error) {
        _cleanup_pool_ virStoragePoolPtr p = NULL;
        _cleanup_vol_ virStorageVolPtr v = NULL;
        int r = lookup_pool(c, pool, &p, ret_error);
        if (r < 0)
                return r;
        v = virStorageVolLookupByName(p, vol);
        if (!v) {
                virResetLastError();
                return 0;
        }
        if (virStorageVolDelete(v, 0) < 0)
                return fail("cannot delete overlay volume", ret_error);
        return 0;
}

int vm_volume_exists(virConnectPtr c, const char *pool, const char *vol, bool *ret, char **ret_error) {
        _cleanup_pool_ virStoragePoolPtr p = NULL;
        _cleanup_vol_ virStorageVolPtr v = NULL;
        int r = lookup_pool(c, pool, &p, ret_error);
        if (r < 0)
                return r;
        v = virStorageVolLookupByName(p, vol);
        if (!v)
                virResetLastError();
        *ret = !!v;
        return 0;
}

int vm_volume_create(virConnectPtr c, const char *pool, const char *vol, const char *xml, bool replace,
                     char **ret_error) {
        _cleanup_pool_ virStoragePoolPtr p = NULL;
        _cleanup_vol_ virStorageVolPtr v = NULL;
        int r = lookup_pool(c, pool, &p, ret_error);
        if (r < 0)
                return r;
        v = virStorageVolLookupByName(p, vol);
        if (v) {
                if (!replace)
                        return 0;
                if (virStorageVolDelete(v, 0) < 0)
                        return fail("cannot replace overlay volume", ret_error);
                virStorageVolFree(v);
        } else
                virResetLastError();
        v = virStorageVolCreateXML(p, xml, 0);
        if (!v)
                return fail("cannot create overlay volume", ret_error);
        return 0;
}

void vm_domain_info_free_many(VmDomainInfo *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].name);
                free(l[i].metadata);
        }
        free(l);
}

int vm_list_piemu_domains(virConnectPtr c, VmDomainInfo **ret, size_t *ret_n, char **ret_error) {
        virDomainPtr *doms = NULL;
        VmDomainInfo *l = NULL;
        size_t n = 0;
        int k, r = 0;

        k = virConnectListAllDomains(c, &doms, 0);
        if (k < 0)
                return fail("cannot list domains", ret_error);
        l = calloc((size_t)k + 1, sizeof *l);
        if (!l)
                r = -ENOMEM;
        for (int i = 0; i < k; i++) {
                const char *name = virDomainGetName(doms[i]);
                int state = 0, reason = 0;
                if (r >= 0 && name && board_name_from_domain(name)) {
                        l[n].name = strdup(name);
                        if (!l[n].name)
                                r = -ENOMEM;
                        l[n].metadata = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT,
                                                             PIEMU_METADATA_URI, VIR_DOMAIN_AFFECT_CONFIG);
                        if (!l[n].metadata)
                                virResetLastError();
                        if (virDomainGetUUIDString(doms[i], l[n].uuid) < 0)
                                virResetLastError();
                        if (virDomainGetState(doms[i], &state, &reason, 0) >= 0) {
                                l[n].active = state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_CRASHED &&
                                              state != VIR_DOMAIN_NOSTATE;
                                l[n].paused = state == VIR_DOMAIN_PAUSED;
                                l[n].crashed = state == VIR_DOMAIN_CRASHED ||
                                               (state == VIR_DOMAIN_SHUTOFF &&
                                                reason == VIR_DOMAIN_SHUTOFF_CRASHED);
                        } else
                                virResetLastError();
                        if (l[n].active) {
                                /* The live definition says how its lines were made. */
                                _cleanup_free_ char *xml = virDomainGetXMLDesc(doms[i], 0);
                                if (xml) {
                                        l[n].tls_lines = domain_xml_has_tls_lines(xml);
                                        l[n].qtest = domain_xml_has_qtest(xml);
                                        l[n].piemu_qemu = domain_xml_runs_piemu_qemu(xml);
                                } else
                                        virResetLastError();
                        }
                        n++;
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        if (r < 0) {
                vm_domain_info_free_many(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}
