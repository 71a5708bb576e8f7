/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The shim's daemon logic, independent of where its registers and its host line come from:
 * piemu-gpio-shim wires it to the mapped GPIO block and serial1, the unit test to fake
 * registers and a socketpair. */

#include <stdbool.h>
#include <stdint.h>

#include "gpio-proto.h"
#include "gpio-regs.h"

/* Scanning costs the guest a wakeup each time, and under TCG that is expensive: measured on
 * raspi3b with Debian's kernel, one scan is ~0.3-0.5 ms of guest CPU and ~1 ms of host CPU for
 * QEMU, so 20 ms costs an idle board ~3-4 % of a host core and 100 ms ~1 %. Hence two speeds:
 * fast while pins are moving or the host is talking, slow once nothing happened for a while. */
#define SHIM_INTERVAL_MS_DEFAULT      20u
#define SHIM_IDLE_INTERVAL_MS_DEFAULT 100u
#define SHIM_IDLE_AFTER_MS            2000u
#define SHIM_INTERVAL_MS_MAX          10000u
/* How long one batch of output may wait for a full line to drain before the rest is dropped.
 * 64 bytes would take ~6 ms at 115200 baud (QEMU ignores the speed), so this only runs out when
 * nobody is reading. */
#define SHIM_WRITE_WAIT_MS 50u

typedef struct {
        GpioRegs *regs;
        int fd; /* host line, O_NONBLOCK, read and written */
        const char *version;
        bool verbose;

        GpioParser parser;
        /* The levels the host has been told about. A bit only changes here once its GPIO line
         * went out, so a change dropped while the host was away is reported again later. */
        uint64_t reported;
        bool need_scan;
        /* Part of a line was written before output stalled: terminate the fragment with '\n'
         * before the next line, so the host drops one garbled line instead of misreading two. */
        bool broken_line;
        uint64_t write_deadline_usec; /* 0 until a write in this batch had to wait */

        uint64_t n_lines_sent;
        uint64_t n_lines_dropped;
        uint64_t n_ignored; /* valid lines that make no sense in this direction */
} Shim;

void shim_init(Shim *s, GpioRegs *regs, int fd, const char *version, bool verbose);

/* Says HELLO and takes the current levels as the baseline. */
int shim_start(Shim *s);
/* Reports every level that differs from what the host was told, in pin order. Returns the
 * number of GPIO lines sent, or a negative errno if the line failed in a way other than being
 * full. */
int shim_scan(Shim *s);
/* Handles bytes from the host: SET drives a level (and its change is reported right away), SYNC
 * is answered with PINS; everything else is counted and ignored. */
int shim_handle_input(Shim *s, const void *data, size_t size);
/* Reads what is available on the host line and handles it. Returns 0, or -EPIPE at EOF/hangup. */
int shim_process_input(Shim *s);

/* Polls the host line and scans until SIGTERM/SIGINT arrives on sigfd (a signalfd; -EBADF for
 * none): every interval_ms, or every idle_interval_ms once SHIM_IDLE_AFTER_MS passed without a
 * level change or input (idle_interval_ms <= interval_ms disables that). Never busy-waits: it
 * sleeps in poll() until input arrives or the next scan is due. Returns 0 after a signal,
 * negative errno on failure. */
int shim_run(Shim *s, unsigned interval_ms, unsigned idle_interval_ms, int sigfd);

uint64_t shim_now_usec(void);
