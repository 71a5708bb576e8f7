/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The GPIO shim protocol spoken on serial1 between piemud and piemu-gpio-shim.
 *
 * ASCII lines terminated by '\n', at most GPIO_PROTO_LINE_MAX bytes including the '\n'; one
 * '\r' right before the '\n' is tolerated and stripped. Fields are separated by exactly one
 * space. Pins are decimal 0-53 without sign or leading zeros ("0" itself is fine).
 *
 *   guest → host:  GPIO <pin> <0|1>             a level changed
 *                  HELLO piemu-shim <version>   shim is up; version is 1-16 of [A-Za-z0-9._+-]
 *                  PINS <hex>                   snapshot of all 54 levels, pin N = bit N,
 *                                               1-14 hex digits (either case), no "0x"
 *   host → guest:  SET <pin> <0|1>              drive a level
 *                  SYNC                         ask for a PINS snapshot
 *
 * Anything else is an invalid line: it is dropped and counted, never fatal, because the line is
 * a serial port that also carries whatever the guest kernel or a confused program writes to it.
 *
 * The parser does not know which side it runs on and accepts all five messages; filtering by
 * direction is the caller's job. piemud ignores SET and SYNC coming from the guest and counts
 * them as invalid; the shim ignores GPIO, HELLO and PINS coming from the host.
 *
 * This file is plain C99 + libc: it is linked into piemud and also cross-compiled into the
 * static guest shim. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPIO_PROTO_NPINS       54
#define GPIO_PROTO_LINE_MAX    64
#define GPIO_PROTO_VERSION_MAX 16
#define GPIO_PROTO_PINS_MASK   ((UINT64_C(1) << GPIO_PROTO_NPINS) - 1)

typedef enum {
        GPIO_MSG_GPIO,
        GPIO_MSG_HELLO,
        GPIO_MSG_PINS,
        GPIO_MSG_SET,
        GPIO_MSG_SYNC,
} GpioMsgType;

/* Only the fields of the given type are meaningful; the others are zeroed. */
typedef struct {
        GpioMsgType type;
        unsigned pin;                             /* GPIO, SET */
        bool value;                               /* GPIO, SET */
        uint64_t mask;                            /* PINS, never has bits >= GPIO_PROTO_NPINS */
        char version[GPIO_PROTO_VERSION_MAX + 1]; /* HELLO, NUL-terminated */
} GpioMsg;

/* Streaming line splitter. Memory is fixed: a line is buffered only while it is incomplete and
 * can still be valid; once 64 bytes have gone by without '\n' the rest of that line is skipped
 * (discarding) up to and including its '\n', and it counts as one invalid line. */
typedef struct {
        char buf[GPIO_PROTO_LINE_MAX];
        size_t len;      /* bytes of the incomplete line in buf, always < GPIO_PROTO_LINE_MAX */
        bool discarding; /* inside an overlong line, skipping to its '\n' */
        uint64_t n_invalid;
        uint64_t n_valid;
} GpioParser;

void gpio_parser_init(GpioParser *p);

/* Parses one complete line (without its '\n'; a trailing '\r' is stripped). Returns 0 and fills
 * *msg, or -EINVAL (and leaves *msg zeroed). Pure: no state, no allocation, no I/O. */
int gpio_proto_parse_line(const char *line, size_t len, GpioMsg *msg);

/* Feeds bytes; calls cb (may be NULL) for every valid message, in order. If cb returns < 0,
 * feeding stops and that value is returned: the line that produced the message is consumed and
 * counted as valid, the bytes after it in this call are dropped. Otherwise returns the number
 * of messages delivered (saturating at INT_MAX). Invalid lines bump n_invalid, valid ones
 * n_valid. */
typedef int (*gpio_msg_cb)(const GpioMsg *msg, void *userdata);
int gpio_parser_feed(GpioParser *p, const void *data, size_t size, gpio_msg_cb cb, void *userdata);

/* Formatting helpers: write one '\n'-terminated, NUL-terminated line and return its length
 * (without the NUL), -ENOBUFS if it does not fit into size bytes, or -EINVAL for arguments that
 * would not parse back (pin >= 54, bad version, mask bits >= 54). A buffer of
 * GPIO_PROTO_LINE_MAX + 1 bytes always suffices. */
int gpio_proto_format_set(char *buf, size_t size, unsigned pin, bool value);  /* "SET 17 1\n" */
int gpio_proto_format_gpio(char *buf, size_t size, unsigned pin, bool value); /* "GPIO 23 0\n" */
int gpio_proto_format_hello(char *buf, size_t size, const char *version);     /* "HELLO piemu-shim 1\n" */
int gpio_proto_format_pins(char *buf, size_t size, uint64_t mask);            /* "PINS 20000\n" */
int gpio_proto_format_sync(char *buf, size_t size);                           /* "SYNC\n" */
/* Any message, dispatching on msg->type. */
int gpio_proto_format_msg(char *buf, size_t size, const GpioMsg *msg);

/* Strict decimal pin number as used on the wire and on the shim's command line: 0-53, no sign,
 * no leading zeros, no surrounding space. Returns 0 or -EINVAL; never overflows. */
int gpio_proto_parse_pin(const char *s, size_t len, unsigned *ret);
bool gpio_proto_version_is_valid(const char *version);
const char *gpio_msg_type_to_string(GpioMsgType t);
