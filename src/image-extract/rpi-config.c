/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "pi-models.h"
#include "rpi-config.h"

static const char *const model_names[_RPI_MODEL_MAX] = {
        [RPI_MODEL_RASPI0] = "raspi0",   [RPI_MODEL_RASPI1AP] = "raspi1ap",
        [RPI_MODEL_RASPI2B] = "raspi2b", [RPI_MODEL_RASPI3AP] = "raspi3ap",
        [RPI_MODEL_RASPI3B] = "raspi3b", [RPI_MODEL_RASPI4B] = "raspi4b",
};

/* Raspberry Pi OS names first (bcm27xx, what its firmware loads), then the upstream kernel's names,
 * flat (32-bit Debian and Raspberry Pi OS's own copies) and under broadcom/ (arm64 kernels). */
static const char *const dtbs_raspi0[] = {"bcm2708-rpi-zero.dtb", "bcm2835-rpi-zero.dtb",
                                          "broadcom/bcm2835-rpi-zero.dtb", NULL};
static const char *const dtbs_raspi1ap[] = {"bcm2708-rpi-a-plus.dtb", "bcm2835-rpi-a-plus.dtb",
                                            "broadcom/bcm2835-rpi-a-plus.dtb", NULL};
static const char *const dtbs_raspi2b[] = {"bcm2709-rpi-2-b.dtb", "bcm2836-rpi-2-b.dtb",
                                           "broadcom/bcm2836-rpi-2-b.dtb", NULL};
static const char *const dtbs_raspi3ap[] = {"bcm2710-rpi-3-a-plus.dtb", "bcm2837-rpi-3-a-plus.dtb",
                                            "broadcom/bcm2837-rpi-3-a-plus.dtb", NULL};
static const char *const dtbs_raspi3b[] = {"bcm2710-rpi-3-b.dtb", "bcm2837-rpi-3-b.dtb",
                                           "broadcom/bcm2837-rpi-3-b.dtb", NULL};
/* The Pi 4's Raspberry Pi OS and upstream dtbs share the name. */
static const char *const dtbs_raspi4b[] = {"bcm2711-rpi-4-b.dtb", "broadcom/bcm2711-rpi-4-b.dtb", NULL};

static const char *const upstream_raspi0[] = {"bcm2835-rpi-zero.dtb", "broadcom/bcm2835-rpi-zero.dtb",
                                              "bcm2708-rpi-zero.dtb", NULL};
static const char *const upstream_raspi1ap[] = {"bcm2835-rpi-a-plus.dtb", "broadcom/bcm2835-rpi-a-plus.dtb",
                                                "bcm2708-rpi-a-plus.dtb", NULL};
static const char *const upstream_raspi2b[] = {"bcm2836-rpi-2-b.dtb", "broadcom/bcm2836-rpi-2-b.dtb",
                                               "bcm2709-rpi-2-b.dtb", NULL};
static const char *const upstream_raspi3ap[] = {
        "bcm2837-rpi-3-a-plus.dtb", "broadcom/bcm2837-rpi-3-a-plus.dtb", "bcm2710-rpi-3-a-plus.dtb", NULL};
static const char *const upstream_raspi3b[] = {"bcm2837-rpi-3-b.dtb", "broadcom/bcm2837-rpi-3-b.dtb",
                                               "bcm2710-rpi-3-b.dtb", NULL};

RpiModel rpi_model_from_string(const char *s) {
        if (!s)
                return _RPI_MODEL_INVALID;
        for (int i = 0; i < _RPI_MODEL_MAX; i++)
                if (streq(s, model_names[i]))
                        return (RpiModel)i;
        return _RPI_MODEL_INVALID;
}

const char *rpi_model_to_string(RpiModel m) {
        return m >= 0 && m < _RPI_MODEL_MAX ? model_names[m] : NULL;
}

uint32_t rpi_model_revision(RpiModel m) {
        /* One table of QEMU's machines for piemud and the extractor: src/shared/pi-models.c. */
        const PiModel *p = pi_model_find(rpi_model_to_string(m));
        return p ? p->revision : 0;
}

const char *const *rpi_model_dtb_names(RpiModel m, bool upstream_first) {
        switch (m) {
        case RPI_MODEL_RASPI0:
                return upstream_first ? upstream_raspi0 : dtbs_raspi0;
        case RPI_MODEL_RASPI1AP:
                return upstream_first ? upstream_raspi1ap : dtbs_raspi1ap;
        case RPI_MODEL_RASPI2B:
                return upstream_first ? upstream_raspi2b : dtbs_raspi2b;
        case RPI_MODEL_RASPI3AP:
                return upstream_first ? upstream_raspi3ap : dtbs_raspi3ap;
        case RPI_MODEL_RASPI3B:
                return upstream_first ? upstream_raspi3b : dtbs_raspi3b;
        case RPI_MODEL_RASPI4B:
                return dtbs_raspi4b;
        default:
                return NULL;
        }
}

static bool model_has_64bit(RpiModel m) {
        return m == RPI_MODEL_RASPI3AP || m == RPI_MODEL_RASPI3B || m == RPI_MODEL_RASPI4B;
}

static bool name_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("._+,~=-", c);
}

bool rpi_boot_name_is_valid(const char *name) {
        size_t n, comp = 0;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > RPI_BOOT_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
                return false;

        for (size_t i = 0; i <= n; i++) {
                if (i == n || name[i] == '/') {
                        size_t len = i - comp;
                        const char *c = name + comp;

                        /* empty ("a//b"), "." and ".." components */
                        if (len == 0 || (len == 1 && c[0] == '.') ||
                            (len == 2 && c[0] == '.' && c[1] == '.'))
                                return false;
                        comp = i + 1;
                        continue;
                }
                if (!name_char_ok(name[i]))
                        return false;
        }
        return true;
}

/* --- config.txt ------------------------------------------------------------------------------- */

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

typedef struct Span {
        const char *p;
        size_t n;
} Span;

static Span span_trim(Span s) {
        while (s.n > 0 && is_blank(s.p[0])) {
                s.p++;
                s.n--;
        }
        while (s.n > 0 && is_blank(s.p[s.n - 1]))
                s.n--;
        return s;
}

static bool span_eq_ci(Span s, const char *word) {
        return strlen(word) == s.n && strncasecmp(s.p, word, s.n) == 0;
}

/* The first blank-separated token of s. */
static Span span_first_token(Span s) {
        size_t i = 0;

        s = span_trim(s);
        while (i < s.n && !is_blank(s.p[i]))
                i++;
        return (Span){s.p, i};
}

/* A printable-ASCII copy of at most 64 bytes of s, for notes about hostile text. */
static void span_sanitize(Span s, char *buf, size_t size) {
        size_t j = 0;

        for (size_t i = 0; i < s.n && j + 4 < size && i < 64; i++)
                buf[j++] = s.p[i] >= 0x20 && s.p[i] < 0x7f ? s.p[i] : '?';
        if (s.n > 64 && j + 4 < size) {
                memcpy(buf + j, "...", 3);
                j += 3;
        }
        buf[j] = '\0';
}

_printf_(2, 3) static int add_note(RpiConfig *c, const char *fmt, ...) {
        char **l;
        char *s;
        va_list ap;
        int r;

        if (c->n_notes >= RPI_CONFIG_MAX_NOTES)
                return 0;
        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        l = realloc(c->notes, (c->n_notes + 2) * sizeof(char *));
        if (!l) {
                free(s);
                return -ENOMEM;
        }
        l[c->n_notes++] = s;
        l[c->n_notes] = NULL;
        c->notes = l;
        return 0;
}

/* Leading decimal or 0x-hexadecimal integer, saturating; false if there are no digits. */
static bool parse_int(Span s, long *ret) {
        unsigned long v = 0;
        size_t i = 0;
        bool neg = false, any = false;
        unsigned base = 10;

        s = span_trim(s);
        if (i < s.n && (s.p[i] == '-' || s.p[i] == '+'))
                neg = s.p[i++] == '-';
        if (i + 1 < s.n && s.p[i] == '0' && (s.p[i + 1] == 'x' || s.p[i + 1] == 'X')) {
                base = 16;
                i += 2;
        }
        for (; i < s.n; i++) {
                char ch = s.p[i];
                unsigned d;

                if (ch >= '0' && ch <= '9')
                        d = (unsigned)(ch - '0');
                else if (base == 16 && ch >= 'a' && ch <= 'f')
                        d = (unsigned)(ch - 'a' + 10);
                else if (base == 16 && ch >= 'A' && ch <= 'F')
                        d = (unsigned)(ch - 'A' + 10);
                else
                        break;
                any = true;
                if (v > (unsigned long)0x7fffffff)
                        continue; /* saturate: only zero/non-zero matters here */
                v = v * base + d;
        }
        if (!any)
                return false;
        if (v > (unsigned long)0x7fffffff)
                v = 0x7fffffff;
        *ret = neg ? -(long)v : (long)v;
        return true;
}

/* A dtparam value as the firmware reads a boolean: on/true/yes/okay/1, off/false/no/0; no value
 * means on. -1 for anything else. */
static int parse_dtparam_bool(Span v) {
        if (v.n == 0 || span_eq_ci(v, "on") || span_eq_ci(v, "true") || span_eq_ci(v, "yes") ||
            span_eq_ci(v, "okay") || span_eq_ci(v, "1"))
                return 1;
        if (span_eq_ci(v, "off") || span_eq_ci(v, "false") || span_eq_ci(v, "no") || span_eq_ci(v, "0"))
                return 0;
        return -1;
}

/* dtparam=NAME[=VALUE][,NAME[=VALUE]...] for the base tree. */
static int parse_dtparams(RpiConfig *c, Span list) {
        char buf[80];
        int r, b;

        while (list.n > 0) {
                const char *comma = memchr(list.p, ',', list.n);
                size_t n = comma ? (size_t)(comma - list.p) : list.n;
                Span item = span_trim((Span){list.p, n}), name = item, value = {item.p + item.n, 0};
                const char *eq = memchr(item.p, '=', item.n);

                list = comma ? (Span){comma + 1, list.n - n - 1} : (Span){list.p + list.n, 0};
                if (eq) {
                        name = span_trim((Span){item.p, (size_t)(eq - item.p)});
                        value = span_trim((Span){eq + 1, item.n - (size_t)(eq - item.p) - 1});
                }
                /* Only the header's bus. The others (audio, spi, i2s, the baud rates...) are what
                 * QEMU lacks or ignores anyway, and every stock config.txt has some: no note each. */
                if (!span_eq_ci(name, "i2c_arm") && !span_eq_ci(name, "i2c"))
                        continue;
                b = parse_dtparam_bool(value);
                if (b >= 0) {
                        c->i2c_arm = b;
                        continue;
                }
                span_sanitize(item, buf, sizeof(buf));
                r = add_note(c, "config.txt: ignoring dtparam %s (want on or off)", buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Sets *field to the first token of value if it is a valid boot file name; an empty value unsets
 * it. Anything else leaves the field alone and says so in a note. */
static int set_name(RpiConfig *c, char **field, const char *key, Span value) {
        Span tok = span_first_token(value);
        char buf[80];
        char *s;

        if (tok.n == 0) {
                free(*field);
                *field = NULL;
                return 0;
        }
        if (tok.n <= RPI_BOOT_NAME_MAX && !memchr(tok.p, '\0', tok.n)) {
                s = strndup(tok.p, tok.n);
                if (!s)
                        return -ENOMEM;
                if (rpi_boot_name_is_valid(s)) {
                        free(*field);
                        *field = s;
                        return 0;
                }
                free(s);
        }
        span_sanitize(tok, buf, sizeof(buf));
        return add_note(c, "config.txt: ignoring %s=%s (not an acceptable file name)", key, buf);
}

typedef struct Filter {
        bool model_ok; /* the last model filter matches (true without one) */
        bool blocked;  /* [none] or a filter we cannot evaluate is in force */
} Filter;

/* Which models each model filter selects. pi0 covers the Zero (QEMU's raspi0 is a plain Zero, not
 * a Zero W or Zero 2 W); pi3+ covers the 3A+ and 3B+, so QEMU's raspi3ap but not its raspi3b. */
static const struct {
        const char *name;
        unsigned models;
} model_filters[] = {
        {"pi0", 1u << RPI_MODEL_RASPI0},    {"pi1", 1u << RPI_MODEL_RASPI1AP},
        {"pi2", 1u << RPI_MODEL_RASPI2B},   {"pi3", (1u << RPI_MODEL_RASPI3AP) | (1u << RPI_MODEL_RASPI3B)},
        {"pi3+", 1u << RPI_MODEL_RASPI3AP}, {"pi4", 1u << RPI_MODEL_RASPI4B},
};

static void filter_apply(Filter *f, Span name, RpiModel model) {
        name = span_trim(name);

        if (span_eq_ci(name, "all")) {
                f->model_ok = true;
                f->blocked = false;
                return;
        }
        if (span_eq_ci(name, "none")) {
                f->blocked = true;
                return;
        }
        /* A model filter: pi<digit>... or cm<digit>... ([pi400], [cm4s], [pi0w], [pi5], ...). They
         * replace each other; the ones not in the table match none of QEMU's boards. */
        if (name.n >= 3 && (strncasecmp(name.p, "pi", 2) == 0 || strncasecmp(name.p, "cm", 2) == 0) &&
            name.p[2] >= '0' && name.p[2] <= '9') {
                f->model_ok = false;
                for (size_t i = 0; i < ELEMENTSOF(model_filters); i++)
                        if (span_eq_ci(name, model_filters[i].name)) {
                                f->model_ok = (model_filters[i].models >> model) & 1;
                                break;
                        }
                return;
        }
        /* EDID=, HDMI:n, gpioN=, board-type=, tryboot, partition=, 0x<serial>, anything new: we
         * cannot know, so the section does not apply (until [all]). */
        f->blocked = true;
}

int rpi_config_parse(const char *text, size_t size, RpiModel model, RpiConfig *ret) {
        _cleanup_(rpi_config_done) RpiConfig c = {.arm_64bit = -1, .i2c_arm = -1};
        Filter f = {.model_ok = true};
        size_t pos = 0;

        if (model < 0 || model >= _RPI_MODEL_MAX)
                return -EINVAL;

        while (pos < size) {
                const char *nl = memchr(text + pos, '\n', size - pos);
                size_t end = nl ? (size_t)(nl - text) : size;
                Span line = span_trim((Span){text + pos, end - pos});
                Span key, value;
                const char *eq;
                size_t w = 0;
                long v;
                char buf[80];
                int r = 0; /* per line: a key that sets a field without a note leaves it 0 */

                pos = end + 1;
                if (line.n == 0 || line.p[0] == '#')
                        continue;

                if (line.p[0] == '[') {
                        const char *close = memchr(line.p, ']', line.n);
                        if (close)
                                filter_apply(&f, (Span){line.p + 1, (size_t)(close - line.p - 1)}, model);
                        continue;
                }
                if (!f.model_ok || f.blocked)
                        continue;

                /* The first word decides: "include <file>" and "initramfs <file> [<where>]" are
                 * blank-separated, everything else is key=value. */
                while (w < line.n && !is_blank(line.p[w]) && line.p[w] != '=')
                        w++;
                key = (Span){line.p, w};
                if (w < line.n && is_blank(line.p[w])) {
                        Span rest = span_trim((Span){line.p + w, line.n - w});

                        if (span_eq_ci(key, "include")) {
                                c.n_includes++;
                                span_sanitize(span_first_token(rest), buf, sizeof(buf));
                                r = add_note(&c, "config.txt: not following \"include %s\"", buf);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (span_eq_ci(key, "initramfs")) {
                                /* the address or followkernel after the name does not matter
                                 * to QEMU, which places the initrd itself */
                                r = set_name(&c, &c.initramfs, "initramfs", rest);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                }

                eq = memchr(line.p, '=', line.n);
                if (!eq)
                        continue;
                key = span_trim((Span){line.p, (size_t)(eq - line.p)});
                value = span_trim((Span){eq + 1, line.n - (size_t)(eq - line.p) - 1});

                if (span_eq_ci(key, "kernel"))
                        r = set_name(&c, &c.kernel, "kernel", value);
                else if (span_eq_ci(key, "device_tree")) {
                        r = set_name(&c, &c.device_tree, "device_tree", value);
                        if (r >= 0 && span_first_token(value).n == 0)
                                r = add_note(&c, "config.txt: device_tree= is empty (no device tree): "
                                                 "using the model's default");
                } else if (span_eq_ci(key, "initramfs") || span_eq_ci(key, "ramfsfile"))
                        r = set_name(&c, &c.initramfs, "initramfs", value);
                else if (span_eq_ci(key, "cmdline"))
                        r = set_name(&c, &c.cmdline, "cmdline", value);
                else if (span_eq_ci(key, "arm_64bit") || span_eq_ci(key, "arm_control") ||
                         span_eq_ci(key, "auto_initramfs") || span_eq_ci(key, "upstream_kernel")) {
                        if (!parse_int(value, &v)) {
                                span_sanitize(value, buf, sizeof(buf));
                                r = add_note(&c, "config.txt: ignoring non-numeric value \"%s\"", buf);
                        } else if (span_eq_ci(key, "arm_64bit"))
                                c.arm_64bit = v != 0;
                        else if (span_eq_ci(key, "arm_control"))
                                /* the deprecated way to say arm_64bit=1: bit 9 */
                                c.arm_64bit = (v & 0x200) != 0;
                        else if (span_eq_ci(key, "auto_initramfs"))
                                c.auto_initramfs = v != 0;
                        else
                                c.upstream_kernel = v != 0;
                } else if (span_eq_ci(key, "dtparam"))
                        /* After a dtoverlay=, the firmware gives a parameter to that overlay if it
                         * has one of that name, else to the base tree. Overlays are not applied
                         * here (stock ones are for hardware QEMU lacks, such as vc4-kms-v3d) and
                         * none of them has an i2c_arm, so every dtparam= line is the base tree's. */
                        r = parse_dtparams(&c, value);
                else if (span_eq_ci(key, "os_prefix")) {
                        span_sanitize(value, buf, sizeof(buf));
                        r = add_note(&c, "config.txt: os_prefix=%s is not supported; ignored", buf);
                }
                if (r < 0)
                        return r;
        }

        *ret = c;
        c = (RpiConfig){};
        return 0;
}

void rpi_config_done(RpiConfig *c) {
        if (!c)
                return;
        free(c->kernel);
        free(c->device_tree);
        free(c->initramfs);
        free(c->cmdline);
        strv_free(c->notes);
        *c = (RpiConfig){.arm_64bit = -1, .i2c_arm = -1};
}

bool rpi_config_arm_64bit(const RpiConfig *c, RpiModel model) {
        if (!model_has_64bit(model))
                return false;
        /* The firmware sets the mode from an explicit kernel= that names one of its defaults. */
        if (c->kernel) {
                if (streq(c->kernel, "kernel8.img"))
                        return true;
                if (streq(c->kernel, "kernel7.img") || streq(c->kernel, "kernel7l.img") ||
                    streq(c->kernel, "kernel.img"))
                        return false;
        }
        if (c->arm_64bit >= 0)
                return c->arm_64bit;
        /* Current firmware starts the Pi 4 family in 64-bit mode unless told otherwise. */
        return model == RPI_MODEL_RASPI4B;
}

const char *rpi_config_kernel(const RpiConfig *c, RpiModel model) {
        bool b64 = rpi_config_arm_64bit(c, model);

        if (c->kernel)
                return c->kernel;
        switch (model) {
        case RPI_MODEL_RASPI0:
        case RPI_MODEL_RASPI1AP:
                return "kernel.img";
        case RPI_MODEL_RASPI2B:
                return "kernel7.img";
        case RPI_MODEL_RASPI3AP:
        case RPI_MODEL_RASPI3B:
                return b64 ? "kernel8.img" : "kernel7.img";
        case RPI_MODEL_RASPI4B:
                return b64 ? "kernel8.img" : "kernel7l.img";
        default:
                return NULL;
        }
}

int rpi_auto_initramfs_name(const char *kernel, char **ret) {
        const char *base, *dot;
        size_t dir, mid;
        char *s;

        if (!kernel)
                return -EINVAL;
        base = strrchr(kernel, '/');
        base = base ? base + 1 : kernel;
        dir = (size_t)(base - kernel);
        if (strncmp(base, "kernel", 6) != 0)
                return -EINVAL;
        dot = base + strlen(base) - 4;
        if (strlen(base) < 10 || !streq(dot, ".img"))
                return -EINVAL;
        mid = (size_t)(dot - (base + 6));
        if (asprintf(&s, "%.*sinitramfs%.*s", (int)dir, kernel, (int)mid, base + 6) < 0)
                return -ENOMEM;
        if (!rpi_boot_name_is_valid(s)) {
                free(s);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

/* --- cmdline.txt ------------------------------------------------------------------------------ */

static bool cmdline_blank(char c) {
        return c == ' ' || c == '\t';
}

/* The parameter name as the kernel sees it (a leading quote is skipped, as in next_arg()), and its
 * value without quotes. */
static void token_split(Span tok, Span *ret_name, Span *ret_value, bool *ret_has_eq) {
        const char *eq;

        if (tok.n > 0 && tok.p[0] == '"') {
                tok.p++;
                tok.n--;
        }
        eq = memchr(tok.p, '=', tok.n);
        *ret_has_eq = eq;
        if (!eq) {
                *ret_name = tok;
                *ret_value = (Span){tok.p + tok.n, 0};
        } else {
                *ret_name = (Span){tok.p, (size_t)(eq - tok.p)};
                *ret_value = (Span){eq + 1, tok.n - (size_t)(eq - tok.p) - 1};
        }
        if (ret_value->n > 0 && ret_value->p[0] == '"') {
                ret_value->p++;
                ret_value->n--;
        }
        if (ret_value->n > 0 && ret_value->p[ret_value->n - 1] == '"')
                ret_value->n--;
}

static bool span_eq(Span s, const char *word) {
        return strlen(word) == s.n && memcmp(s.p, word, s.n) == 0;
}

static bool span_startswith(Span s, const char *prefix) {
        size_t n = strlen(prefix);
        return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

static bool token_dropped(Span tok) {
        Span name, value, base;
        bool has_eq;

        token_split(tok, &name, &value, &has_eq);
        if (span_eq(name, "console"))
                return true;
        if (!has_eq && (span_eq(name, "quiet") || span_eq(name, "splash")))
                return true;
        if (span_startswith(name, "plymouth."))
                return true;
        if (span_eq(name, "init") && has_eq) {
                /* Raspberry Pi OS's first-boot partition resizers: they would grow the root file
                 * system into piemu's SD overlay and reboot; the catalog image is used as is. */
                base = value;
                for (size_t i = value.n; i > 0; i--)
                        if (value.p[i - 1] == '/') {
                                base = (Span){value.p + i, value.n - i};
                                break;
                        }
                if (span_eq(base, "firstboot") || span_eq(base, "init_resize.sh"))
                        return true;
        }
        return false;
}

int rpi_cmdline_rewrite(const char *text, size_t size, char **ret, bool *ret_has_root) {
        const char *nl = memchr(text, '\n', size);
        size_t n = nl ? (size_t)(nl - text) : size, len = 0, cap;
        bool has_root = false, console_added = false, init_args = false;
        _cleanup_free_ char *out = NULL;

        if (n > 0 && text[n - 1] == '\r')
                n--;
        if (n > RPI_CMDLINE_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)text[i];
                if (ch != '\t' && (ch < 0x20 || ch >= 0x7f))
                        return -EBADMSG;
        }

        /* The kept tokens, single-spaced, are never longer than the line; plus the console. */
        cap = n + 1 + strlen(RPI_CMDLINE_CONSOLE) + 1;
        out = malloc(cap);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < n;) {
                Span tok, name, value;
                bool quoted = false, has_eq;
                size_t start;

                while (i < n && cmdline_blank(text[i]))
                        i++;
                if (i >= n)
                        break;
                start = i;
                while (i < n && (quoted || !cmdline_blank(text[i]))) {
                        if (text[i] == '"')
                                quoted = !quoted;
                        i++;
                }
                /* The kernel would take everything after an unterminated quote as part of this
                 * token, our console too. */
                if (quoted)
                        return -EBADMSG;
                tok = (Span){text + start, i - start};

                if (!init_args) {
                        if (span_eq(tok, "--")) {
                                /* Everything after "--" goes to init: our console must come before. */
                                if (len > 0)
                                        out[len++] = ' ';
                                memcpy(out + len, RPI_CMDLINE_CONSOLE, strlen(RPI_CMDLINE_CONSOLE));
                                len += strlen(RPI_CMDLINE_CONSOLE);
                                console_added = init_args = true;
                        } else if (token_dropped(tok))
                                continue;
                        else {
                                token_split(tok, &name, &value, &has_eq);
                                if (span_eq(name, "root") && value.n > 0)
                                        has_root = true;
                        }
                }
                if (len > 0)
                        out[len++] = ' ';
                memcpy(out + len, tok.p, tok.n);
                len += tok.n;
        }
        if (!console_added) {
                if (len > 0)
                        out[len++] = ' ';
                memcpy(out + len, RPI_CMDLINE_CONSOLE, strlen(RPI_CMDLINE_CONSOLE));
                len += strlen(RPI_CMDLINE_CONSOLE);
        }
        out[len] = '\0';
        /* A tab can only be left inside quotes: make it a blank like the others, so that the
         * result is printable ASCII throughout. */
        for (char *p = out; *p; p++)
                if (*p == '\t')
                        *p = ' ';
        if (len > RPI_CMDLINE_MAX)
                return -E2BIG;

        if (ret_has_root)
                *ret_has_root = has_root;
        *ret = TAKE_PTR(out);
        return 0;
}
