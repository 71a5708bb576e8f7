/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for the qtest line parser, splitter and command formatters (src/daemon/qtest-proto.c). */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qtest-proto.h"
#include "tests.h"

static void parse_ok(const char *s, QtestLineType type, QtestLine *l) {
        if (qtest_parse_line(s, strlen(s), l) != 0) {
                fprintf(stderr, "rejected: '%s'\n", s);
                exit(1);
        }
        CHECK(l->type == type);
}

static void parse_bad_n(const char *s, size_t n) {
        QtestLine l;

        memset(&l, 0xaa, sizeof(l));
        if (qtest_parse_line(s, n, &l) != -EBADMSG) {
                fprintf(stderr, "accepted: '%.*s'\n", (int)n, s);
                exit(1);
        }
        /* nothing of a rejected line survives */
        CHECK(l.type == QTEST_LINE_UNKNOWN && l.value == 0 && l.irq == 0 && !l.level &&
              l.message[0] == '\0');
}

static void parse_bad(const char *s) {
        parse_bad_n(s, strlen(s));
}

static void test_replies(void) {
        QtestLine l;

        parse_ok("OK", QTEST_LINE_OK, &l);
        CHECK(l.value == 0 && l.message[0] == '\0');

        /* what QEMU 10's readl prints: "OK 0x%016" PRIx64 */
        parse_ok("OK 0x0000000000020000", QTEST_LINE_VALUE, &l);
        CHECK(l.value == 0x20000);
        parse_ok("OK 0x1", QTEST_LINE_VALUE, &l);
        CHECK(l.value == 1);
        parse_ok("OK 0xFFFFffffFFFFffff", QTEST_LINE_VALUE, &l);
        CHECK(l.value == UINT64_MAX);
        parse_ok("OK 0x0", QTEST_LINE_VALUE, &l);
        CHECK(l.value == 0);

        parse_bad("OK 0x00000000000000000"); /* 17 digits */
        parse_bad("OK 0x");
        parse_bad("OK ");
        parse_bad("OK 12");
        parse_bad("OK  0x1");
        parse_bad("OK 0x1 ");
        parse_bad("OK 0X1");
        parse_bad("OK 0xg");
        parse_bad("OK big");
        parse_bad("OK -0x1");
        parse_bad("OKAY");
        parse_bad("ok");
        parse_bad(" OK");

        parse_ok("FAIL", QTEST_LINE_FAIL, &l);
        CHECK_STREQ(l.message, "");
        parse_ok("FAIL Unknown device", QTEST_LINE_FAIL, &l);
        CHECK_STREQ(l.message, "Unknown device");
        parse_ok("FAIL Unknown command 'frob'", QTEST_LINE_FAIL, &l);
        CHECK_STREQ(l.message, "Unknown command 'frob'");
        parse_ok("ERR invalid argument size", QTEST_LINE_ERR, &l);
        CHECK_STREQ(l.message, "invalid argument size");
        parse_bad("FAILED");
        parse_bad("ERR");
        parse_bad("ERROR x");
}

static void test_irqs(void) {
        QtestLine l;

        parse_ok("IRQ raise 23", QTEST_LINE_IRQ, &l);
        CHECK(l.irq == 23 && l.level);
        parse_ok("IRQ lower 0", QTEST_LINE_IRQ, &l);
        CHECK(l.irq == 0 && !l.level);
        parse_ok("IRQ lower 53", QTEST_LINE_IRQ, &l);
        CHECK(l.irq == 53 && !l.level);
        /* well-formed, out of the GPIO range: the client decides (it drops them) */
        parse_ok("IRQ raise 255", QTEST_LINE_IRQ, &l);
        CHECK(l.irq == 255);

        parse_bad("IRQ raise 256");
        parse_bad("IRQ raise 4294967319"); /* 2^32 + 23 must not wrap to 23 */
        parse_bad("IRQ raise 023");
        parse_bad("IRQ raise 00");
        parse_bad("IRQ raise -1");
        parse_bad("IRQ raise +1");
        parse_bad("IRQ raise 0x1");
        parse_bad("IRQ raise");
        parse_bad("IRQ raise ");
        parse_bad("IRQ raise 1 ");
        parse_bad("IRQ  raise 1");
        parse_bad("IRQ raise  1");
        parse_bad("IRQ toggle 1");
        parse_bad("irq raise 1");
        parse_bad("IRQ");
}

static void test_bytes(void) {
        char big[QTEST_LINE_MAX + 8];
        QtestLine l;

        parse_bad("");
        parse_bad("OK\r");
        parse_bad_n("OK\0", 3);
        parse_bad_n("IRQ raise 1\0", 12);
        parse_bad_n("\0OK", 3);
        parse_bad("FAIL \x7f");
        parse_bad("FAIL caf\xc3\xa9");
        parse_bad("FAIL \t");
        parse_bad("IRQ raise 1\n");

        /* a FAIL message as long as a line can be */
        memcpy(big, "FAIL ", 5);
        memset(big + 5, 'x', sizeof(big) - 5);
        CHECK(qtest_parse_line(big, QTEST_LINE_MAX - 1, &l) == 0);
        CHECK(l.type == QTEST_LINE_FAIL && strlen(l.message) == QTEST_LINE_MAX - 6);
        parse_bad_n(big, QTEST_LINE_MAX);
        parse_bad_n(big, sizeof(big));
}

/* Feeds s to the splitter in chunks of `chunk` bytes and joins the lines with '|'. Returns the
 * splitter's final result code (0 or -EMSGSIZE). */
static int split(QtestSplitter *sp, const char *s, size_t n, size_t chunk, char *out, size_t outsize) {
        size_t off = 0;

        out[0] = '\0';
        while (off < n) {
                size_t k = n - off < chunk ? n - off : chunk;
                const uint8_t *p = (const uint8_t *)s + off;
                size_t left = k;
                const char *line;
                size_t len;
                int r;

                while ((r = qtest_splitter_next(sp, &p, &left, &line, &len)) > 0) {
                        CHECK(len < QTEST_LINE_MAX);
                        CHECK(memchr(line, '\n', len) == NULL);
                        CHECK(strlen(out) + len + 2 < outsize);
                        strncat(out, line, len);
                        strcat(out, "|");
                }
                if (r < 0)
                        return r;
                CHECK(left == 0);
                off += k;
        }
        return 0;
}

static void test_splitter(void) {
        static const char stream[] = "OK\nIRQ raise 23\nOK 0x0000000000020000\n\nIRQ lower 23\nFAIL x\npart";
        char out[512], expect[512];
        QtestSplitter sp;

        for (size_t chunk = 1; chunk <= sizeof(stream); chunk++) {
                qtest_splitter_init(&sp);
                CHECK(split(&sp, stream, sizeof(stream) - 1, chunk, out, sizeof(out)) == 0);
                CHECK_STREQ(out, "OK|IRQ raise 23|OK 0x0000000000020000||IRQ lower 23|FAIL x|");
                CHECK(sp.len == 4 && memcmp(sp.buf, "part", 4) == 0);
                /* the partial line completes with the next input */
                CHECK(split(&sp, "y\n", 2, 1, out, sizeof(out)) == 0);
                CHECK_STREQ(out, "party|");
        }

        /* longest line: 255 bytes and its '\n', in one piece or byte by byte */
        char line[QTEST_LINE_MAX + 2];
        memset(line, 'a', sizeof(line));
        line[QTEST_LINE_MAX - 1] = '\n';
        for (size_t chunk = 1; chunk <= QTEST_LINE_MAX; chunk += QTEST_LINE_MAX - 1) {
                qtest_splitter_init(&sp);
                CHECK(split(&sp, line, QTEST_LINE_MAX, chunk, out, sizeof(out)) == 0);
                CHECK(strlen(out) == QTEST_LINE_MAX);
        }
        memset(expect, 'a', QTEST_LINE_MAX - 1);
        expect[QTEST_LINE_MAX - 1] = '|';
        expect[QTEST_LINE_MAX] = '\0';
        CHECK_STREQ(out, expect);

        /* one byte more is fatal, whether or not its '\n' has come yet, and stays fatal */
        for (size_t chunk = 1; chunk <= QTEST_LINE_MAX + 1; chunk += QTEST_LINE_MAX) {
                memset(line, 'a', sizeof(line));
                line[QTEST_LINE_MAX] = '\n';
                qtest_splitter_init(&sp);
                CHECK(split(&sp, line, QTEST_LINE_MAX + 1, chunk, out, sizeof(out)) == -EMSGSIZE);
                CHECK(sp.overflow);
                CHECK(split(&sp, "OK\n", 3, 3, out, sizeof(out)) == -EMSGSIZE);

                qtest_splitter_init(&sp);
                CHECK(split(&sp, line, QTEST_LINE_MAX, chunk, out, sizeof(out)) == -EMSGSIZE);
        }
        /* 255 bytes without '\n' are still fine: the '\n' may come */
        qtest_splitter_init(&sp);
        CHECK(split(&sp, line, QTEST_LINE_MAX - 1, 7, out, sizeof(out)) == 0);
        CHECK(sp.len == QTEST_LINE_MAX - 1);
        CHECK(split(&sp, "\n", 1, 1, out, sizeof(out)) == 0);
        CHECK(strlen(out) == QTEST_LINE_MAX);

        /* empty input */
        {
                const uint8_t *p = (const uint8_t *)"";
                size_t left = 0;
                const char *l;
                size_t len;
                qtest_splitter_init(&sp);
                CHECK(qtest_splitter_next(&sp, &p, &left, &l, &len) == 0);
        }
}

static void test_format(void) {
        char buf[QTEST_CMD_MAX + 1];
        char path[QTEST_PATH_MAX + 2];

        CHECK(qtest_format_readl(buf, sizeof(buf), 0x3f200034) == 17);
        CHECK_STREQ(buf, "readl 0x3f200034\n");
        CHECK(qtest_format_writel(buf, sizeof(buf), 0x3f20001c, 0x20000) == 26);
        CHECK_STREQ(buf, "writel 0x3f20001c 0x20000\n");
        CHECK(qtest_format_writel(buf, sizeof(buf), UINT64_MAX, UINT32_MAX) > 0);
        CHECK_STREQ(buf, "writel 0xffffffffffffffff 0xffffffff\n");
        CHECK(qtest_format_writel(buf, sizeof(buf), 0, 0) > 0);
        CHECK_STREQ(buf, "writel 0x0 0x0\n");
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), QTEST_GPIO_QOM_PATH) > 0);
        CHECK_STREQ(buf, "irq_intercept_out /machine/soc/peripherals/gpio\n");
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), "/machine/unattached/device[12]") > 0);
        CHECK(qtest_format_set_irq_in(buf, sizeof(buf), QTEST_GPIO_QOM_PATH, 17, true) == 62);
        CHECK_STREQ(buf, "set_irq_in /machine/soc/peripherals/gpio unnamed-gpio-in 17 1\n");
        CHECK(qtest_format_set_irq_in(buf, sizeof(buf), QTEST_GPIO_QOM_PATH, 53, false) > 0);
        CHECK_STREQ(buf, "set_irq_in /machine/soc/peripherals/gpio unnamed-gpio-in 53 0\n");
        /* a line the block has not (QEMU would abort on it), or a path that is two words */
        CHECK(qtest_format_set_irq_in(buf, sizeof(buf), QTEST_GPIO_QOM_PATH, 54, true) == -EINVAL);
        CHECK(qtest_format_set_irq_in(buf, sizeof(buf), "/machine/soc gpio", 1, true) == -EINVAL);
        CHECK(qtest_format_set_irq_in(buf, sizeof(buf), NULL, 1, true) == -EINVAL);
        CHECK(qtest_format_set_irq_in(buf, 20, QTEST_GPIO_QOM_PATH, 1, true) == -ENOBUFS);

        /* too small: nothing half-written is claimed */
        CHECK(qtest_format_readl(buf, 17, 0x3f200034) == -ENOBUFS);
        CHECK(qtest_format_readl(buf, 18, 0x3f200034) == 17);
        CHECK(qtest_format_writel(buf, 5, 1, 1) == -ENOBUFS);

        /* paths that would be a named intercept, a second command, or nothing */
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), "/machine/soc gpio") == -EINVAL);
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), "/machine\nwritel 0 0") == -EINVAL);
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), "") == -EINVAL);
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), NULL) == -EINVAL);
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), "/a\tb") == -EINVAL);
        CHECK(!qtest_qom_path_is_valid("/gpio\xc3\xa9"));
        memset(path, 'a', sizeof(path));
        path[QTEST_PATH_MAX] = '\0';
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), path) == 18 + QTEST_PATH_MAX + 1);
        path[QTEST_PATH_MAX] = 'a';
        path[QTEST_PATH_MAX + 1] = '\0';
        CHECK(qtest_format_irq_intercept_out(buf, sizeof(buf), path) == -EINVAL);
}

int main(void) {
        test_replies();
        test_irqs();
        test_bytes();
        test_splitter();
        test_format();
        printf("test-qtest-proto: ok\n");
        return 0;
}
