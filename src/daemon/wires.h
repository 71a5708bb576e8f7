/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Wires between boards' pins, as pure logic: their ids, and whether a new one may be added to the
 * ones there are (no two wires driving one pin, no cycles). piemud keeps the wires themselves in
 * each board's config (BoardWire, in libvirt's metadata); manager-wires.c does the I/O. */

#include <stdbool.h>
#include <stddef.h>

typedef struct WireRef {
        const char *from_board;
        unsigned from_pin;
        const char *to_board;
        unsigned to_pin;
} WireRef;

/* "FROM:PIN:TO:PIN". Board names cannot contain ':', so the id is unambiguous and the same after a
 * restart. */
int wire_id_format(const WireRef *w, char **ret);
/* Parses an id into its parts (pointing into *ret_buf, which the caller frees). -EINVAL for
 * anything wire_id_format() would not have made, including invalid names and pins > 53. */
int wire_id_parse(const char *id, WireRef *ret, char **ret_buf);

typedef enum WireCheck {
        WIRE_OK,
        WIRE_EXISTS, /* the very same wire is there */
        WIRE_DRIVEN, /* another wire drives to_pin already */
        WIRE_CYCLE,  /* to_pin reaches from_pin through the wires there are (or is from_pin) */
} WireCheck;

/* Whether w may join the n wires in l. *ret_conflict (may be NULL) is the index in l of the wire in
 * the way (for EXISTS and DRIVEN), or of the first wire on the cycle's path (CYCLE; SIZE_MAX when w
 * loops on itself). */
WireCheck wires_check_add(const WireRef *l, size_t n, const WireRef *w, size_t *ret_conflict);
