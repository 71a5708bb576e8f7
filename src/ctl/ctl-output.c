/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Output helpers for piemuctl: escaping of guest text for terminals and JSON, a tiny JSON writer, a
 * column table, a pager, and time formatting/parsing. Nothing here talks to the bus. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* Returns the length (1-4) of the valid UTF-8 sequence at s, or 0 if s does not start one. Overlong
 * forms, surrogates and code points above U+10FFFF are rejected, so that whatever we let through is
 * rendered by a terminal as exactly one character and cannot smuggle in an escape sequence. */
static size_t utf8_char(const uint8_t *s, size_t n, uint32_t *ret) {
        uint32_t c;
        size_t len;

        if (n == 0)
                return 0;
        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                c = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                len = 3;
                c = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                c = s[0] & 0x07;
        } else
                return 0;

        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
            (c >= 0xd800 && c <= 0xdfff))
                return 0;

        *ret = c;
        return len;
}

static char *append_hex_escape(char *p, uint8_t b) {
        static const char hex[] = "0123456789abcdef";

        *p++ = '\\';
        *p++ = 'x';
        *p++ = hex[b >> 4];
        *p++ = hex[b & 15];
        return p;
}

/* Guest output is untrusted: a guest could print escape sequences that retitle or reprogram the user's
 * terminal. Everything that is not printable UTF-8 (and not \t, or \n when asked) becomes "\xNN". */
char *escape_for_terminal(const void *data, size_t size, bool keep_newline) {
        const uint8_t *s = data;
        char *buf, *p;

        if (size > (SIZE_MAX - 1) / 4)
                return NULL;
        buf = malloc(size * 4 + 1);
        if (!buf)
                return NULL;

        p = buf;
        for (size_t i = 0; i < size;) {
                uint32_t c;
                size_t len = utf8_char(s + i, size - i, &c);

                if (len == 0) {
                        p = append_hex_escape(p, s[i]);
                        i++;
                        continue;
                }

                if ((c < 0x20 && c != '\t' && !(keep_newline && c == '\n')) || c == 0x7f ||
                    (c >= 0x80 && c < 0xa0)) {
                        for (size_t k = 0; k < len; k++)
                                p = append_hex_escape(p, s[i + k]);
                } else {
                        memcpy(p, s + i, len);
                        p += len;
                }
                i += len;
        }
        *p = 0;
        return buf;
}

/* Good enough for aligning table columns: one cell per code point. Names are ASCII anyway; image
 * descriptions may not be, and over-counting combining characters only costs a little padding. */
size_t utf8_display_width(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                if (((uint8_t)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

void format_timestamp(char *buf, size_t size, uint64_t usec) {
        time_t sec = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;
        char date[32];

        if (!localtime_r(&sec, &tm) || strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
                snprintf(buf, size, "@%" PRIu64, usec);
                return;
        }
        snprintf(buf, size, "%s.%06u", date, (unsigned)(usec % USEC_PER_SEC));
}

char *format_timespan(char *buf, size_t size, uint64_t usec) {
        if (usec == USEC_INFINITY)
                snprintf(buf, size, "infinity");
        else if (usec < USEC_PER_MSEC)
                snprintf(buf, size, "%" PRIu64 "us", usec);
        else if (usec < USEC_PER_SEC)
                snprintf(buf, size, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
        else if (usec % USEC_PER_SEC == 0)
                snprintf(buf, size, "%" PRIu64 "s", usec / USEC_PER_SEC);
        else
                snprintf(buf, size, "%.3gs", (double)usec / (double)USEC_PER_SEC);
        return buf;
}

/* Accepts "infinity", or a non-negative number with an optional unit: ms, s (default), min, h. */
int parse_timeout(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                double factor;
        } units[] = {
                {"", 1e6},     {"s", 1e6},  {"sec", 1e6},  {"ms", 1e3},
                {"msec", 1e3}, {"m", 60e6}, {"min", 60e6}, {"h", 3600e6},
        };
        char *end;
        double v;

        if (streq(s, "infinity") || streq(s, "inf")) {
                *ret_usec = USEC_INFINITY;
                return 0;
        }

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || !isfinite(v) || v < 0 || *s == '-' || *s == '+')
                return -EINVAL;
        while (*end == ' ')
                end++;

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                double usec;

                if (!streq(end, units[i].suffix))
                        continue;
                usec = v * units[i].factor;
                /* Cap at about 31 years: beyond that "infinity" is what was meant. */
                if (usec > 1e15)
                        return -ERANGE;
                *ret_usec = (uint64_t)llround(usec);
                return 0;
        }
        return -EINVAL;
}

/* ---- JSON ---- */

void json_init(JsonWriter *w, FILE *f, JsonMode mode) {
        *w = (JsonWriter){
                .f = f,
                .pretty = mode == JSON_PRETTY,
        };
}

static void json_newline(JsonWriter *w) {
        if (!w->pretty)
                return;
        fputc('\n', w->f);
        for (unsigned i = 0; i < w->depth; i++)
                fputs("  ", w->f);
}

/* Writes what has to come before a value or a key: a comma after the previous element, and in pretty
 * mode a line break with indentation. A value right after its key needs neither. */
static void json_prefix(JsonWriter *w) {
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (w->need_comma)
                fputc(',', w->f);
        if (w->depth > 0)
                json_newline(w);
}

void json_open(JsonWriter *w, char bracket) {
        json_prefix(w);
        fputc(bracket, w->f);
        w->depth++;
        w->need_comma = false;
}

void json_close(JsonWriter *w, char bracket) {
        w->depth--;
        if (w->need_comma) /* non-empty container: closing bracket on its own line */
                json_newline(w);
        fputc(bracket, w->f);
        w->need_comma = true;
}

static void json_put_text(FILE *f, const void *data, size_t size) {
        const uint8_t *s = data;

        fputc('"', f);
        for (size_t i = 0; i < size;) {
                uint32_t c;
                size_t len = utf8_char(s + i, size - i, &c);

                if (len == 0) {
                        /* JSON strings are Unicode; bytes that are not UTF-8 are written as the
                         * literal text \xNN (a backslash escaped for JSON), never dropped silently. */
                        fprintf(f, "\\\\x%02x", s[i]);
                        i++;
                        continue;
                }
                switch (c) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (c < 0x20 || c == 0x7f)
                                fprintf(f, "\\u%04x", (unsigned)c);
                        else
                                fwrite(s + i, 1, len, f);
                }
                i += len;
        }
        fputc('"', f);
}

void json_key(JsonWriter *w, const char *key) {
        json_prefix(w);
        json_put_text(w->f, key, strlen(key));
        fputs(w->pretty ? ": " : ":", w->f);
        w->after_key = true;
}

void json_text(JsonWriter *w, const void *data, size_t size) {
        json_prefix(w);
        json_put_text(w->f, data, size);
        w->need_comma = true;
}

void json_string(JsonWriter *w, const char *s) {
        json_text(w, s, strlen(s));
}

void json_uint(JsonWriter *w, uint64_t v) {
        json_prefix(w);
        fprintf(w->f, "%" PRIu64, v);
        w->need_comma = true;
}

void json_bool(JsonWriter *w, bool b) {
        json_prefix(w);
        fputs(b ? "true" : "false", w->f);
        w->need_comma = true;
}

void json_null(JsonWriter *w) {
        json_prefix(w);
        fputs("null", w->f);
        w->need_comma = true;
}

void json_finish(JsonWriter *w) {
        fputc('\n', w->f);
        fflush(w->f);
}

/* ---- Tables ---- */

struct Table {
        size_t n_columns;
        size_t n_cells; /* including the header row */
        size_t allocated;
        char **cells;
};

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

Table *table_new(size_t n_columns, const char *const *headers) {
        _cleanup_(table_freep) Table *t = NULL;

        t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        if (table_add_row(t, headers) < 0)
                return NULL;
        return TAKE_PTR(t);
}

/* Copies the cells, escaped: they may come from the daemon (image descriptions) and must not be able
 * to drive the terminal. */
int table_add_row(Table *t, const char *const *cells) {
        if (t->n_cells + t->n_columns > t->allocated) {
                size_t n = t->allocated ? t->allocated * 2 : 16 * t->n_columns;
                char **c = reallocarray(t->cells, n, sizeof(char *));

                if (!c)
                        return -ENOMEM;
                t->cells = c;
                t->allocated = n;
        }
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = strempty(cells[i]);
                char *e = escape_for_terminal(s, strlen(s), false);

                if (!e) {
                        /* Undo the partial row so the table stays rectangular. */
                        while (i > 0)
                                free(t->cells[t->n_cells + --i]);
                        return -ENOMEM;
                }
                t->cells[t->n_cells + i] = e;
        }
        t->n_cells += t->n_columns;
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns - 1;
}

void table_print(Table *t, FILE *f) {
        _cleanup_free_ size_t *width = NULL;
        size_t first = arg_legend ? 0 : t->n_columns;

        width = calloc(t->n_columns, sizeof(size_t));
        if (!width) {
                /* Degrade to unaligned output rather than failing a listing. */
                for (size_t i = first; i < t->n_cells; i++)
                        fprintf(f, "%s%s", t->cells[i], (i + 1) % t->n_columns == 0 ? "\n" : " ");
                return;
        }

        for (size_t i = first; i < t->n_cells; i++) {
                size_t w = utf8_display_width(t->cells[i]);
                if (w > width[i % t->n_columns])
                        width[i % t->n_columns] = w;
        }

        for (size_t i = first; i < t->n_cells; i++) {
                size_t col = i % t->n_columns;

                fputs(t->cells[i], f);
                if (col + 1 == t->n_columns)
                        fputc('\n', f);
                else
                        fprintf(f, "%*s", (int)(width[col] - utf8_display_width(t->cells[i]) + 2), "");
        }
}

/* ---- Pager ---- */

static pid_t pager_pid = 0;
static int saved_stdout = -EBADF;

/* Like systemd's pager: only when stdout is a terminal and the user did not say --no-pager. $PIEMU_PAGER
 * overrides $PAGER; an empty value or "cat" disables paging. less gets FRXMK so that short output is
 * printed directly and the terminal is left alone. */
void pager_open(void) {
        const char *pager;
        int fds[2];
        pid_t pid;

        if (arg_no_pager || pager_pid > 0 || !isatty(STDOUT_FILENO))
                return;

        pager = getenv("PIEMU_PAGER");
        if (!pager)
                pager = getenv("PAGER");
        if (pager && (isempty(pager) || streq(pager, "cat")))
                return;

        fflush(stdout);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return;

        pid = fork();
        if (pid < 0) {
                safe_close(fds[0]);
                safe_close(fds[1]);
                return;
        }
        if (pid == 0) {
                sigset_t ss;

                if (dup2(fds[0], STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                sigemptyset(&ss);
                (void)sigprocmask(SIG_SETMASK, &ss, NULL);
                (void)setenv("LESS", "FRXMK", 0);
                /* less passes UTF-8 through only when it knows the charset is UTF-8. */
                (void)setenv("LESSCHARSET", "utf-8", 0);

                if (pager) {
                        execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
                        _exit(127);
                }
                execlp("pager", "pager", (char *)NULL);
                execlp("less", "less", (char *)NULL);
                execlp("more", "more", (char *)NULL);

                /* No pager at all: copy through, so the output is not lost. */
                for (;;) {
                        char buf[4096];
                        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

                        if (n <= 0)
                                _exit(n < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                        for (ssize_t k = 0; k < n;) {
                                ssize_t m = write(STDOUT_FILENO, buf + k, (size_t)(n - k));
                                if (m < 0)
                                        _exit(EXIT_FAILURE);
                                k += m;
                        }
                }
        }

        saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (saved_stdout < 0 || dup2(fds[1], STDOUT_FILENO) < 0) {
                /* Keep writing to the terminal; the pager sees EOF and exits. */
                saved_stdout = safe_close(saved_stdout);
                safe_close(fds[0]);
                safe_close(fds[1]);
                (void)waitpid(pid, NULL, 0);
                return;
        }
        safe_close(fds[0]);
        safe_close(fds[1]);
        pager_pid = pid;
}

void pager_close(void) {
        if (pager_pid <= 0)
                return;

        fflush(stdout);
        /* Putting the terminal back on fd 1 closes our end of the pipe: the pager gets EOF. */
        (void)dup2(saved_stdout, STDOUT_FILENO);
        saved_stdout = safe_close(saved_stdout);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}

/* ---- Messages ---- */

int ctl_oom(void) {
        fprintf(stderr, "Out of memory.\n");
        return CTL_EXIT_FAILURE;
}
