/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one error table (src/shared/error-table.c): every name piemud sets (piemu-errors.h) is in it
 * once, each with the exit status piemuctl(1)'s EXIT STATUS section gives its kind, a sentence, and
 * piemuctl texts that expand; and the built piemuctl(1) lists every row.
 *   test-error-table PIEMU_ERRORS_H [PIEMUCTL_1] (the page is missing only with -Dctl=false) */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "error-table.h"
#include "tests.h"

/* piemuctl(1), EXIT STATUS, written out name by name: 2 an invalid argument, 3 no such thing, 4 the
 * wrong state (exists, running or not, busy, a wire in the way), 5 access denied, 6 timed out, 7
 * piemud or the bus not reachable, 1 any other failure. */
static const struct {
        const char *name;
        int exit_code;
} documented[] = {
        {"org.piemu.Error.InvalidName", 2},
        {"org.piemu.Error.InvalidPin", 2},
        {"org.piemu.Error.InvalidOption", 2},
        {"org.piemu.Error.NoSuchBoard", 3},
        {"org.piemu.Error.NoSuchImage", 3},
        {"org.piemu.Error.NoSuchWire", 3},
        {"org.piemu.Error.NoSuchSensor", 3},
        {"org.piemu.Error.BoardExists", 4},
        {"org.piemu.Error.NotRunning", 4},
        {"org.piemu.Error.AlreadyRunning", 4},
        {"org.piemu.Error.Busy", 4},
        {"org.piemu.Error.WireExists", 4},
        {"org.piemu.Error.PinDriven", 4},
        {"org.piemu.Error.WireCycle", 4},
        {"org.freedesktop.DBus.Error.AccessDenied", 5},
        {"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", 5},
        {"org.freedesktop.DBus.Error.NoReply", 6},
        {"org.freedesktop.DBus.Error.Timeout", 6},
        {"org.freedesktop.DBus.Error.TimedOut", 6},
        {"org.freedesktop.DBus.Error.ServiceUnknown", 7},
        {"org.freedesktop.DBus.Error.NameHasNoOwner", 7},
        {"org.freedesktop.DBus.Error.Disconnected", 7},
        {"org.piemu.Error.Failed", 1},
        {"org.piemu.Error.Unavailable", 1},
        {"org.piemu.Error.ImageNotMBR", 1},
        {"org.piemu.Error.ImageNoBootPartition", 1},
        {"org.piemu.Error.ImageNoKernel", 1},
        {"org.piemu.Error.ImageNoDeviceTree", 1},
        {"org.piemu.Error.ImageTruncated", 1},
        {"org.piemu.Error.ImageTooLarge", 1},
        {"org.piemu.Error.ImageInvalid", 1},
        {"org.piemu.Error.ImageModelMismatch", 1},
        {"org.freedesktop.DBus.Error.InvalidArgs", 1},
        {"org.freedesktop.DBus.Error.UnknownMethod", 1},
        {"org.freedesktop.DBus.Error.UnknownInterface", 1},
        {"org.freedesktop.DBus.Error.UnknownProperty", 1},
        {"org.freedesktop.DBus.Error.UnknownObject", 1},
};

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0, n;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                exit(1);
        }
        for (;;) {
                buf = realloc(buf, size + 65536 + 1);
                CHECK(buf);
                n = fread(buf + size, 1, 65536, f);
                size += n;
                if (n == 0)
                        break;
        }
        fclose(f);
        buf[size] = 0;
        return buf;
}

static void test_rows(void) {
        size_t n;
        const PiemuError *e = piemu_errors(&n);

        CHECK(n == sizeof documented / sizeof documented[0]);
        for (size_t i = 0; i < n; i++) {
                const char *last_dot = strrchr(e[i].name, '.');
                bool found = false;

                /* A D-Bus error name: dotted, from one of the two families. */
                CHECK(strncmp(e[i].name, "org.piemu.Error.", 16) == 0 ||
                      strncmp(e[i].name, "org.freedesktop.DBus.Error.", 27) == 0);
                CHECK(last_dot && last_dot[1] >= 'A' && last_dot[1] <= 'Z');
                for (size_t k = 0; k < i; k++)
                        CHECK(strcmp(e[i].name, e[k].name) != 0);
                CHECK(piemu_error_find(e[i].name) == &e[i]);

                for (size_t k = 0; k < sizeof documented / sizeof documented[0]; k++)
                        if (strcmp(documented[k].name, e[i].name) == 0) {
                                if (documented[k].exit_code != e[i].exit_code) {
                                        fprintf(stderr, "%s: exit status %d, piemuctl(1) says %d\n",
                                                e[i].name, e[i].exit_code, documented[k].exit_code);
                                        CHECK(!"exit status as documented");
                                }
                                found = true;
                        }
                if (!found)
                        fprintf(stderr, "%s is not in this test's list of documented statuses\n", e[i].name);
                CHECK(found);

                /* One sentence: capitalized, printable ASCII, one full stop at the end. */
                CHECK(e[i].sentence && e[i].sentence[0] >= 'A' && e[i].sentence[0] <= 'Z');
                CHECK(e[i].sentence[strlen(e[i].sentence) - 1] == '.');
                for (const char *p = e[i].sentence; *p; p++)
                        CHECK(*p >= 0x20 && *p < 0x7f);
                CHECK(!strstr(e[i].sentence, ". "));

                /* piemud's own errors are worded by the table; only the bus's transport and polkit
                 * errors are worded by piemuctl from context (and those mean 5, 6 or 7). */
                if (strncmp(e[i].name, "org.piemu.", 10) == 0)
                        CHECK(e[i].ctl_text);
                if (!e[i].ctl_text)
                        CHECK(e[i].exit_code >= CTL_EXIT_ACCESS && !e[i].ctl_hint);
        }
        CHECK(!piemu_error_find(NULL));
        CHECK(!piemu_error_find("org.piemu.Error.NoSuchThing"));
}

static void test_header_names_in_table(const char *header_path) {
        char *h = read_file(header_path);
        size_t n, in_header = 0;
        const PiemuError *e = piemu_errors(&n);

        /* Every quoted name in the header has a row... */
        for (const char *p = h; (p = strstr(p, "\"org.piemu.Error.")); in_header++) {
                const char *end = strchr(p + 1, '"');
                char name[128];

                CHECK(end && (size_t)(end - p - 1) < sizeof name);
                memcpy(name, p + 1, (size_t)(end - p - 1));
                name[end - p - 1] = 0;
                if (!piemu_error_find(name))
                        fprintf(stderr, "%s (%s) has no row in the error table\n", name, header_path);
                CHECK(piemu_error_find(name));
                p = end + 1;
        }
        CHECK(in_header >= 20);
        /* ...and every piemu row is a name piemud can set. */
        for (size_t i = 0; i < n; i++)
                if (strncmp(e[i].name, "org.piemu.", 10) == 0) {
                        char quoted[160];

                        snprintf(quoted, sizeof quoted, "\"%s\"", e[i].name);
                        CHECK_CONTAINS(h, quoted);
                }
        free(h);
}

static void test_texts_expand(void) {
        const PiemuErrorArgs full = {"start the board", "b1", "img", "it broke", " on lab1", "1.0"};
        const PiemuErrorArgs empty = {};
        size_t n;
        const PiemuError *e = piemu_errors(&n);

        for (size_t i = 0; i < n; i++) {
                const char *texts[] = {e[i].ctl_text, e[i].ctl_hint};

                for (size_t t = 0; t < 2; t++) {
                        char *out = NULL;

                        if (!texts[t])
                                continue;
                        if (piemu_error_expand(texts[t], &full, &out) != 0) {
                                fprintf(stderr, "%s: cannot expand \"%s\"\n", e[i].name, texts[t]);
                                CHECK(!"template expands");
                        }
                        CHECK(!strchr(out, '{') && !strchr(out, '}'));
                        free(out);
                        CHECK(piemu_error_expand(texts[t], &empty, &out) == 0);
                        free(out);
                }
        }
}

static void test_expand(void) {
        const PiemuErrorArgs a = {.action = "stop the board", .board = "b1", .message = "x {board} y"};
        char *out = NULL;

        CHECK(piemu_error_expand("Cannot {action}: {message}", &a, &out) == 0);
        /* Values are inserted as they are, never expanded again. */
        CHECK_STREQ(out, "Cannot stop the board: x {board} y");
        free(out);
        CHECK(piemu_error_expand("'piemuctl create {board:NAME}'{on_host}", &a, &out) == 0);
        CHECK_STREQ(out, "'piemuctl create b1'");
        free(out);
        CHECK(piemu_error_expand("No image named \"{image:?}\".", &a, &out) == 0);
        CHECK_STREQ(out, "No image named \"?\".");
        free(out);
        out = NULL;
        CHECK(piemu_error_expand("{nosuchkey}", &a, &out) == -EINVAL && !out);
        CHECK(piemu_error_expand("open {board", &a, &out) == -EINVAL && !out);
}

static void test_man_page_lists_every_row(const char *man_path) {
        char *man = read_file(man_path);
        size_t n;
        const PiemuError *e = piemu_errors(&n);

        CHECK(!strstr(man, "gen-tables:"));
        for (size_t i = 0; i < n; i++) {
                char entry[256];

                /* As gen-tables writes it: the name in bold (no '-' in these names), then the status. */
                snprintf(entry, sizeof entry, ".B %s\nStatus %d. ", e[i].name, e[i].exit_code);
                CHECK_CONTAINS(man, entry);
        }
        free(man);
}

int main(int argc, char *argv[]) {
        CHECK(argc == 2 || argc == 3);
        test_rows();
        test_header_names_in_table(argv[1]);
        test_texts_expand();
        test_expand();
        if (argc == 3)
                test_man_page_lists_every_row(argv[2]);
        printf("test-error-table: ok\n");
        return 0;
}
