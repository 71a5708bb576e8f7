/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Intrusive doubly-linked lists in the spirit of systemd's list.h: an item carries its own
 * `prev` and `next` pointers, so it can leave its list in O(1) from wherever it is freed
 * (a bus callback, a track handler) without knowing its neighbours. `head` is the list's
 * first-item pointer, an lvalue. */

#define LIST_PREPEND(head, item)                                                                            \
        do {                                                                                                \
                __typeof__(head) *_head_ = &(head);                                                         \
                __typeof__(head) _item_ = (item);                                                           \
                _item_->prev = NULL;                                                                        \
                _item_->next = *_head_;                                                                     \
                if (*_head_)                                                                                \
                        (*_head_)->prev = _item_;                                                           \
                *_head_ = _item_;                                                                           \
        } while (0)

#define LIST_REMOVE(head, item)                                                                             \
        do {                                                                                                \
                __typeof__(head) *_head_ = &(head);                                                         \
                __typeof__(head) _item_ = (item);                                                           \
                if (_item_->next)                                                                           \
                        _item_->next->prev = _item_->prev;                                                  \
                if (_item_->prev)                                                                           \
                        _item_->prev->next = _item_->next;                                                  \
                else                                                                                        \
                        *_head_ = _item_->next;                                                             \
                _item_->prev = _item_->next = NULL;                                                         \
        } while (0)
