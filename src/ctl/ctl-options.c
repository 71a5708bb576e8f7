/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* piemuctl's command line: the global options, the verb options (each verb lists the ones it takes,
 * see piemuctl.c's verb table), and their parsers. Options live in globals, like systemd's arg_*
 * variables. */

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

JsonMode arg_json = JSON_OFF;
bool arg_no_pager = false;
bool arg_legend = true;
bool arg_ask_password = true;
bool arg_quiet = false;
bool arg_user = false;
const char *arg_host = NULL;
uint64_t arg_timeout_usec = 0;

const char *arg_wait_state = NULL;
bool arg_wait_ready = false;
const char *arg_wait_serial = NULL;
int arg_wait_pin = -1;
bool arg_wait_pin_value = false;
bool arg_since_now = false;

bool arg_help = false;
const char *arg_image = NULL;
bool arg_persistent = false;
const char *arg_cmdline = NULL;
const char *arg_model = NULL;
const char *arg_kernel = NULL;
const char *arg_dtb = NULL;
const char *arg_sd = NULL;
const char *arg_initrd = NULL;
const char *arg_description = NULL;
unsigned arg_lines = 10;
bool arg_no_newline = false;
char **arg_i2c = NULL;             /* create --i2c=DEVICE@ADDRESS, repeatable */
const char *arg_vcd = NULL;        /* trace --vcd=FILE */
const char *arg_trace_pins = NULL; /* trace --pins=LIST */
uint64_t arg_duration_usec = 0;    /* trace --duration=TIME; 0: until Ctrl-C */

unsigned arg_seen = 0;

/* The verb options: each has a bit (a verb lists the ones it takes) and, for the plain ones, where
 * its value goes (a string, or true in a flag); the others are read by parse_verb_option(). */
typedef struct VerbOption {
        unsigned bit;
        const char *name; /* without the leading "--" */
        int has_arg;
        const char **string;
        bool *flag;
} VerbOption;

static const VerbOption verb_options[] = {
        {OPT_IMAGE, "image", required_argument, &arg_image, NULL},
        {OPT_PERSISTENT, "persistent", no_argument, NULL, &arg_persistent},
        {OPT_CMDLINE, "cmdline", required_argument, &arg_cmdline, NULL},
        {OPT_MODEL, "model", required_argument, &arg_model, NULL},
        {OPT_KERNEL, "kernel", required_argument, &arg_kernel, NULL},
        {OPT_DTB, "dtb", required_argument, &arg_dtb, NULL},
        {OPT_SD, "sd", required_argument, &arg_sd, NULL},
        {OPT_INITRD, "initrd", required_argument, &arg_initrd, NULL},
        {OPT_DESCRIPTION, "description", required_argument, &arg_description, NULL},
        {OPT_LINES, "lines", required_argument, NULL, NULL},
        {OPT_NO_NEWLINE, "no-newline", no_argument, NULL, &arg_no_newline},
        {OPT_STATE, "state", required_argument, &arg_wait_state, NULL},
        {OPT_READY, "ready", no_argument, NULL, &arg_wait_ready},
        {OPT_SERIAL, "serial", required_argument, &arg_wait_serial, NULL},
        {OPT_PIN, "pin", required_argument, NULL, NULL},
        {OPT_SINCE_NOW, "since-now", no_argument, NULL, &arg_since_now},
        {OPT_I2C, "i2c", required_argument, NULL, NULL},
        {OPT_VCD, "vcd", required_argument, &arg_vcd, NULL},
        {OPT_PINS, "pins", required_argument, &arg_trace_pins, NULL},
        {OPT_DURATION, "duration", required_argument, NULL, NULL},
};

/* getopt's value for verb_options[i]. */
#define ARG_VERB_OPTION 0x200

static int parse_lines(const char *s) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v > 100000) {
                fprintf(stderr, "Invalid --lines \"%s\": use a number of lines.\n", s);
                return -CTL_EXIT_USAGE;
        }
        arg_lines = (unsigned)v;
        return 0;
}

static int parse_wait_pin(const char *s) {
        _cleanup_free_ char *pin = NULL;
        const char *eq = strchr(s, '=');
        uint32_t p;
        bool v;
        int r;

        if (!eq) {
                fprintf(stderr, "Invalid --pin \"%s\": use PIN=0 or PIN=1, e.g. --pin=17=1.\n", s);
                return -CTL_EXIT_USAGE;
        }
        pin = strndup(s, (size_t)(eq - s));
        if (!pin)
                return -ctl_oom();
        r = ctl_parse_pin(pin, &p);
        if (r == CTL_EXIT_OK)
                r = ctl_parse_level(eq + 1, &v);
        if (r != CTL_EXIT_OK)
                return -r;
        arg_wait_pin = (int)p;
        arg_wait_pin_value = v;
        return 0;
}

static int add_i2c(char *s) {
        size_t n = 0;
        char **l;

        while (arg_i2c && arg_i2c[n])
                n++;
        l = reallocarray(arg_i2c, n + 2, sizeof(char *));
        if (!l)
                return -ctl_oom();
        l[n] = s; /* points into argv: strv_free would be wrong, free(l) only */
        l[n + 1] = NULL;
        arg_i2c = l;
        return 0;
}

static int parse_duration(const char *s) {
        int r = parse_timeout(s, &arg_duration_usec);

        if (r < 0 || arg_duration_usec == 0) {
                fprintf(stderr,
                        "Invalid --duration \"%s\": use seconds (e.g. 10 or 2.5), a unit (500ms, 2min) or "
                        "infinity.\n",
                        s);
                return -CTL_EXIT_USAGE;
        }
        return 0;
}

/* Returns 0, or an exit status negated. */
static int parse_verb_option(const VerbOption *o, char *value) {
        int r = 0;

        if (o->string)
                *o->string = value;
        else if (o->flag)
                *o->flag = true;
        else if (o->bit == OPT_LINES)
                r = parse_lines(value);
        else if (o->bit == OPT_PIN)
                r = parse_wait_pin(value);
        else if (o->bit == OPT_I2C)
                r = add_i2c(value);
        else if (o->bit == OPT_DURATION)
                r = parse_duration(value);
        else
                assert(!"verb option without a parser");
        if (r == 0)
                arg_seen |= o->bit;
        return r;
}

static int parse_json_mode(const char *s) {
        if (!s)
                arg_json = isatty(STDOUT_FILENO) ? JSON_PRETTY : JSON_SHORT;
        else if (streq(s, "short"))
                arg_json = JSON_SHORT;
        else if (streq(s, "pretty"))
                arg_json = JSON_PRETTY;
        else if (streq(s, "off"))
                arg_json = JSON_OFF;
        else {
                fprintf(stderr, "Invalid --json mode \"%s\": use short, pretty or off.\n", s);
                return -CTL_EXIT_USAGE;
        }
        return 0;
}

static int parse_host(const char *s) {
        _cleanup_(remote_host_done) RemoteHost h = {};
        int r;

        r = remote_host_parse(s, &h);
        if (r == -ENOMEM)
                return -ctl_oom();
        if (r < 0) {
                _cleanup_free_ char *e = escape_for_terminal(s, strlen(s), false);
                fprintf(stderr,
                        "Invalid host \"%s\": use [USER@]HOST[:PORT], e.g. pi@lab1 or lab1:2222, with an "
                        "IPv6 "
                        "address in brackets ([fd00::1]:2222).\n",
                        e ?: "?");
                return -CTL_EXIT_USAGE;
        }
        arg_host = s;
        return 0;
}

/* The global options and after them every verb option, for getopt_long. */
static const struct option *long_options(void) {
        static const struct option global[] = {
                {"help", no_argument, NULL, 'h'},       {"version", no_argument, NULL, 'V'},
                {"no-pager", no_argument, NULL, 'P'},   {"no-legend", no_argument, NULL, 'L'},
                {"json", optional_argument, NULL, 'j'}, {"no-ask-password", no_argument, NULL, 'A'},
                {"quiet", no_argument, NULL, 'q'},      {"timeout", required_argument, NULL, 'T'},
                {"user", no_argument, NULL, 'U'},       {"host", required_argument, NULL, 'H'},
        };
        static struct option all[ELEMENTSOF(global) + ELEMENTSOF(verb_options) + 1];

        if (all[0].name)
                return all;
        memcpy(all, global, sizeof(global));
        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                all[ELEMENTSOF(global) + i] = (struct option){verb_options[i].name, verb_options[i].has_arg,
                                                              NULL, ARG_VERB_OPTION + (int)i};
        return all;
}

/* The long-only global options have values outside the short options' string: getopt never hands
 * out 'V', 'P', 'L', 'A', 'T' or 'U' for "-V" and the like, which are unknown options. */
int ctl_parse_argv(int argc, char *argv[]) {
        int c, r;

        /* Usage errors are reported by us, with a pointer to --help. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hjqn:H:", long_options(), NULL)) >= 0) {
                if (c >= ARG_VERB_OPTION) {
                        r = parse_verb_option(&verb_options[c - ARG_VERB_OPTION], optarg);
                        if (r < 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'h':
                        arg_help = true;
                        break;
                case 'V':
                        printf("piemuctl %s\n", PIEMU_VERSION);
                        return 0;
                case 'P':
                        arg_no_pager = true;
                        break;
                case 'L':
                        arg_legend = false;
                        break;
                case 'j':
                        r = parse_json_mode(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'A':
                        arg_ask_password = false;
                        break;
                case 'q':
                        arg_quiet = true;
                        break;
                case 'T':
                        r = parse_timeout(optarg, &arg_timeout_usec);
                        if (r < 0 || arg_timeout_usec == 0) {
                                fprintf(stderr,
                                        "Invalid --timeout \"%s\": use seconds (e.g. 30 or 1.5), a unit "
                                        "(500ms, 2min, 1h) or infinity.\n",
                                        optarg);
                                return -CTL_EXIT_USAGE;
                        }
                        break;
                case 'U':
                        arg_user = true;
                        break;
                case 'H':
                        r = parse_host(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'n':
                        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                                if (verb_options[i].bit == OPT_LINES) {
                                        r = parse_verb_option(&verb_options[i], optarg);
                                        if (r < 0)
                                                return r;
                                }
                        break;
                case ':':
                        fprintf(stderr, "Option %s needs an argument. See 'piemuctl --help'.\n",
                                argv[optind - 1]);
                        return -CTL_EXIT_USAGE;
                case '?':
                default:
                        if (optopt)
                                fprintf(stderr, "Unknown option -%c. See 'piemuctl --help'.\n", optopt);
                        else
                                fprintf(stderr, "Unknown option %s. See 'piemuctl --help'.\n",
                                        argv[optind - 1]);
                        return -CTL_EXIT_USAGE;
                }
        }

        if (arg_host && arg_user) {
                fprintf(stderr, "-H/--host reaches the system bus of another host; it cannot be combined "
                                "with --user.\n");
                return -CTL_EXIT_USAGE;
        }
        /* PIEMU_BUS_ADDRESS names a bus too: rather than guess which one is meant, refuse. */
        if (arg_host && !isempty(getenv("PIEMU_BUS_ADDRESS"))) {
                fprintf(stderr,
                        "-H/--host cannot be used while $PIEMU_BUS_ADDRESS is set: both say which bus to "
                        "talk to. Unset PIEMU_BUS_ADDRESS, or drop -H.\n");
                return -CTL_EXIT_USAGE;
        }
        return 1;
}

int ctl_check_verb_options(const char *verb, unsigned accepted) {
        for (size_t i = 0; i < ELEMENTSOF(verb_options); i++)
                if ((arg_seen & verb_options[i].bit) && !(accepted & verb_options[i].bit)) {
                        fprintf(stderr, "Option --%s does not apply to '%s'. See 'piemuctl %s --help'.\n",
                                verb_options[i].name, verb, verb);
                        return CTL_EXIT_USAGE;
                }
        return CTL_EXIT_OK;
}
