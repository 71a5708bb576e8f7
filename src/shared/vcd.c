/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "vcd.h"

char vcd_pin_id(unsigned pin) {
        /* 54 pins fit in the printable range '!'..'~' with room to spare. */
        return (char)('!' + pin);
}

static uint64_t relative(const VcdWriter *w, uint64_t ts) {
        uint64_t rel = ts > w->start_usec ? ts - w->start_usec : 0;
        return rel < w->last_usec ? w->last_usec : rel;
}

int vcd_begin(VcdWriter *w, FILE *f, const char *board, uint64_t pins, const int8_t initial[VCD_NPINS],
              uint64_t start_usec, const char *date) {
        if (!w || !f || !board || !*board || !initial)
                return -EINVAL;
        if (pins & ~((UINT64_C(1) << VCD_NPINS) - 1))
                return -EINVAL;
        for (const char *c = board; *c; c++)
                if (*c <= ' ' || *c > '~' || *c == '$')
                        return -EINVAL;

        *w = (VcdWriter){.f = f, .pins = pins, .start_usec = start_usec};
        if (date) {
                /* $date is free text up to "$end": keep it on one line and without '$'. */
                fputs("$date\n  ", f);
                for (const char *c = date; *c; c++)
                        fputc(*c == '$' || *c == '\n' ? ' ' : *c, f);
                fputs("\n$end\n", f);
        }
        fputs("$version\n  piemuctl trace\n$end\n", f);
        fputs("$timescale 1us $end\n", f);
        fprintf(f, "$scope module %s $end\n", board);
        for (unsigned pin = 0; pin < VCD_NPINS; pin++)
                if (pins & (UINT64_C(1) << pin))
                        fprintf(f, "$var wire 1 %c gpio%u $end\n", vcd_pin_id(pin), pin);
        fputs("$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n", f);
        for (unsigned pin = 0; pin < VCD_NPINS; pin++) {
                w->level[pin] = -1;
                if (!(pins & (UINT64_C(1) << pin)))
                        continue;
                w->level[pin] = initial[pin] < 0 ? -1 : !!initial[pin];
                fprintf(f, "%c%c\n", w->level[pin] < 0 ? 'x' : (char)('0' + w->level[pin]), vcd_pin_id(pin));
        }
        fputs("$end\n", f);
        w->any_time = true; /* #0 */
        return ferror(f) ? -EIO : 0;
}

int vcd_change(VcdWriter *w, unsigned pin, bool value, uint64_t timestamp_usec) {
        if (!w || !w->f)
                return -EINVAL;
        if (pin >= VCD_NPINS || !(w->pins & (UINT64_C(1) << pin)))
                return 0;
        if (w->level[pin] == (int8_t)value)
                return 0;

        uint64_t t = relative(w, timestamp_usec);
        if (t != w->last_usec)
                fprintf(w->f, "#%" PRIu64 "\n", t);
        w->last_usec = t;
        w->level[pin] = value;
        w->n_changes++;
        fprintf(w->f, "%c%c\n", value ? '1' : '0', vcd_pin_id(pin));
        return ferror(w->f) ? -EIO : 1;
}

int vcd_end(VcdWriter *w, uint64_t end_usec) {
        if (!w || !w->f)
                return -EINVAL;
        uint64_t t = relative(w, end_usec);
        if (t != w->last_usec)
                fprintf(w->f, "#%" PRIu64 "\n", t);
        w->last_usec = t;
        if (fflush(w->f) != 0 || ferror(w->f))
                return errno > 0 ? -errno : -EIO;
        return 0;
}
