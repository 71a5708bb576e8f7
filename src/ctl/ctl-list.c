/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The output of piemuctl's list verbs (list, images, wires, models): rows collected once, then
 * printed either as a table for people (headers, aligned columns, a summary line) or as one JSON
 * array of objects for programs. A column may be in only one of the two: list shows the owner's
 * name in the table and the uid in JSON, and the board's object path only in JSON. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct List {
        const ListColumn *columns;
        size_t n_columns;
        size_t n_rows, allocated;
        char ***rows; /* each row: n_columns copied strings */
};

List *list_new(const ListColumn *columns, size_t n_columns) {
        List *l = calloc(1, sizeof(List));

        if (!l)
                return NULL;
        l->columns = columns;
        l->n_columns = n_columns;
        return l;
}

static void row_free(char **row, size_t n_columns) {
        if (!row)
                return;
        for (size_t i = 0; i < n_columns; i++)
                free(row[i]);
        free(row);
}

List *list_free(List *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_rows; i++)
                row_free(l->rows[i], l->n_columns);
        free(l->rows);
        free(l);
        return NULL;
}

int list_add(List *l, const char *const *cells) {
        char **row;

        if (l->n_rows == l->allocated) {
                size_t k = l->allocated ? l->allocated * 2 : 16;
                char ***r = reallocarray(l->rows, k, sizeof(char **));

                if (!r)
                        return -ENOMEM;
                l->rows = r;
                l->allocated = k;
        }
        row = calloc(l->n_columns, sizeof(char *));
        if (!row)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_columns; i++) {
                row[i] = strdup(strempty(cells[i]));
                if (!row[i]) {
                        row_free(row, l->n_columns);
                        return -ENOMEM;
                }
        }
        l->rows[l->n_rows++] = row;
        return 0;
}

static int compare_rows(const void *a, const void *b) {
        return strcmp((*(char **const *)a)[0], (*(char **const *)b)[0]);
}

void list_sort(List *l) {
        if (l->n_rows > 1)
                qsort(l->rows, l->n_rows, sizeof(char **), compare_rows);
}

static void list_print_json(const List *l) {
        JsonWriter j;

        json_init(&j, stdout, arg_json);
        json_open(&j, '[');
        for (size_t r = 0; r < l->n_rows; r++) {
                json_open(&j, '{');
                for (size_t c = 0; c < l->n_columns; c++) {
                        if (!l->columns[c].json_key)
                                continue;
                        json_key(&j, l->columns[c].json_key);
                        if (l->columns[c].number)
                                json_uint(&j, strtoull(l->rows[r][c], NULL, 10));
                        else
                                json_string(&j, l->rows[r][c]);
                }
                json_close(&j, '}');
        }
        json_close(&j, ']');
        json_finish(&j);
}

static int list_print_table(const List *l) {
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ const char **cells = NULL;
        size_t n = 0;

        cells = calloc(l->n_columns, sizeof(char *));
        if (!cells)
                return -ENOMEM;
        for (size_t c = 0; c < l->n_columns; c++)
                if (l->columns[c].header)
                        cells[n++] = l->columns[c].header;
        t = table_new(n, cells);
        if (!t)
                return -ENOMEM;
        for (size_t r = 0; r < l->n_rows; r++) {
                n = 0;
                for (size_t c = 0; c < l->n_columns; c++)
                        if (l->columns[c].header)
                                cells[n++] = l->rows[r][c];
                if (table_add_row(t, cells) < 0)
                        return -ENOMEM;
        }
        if (l->n_rows > 0)
                table_print(t, stdout);
        return 0;
}

int list_print(const List *l, const char *what, const char *if_none) {
        pager_open();
        if (arg_json != JSON_OFF) {
                list_print_json(l);
                return CTL_EXIT_OK;
        }
        if (list_print_table(l) < 0) {
                fprintf(stderr, "Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        if (arg_legend) {
                if (l->n_rows == 0)
                        printf("%s\n", if_none);
                else
                        printf("\n%zu %s%s listed.\n", l->n_rows, what, l->n_rows == 1 ? "" : "s");
        }
        return CTL_EXIT_OK;
}
