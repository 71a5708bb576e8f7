/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the serial1 GPIO protocol (src/shared/gpio-proto.c).
 *
 * The input is a byte stream as it would come off the serial line. It is fed to the streaming
 * parser three ways (whole, byte by byte, in pseudo-random chunks derived from the data) and
 * compared with a deliberately naive reference splitter, so any disagreement about where lines
 * start and end, or any state that leaks across feed calls, aborts. Every delivered message must
 * be in range and survive format → parse unchanged.
 *
 * Built with -DFUZZ_REPLAY this file gets fuzz-replay.h's main(), which runs the target over files
 * and directories named on the command line (or a small built-in corpus without arguments), so the
 * harness also runs in gcc builds and CI. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpio-proto.h"

#ifdef FUZZ_REPLAY
static const char *const builtin_corpus[] = {
        "HELLO piemu-shim 0.1.0\nGPIO 23 1\nPINS 800000\n",
        "SET 17 1\r\nSYNC\r\n",
        "GPIO 54 1\nGPIO 01 1\ngpio 1 1\nGPIO  1 1\nGPIO 1 2\n",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nSYNC\n",
        "GPIO 99999999999999999999 1\nPINS 40000000000000\nHELLO piemu-shim 12345678901234567\n",
        "SYNC",
        "",
};
#endif

#include "fuzz-replay.h"

/* What one way of feeding produced: counters plus an order-sensitive digest of the messages, so
 * that runs can be compared without storing every message. */
typedef struct {
        uint64_t n;
        uint64_t digest;
        GpioMsgType last;
} Trace;

static uint64_t mix(uint64_t h, uint64_t v) {
        h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
        return h;
}

static uint64_t msg_digest(const GpioMsg *m) {
        uint64_t h = mix(0, (uint64_t)m->type);

        h = mix(h, m->pin);
        h = mix(h, m->value);
        h = mix(h, m->mask);
        for (const char *c = m->version; *c; c++)
                h = mix(h, (unsigned char)*c);
        return h;
}

static void check_msg(const GpioMsg *m) {
        char buf[GPIO_PROTO_LINE_MAX + 1];
        GpioMsg again;
        int n;

        switch (m->type) {
        case GPIO_MSG_GPIO:
        case GPIO_MSG_SET:
                FUZZ_CHECK(m->pin < GPIO_PROTO_NPINS);
                FUZZ_CHECK(m->mask == 0 && m->version[0] == '\0');
                break;
        case GPIO_MSG_HELLO:
                FUZZ_CHECK(gpio_proto_version_is_valid(m->version));
                FUZZ_CHECK(m->pin == 0 && !m->value && m->mask == 0);
                break;
        case GPIO_MSG_PINS:
                FUZZ_CHECK((m->mask & ~GPIO_PROTO_PINS_MASK) == 0);
                FUZZ_CHECK(m->pin == 0 && !m->value && m->version[0] == '\0');
                break;
        case GPIO_MSG_SYNC:
                FUZZ_CHECK(m->pin == 0 && !m->value && m->mask == 0 && m->version[0] == '\0');
                break;
        default:
                FUZZ_CHECK(!"unknown message type");
        }

        /* Whatever was accepted can be said back in canonical form and means the same. */
        n = gpio_proto_format_msg(buf, sizeof(buf), m);
        FUZZ_CHECK(n > 0 && n <= GPIO_PROTO_LINE_MAX);
        FUZZ_CHECK(buf[n - 1] == '\n' && buf[n] == '\0');
        FUZZ_CHECK(memchr(buf, '\n', (size_t)n - 1) == NULL);
        FUZZ_CHECK(gpio_proto_parse_line(buf, (size_t)n - 1, &again) == 0);
        FUZZ_CHECK(again.type == m->type);
        FUZZ_CHECK(again.pin == m->pin && again.value == m->value && again.mask == m->mask);
        FUZZ_CHECK(strcmp(again.version, m->version) == 0);
}

static int on_msg(const GpioMsg *m, void *userdata) {
        Trace *t = userdata;

        check_msg(m);
        t->n++;
        t->digest = mix(t->digest, msg_digest(m));
        t->last = m->type;
        return 0;
}

static void check_parser(const GpioParser *p) {
        FUZZ_CHECK(p->len < GPIO_PROTO_LINE_MAX);
        FUZZ_CHECK(!p->discarding || p->len == 0);
}

static void feed(GpioParser *p, const uint8_t *data, size_t size, Trace *t) {
        uint64_t before = p->n_valid;
        int r;

        r = gpio_parser_feed(p, data, size, on_msg, t);
        FUZZ_CHECK(r >= 0);
        FUZZ_CHECK((uint64_t)r == p->n_valid - before);
        check_parser(p);
}

/* The specification, written as plainly as possible: split at '\n'; a piece of 64 bytes or more
 * (before its '\n', or still unterminated) is one invalid line; any other complete piece goes to
 * parse_line. */
static void reference(const uint8_t *data, size_t size, Trace *t, uint64_t *n_valid, uint64_t *n_invalid) {
        size_t start = 0;

        for (size_t i = 0; i <= size; i++) {
                bool complete = i < size && data[i] == '\n';
                GpioMsg m;

                if (!complete && i < size)
                        continue;
                if (i - start >= GPIO_PROTO_LINE_MAX)
                        (*n_invalid)++;
                else if (complete) {
                        if (gpio_proto_parse_line((const char *)data + start, i - start, &m) == 0) {
                                (*n_valid)++;
                                t->n++;
                                t->digest = mix(t->digest, msg_digest(&m));
                        } else
                                (*n_invalid)++;
                }
                start = i + 1;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        GpioParser whole, bytes, chunks;
        Trace tw = {0}, tb = {0}, tc = {0}, tr = {0};
        uint64_t ref_valid = 0, ref_invalid = 0;
        uint64_t seed = UINT64_C(0xcbf29ce484222325);
        GpioMsg m;

        /* parse_line must cope with anything, including lengths it rejects outright */
        if (gpio_proto_parse_line((const char *)data, size, &m) == 0) {
                FUZZ_CHECK(size < GPIO_PROTO_LINE_MAX);
                check_msg(&m);
        }

        gpio_parser_init(&whole);
        feed(&whole, data, size, &tw);

        gpio_parser_init(&bytes);
        for (size_t i = 0; i < size; i++)
                feed(&bytes, data + i, 1, &tb);

        /* chunk sizes from an FNV-1a hash of the input: deterministic for replay, and they move
         * whenever the fuzzer mutates the data */
        for (size_t i = 0; i < size; i++)
                seed = (seed ^ data[i]) * UINT64_C(0x100000001b3);
        gpio_parser_init(&chunks);
        for (size_t off = 0; off < size;) {
                size_t n;

                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                /* mostly short chunks that cut through lines, sometimes long ones */
                n = (seed & 0x300) ? 1 + (size_t)(seed % 9) : 1 + (size_t)(seed % 200);
                if (n > size - off)
                        n = size - off;
                feed(&chunks, data + off, n, &tc);
                off += n;
        }

        reference(data, size, &tr, &ref_valid, &ref_invalid);

        FUZZ_CHECK(whole.n_valid == ref_valid && whole.n_invalid == ref_invalid);
        FUZZ_CHECK(tw.n == tr.n && tw.digest == tr.digest);
        FUZZ_CHECK(bytes.n_valid == whole.n_valid && bytes.n_invalid == whole.n_invalid);
        FUZZ_CHECK(bytes.len == whole.len && bytes.discarding == whole.discarding);
        FUZZ_CHECK(tb.n == tw.n && tb.digest == tw.digest);
        FUZZ_CHECK(chunks.n_valid == whole.n_valid && chunks.n_invalid == whole.n_invalid);
        FUZZ_CHECK(chunks.len == whole.len && chunks.discarding == whole.discarding);
        FUZZ_CHECK(tc.n == tw.n && tc.digest == tw.digest);
        FUZZ_CHECK(memcmp(chunks.buf, whole.buf, whole.len) == 0);
        FUZZ_CHECK(memcmp(bytes.buf, whole.buf, whole.len) == 0);

        /* After anything at all, a newline resynchronizes and the next line is understood (the
         * '\n' may also complete a valid pending line, hence >=). */
        feed(&whole, (const uint8_t *)"\nSYNC\n", 6, &tw);
        FUZZ_CHECK(!whole.discarding && whole.len == 0);
        FUZZ_CHECK(whole.n_valid >= ref_valid + 1 && tw.last == GPIO_MSG_SYNC);
        return 0;
}
