/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* QEMU's qtest protocol (system/qtest.c in QEMU 10), the part piemud speaks on a board's qtest
 * channel to drive and watch GPIO without anything in the guest.
 *
 * Text lines ending in '\n'. Every command gets exactly one reply line, in order; asynchronous
 * "IRQ raise N" / "IRQ lower N" lines (N: the "%d" index of an intercepted GPIO output) may come
 * before, between and after replies. The replies QEMU 10 writes:
 *
 *   OK                       writel, irq_intercept_out (also for a second intercept of the same
 *                            device), and most other commands
 *   OK 0x%016x               readb/w/l/q (readl: the upper 8 hex digits are zero)
 *   FAIL [message]           irq_intercept_out ("FAIL Unknown device", "FAIL IRQ intercept already
 *                            enabled", "FAIL No intercepts installed"), unknown commands
 *                            ("FAIL Unknown command '%s'")
 *   ERR message              write/b64write with a short argument
 *
 * Everything that comes from QEMU is untrusted: the guest steers what QEMU does, and the parser
 * must not let a confused or compromised QEMU write out of bounds or make piemud believe nonsense.
 * So the parser is strict: a line is at most QTEST_LINE_MAX bytes with its '\n', holds only
 * printable ASCII (no '\r', no NUL), and must be one of the forms above exactly (one space between
 * fields; the IRQ index decimal without sign or leading zeros, at most QTEST_IRQ_MAX as QEMU keeps
 * 256 levels; "OK" values "0x" and 1-16 hex digits). Anything else is QTEST_LINE_UNKNOWN, and the
 * client drops the connection.
 *
 * Commands go the other way, and QEMU trusts them completely: a command with a missing or
 * unparsable argument hits a g_assert() and kills QEMU with the guest in it. Commands are therefore
 * only ever produced by the formatters below, never assembled by hand.
 *
 * Pure C: no I/O, no allocation, no global state (this file is also the fuzz target). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line accepted from QEMU, including its '\n'. QEMU's longest reply to anything piemud
 * sends is 21 bytes ("OK 0x" + 16 digits); 256 leaves room for FAIL messages. */
#define QTEST_LINE_MAX 256
/* Longest command we send, including its '\n' (and a buffer this big + 1 always suffices). */
#define QTEST_CMD_MAX 256
/* Longest QOM path accepted by the irq_intercept_out formatter. */
#define QTEST_PATH_MAX 200
/* QEMU's MAX_IRQ - 1: larger IRQ indexes cannot come from a sane QEMU. */
#define QTEST_IRQ_MAX 255

/* The BCM2835/7 GPIO block (QEMU's bcm2835_gpio, raspi0/1/2/3): 54 pins, output n reports as
 * "IRQ raise|lower n". Register offsets from the block's base: raspi3b 0x3f200000, BCM2835 boards
 * 0x20200000, BCM2711 0xfe200000 (QEMU's bcm2838_gpio has 58 pins; only 0-53 are handled here). */
#define QTEST_GPIO_NPINS    54
#define QTEST_GPIO_MASK     ((UINT64_C(1) << QTEST_GPIO_NPINS) - 1)
#define QTEST_GPIO_GPSET0   0x1c
#define QTEST_GPIO_GPSET1   0x20
#define QTEST_GPIO_GPCLR0   0x28
#define QTEST_GPIO_GPCLR1   0x2c
#define QTEST_GPIO_GPLEV0   0x34
#define QTEST_GPIO_GPLEV1   0x38
#define QTEST_GPIO_QOM_PATH "/machine/soc/peripherals/gpio"

typedef enum {
        QTEST_LINE_UNKNOWN, /* malformed, or nothing qtest sends */
        QTEST_LINE_OK,      /* "OK" */
        QTEST_LINE_VALUE,   /* "OK 0x<hex>": value */
        QTEST_LINE_FAIL,    /* "FAIL" or "FAIL <message>": message */
        QTEST_LINE_ERR,     /* "ERR <message>": message */
        QTEST_LINE_IRQ,     /* "IRQ raise|lower <n>": irq, level */
} QtestLineType;

/* Only the fields of the given type are meaningful; the others are zeroed. */
typedef struct {
        QtestLineType type;
        uint64_t value;               /* VALUE */
        unsigned irq;                 /* IRQ, <= QTEST_IRQ_MAX */
        bool level;                   /* IRQ: raise = true */
        char message[QTEST_LINE_MAX]; /* FAIL, ERR: printable ASCII, NUL-terminated, maybe empty */
} QtestLine;

/* Classifies one line (without its '\n'). Returns 0, or -EBADMSG with ret->type ==
 * QTEST_LINE_UNKNOWN (then nothing else in *ret is set). Never reads beyond len. */
int qtest_parse_line(const char *line, size_t len, QtestLine *ret);

/* Incremental line splitter with bounded memory. */
typedef struct {
        char buf[QTEST_LINE_MAX]; /* the start of a line that continues in later input */
        size_t len;               /* bytes of it in buf, always < QTEST_LINE_MAX */
        bool overflow;            /* a line exceeded QTEST_LINE_MAX: the stream is unusable */
} QtestSplitter;

void qtest_splitter_init(QtestSplitter *s);

/* Takes input from *data / *size (advancing both) until a line is complete. Returns 1 and points
 * *ret_line / *ret_len at that line without its '\n' (valid until the next call on s or until the
 * input is gone; it may point into the input or into s); 0 once all input is used up without
 * completing another line (the partial line is kept in s); -EMSGSIZE if a line (its '\n' included)
 * is longer than QTEST_LINE_MAX. A line cannot be skipped safely on a request/reply stream, so the
 * overflow is permanent: every later call returns -EMSGSIZE too. */
int qtest_splitter_next(QtestSplitter *s, const uint8_t **data, size_t *size, const char **ret_line,
                        size_t *ret_len);

/* Command formatters: write one '\n'-terminated, NUL-terminated command into buf and return its
 * length (without the NUL), -ENOBUFS if size is too small (QTEST_CMD_MAX + 1 always suffices), or
 * -EINVAL for arguments QEMU could not take. */
int qtest_format_readl(char *buf, size_t size, uint64_t addr); /* "readl 0x3f200034\n" */
int qtest_format_writel(char *buf, size_t size, uint64_t addr,
                        uint32_t value); /* "writel 0x3f20001c 0x20000\n" */
/* path: 1-QTEST_PATH_MAX bytes of [A-Za-z0-9/_.[]-]: a space would make it a named intercept, a
 * newline a second command. */
int qtest_format_irq_intercept_out(char *buf, size_t size, const char *path);
/* "set_irq_in PATH unnamed-gpio-in LINE LEVEL\n": drives the device's input line. QEMU asserts
 * (aborts) on a line the device does not have: only for a device known to have it (piemu's QEMU's
 * GPIO block has QTEST_GPIO_NPINS inputs; stock QEMU 10's has none). line < QTEST_GPIO_NPINS. */
int qtest_format_set_irq_in(char *buf, size_t size, const char *path, unsigned line, bool level);

bool qtest_qom_path_is_valid(const char *path);
const char *qtest_line_type_to_string(QtestLineType t);
