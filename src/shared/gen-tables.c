/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* gen-tables: writes the shared tables (pi-models.c, error-table.c) into the files that cannot
 * include C, at build time, so that none of them keeps a copy of its own:
 *   gen-tables errors-js TEMPLATE OUTPUT   cockpit/errors.js: the line "// gen-tables: errors"
 *                                          becomes the page's SENTENCES, WITH_DETAIL and DENIED
 *   gen-tables man TEMPLATE OUTPUT         a man page: the lines '.\" gen-tables: models' and
 *                                          '.\" gen-tables: errors' become roff lists
 *   gen-tables errors-json                 the error table as JSON on stdout (for tests)
 * Runs on the build machine; reads and writes only the files it is given. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-table.h"
#include "pi-models.h"

/* A JavaScript/JSON string literal. The tables hold printable ASCII; anything else is escaped. */
static void put_js_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

/* Text for roff: backslashes and hyphens escaped, and a line never starts with a control
 * character ('.' or '\''). */
static void put_roff(FILE *f, const char *s, bool line_start) {
        if (line_start && (*s == '.' || *s == '\''))
                fputs("\\&", f);
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\e", f);
                else if (*s == '-')
                        fputs("\\-", f);
                else
                        fputc(*s, f);
        }
}

static void write_errors_js(FILE *f) {
        size_t n;
        const PiemuError *e = piemu_errors(&n);

        fputs("    // Generated at build time from src/shared/error-table.c (gen-tables): edit the table,\n"
              "    // not this. One sentence per error name; for WITH_DETAIL piemud's message follows it;\n"
              "    // DENIED are the refusals (piemuctl's exit status 5), worded by whom they are about.\n",
              f);
        fputs("    const SENTENCES = {\n", f);
        for (size_t i = 0; i < n; i++) {
                fputs("        ", f);
                put_js_string(f, e[i].name);
                fputs(": ", f);
                put_js_string(f, e[i].sentence);
                fputs(",\n", f);
        }
        fputs("    };\n    const WITH_DETAIL = new Set([\n", f);
        for (size_t i = 0; i < n; i++)
                if (e[i].with_detail) {
                        fputs("        ", f);
                        put_js_string(f, e[i].name);
                        fputs(",\n", f);
                }
        fputs("    ]);\n    const DENIED = new Set([\n", f);
        for (size_t i = 0; i < n; i++)
                if (e[i].exit_code == CTL_EXIT_ACCESS) {
                        fputs("        ", f);
                        put_js_string(f, e[i].name);
                        fputs(",\n", f);
                }
        fputs("    ]);\n", f);
}

static void write_errors_json(FILE *f) {
        size_t n;
        const PiemuError *e = piemu_errors(&n);

        fputs("[\n", f);
        for (size_t i = 0; i < n; i++) {
                fputs("  {\"name\": ", f);
                put_js_string(f, e[i].name);
                fprintf(f, ", \"exit_code\": %d, \"sentence\": ", e[i].exit_code);
                put_js_string(f, e[i].sentence);
                fprintf(f, ", \"with_detail\": %s}%s\n", e[i].with_detail ? "true" : "false",
                        i + 1 < n ? "," : "");
        }
        fputs("]\n", f);
}

static void write_man_models(FILE *f) {
        size_t n;
        const PiModel *m = pi_models(&n);

        for (size_t i = 0; i < n; i++) {
                fputs(".TP\n.B ", f);
                put_roff(f, m[i].name, false);
                fputc('\n', f);
                put_roff(f, m[i].title, true);
                fprintf(f, "%s: image\n.BR ", i == 0 ? " (the default)" : "");
                put_roff(f, m[i].default_image, false);
                fprintf(f, " ,\nrevision %06x, ", m[i].revision);
                if (m[i].memory_mib % 1024 == 0)
                        fprintf(f, "%u GiB", m[i].memory_mib / 1024);
                else
                        fprintf(f, "%u MiB", m[i].memory_mib);
                fprintf(f, " RAM, %u CPU%s.\n", m[i].vcpus, m[i].vcpus == 1 ? "" : "s");
        }
}

static void write_man_errors(FILE *f) {
        size_t n;
        const PiemuError *e = piemu_errors(&n);

        for (size_t i = 0; i < n; i++) {
                fputs(".TP\n.B ", f);
                put_roff(f, e[i].name, false);
                fprintf(f, "\nStatus %d. ", e[i].exit_code);
                put_roff(f, e[i].sentence, false);
                fputc('\n', f);
        }
}

/* Copies template to output, replacing each marker line by what its writer prints. */
static int expand(const char *template, const char *output, const char *const *markers,
                  void (*const *writers)(FILE *), size_t n_markers) {
        char line[4096];
        FILE *in, *out;
        size_t used = 0;
        int r = 0;

        in = fopen(template, "re");
        if (!in) {
                fprintf(stderr, "gen-tables: %s: %s\n", template, strerror(errno));
                return 1;
        }
        out = fopen(output, "we");
        if (!out) {
                fprintf(stderr, "gen-tables: %s: %s\n", output, strerror(errno));
                fclose(in);
                return 1;
        }
        while (fgets(line, sizeof line, in)) {
                bool replaced = false;

                for (size_t i = 0; i < n_markers; i++)
                        if (strcmp(line, markers[i]) == 0) {
                                writers[i](out);
                                used |= 1u << i;
                                replaced = true;
                        }
                if (!replaced)
                        fputs(line, out);
        }
        if (ferror(in))
                r = 1;
        fclose(in);
        if (fclose(out) != 0)
                r = 1;
        /* A template that lost its marker would ship without the table: fail the build. */
        for (size_t i = 0; i < n_markers; i++)
                if (!(used & (1u << i))) {
                        fprintf(stderr, "gen-tables: %s has no line \"%.*s\"\n", template,
                                (int)strcspn(markers[i], "\n"), markers[i]);
                        r = 1;
                }
        if (r != 0)
                remove(output);
        return r;
}

int main(int argc, char *argv[]) {
        if (argc == 2 && strcmp(argv[1], "errors-json") == 0) {
                write_errors_json(stdout);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        if (argc == 4 && strcmp(argv[1], "errors-js") == 0) {
                static const char *const markers[] = {"    // gen-tables: errors\n"};
                static void (*const writers[])(FILE *) = {write_errors_js};

                return expand(argv[2], argv[3], markers, writers, 1);
        }
        if (argc == 4 && strcmp(argv[1], "man") == 0) {
                static const char *const markers[] = {".\\\" gen-tables: models\n",
                                                      ".\\\" gen-tables: errors\n"};
                static void (*const writers[])(FILE *) = {write_man_models, write_man_errors};

                return expand(argv[2], argv[3], markers, writers, 2);
        }
        fprintf(stderr, "Usage: gen-tables errors-js|man TEMPLATE OUTPUT\n"
                        "       gen-tables errors-json\n");
        return 2;
}
