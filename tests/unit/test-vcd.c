/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VCD writer, read back with a small strict reader of the subset it writes. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

#include "tests.h"
#include "vcd.h"

typedef struct Edge {
        uint64_t t;
        unsigned pin;
        char v;
} Edge;

typedef struct Parsed {
        char timescale[16];
        char scope[64];
        int pin_of_id[128]; /* id char -> pin, -1 */
        unsigned n_vars;
        char initial[VCD_NPINS]; /* '0', '1', 'x', or 0 when not dumped */
        Edge edges[64];
        unsigned n_edges;
        uint64_t last_t;
} Parsed;

static void parse(const char *text, Parsed *p) {
        char buf[8192], *save = NULL;
        bool in_dump = false, defs_done = false;
        uint64_t t = 0;

        memset(p, 0, sizeof *p);
        for (unsigned i = 0; i < 128; i++)
                p->pin_of_id[i] = -1;
        CHECK(strlen(text) < sizeof buf);
        strcpy(buf, text);
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                unsigned pin;
                char id;
                if (sscanf(line, "$timescale %15s $end", p->timescale) == 1)
                        continue;
                if (sscanf(line, "$scope module %63s $end", p->scope) == 1)
                        continue;
                if (sscanf(line, "$var wire 1 %c gpio%u $end", &id, &pin) == 2) {
                        CHECK(!defs_done);
                        CHECK(p->pin_of_id[(int)id] == -1); /* ids are unique */
                        p->pin_of_id[(int)id] = (int)pin;
                        p->n_vars++;
                        continue;
                }
                if (strcmp(line, "$enddefinitions $end") == 0) {
                        defs_done = true;
                        continue;
                }
                if (strcmp(line, "$dumpvars") == 0) {
                        in_dump = true;
                        continue;
                }
                if (strcmp(line, "$end") == 0) {
                        in_dump = false;
                        continue;
                }
                if (line[0] == '#') {
                        uint64_t nt = strtoull(line + 1, NULL, 10);
                        CHECK(defs_done);
                        CHECK(nt >= t); /* VCD time never goes back */
                        t = nt;
                        p->last_t = t;
                        continue;
                }
                if (defs_done && (line[0] == '0' || line[0] == '1' || line[0] == 'x') && line[1] &&
                    !line[2]) {
                        int pn = p->pin_of_id[(int)line[1]];
                        CHECK(pn >= 0);
                        if (in_dump)
                                p->initial[pn] = line[0];
                        else {
                                CHECK(p->n_edges < 64);
                                p->edges[p->n_edges++] = (Edge){t, (unsigned)pn, line[0]};
                        }
                        continue;
                }
                if (!defs_done) /* $date, $version text */
                        continue;
                fprintf(stderr, "unexpected line: %s\n", line);
                CHECK(false);
        }
        CHECK(defs_done);
}

int main(void) {
        char *text = NULL;
        size_t len = 0;
        int8_t init[VCD_NPINS];
        VcdWriter w;
        Parsed p;
        FILE *f;

        for (unsigned i = 0; i < VCD_NPINS; i++)
                init[i] = -1;
        init[17] = 1;
        init[23] = 0;

        /* Pins 17, 23 and 53 traced; 24 is not. */
        f = open_memstream(&text, &len);
        CHECK(f);
        uint64_t base = UINT64_C(1764500000000000),
                 pins = (UINT64_C(1) << 17) | (UINT64_C(1) << 23) | (UINT64_C(1) << 53);
        CHECK(vcd_begin(&w, f, "b1", pins, init, base, "Mon Nov 30 2026 $weird\nline") == 0);
        CHECK(vcd_change(&w, 23, true, base + 1500) == 1);
        CHECK(vcd_change(&w, 23, true, base + 1600) == 0);  /* a repeat */
        CHECK(vcd_change(&w, 24, true, base + 1700) == 0);  /* not traced */
        CHECK(vcd_change(&w, 99, true, base + 1700) == 0);  /* not a pin */
        CHECK(vcd_change(&w, 17, false, base + 1500) == 1); /* same time: no new '#' */
        CHECK(vcd_change(&w, 23, false, base + 1000) == 1); /* clock stepped back: clamped */
        CHECK(vcd_change(&w, 53, true, base + 2000000) == 1);
        CHECK(vcd_change(&w, 23, true, base - 5) == 1); /* before the start: clamped too */
        CHECK(w.n_changes == 5);
        CHECK(vcd_end(&w, base + 3000000) == 0);
        fclose(f);

        parse(text, &p);
        CHECK_STREQ(p.timescale, "1us");
        CHECK_STREQ(p.scope, "b1");
        CHECK(p.n_vars == 3);
        CHECK(p.initial[17] == '1' && p.initial[23] == '0' && p.initial[53] == 'x' && p.initial[24] == 0);
        CHECK(p.n_edges == 5);
        CHECK(p.edges[0].t == 1500 && p.edges[0].pin == 23 && p.edges[0].v == '1');
        CHECK(p.edges[1].t == 1500 && p.edges[1].pin == 17 && p.edges[1].v == '0');
        CHECK(p.edges[2].t == 1500 && p.edges[2].pin == 23 && p.edges[2].v == '0');
        CHECK(p.edges[3].t == 2000000 && p.edges[3].pin == 53 && p.edges[3].v == '1');
        CHECK(p.edges[4].t == 2000000 && p.edges[4].pin == 23 && p.edges[4].v == '1');
        CHECK(p.last_t == 3000000);
        CHECK_CONTAINS(text, "Mon Nov 30 2026  weird line"); /* no '$' or newline leaks from $date */
        free(text);

        /* Refused: names that would break the scope line, pins beyond 53, missing arguments. */
        f = open_memstream(&text, &len);
        CHECK(f);
        CHECK(vcd_begin(&w, f, "a b", pins, init, base, NULL) == -EINVAL);
        CHECK(vcd_begin(&w, f, "a$end", pins, init, base, NULL) == -EINVAL);
        CHECK(vcd_begin(&w, f, "", pins, init, base, NULL) == -EINVAL);
        CHECK(vcd_begin(&w, f, "b", UINT64_C(1) << 54, init, base, NULL) == -EINVAL);
        CHECK(vcd_begin(&w, f, "b", pins, NULL, base, NULL) == -EINVAL);
        fclose(f);
        CHECK(len == 0); /* nothing written for a refused trace */
        free(text);

        /* Every pin traced: 54 distinct printable ids. */
        f = open_memstream(&text, &len);
        CHECK(f);
        CHECK(vcd_begin(&w, f, "all", (UINT64_C(1) << VCD_NPINS) - 1, init, 0, NULL) == 0);
        CHECK(vcd_end(&w, 0) == 0);
        fclose(f);
        parse(text, &p);
        CHECK(p.n_vars == VCD_NPINS);
        for (unsigned pin = 0; pin < VCD_NPINS; pin++) {
                char id = vcd_pin_id(pin);
                CHECK(id > ' ' && id <= '~');
                CHECK(p.pin_of_id[(int)id] == (int)pin);
        }
        free(text);
        return 0;
}
