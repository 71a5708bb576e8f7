/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetPin(IN) -> GpioChanged(OUT) from a C client on the system bus, for a board whose guest copies
 * pin IN onto pin OUT (`piemu-gpio-shim mirror IN OUT`): the agentless GPIO budget of issue 10
 * measured without the ~0.4 ms a Python client adds to every bus call.
 *
 *   bench-gpio-client BOARD [ROUNDS] [IN] [OUT]     prints median and p99 in microseconds
 *
 * The first 50 rounds are not measured. Each round: SetPin(IN, v) (answered first), then wait for
 * GpioChanged(OUT, v) on this connection (a Watch() subscription). The bench/piemu_bench.py
 * gpio-qtest target starts the guest's mirror and runs this. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "macro.h"

#define WARMUP 50

typedef struct {
        unsigned pin;
        int want;
        bool seen;
} Wait;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int on_gpio(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Wait *w = userdata;
        uint32_t pin;
        int value;
        uint64_t ts;

        if (sd_bus_message_read(m, "ubt", &pin, &value, &ts) >= 0 && pin == w->pin && !!value == w->want)
                w->seen = true;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        unsigned rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 500;
        unsigned in = argc > 3 ? (unsigned)atoi(argv[3]) : 17, out = argc > 4 ? (unsigned)atoi(argv[4]) : 23;
        Wait w = {.pin = out};
        uint64_t *lat;
        int r;

        if (argc < 2 || rounds == 0) {
                fprintf(stderr, "usage: bench-gpio-client BOARD [ROUNDS] [IN] [OUT]\n");
                return 2;
        }
        lat = calloc(rounds, sizeof *lat);
        if (!lat)
                return 1;
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "system bus: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_path_encode("/org/piemu/board", argv[1], &path);
        if (r < 0)
                return 1;
        r = sd_bus_match_signal(bus, NULL, "org.piemu", path, "org.piemu.Board", "GpioChanged", on_gpio, &w);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.piemu", path, "org.piemu.Board", "Watch", &error, NULL,
                                       NULL);
        if (r < 0) {
                fprintf(stderr, "Watch: %s\n", error.message ?: strerror(-r));
                return 1;
        }
        for (unsigned i = 0; i < WARMUP + rounds; i++) {
                uint64_t t0 = now_ns();

                w.want = i % 2 == 0;
                w.seen = false;
                r = sd_bus_call_method(bus, "org.piemu", path, "org.piemu.Board", "SetPin", &error, NULL,
                                       "ub", in, w.want);
                if (r < 0) {
                        fprintf(stderr, "SetPin: %s\n", error.message ?: strerror(-r));
                        return 1;
                }
                while (!w.seen) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0) {
                                fprintf(stderr, "bus: %s\n", strerror(-r));
                                return 1;
                        }
                        if (r == 0 && sd_bus_wait(bus, 5 * 1000000ULL) == 0) {
                                fprintf(stderr,
                                        "no GpioChanged(%u, %d) within 5 s: is the guest mirroring %u?\n",
                                        out, w.want, in);
                                return 1;
                        }
                }
                if (i >= WARMUP)
                        lat[i - WARMUP] = now_ns() - t0;
        }
        qsort(lat, rounds, sizeof *lat, cmp_u64);
        printf("SetPin(%u) -> GpioChanged(%u), %u rounds: median %.0f us, p99 %.0f us\n", in, out, rounds,
               lat[rounds / 2] / 1e3,
               lat[(rounds * 99) / 100 < rounds ? (rounds * 99) / 100 : rounds - 1] / 1e3);
        free(lat);
        return 0;
}
