/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for QEMU's qtest protocol as piemud parses it (src/daemon/qtest-proto.c).
 *
 * The input is a byte stream as it would come from QEMU's qtest socket. It goes through the line
 * splitter three ways (whole, byte by byte, in pseudo-random chunks derived from the data) and is
 * compared with a deliberately naive reference splitter, so any disagreement about where lines
 * start and end, when a line is too long, or state leaking across calls, aborts. Every accepted
 * line must be in range, printable, and survive canonical formatting → parse unchanged. The same
 * bytes also go to the command formatters as a QOM path and as numbers: whatever they accept must
 * be exactly one well-formed command line QEMU splits into the expected words.
 *
 * Built with -DFUZZ_REPLAY this file gets fuzz-replay.h's main(), which runs the target over files
 * and directories named on the command line (or a small built-in corpus without arguments), so the
 * harness also runs in gcc builds and CI. */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qtest-proto.h"

#ifdef FUZZ_REPLAY
static const char *const builtin_corpus[] = {
        "OK\nIRQ raise 23\nOK 0x0000000000020000\nIRQ lower 23\n",
        "FAIL Unknown device\nERR invalid argument size\nFAIL\n",
        "IRQ raise 256\nIRQ raise 023\nOK 0x\nOK\r\n",
        "/machine/soc/peripherals/gpio",
        "",
};
#endif

#include "fuzz-replay.h"

/* What one way of splitting produced: lines and an order-sensitive digest of them (raw bytes and
 * parse results), so that runs compare without storing every line. */
typedef struct {
        uint64_t n_lines;
        uint64_t n_valid;
        uint64_t digest;
        int result; /* 0, or -EMSGSIZE once a line was too long */
} Trace;

static uint64_t mix(uint64_t h, uint64_t v) {
        h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
        return h;
}

/* The canonical text of a parsed line; it must parse back to the same thing. */
static int format_line(char *buf, size_t size, const QtestLine *l) {
        switch (l->type) {
        case QTEST_LINE_OK:
                return snprintf(buf, size, "OK");
        case QTEST_LINE_VALUE:
                return snprintf(buf, size, "OK 0x%016" PRIx64, l->value);
        case QTEST_LINE_FAIL:
                return l->message[0] ? snprintf(buf, size, "FAIL %s", l->message)
                                     : snprintf(buf, size, "FAIL");
        case QTEST_LINE_ERR:
                return snprintf(buf, size, "ERR %s", l->message);
        case QTEST_LINE_IRQ:
                return snprintf(buf, size, "IRQ %s %u", l->level ? "raise" : "lower", l->irq);
        default:
                FUZZ_CHECK(!"unknown line type");
        }
        return -1;
}

static void check_line(const char *line, size_t len, Trace *t) {
        QtestLine l, again;
        char buf[QTEST_LINE_MAX + 32];
        int r, n;

        FUZZ_CHECK(len < QTEST_LINE_MAX);
        FUZZ_CHECK(memchr(line, '\n', len) == NULL);
        t->n_lines++;
        for (size_t i = 0; i < len; i++)
                t->digest = mix(t->digest, (unsigned char)line[i]);
        t->digest = mix(t->digest, 0x100);

        r = qtest_parse_line(line, len, &l);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG);
                FUZZ_CHECK(l.type == QTEST_LINE_UNKNOWN && l.value == 0 && l.irq == 0 && !l.level &&
                           l.message[0] == '\0');
                return;
        }
        FUZZ_CHECK(r == 0);
        t->n_valid++;
        for (size_t i = 0; i < len; i++)
                FUZZ_CHECK(line[i] >= 0x20 && line[i] <= 0x7e);
        FUZZ_CHECK(l.type != QTEST_LINE_UNKNOWN);
        FUZZ_CHECK(l.irq <= QTEST_IRQ_MAX);
        FUZZ_CHECK(strlen(l.message) < len);
        for (const char *c = l.message; *c; c++)
                FUZZ_CHECK(*c >= 0x20 && *c <= 0x7e);
        if (l.type != QTEST_LINE_IRQ)
                FUZZ_CHECK(l.irq == 0 && !l.level);
        if (l.type != QTEST_LINE_VALUE)
                FUZZ_CHECK(l.value == 0);
        if (l.type != QTEST_LINE_FAIL && l.type != QTEST_LINE_ERR)
                FUZZ_CHECK(l.message[0] == '\0');

        n = format_line(buf, sizeof(buf), &l);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(buf));
        FUZZ_CHECK(qtest_parse_line(buf, (size_t)n, &again) == 0);
        FUZZ_CHECK(again.type == l.type && again.value == l.value && again.irq == l.irq &&
                   again.level == l.level && strcmp(again.message, l.message) == 0);
        t->digest = mix(t->digest, (uint64_t)l.type);
}

static void feed(QtestSplitter *s, const uint8_t *data, size_t size, Trace *t) {
        const char *line;
        size_t len;
        int r;

        for (;;) {
                r = qtest_splitter_next(s, &data, &size, &line, &len);
                if (r <= 0)
                        break;
                check_line(line, len, t);
        }
        FUZZ_CHECK(r == 0 || r == -EMSGSIZE);
        FUZZ_CHECK(s->len < QTEST_LINE_MAX);
        if (r == 0)
                FUZZ_CHECK(size == 0 && !s->overflow);
        else {
                FUZZ_CHECK(s->overflow);
                t->result = r;
        }
}

/* The specification, as plainly as possible: split at '\n'; a piece of QTEST_LINE_MAX bytes or more
 * (before its '\n', or still unterminated at the end) ends everything; earlier complete pieces are
 * lines. Returns the length of the unterminated rest. */
static size_t reference(const uint8_t *data, size_t size, Trace *t) {
        size_t start = 0;

        for (size_t i = 0; i <= size; i++) {
                bool complete = i < size && data[i] == '\n';

                if (!complete && i < size)
                        continue;
                if (i - start >= QTEST_LINE_MAX) {
                        t->result = -EMSGSIZE;
                        return 0;
                }
                if (!complete)
                        return i - start;
                check_line((const char *)data + start, i - start, t);
                start = i + 1;
        }
        return 0;
}

/* QEMU splits a command at each ' ' (g_strsplit) and reads numbers with base-0 strtou64. */
static void check_command(const char *cmd, int n, const char *verb, unsigned n_words) {
        unsigned words = 1;

        FUZZ_CHECK(n > 0 && n <= QTEST_CMD_MAX);
        FUZZ_CHECK((size_t)n == strlen(cmd));
        FUZZ_CHECK(cmd[n - 1] == '\n');
        FUZZ_CHECK(strncmp(cmd, verb, strlen(verb)) == 0 && cmd[strlen(verb)] == ' ');
        for (int i = 0; i < n - 1; i++) {
                FUZZ_CHECK(cmd[i] >= 0x20 && cmd[i] <= 0x7e);
                if (cmd[i] == ' ') {
                        FUZZ_CHECK(i > 0 && cmd[i - 1] != ' ' && cmd[i + 1] != '\n');
                        words++;
                }
        }
        FUZZ_CHECK(words == n_words);
}

static void check_formatters(const uint8_t *data, size_t size) {
        char path[QTEST_PATH_MAX + 8];
        char buf[QTEST_CMD_MAX + 1];
        uint64_t addr = 0, back_addr;
        uint32_t value = 0, back_value;
        size_t k = size < sizeof(path) - 1 ? size : sizeof(path) - 1;
        int n;

        memcpy(path, data, k);
        path[k] = '\0';
        n = qtest_format_irq_intercept_out(buf, sizeof(buf), path);
        if (n >= 0) {
                FUZZ_CHECK(qtest_qom_path_is_valid(path));
                check_command(buf, n, "irq_intercept_out", 2);
                FUZZ_CHECK((size_t)n == strlen("irq_intercept_out ") + strlen(path) + 1);
        } else
                FUZZ_CHECK(n == -EINVAL && !qtest_qom_path_is_valid(path));
        /* too small a buffer never gives a truncated command */
        n = qtest_format_irq_intercept_out(buf, 20, path);
        FUZZ_CHECK(n == -EINVAL || n == -ENOBUFS || (n > 0 && n < 20));

        for (size_t i = 0; i < 8 && i < size; i++)
                addr = addr << 8 | data[i];
        for (size_t i = 8; i < 12 && i < size; i++)
                value = value << 8 | data[i];

        n = qtest_format_readl(buf, sizeof(buf), addr);
        check_command(buf, n, "readl", 2);
        FUZZ_CHECK(sscanf(buf, "readl 0x%" SCNx64, &back_addr) == 1 && back_addr == addr);

        n = qtest_format_writel(buf, sizeof(buf), addr, value);
        check_command(buf, n, "writel", 3);
        FUZZ_CHECK(sscanf(buf, "writel 0x%" SCNx64 " 0x%" SCNx32, &back_addr, &back_value) == 2);
        FUZZ_CHECK(back_addr == addr && back_value == value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        QtestSplitter whole, bytes, chunks;
        Trace tw = {0}, tb = {0}, tc = {0}, tr = {0};
        uint64_t seed = UINT64_C(0xcbf29ce484222325);
        size_t rest;
        QtestLine l;

        /* parse_line copes with anything, including lengths it rejects outright */
        if (qtest_parse_line((const char *)data, size, &l) == 0)
                FUZZ_CHECK(size < QTEST_LINE_MAX);

        qtest_splitter_init(&whole);
        feed(&whole, data, size, &tw);

        qtest_splitter_init(&bytes);
        for (size_t i = 0; i < size; i++)
                feed(&bytes, data + i, 1, &tb);

        /* chunk sizes from an FNV-1a hash of the input: deterministic for replay, and they move
         * whenever the fuzzer mutates the data */
        for (size_t i = 0; i < size; i++)
                seed = (seed ^ data[i]) * UINT64_C(0x100000001b3);
        qtest_splitter_init(&chunks);
        for (size_t off = 0; off < size;) {
                size_t n;

                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                n = (seed & 0x300) ? 1 + (size_t)(seed % 9) : 1 + (size_t)(seed % 600);
                if (n > size - off)
                        n = size - off;
                feed(&chunks, data + off, n, &tc);
                off += n;
        }

        rest = reference(data, size, &tr);

        FUZZ_CHECK(tw.result == tr.result && tw.n_lines == tr.n_lines && tw.n_valid == tr.n_valid &&
                   tw.digest == tr.digest);
        FUZZ_CHECK(tb.result == tw.result && tb.n_lines == tw.n_lines && tb.digest == tw.digest);
        FUZZ_CHECK(tc.result == tw.result && tc.n_lines == tw.n_lines && tc.digest == tw.digest);
        if (tw.result == 0) {
                FUZZ_CHECK(whole.len == rest && bytes.len == rest && chunks.len == rest);
                FUZZ_CHECK(memcmp(whole.buf, data + size - rest, rest) == 0);
                FUZZ_CHECK(memcmp(bytes.buf, whole.buf, rest) == 0 &&
                           memcmp(chunks.buf, whole.buf, rest) == 0);
        } else {
                /* overflow is final */
                const uint8_t *p = (const uint8_t *)"OK\n";
                size_t left = 3;
                const char *line;
                size_t len;
                FUZZ_CHECK(qtest_splitter_next(&whole, &p, &left, &line, &len) == -EMSGSIZE);
        }

        check_formatters(data, size);
        return 0;
}
