/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* list.h: removal from the head, the middle and the tail keeps both directions intact. */
#include <stddef.h>

#include "list.h"
#include "tests.h"

typedef struct Item Item;
struct Item {
        int id;
        Item *prev, *next;
};

/* Walks the list both ways and compares it with the expected ids. */
static void check_list(Item *head, const int *ids, size_t n) {
        Item *last = NULL;
        size_t i = 0;

        CHECK(!head || !head->prev);
        for (Item *p = head; p; p = p->next, i++) {
                CHECK(i < n && p->id == ids[i]);
                CHECK(p->prev == last);
                last = p;
        }
        CHECK(i == n);
        for (Item *p = last; p; p = p->prev)
                CHECK(p->id == ids[--i]);
        CHECK(i == 0);
}

int main(void) {
        Item a = {.id = 1}, b = {.id = 2}, c = {.id = 3}, d = {.id = 4};
        Item *head = NULL;

        check_list(head, NULL, 0);
        LIST_PREPEND(head, &a);
        LIST_PREPEND(head, &b);
        LIST_PREPEND(head, &c);
        LIST_PREPEND(head, &d);
        check_list(head, (const int[]){4, 3, 2, 1}, 4);

        LIST_REMOVE(head, &c); /* middle */
        check_list(head, (const int[]){4, 2, 1}, 3);
        CHECK(!c.prev && !c.next);
        LIST_REMOVE(head, &d); /* head */
        check_list(head, (const int[]){2, 1}, 2);
        LIST_REMOVE(head, &a); /* tail */
        check_list(head, (const int[]){2}, 1);
        LIST_REMOVE(head, &b); /* the last one */
        check_list(head, NULL, 0);
        CHECK(head == NULL);

        LIST_PREPEND(head, &c); /* a removed item can be linked again */
        check_list(head, (const int[]){3}, 1);
        printf("test-list: ok\n");
        return 0;
}
