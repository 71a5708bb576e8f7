/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Declarations shared by the piemuctl source files. The program is small enough that options live in
 * globals (like systemd's arg_* variables); everything else is passed explicitly. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "error-table.h"
#include "macro.h"

/* Exit codes (CTL_EXIT_*) come with the error table they are part of: error-table.h. Verb functions
 * return one of them; helpers return negative errno. */

#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

#define PIEMU_BUS_NAME      "org.piemu"
#define PIEMU_MANAGER_PATH  "/org/piemu"
#define PIEMU_MANAGER_IFACE "org.piemu.Manager"
#define PIEMU_BOARD_IFACE   "org.piemu.Board"
#define PIEMU_N_PINS        54u

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
} JsonMode;

/* Global options. */
extern JsonMode arg_json;
extern bool arg_no_pager;
extern bool arg_legend;
extern bool arg_ask_password;
extern bool arg_quiet;
extern bool arg_user;
extern const char *arg_host;      /* -H: [USER@]HOST[:PORT], reached over ssh; NULL = this host */
extern uint64_t arg_timeout_usec; /* 0 = not given */

/* wait options */
extern const char *arg_wait_state;
extern bool arg_wait_ready;
extern const char *arg_wait_serial;
extern int arg_wait_pin; /* -1 = not given */
extern bool arg_wait_pin_value;
extern bool arg_since_now;

/* ctl-output.c */
char *escape_for_terminal(const void *data, size_t size, bool keep_newline);
size_t utf8_display_width(const char *s);
void format_timestamp(char *buf, size_t size, uint64_t usec);
int parse_timeout(const char *s, uint64_t *ret_usec);
char *format_timespan(char *buf, size_t size, uint64_t usec);

typedef struct JsonWriter {
        FILE *f;
        bool pretty;
        unsigned depth;
        bool need_comma;
        bool after_key;
} JsonWriter;

void json_init(JsonWriter *w, FILE *f, JsonMode mode);
void json_open(JsonWriter *w, char bracket);
void json_close(JsonWriter *w, char bracket);
void json_key(JsonWriter *w, const char *key);
void json_string(JsonWriter *w, const char *s);
void json_text(JsonWriter *w, const void *data, size_t size);
void json_uint(JsonWriter *w, uint64_t v);
void json_bool(JsonWriter *w, bool b);
void json_null(JsonWriter *w);
void json_finish(JsonWriter *w);

typedef struct Table Table;
Table *table_new(size_t n_columns, const char *const *headers);
int table_add_row(Table *t, const char *const *cells);
void table_print(Table *t, FILE *f);
size_t table_rows(const Table *t);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

void pager_open(void);
void pager_close(void);

/* ctl-list.c: the list verbs' output, a table or (--json) an array of objects. */
typedef struct ListColumn {
        const char *header;   /* the table's column, or NULL: in JSON only */
        const char *json_key; /* the JSON object's key, or NULL: in the table only */
        bool number;          /* a JSON number: the cell holds decimal digits */
} ListColumn;

typedef struct List List;
List *list_new(const ListColumn *columns, size_t n_columns);
/* Copies one cell per column. */
int list_add(List *l, const char *const *cells);
/* By the first column. */
void list_sort(List *l);
/* Opens the pager, then prints JSON, or the table (if there are rows) and, unless --no-legend,
 * "N <what>s listed." or if_none. Returns an exit status. */
int list_print(const List *l, const char *what, const char *if_none);
List *list_free(List *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(List *, list_free);

/* ctl-bus.c */
typedef struct RemoteHost {
        char *destination; /* what ssh connects to: [USER@]HOST, an IPv6 address without brackets */
        char *port;        /* digits, or NULL for ssh's default */
} RemoteHost;

int remote_host_parse(const char *s, RemoteHost *ret);
void remote_host_done(RemoteHost *h);
int ctl_bus(sd_bus **ret);
void ctl_bus_close(void);
const char *ctl_bus_description(void);
const char *ctl_on_host(void);
int ctl_error(const sd_bus_error *error, int r, const char *action, const char *board, const char *image);
int ctl_new_call(sd_bus *bus, sd_bus_message **ret, const char *path, const char *iface, const char *member);
int ctl_call_message(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, bool interactive,
                     sd_bus_message **ret_reply, const char *action, const char *board, const char *image);
int ctl_call(sd_bus *bus, const char *path, const char *iface, const char *member, uint64_t timeout_usec,
             bool interactive, sd_bus_message **ret_reply, const char *action, const char *board,
             const char *image, const char *types, ...);
int ctl_board_path(sd_bus *bus, const char *name, char **ret_path);
int ctl_check_name(const char *kind, const char *name);
int ctl_daemon_owner(sd_bus *bus, char **ret_unique);
uint64_t ctl_call_timeout(uint64_t verb_default);
void ctl_note_call_timeout(uint64_t timeout_usec);
void polkit_agent_open_if_enabled(void);
void polkit_agent_close(void);

/* ctl-console.c */
int run_console(sd_bus *bus, const char *name, const char *path);

/* ctl-watch.c */
int run_watch(sd_bus *bus, const char *name, const char *path);
int run_wait(sd_bus *bus, const char *name, const char *path);
/* pins: mask of BCM pins to record; duration_usec 0 or USEC_INFINITY: until Ctrl-C or the board
 * stops. */
int run_trace(sd_bus *bus, const char *name, const char *path, FILE *out, const char *out_name,
              uint64_t pins, uint64_t duration_usec);

/* ctl-wires.c */
int verb_wire(int argc, char *argv[]);
int verb_unwire(int argc, char *argv[]);
int verb_wires(int argc, char *argv[]);
int verb_set_sensor(int argc, char *argv[]);

/* piemuctl.c */
int ctl_parse_pin(const char *s, uint32_t *ret);
