/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Escapes text for XML element content and attribute values. Control characters
 * other than tab/newline cannot appear in XML 1.0 at all, so they are refused
 * rather than escaped: callers validate user strings before they reach here. */
int xml_escape(const char *s, char **ret);

/* Finds the text of the first element <tag> (optionally namespace-prefixed, e.g.
 * <p:tag>) inside xml and returns it unescaped. Returns -ENOENT when absent,
 * -EINVAL on malformed text. This is deliberately tiny: it reads back only the
 * metadata piemud itself wrote, and libvirt may re-indent or re-prefix it. */
int xml_find_element_text(const char *xml, const char *tag, char **ret);
