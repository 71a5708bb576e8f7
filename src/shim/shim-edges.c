/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim-edges.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/gpio.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "macro.h"

static int request_line(const ShimEdges *e) {
        struct gpio_v2_line_request req = {};
        _cleanup_close_ int chip = -EBADF;

        chip = open(e->chip, O_RDONLY | O_CLOEXEC);
        if (chip < 0) {
                fprintf(stderr, "piemu-gpio-shim: cannot open %s: %m\n", e->chip);
                return -errno;
        }
        req.offsets[0] = e->pin;
        req.num_lines = 1;
        strncpy(req.consumer, "piemu-gpio-shim", sizeof(req.consumer) - 1);
        req.config.flags =
                GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING;
        if (ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req) < 0) {
                fprintf(stderr, "piemu-gpio-shim: cannot request line %u of %s for edge events: %m\n",
                        e->pin, e->chip);
                return -errno;
        }
        return req.fd;
}

/* One edge, or -ETIME. */
static int next_edge(int fd, unsigned timeout_ms, struct gpio_v2_line_event *ev) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        int r;

        r = poll(&p, 1, (int)timeout_ms);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIME;
        n = read(fd, ev, sizeof(*ev));
        if (n < 0)
                return -errno;
        if ((size_t)n != sizeof(*ev))
                return -EIO;
        return 0;
}

int shim_edges_run(const ShimEdges *e) {
        _cleanup_close_ int fd = -EBADF;
        struct gpio_v2_line_event ev;
        int r;

        fd = request_line(e);
        if (fd < 0)
                return fd;
        if (e->follow)
                gpio_regs_set_function(e->follow, e->follow_pin, GPIO_FSEL_OUTPUT);
        /* From here on no edge is lost (the kernel queues them): whoever drives the pin may start. */
        printf("watching GPIO %u\n", e->pin);
        if (fflush(stdout) != 0)
                return -EIO;
        for (unsigned long i = 0; i < e->count; i++) {
                r = next_edge(fd, e->timeout_ms, &ev);
                if (r == -ETIME) {
                        fprintf(stderr,
                                "piemu-gpio-shim: no edge on GPIO %u within %u ms (%lu of %lu seen)\n",
                                e->pin, e->timeout_ms, i, e->count);
                        return r;
                }
                if (r < 0) {
                        fprintf(stderr, "piemu-gpio-shim: reading edge events: %s\n", strerror(-r));
                        return r;
                }
                bool rising = ev.id == GPIO_V2_LINE_EVENT_RISING_EDGE;
                /* The far end first: this is the latency a program reacting to the edge has. */
                if (e->follow)
                        gpio_regs_write_level(e->follow, e->follow_pin, rising);
                printf("%s %" PRIu64 "\n", rising ? "rising" : "falling", (uint64_t)ev.timestamp_ns);
                if (fflush(stdout) != 0)
                        return -EIO;
        }
        return 0;
}
