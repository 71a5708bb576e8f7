/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

/* Thin, blocking wrappers over libvirt. They are called from worker threads (or at
 * start-up, before the bus name is taken), never from a bus handler. Each returns
 * 0 or a negative errno and, on failure, a malloc'd message in *ret_error built
 * from libvirt's thread-local last error. */

int vm_connect(const char *uri, virConnectPtr *ret, char **ret_error);
int vm_ensure_pool(virConnectPtr c, const char *pool, const char *path, char **ret_error);

/* ret_uuid: VIR_UUID_STRING_BUFLEN bytes, or NULL. */
int vm_define(virConnectPtr c, const char *xml, char *ret_uuid, char **ret_error);
int vm_start_paused(virConnectPtr c, const char *domain, char **ret_error);
int vm_resume(virConnectPtr c, const char *domain, char **ret_error);
/* Power cut. Succeeds when the domain is already off. */
int vm_destroy(virConnectPtr c, const char *domain, char **ret_error);
/* Succeeds when the domain does not exist. */
int vm_undefine(virConnectPtr c, const char *domain, char **ret_error);
/* Replaces piemu's metadata element (`element`: "<board>...</board>") in the persistent definition,
 * and in the live one when the domain runs, so that what is read back at start-up is current. */
int vm_set_metadata(virConnectPtr c, const char *domain, const char *element, char **ret_error);
/* Sends one QMP command to the domain's QEMU through libvirt; *ret_reply is QEMU's JSON answer. */
int vm_qmp(virConnectPtr c, const char *domain, const char *command, char **ret_reply, char **ret_error);
int vm_is_active(virConnectPtr c, const char *domain, bool *ret_active, bool *ret_paused, char **ret_error);

/* Creates the volume; with replace, an existing one is deleted first (a fresh overlay). */
int vm_volume_create(virConnectPtr c, const char *pool, const char *vol, const char *xml, bool replace,
                     char **ret_error);
/* Succeeds when the volume does not exist. */
int vm_volume_delete(virConnectPtr c, const char *pool, const char *vol, char **ret_error);
int vm_volume_exists(virConnectPtr c, const char *pool, const char *vol, bool *ret, char **ret_error);

typedef struct VmDomainInfo {
        char *name;
        char *metadata; /* piemu's metadata element, or NULL */
        char uuid[VIR_UUID_STRING_BUFLEN];
        bool active;
        bool paused;
        bool crashed;    /* inactive because it crashed */
        bool tls_lines;  /* active, and its serial lines are TLS (else plain TCP from an older piemu) */
        bool qtest;      /* active, and QEMU has a qtest channel (the agentless GPIO path) */
        bool piemu_qemu; /* active, and piemu's own QEMU runs it (qemu-flavor.h) */
} VmDomainInfo;
int vm_list_piemu_domains(virConnectPtr c, VmDomainInfo **ret, size_t *ret_n, char **ret_error);
void vm_domain_info_free_many(VmDomainInfo *l, size_t n);
