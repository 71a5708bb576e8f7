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

/* The options, set by ctl-options.c. Global options: */
extern bool arg_help;
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

/* Verb-specific options, as bits: a verb lists the ones it accepts (piemuctl.c's verb table), so that
 * "start b --persistent" is an error instead of being silently ignored. */
enum {
        OPT_IMAGE = 1u << 0,
        OPT_PERSISTENT = 1u << 1,
        OPT_CMDLINE = 1u << 2,
        OPT_MODEL = 1u << 3,
        OPT_KERNEL = 1u << 4,
        OPT_DTB = 1u << 5,
        OPT_SD = 1u << 6,
        OPT_INITRD = 1u << 7,
        OPT_DESCRIPTION = 1u << 8,
        OPT_LINES = 1u << 9,
        OPT_NO_NEWLINE = 1u << 10,
        OPT_STATE = 1u << 11,
        OPT_READY = 1u << 12,
        OPT_SERIAL = 1u << 13,
        OPT_PIN = 1u << 14,
        OPT_SINCE_NOW = 1u << 15,
        OPT_I2C = 1u << 16,
        OPT_VCD = 1u << 17,
        OPT_PINS = 1u << 18,
        OPT_DURATION = 1u << 19,
};
extern unsigned arg_seen; /* the OPT_* bits given */

extern const char *arg_image;
extern bool arg_persistent;
extern const char *arg_cmdline;
extern const char *arg_model;
extern const char *arg_kernel;
extern const char *arg_dtb;
extern const char *arg_sd;
extern const char *arg_initrd;
extern const char *arg_description;
extern unsigned arg_lines;
extern bool arg_no_newline;
extern char **arg_i2c;             /* create --i2c=DEVICE@ADDRESS, repeatable */
extern const char *arg_vcd;        /* trace --vcd=FILE */
extern const char *arg_trace_pins; /* trace --pins=LIST */
extern uint64_t arg_duration_usec; /* trace --duration=TIME; 0: until Ctrl-C */

/* ctl-options.c */
/* Returns 1 to run a verb, 0 to exit successfully (--version), < 0 to exit with that status negated. */
int ctl_parse_argv(int argc, char *argv[]);
/* Refuses verb options the verb does not take. Returns an exit status. */
int ctl_check_verb_options(const char *verb, unsigned accepted);

/* ctl-output.c */
int ctl_oom(void); /* says so; returns CTL_EXIT_FAILURE */
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
int ctl_open_board(char *argv[], sd_bus **ret_bus, char **ret_path);
/* The same, then run(bus, name, path): a verb that lives on one board. Returns an exit status. */
typedef int (*ctl_board_run_t)(sd_bus *bus, const char *name, const char *path);
int ctl_run_on_board(char *argv[], ctl_board_run_t run);
int ctl_check_name(const char *kind, const char *name);
int ctl_daemon_owner(sd_bus *bus, char **ret_unique);
uint64_t ctl_call_timeout(uint64_t verb_default);
void ctl_note_call_timeout(uint64_t timeout_usec);
void polkit_agent_open_if_enabled(void);
void polkit_agent_close(void);

/* The verbs, by family. Each takes its arguments from the verb's name on and returns an exit status. */

/* ctl-boards.c */
const char *ctl_owner_name(uint32_t uid, char *buf, size_t size);
int verb_list(int argc, char *argv[]);
int verb_create(int argc, char *argv[]);
int verb_start(int argc, char *argv[]);
int verb_stop(int argc, char *argv[]);
int verb_restart(int argc, char *argv[]);
int verb_delete(int argc, char *argv[]);
int verb_models(int argc, char *argv[]);

/* ctl-status.c */
int verb_status(int argc, char *argv[]);

/* ctl-images.c */
int ctl_open_image_file(const char *what, const char *path, int *ret_fd);
int verb_images(int argc, char *argv[]);
int verb_import_image(int argc, char *argv[]);
int verb_remove_image(int argc, char *argv[]);

/* ctl-import.c */
int ctl_spool_stdin(int *ret_fd);
int ctl_import_over_ssh(const char *name, const char *file);

/* ctl-console.c */
int verb_console(int argc, char *argv[]);
int verb_send(int argc, char *argv[]);

/* ctl-watch.c */
int verb_watch(int argc, char *argv[]);
int verb_wait(int argc, char *argv[]);
/* pins: mask of BCM pins to record; duration_usec 0 or USEC_INFINITY: until Ctrl-C or the board
 * stops. */
int run_trace(sd_bus *bus, const char *name, const char *path, FILE *out, const char *out_name,
              uint64_t pins, uint64_t duration_usec);

/* ctl-pins.c */
int ctl_parse_pin(const char *s, uint32_t *ret);
int ctl_parse_level(const char *s, bool *ret); /* 0, 1, low, high */
int verb_set_pin(int argc, char *argv[]);
int verb_get_pin(int argc, char *argv[]);
int verb_pins(int argc, char *argv[]);
int verb_trace(int argc, char *argv[]);

/* ctl-wires.c */
int verb_wire(int argc, char *argv[]);
int verb_unwire(int argc, char *argv[]);
int verb_wires(int argc, char *argv[]);
int verb_set_sensor(int argc, char *argv[]);
