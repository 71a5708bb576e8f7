/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpio-proto.h"
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* 16 hex digits would be 64 bits; 14 cover the 54 pins and no more than that is allowed, so
 * that a snapshot cannot be padded into a line that looks fine but means something else. */
#define PINS_HEX_MAX 14

void gpio_parser_init(GpioParser *p) {
        memset(p, 0, sizeof(*p));
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_version_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '_' ||
               c == '+' || c == '-';
}

int gpio_proto_parse_pin(const char *s, size_t len, unsigned *ret) {
        unsigned v = 0;

        /* At most two digits: "53" is the largest pin, so longer numbers are rejected before
         * they could overflow anything, and "017" is not a second spelling of 17. */
        if (!s || len == 0 || len > 2)
                return -EINVAL;
        if (len == 2 && s[0] == '0')
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (!is_digit(s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v >= GPIO_PROTO_NPINS)
                return -EINVAL;
        if (ret)
                *ret = v;
        return 0;
}

bool gpio_proto_version_is_valid(const char *version) {
        size_t n;

        if (!version)
                return false;
        n = strlen(version);
        if (n == 0 || n > GPIO_PROTO_VERSION_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_version_char(version[i]))
                        return false;
        return true;
}

const char *gpio_msg_type_to_string(GpioMsgType t) {
        switch (t) {
        case GPIO_MSG_GPIO:
                return "GPIO";
        case GPIO_MSG_HELLO:
                return "HELLO";
        case GPIO_MSG_PINS:
                return "PINS";
        case GPIO_MSG_SET:
                return "SET";
        case GPIO_MSG_SYNC:
                return "SYNC";
        }
        return NULL;
}

/* A cursor over the line; every helper consumes exactly what it matched or fails. */
typedef struct {
        const char *p;
        const char *end;
} Cursor;

static bool eat_literal(Cursor *c, const char *lit) {
        size_t n = strlen(lit);

        if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
                return false;
        c->p += n;
        return true;
}

/* The field runs up to the next space or the end of the line. */
static size_t field_len(const Cursor *c) {
        const char *q = c->p;

        while (q < c->end && *q != ' ')
                q++;
        return (size_t)(q - c->p);
}

static bool at_end(const Cursor *c) {
        return c->p == c->end;
}

static bool eat_pin(Cursor *c, unsigned *ret) {
        size_t n = field_len(c);

        if (gpio_proto_parse_pin(c->p, n, ret) < 0)
                return false;
        c->p += n;
        return true;
}

static bool eat_bit(Cursor *c, bool *ret) {
        if (c->p >= c->end || (*c->p != '0' && *c->p != '1'))
                return false;
        *ret = *c->p == '1';
        c->p++;
        return true;
}

static bool eat_hex_mask(Cursor *c, uint64_t *ret) {
        size_t n = field_len(c);
        uint64_t v = 0;

        if (n == 0 || n > PINS_HEX_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                int d = unhexchar(c->p[i]);
                if (d < 0)
                        return false;
                v = (v << 4) | (uint64_t)d;
        }
        if (v & ~GPIO_PROTO_PINS_MASK)
                return false;
        c->p += n;
        *ret = v;
        return true;
}

static bool eat_version(Cursor *c, char ret[static GPIO_PROTO_VERSION_MAX + 1]) {
        size_t n = field_len(c);

        if (n == 0 || n > GPIO_PROTO_VERSION_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_version_char(c->p[i]))
                        return false;
        memcpy(ret, c->p, n);
        ret[n] = '\0';
        c->p += n;
        return true;
}

static bool parse_pin_value(Cursor *c, GpioMsg *m) {
        return eat_pin(c, &m->pin) && eat_literal(c, " ") && eat_bit(c, &m->value) && at_end(c);
}

int gpio_proto_parse_line(const char *line, size_t len, GpioMsg *msg) {
        GpioMsg m;
        Cursor c;
        bool ok;

        memset(&m, 0, sizeof(m));
        if (msg)
                *msg = m;

        /* The '\n' is not passed in, so anything of 64 bytes or more could not have been one
         * wire line. */
        if (!line || len >= GPIO_PROTO_LINE_MAX)
                return -EINVAL;
        if (len > 0 && line[len - 1] == '\r')
                len--;

        /* Every helper below compares against printable literals or character classes, so NULs,
         * other control characters and non-ASCII bytes can never match. */
        c = (Cursor){.p = line, .end = line + len};
        if (eat_literal(&c, "GPIO ")) {
                m.type = GPIO_MSG_GPIO;
                ok = parse_pin_value(&c, &m);
        } else if (eat_literal(&c, "SET ")) {
                m.type = GPIO_MSG_SET;
                ok = parse_pin_value(&c, &m);
        } else if (eat_literal(&c, "HELLO piemu-shim ")) {
                m.type = GPIO_MSG_HELLO;
                ok = eat_version(&c, m.version) && at_end(&c);
        } else if (eat_literal(&c, "PINS ")) {
                m.type = GPIO_MSG_PINS;
                ok = eat_hex_mask(&c, &m.mask) && at_end(&c);
        } else if (eat_literal(&c, "SYNC")) {
                m.type = GPIO_MSG_SYNC;
                ok = at_end(&c);
        } else
                ok = false;
        if (!ok)
                return -EINVAL;

        if (msg)
                *msg = m;
        return 0;
}

int gpio_parser_feed(GpioParser *p, const void *data, size_t size, gpio_msg_cb cb, void *userdata) {
        const char *d = data;
        int delivered = 0;

        while (size > 0) {
                const char *nl = memchr(d, '\n', size);
                size_t n = nl ? (size_t)(nl - d) : size; /* bytes of this line in d, without '\n' */
                size_t consumed = nl ? n + 1 : size;
                const char *line;
                size_t line_len;
                GpioMsg msg;
                int r;

                if (p->discarding) {
                        if (nl)
                                p->discarding = false;
                        d += consumed;
                        size -= consumed;
                        continue;
                }

                if (p->len + n >= GPIO_PROTO_LINE_MAX) {
                        /* 64 bytes without '\n': overlong however it ends. Count it now, once, and
                         * skip the rest without ever holding it. */
                        p->n_invalid++;
                        p->len = 0;
                        p->discarding = !nl;
                        d += consumed;
                        size -= consumed;
                        continue;
                }

                if (!nl) {
                        memcpy(p->buf + p->len, d, n);
                        p->len += n;
                        break;
                }

                if (p->len == 0) {
                        /* The common case: the whole line is in this chunk, parse it in place. */
                        line = d;
                        line_len = n;
                } else {
                        memcpy(p->buf + p->len, d, n);
                        line = p->buf;
                        line_len = p->len + n;
                }
                p->len = 0;
                d += consumed;
                size -= consumed;

                if (gpio_proto_parse_line(line, line_len, &msg) < 0) {
                        p->n_invalid++;
                        continue;
                }
                p->n_valid++;
                if (cb) {
                        r = cb(&msg, userdata);
                        if (r < 0)
                                return r;
                }
                if (delivered < INT_MAX)
                        delivered++;
        }

        return delivered;
}

static int finish(int n, size_t size) {
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= size)
                return -ENOBUFS;
        return n;
}

static int format_pin_value(char *buf, size_t size, const char *verb, unsigned pin, bool value) {
        if (!buf || pin >= GPIO_PROTO_NPINS)
                return -EINVAL;
        return finish(snprintf(buf, size, "%s %u %c\n", verb, pin, value ? '1' : '0'), size);
}

int gpio_proto_format_set(char *buf, size_t size, unsigned pin, bool value) {
        return format_pin_value(buf, size, "SET", pin, value);
}

int gpio_proto_format_gpio(char *buf, size_t size, unsigned pin, bool value) {
        return format_pin_value(buf, size, "GPIO", pin, value);
}

int gpio_proto_format_hello(char *buf, size_t size, const char *version) {
        if (!buf || !gpio_proto_version_is_valid(version))
                return -EINVAL;
        return finish(snprintf(buf, size, "HELLO piemu-shim %s\n", version), size);
}

int gpio_proto_format_pins(char *buf, size_t size, uint64_t mask) {
        if (!buf || (mask & ~GPIO_PROTO_PINS_MASK))
                return -EINVAL;
        return finish(snprintf(buf, size, "PINS %" PRIx64 "\n", mask), size);
}

int gpio_proto_format_sync(char *buf, size_t size) {
        if (!buf)
                return -EINVAL;
        return finish(snprintf(buf, size, "SYNC\n"), size);
}

int gpio_proto_format_msg(char *buf, size_t size, const GpioMsg *msg) {
        if (!msg)
                return -EINVAL;
        switch (msg->type) {
        case GPIO_MSG_GPIO:
                return gpio_proto_format_gpio(buf, size, msg->pin, msg->value);
        case GPIO_MSG_HELLO:
                return gpio_proto_format_hello(buf, size, msg->version);
        case GPIO_MSG_PINS:
                return gpio_proto_format_pins(buf, size, msg->mask);
        case GPIO_MSG_SET:
                return gpio_proto_format_set(buf, size, msg->pin, msg->value);
        case GPIO_MSG_SYNC:
                return gpio_proto_format_sync(buf, size);
        }
        return -EINVAL;
}
