/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "qtest-proto.h"
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool is_printable(char c) {
        return c >= 0x20 && c <= 0x7e;
}

/* "0x" and 1-16 hex digits, nothing else. */
static int parse_hex64(const char *s, size_t len, uint64_t *ret) {
        uint64_t v = 0;

        if (len < 3 || len > 18 || s[0] != '0' || s[1] != 'x')
                return -EINVAL;
        for (size_t i = 2; i < len; i++) {
                int d = unhexchar(s[i]);
                if (d < 0)
                        return -EINVAL;
                v = (v << 4) | (uint64_t)d;
        }
        *ret = v;
        return 0;
}

/* As QEMU's "%d" prints a non-negative index: no sign, no leading zeros; at most QTEST_IRQ_MAX. */
static int parse_irq(const char *s, size_t len, unsigned *ret) {
        unsigned v = 0;

        if (len < 1 || len > 3 || (len > 1 && s[0] == '0'))
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v > QTEST_IRQ_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

static bool has_prefix(const char *s, size_t len, const char *prefix) {
        size_t n = strlen(prefix);
        return len >= n && memcmp(s, prefix, n) == 0;
}

static int parse_message(const char *s, size_t len, QtestLine *ret) {
        /* the caller checked that len < QTEST_LINE_MAX and that s is printable */
        memcpy(ret->message, s, len);
        ret->message[len] = '\0';
        return 0;
}

static int classify(const char *line, size_t len, QtestLine *ret) {
        if (len == 0 || len >= QTEST_LINE_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if (!is_printable(line[i]))
                        return -EBADMSG;

        if (len == 2 && memcmp(line, "OK", 2) == 0) {
                ret->type = QTEST_LINE_OK;
                return 0;
        }
        if (has_prefix(line, len, "OK ")) {
                if (parse_hex64(line + 3, len - 3, &ret->value) < 0)
                        return -EBADMSG;
                ret->type = QTEST_LINE_VALUE;
                return 0;
        }
        if (len == 4 && memcmp(line, "FAIL", 4) == 0) {
                ret->type = QTEST_LINE_FAIL;
                return 0;
        }
        if (has_prefix(line, len, "FAIL ")) {
                ret->type = QTEST_LINE_FAIL;
                return parse_message(line + 5, len - 5, ret);
        }
        if (has_prefix(line, len, "ERR ")) {
                ret->type = QTEST_LINE_ERR;
                return parse_message(line + 4, len - 4, ret);
        }
        if (has_prefix(line, len, "IRQ raise ") || has_prefix(line, len, "IRQ lower ")) {
                if (parse_irq(line + 10, len - 10, &ret->irq) < 0)
                        return -EBADMSG;
                ret->level = line[4] == 'r';
                ret->type = QTEST_LINE_IRQ;
                return 0;
        }
        return -EBADMSG;
}

int qtest_parse_line(const char *line, size_t len, QtestLine *ret) {
        int r;

        memset(ret, 0, sizeof(*ret));
        r = classify(line, len, ret);
        if (r < 0)
                /* nothing half-parsed may survive a rejected line */
                memset(ret, 0, sizeof(*ret));
        return r;
}

void qtest_splitter_init(QtestSplitter *s) {
        memset(s, 0, sizeof(*s));
}

int qtest_splitter_next(QtestSplitter *s, const uint8_t **data, size_t *size, const char **ret_line,
                        size_t *ret_len) {
        const uint8_t *nl;
        size_t n;

        if (s->overflow)
                return -EMSGSIZE;
        if (*size == 0)
                return 0;

        nl = memchr(*data, '\n', *size);
        n = nl ? (size_t)(nl - *data) : *size;
        /* with its '\n' the line would take s->len + n + 1 bytes; without a '\n' yet, it will take
         * at least that much once the '\n' comes */
        if (s->len + n + 1 > QTEST_LINE_MAX) {
                s->overflow = true;
                s->len = 0;
                return -EMSGSIZE;
        }

        if (!nl) {
                memcpy(s->buf + s->len, *data, n);
                s->len += n;
                *data += n;
                *size = 0;
                return 0;
        }

        if (s->len == 0)
                /* the common case: the whole line is in this input, no copy */
                *ret_line = (const char *)*data;
        else {
                memcpy(s->buf + s->len, *data, n);
                *ret_line = s->buf;
        }
        *ret_len = s->len + n;
        s->len = 0;
        *data += n + 1;
        *size -= n + 1;
        return 1;
}

static int finish(int n, size_t size) {
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= size || n > QTEST_CMD_MAX)
                return -ENOBUFS;
        return n;
}

int qtest_format_readl(char *buf, size_t size, uint64_t addr) {
        return finish(snprintf(buf, size, "readl 0x%" PRIx64 "\n", addr), size);
}

int qtest_format_writel(char *buf, size_t size, uint64_t addr, uint32_t value) {
        return finish(snprintf(buf, size, "writel 0x%" PRIx64 " 0x%" PRIx32 "\n", addr, value), size);
}

bool qtest_qom_path_is_valid(const char *path) {
        size_t n;

        if (!path)
                return false;
        n = strnlen(path, QTEST_PATH_MAX + 1);
        if (n == 0 || n > QTEST_PATH_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = path[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("/_.[]-", c)))
                        return false;
        }
        return true;
}

int qtest_format_irq_intercept_out(char *buf, size_t size, const char *path) {
        if (!qtest_qom_path_is_valid(path))
                return -EINVAL;
        return finish(snprintf(buf, size, "irq_intercept_out %s\n", path), size);
}

int qtest_format_set_irq_in(char *buf, size_t size, const char *path, unsigned line, bool level) {
        if (!qtest_qom_path_is_valid(path) || line >= QTEST_GPIO_NPINS)
                return -EINVAL;
        return finish(snprintf(buf, size, "set_irq_in %s unnamed-gpio-in %u %d\n", path, line, (int)level),
                      size);
}

const char *qtest_line_type_to_string(QtestLineType t) {
        switch (t) {
        case QTEST_LINE_UNKNOWN:
                return "unknown";
        case QTEST_LINE_OK:
                return "OK";
        case QTEST_LINE_VALUE:
                return "OK value";
        case QTEST_LINE_FAIL:
                return "FAIL";
        case QTEST_LINE_ERR:
                return "ERR";
        case QTEST_LINE_IRQ:
                return "IRQ";
        }
        return "invalid";
}
