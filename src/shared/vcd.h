/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A Value Change Dump (IEEE 1364 §18) of GPIO levels, as GTKWave, PulseView and sigrok read it: one
 * 1-bit wire per traced pin, time in microseconds from the trace's start. Pure: it only writes to
 * the FILE it is given. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VCD_NPINS 54 /* BCM2835..2711 GPIO 0..53 */

typedef struct VcdWriter {
        FILE *f;
        uint64_t pins;           /* mask of traced pins */
        uint64_t start_usec;     /* the events' clock at time 0 */
        uint64_t last_usec;      /* last time stamp written, relative to start_usec */
        bool any_time;           /* a '#' line has been written since the definitions */
        int8_t level[VCD_NPINS]; /* last written level: 0, 1, or -1 for x (unknown) */
        unsigned n_changes;      /* value changes written after the initial dump */
} VcdWriter;

/* The identifier code of a pin's wire: one printable character, '!' + pin. */
char vcd_pin_id(unsigned pin);

/* Writes the header and the initial values ($dumpvars at #0). board names the scope (already a
 * valid piemu name: no white space); date is free text for $date (may be NULL); initial[pin] is 0,
 * 1 or -1 (unknown, written as x). start_usec is the event clock's value at time 0. */
int vcd_begin(VcdWriter *w, FILE *f, const char *board, uint64_t pins, const int8_t initial[VCD_NPINS],
              uint64_t start_usec, const char *date);

/* Records that pin went to value at timestamp_usec (the event's own time stamp). Untraced pins and
 * repeats of the current level are ignored (returns 0). A time stamp before the trace's start or
 * before the last one written (the wall clock stepped back) is written at the last time, since
 * VCD time never decreases; returns 1 when a change was written. */
int vcd_change(VcdWriter *w, unsigned pin, bool value, uint64_t timestamp_usec);

/* Ends the dump with a last time stamp (the trace's end) so viewers show the final levels for
 * their full length. Flushes; returns -errno on a write error seen at any point. */
int vcd_end(VcdWriter *w, uint64_t end_usec);
