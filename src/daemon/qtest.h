/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A non-blocking client of QEMU's qtest channel on piemud's sd-event loop: the agentless GPIO
 * path. QEMU runs the board with TCG as usual plus `-qtest unix:PATH,...`; through that channel
 * piemud intercepts the GPIO block's outputs (QEMU then pushes "IRQ raise|lower N" as the guest
 * drives output pins), sets input levels (writel GPSET/GPCLR) and reads level snapshots (readl
 * GPLEV). Protocol details and the trust model are in qtest-proto.h.
 *
 * The object wraps an already connected stream socket (piemud accepted QEMU's connection, or
 * connected to QEMU's listening socket); it does not reconnect: when the connection ends, free
 * the object and make a new one for the next connection.
 *
 * Commands are queued in order and sent without blocking; each completes through its callback,
 * exactly once, never from inside the call that queued it. At most QTEST_QUEUE_MAX commands may
 * wait for their replies; beyond that, calls fail with -ENOBUFS and nothing is queued.
 *
 * The connection is closed, and every waiting callback and then on_closed get the error, on:
 *   -EMSGSIZE    a line longer than QTEST_LINE_MAX
 *   -EBADMSG     a line that is not qtest
 *   -EPROTO      a reply nobody waits for, or of the wrong kind (a value for writel, none for readl,
 *                a readl value above 32 bits)
 *   -EREMOTEIO   FAIL or ERR for irq_intercept_out (a FAIL or ERR for readl/writel only fails that
 *                command, with -EREMOTEIO; QEMU 10 never sends either)
 *   -ECONNRESET  QEMU closed the connection; other negative errnos from read()/send()
 *
 * IRQ lines with an index >= QTEST_GPIO_NPINS are well-formed but not for us (a BCM2711's GPIO
 * block has 58 outputs): they are counted and dropped, not fatal.
 *
 * QEMU writes qtest output with qemu_chr_fe_write_all(): while the socket is full, the vCPU that
 * raised the IRQ spins in QEMU until piemud reads. So the client always reads (there is no pause),
 * and anything that blocks piemud's loop stalls every guest whose GPIO is busy.
 *
 * Everything runs on the thread that called qtest_new() (asserted). Callbacks may call anything
 * here, including qtest_free() on the object they are called for. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "qtest-proto.h"

/* Commands waiting for their replies, at most (a gpio_read_levels counts as two). */
#define QTEST_QUEUE_MAX 128

typedef struct Qtest Qtest;

/* r: 0, or a negative errno (see above; -ECANCELED when the object was freed first). */
typedef void (*qtest_done_cb)(Qtest *q, int r, void *userdata);
/* value only meaningful if r == 0 (else 0) */
typedef void (*qtest_value_cb)(Qtest *q, int r, uint32_t value, void *userdata);
/* levels: bit n = GPIO n, never bits >= QTEST_GPIO_NPINS; only meaningful if r == 0 (else 0) */
typedef void (*qtest_levels_cb)(Qtest *q, int r, uint64_t levels, void *userdata);

typedef struct QtestCallbacks {
        /* An intercepted output changed. line < QTEST_GPIO_NPINS. */
        void (*on_irq)(Qtest *q, unsigned line, bool level, void *userdata);
        /* The connection ended with error (< 0), after every waiting callback got the same error.
         * Called at most once, and never because of (or after) qtest_free(). The object stays
         * allocated until qtest_free(), which may be called from here. */
        void (*on_closed)(Qtest *q, int error, void *userdata);
} QtestCallbacks;

/* Takes over fd (a connected SOCK_STREAM socket; made non-blocking here) on success only; on
 * failure the caller still owns it. cb may be NULL, and so may either callback. */
int qtest_new(sd_event *e, int fd, const QtestCallbacks *cb, void *userdata, Qtest **ret);
/* Closes the connection. Callbacks of commands still waiting are called with -ECANCELED before
 * this returns (with the connection's error instead if it is being closed right now); on_irq and
 * on_closed are not called any more. Safe from within any callback of q; NULL is fine. */
Qtest *qtest_free(Qtest *q);

/* The calls below return 0 when the command is queued (its callback, which may be NULL, will be
 * called exactly once), -ENOTCONN after the connection ended, -ENOBUFS when QTEST_QUEUE_MAX
 * commands wait already, -EINVAL for bad arguments. */

/* irq_intercept_out PATH (QTEST_GPIO_QOM_PATH for the raspi machines). QEMU answers OK for a
 * second intercept of the same device, e.g. on a new connection after piemud restarted; a FAIL
 * closes the connection. */
int qtest_intercept_gpio(Qtest *q, const char *path, qtest_done_cb cb, void *userdata);
int qtest_readl(Qtest *q, uint64_t addr, qtest_value_cb cb, void *userdata);
int qtest_writel(Qtest *q, uint64_t addr, uint32_t value, qtest_done_cb cb, void *userdata);

/* set_irq_in PATH unnamed-gpio-in LINE LEVEL: drives an input line of the device. Only for a device
 * that has the line (see qtest_format_set_irq_in: stock QEMU aborts otherwise). */
int qtest_set_irq_in(Qtest *q, const char *path, unsigned line, bool level, qtest_done_cb cb,
                     void *userdata);

/* GPIO helpers; base is the GPIO block's address (see qtest-proto.h). */
/* writel 1<<pin to GPSETn or GPCLRn. The guest reads the level in GPLEV. QEMU raises an output IRQ
 * for it only if the pin is an output already (then on_irq sees our own change too). */
int qtest_gpio_set(Qtest *q, uint64_t base, unsigned pin, bool level, qtest_done_cb cb, void *userdata);
/* readl GPLEV0 and GPLEV1, two commands queued together: all 54 levels. The two reads are not one
 * atomic snapshot (the guest may run in between). */
int qtest_gpio_read_levels(Qtest *q, uint64_t base, qtest_levels_cb cb, void *userdata);

bool qtest_is_open(const Qtest *q);
/* Commands waiting for replies (including those not yet sent). */
unsigned qtest_n_queued(const Qtest *q);
/* Well-formed IRQ lines dropped for an index >= QTEST_GPIO_NPINS. */
uint64_t qtest_n_ignored_irqs(const Qtest *q);
