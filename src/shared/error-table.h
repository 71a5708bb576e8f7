/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one table of the errors piemud's callers see: each D-Bus error name with piemuctl's exit status
 * for it, one sentence a person reads, and piemuctl's own wording. piemud sets the names
 * (piemu-errors.h), piemuctl prints and exits by this table (ctl-bus.c), and the Cockpit page's map
 * (cockpit/errors.js) is generated from it at build time (gen-tables). Pure data and string
 * formatting: no I/O. */

#include <stdbool.h>
#include <stddef.h>

#include "piemu-errors.h"

/* piemuctl's exit statuses. They are part of the interface (documented in --help and piemuctl(1)):
 * scripts branch on them, so never renumber. */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILURE = 1,   /* anything not listed below, e.g. libvirt failed */
        CTL_EXIT_USAGE = 2,     /* bad command line, invalid name/pin/option, unreadable file */
        CTL_EXIT_NOT_FOUND = 3, /* no such board or image */
        CTL_EXIT_STATE = 4,     /* wrong state: not running, already running, busy, already exists */
        CTL_EXIT_ACCESS = 5,    /* access denied / authorization required */
        CTL_EXIT_TIMEOUT = 6,   /* wait timed out, or piemud did not answer in time */
        CTL_EXIT_NO_DAEMON = 7, /* piemud (or the bus) is not reachable */
};

typedef struct PiemuError {
        const char *name; /* the D-Bus error name */
        int exit_code;    /* piemuctl's exit status (CTL_EXIT_*) */
        /* One sentence a person reads, whoever shows it (the Cockpit page does). */
        const char *sentence;
        /* piemud's message carries the detail (libvirt's text, what is wrong with an image): shown
         * after the sentence. */
        bool with_detail;
        /* piemuctl's message and its second line (a hint), templates for piemu_error_expand(); NULL
         * ctl_text: piemuctl words it from how it reached piemud (the bus, -H, polkit's agent). */
        const char *ctl_text;
        const char *ctl_hint;
} PiemuError;

/* In the table's order: piemud's own errors (every name in piemu-errors.h, once), then the bus's
 * and polkit's that callers meet. */
const PiemuError *piemu_errors(size_t *ret_n);
const PiemuError *piemu_error_find(const char *name);

/* What a template may name: {action} (what piemuctl tried, "start the board"), {board}, {image},
 * {message} (piemud's message), {on_host} (" on HOST" with -H, else ""), {version} (piemuctl's).
 * {key:text} is text when the value is empty. NULL values are empty. */
typedef struct PiemuErrorArgs {
        const char *action, *board, *image, *message, *on_host, *version;
} PiemuErrorArgs;

/* Expands a template into a new string. -EINVAL for an unknown or unterminated {key}, -ENOMEM. */
int piemu_error_expand(const char *template, const PiemuErrorArgs *args, char **ret);
