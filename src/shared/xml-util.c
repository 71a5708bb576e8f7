/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xml-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

int xml_escape(const char *s, char **ret) {
        size_t n = 0;
        char *out, *p;

        if (!s || !ret)
                return -EINVAL;
        for (const char *c = s; *c; c++) {
                unsigned char u = (unsigned char)*c;
                if (u < 0x20 && u != '\t' && u != '\n')
                        return -EINVAL;
                switch (*c) {
                case '&':
                        n += 5;
                        break;
                case '<':
                case '>':
                        n += 4;
                        break;
                case '"':
                case '\'':
                        n += 6;
                        break;
                default:
                        n++;
                }
        }
        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        p = out;
        for (const char *c = s; *c; c++) {
                switch (*c) {
                case '&':
                        p = stpcpy(p, "&amp;");
                        break;
                case '<':
                        p = stpcpy(p, "&lt;");
                        break;
                case '>':
                        p = stpcpy(p, "&gt;");
                        break;
                case '"':
                        p = stpcpy(p, "&quot;");
                        break;
                case '\'':
                        p = stpcpy(p, "&apos;");
                        break;
                default:
                        *p++ = *c;
                }
        }
        *p = 0;
        *ret = out;
        return 0;
}

static int xml_unescape(const char *s, size_t len, char **ret) {
        static const struct {
                const char *ent;
                char c;
        } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''},
        };
        _cleanup_free_ char *out = malloc(len + 1);
        size_t o = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len;) {
                if (s[i] != '&') {
                        out[o++] = s[i++];
                        continue;
                }
                if (i + 2 < len && s[i + 1] == '#') {
                        /* Numeric references: libvirt writes e.g. &#10; for newlines it re-serialises. */
                        unsigned long v = 0;
                        size_t j = i + 2;
                        bool hex = j < len && s[j] == 'x';
                        if (hex)
                                j++;
                        size_t digits = 0;
                        for (; j < len && s[j] != ';' && digits < 8; j++, digits++) {
                                char c = s[j];
                                int d;
                                if (c >= '0' && c <= '9')
                                        d = c - '0';
                                else if (hex && c >= 'a' && c <= 'f')
                                        d = c - 'a' + 10;
                                else if (hex && c >= 'A' && c <= 'F')
                                        d = c - 'A' + 10;
                                else
                                        return -EINVAL;
                                v = v * (hex ? 16 : 10) + (unsigned long)d;
                        }
                        if (digits == 0 || j >= len || s[j] != ';' || v == 0 || v > 0x7f)
                                return -EINVAL;
                        out[o++] = (char)v;
                        i = j + 1;
                        continue;
                }
                bool found = false;
                for (size_t k = 0; k < ELEMENTSOF(ents); k++) {
                        size_t el = strlen(ents[k].ent);
                        if (len - i >= el && memcmp(s + i, ents[k].ent, el) == 0) {
                                out[o++] = ents[k].c;
                                i += el;
                                found = true;
                                break;
                        }
                }
                if (!found)
                        return -EINVAL;
        }
        out[o] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

/* Matches "<tag>" or "<prefix:tag>" at p; returns the position after '>' or NULL. */
static const char *match_open(const char *p, const char *tag) {
        const char *name;
        size_t tl = strlen(tag);

        if (*p != '<')
                return NULL;
        name = p + 1;
        if (*name == '/' || *name == '?' || *name == '!')
                return NULL;
        const char *colon = NULL;
        for (const char *q = name; *q && *q != '>' && *q != ' ' && *q != '/'; q++)
                if (*q == ':')
                        colon = q;
        if (colon)
                name = colon + 1;
        if (strncmp(name, tag, tl) != 0)
                return NULL;
        name += tl;
        /* Tolerate attributes (e.g. an xmlns) but not a different, longer tag name. */
        if (*name == '>')
                return name + 1;
        if (*name == ' ') {
                const char *end = strchr(name, '>');
                if (!end || end[-1] == '/')
                        return NULL;
                return end + 1;
        }
        return NULL;
}

int xml_find_element_text(const char *xml, const char *tag, char **ret) {
        if (!xml || !tag || !ret)
                return -EINVAL;
        for (const char *p = strchr(xml, '<'); p; p = strchr(p + 1, '<')) {
                const char *start = match_open(p, tag);
                if (!start)
                        continue;
                /* Empty element written as <tag/> counts as the empty string. */
                const char *end = strchr(start, '<');
                if (!end || end[1] != '/')
                        return -EINVAL;
                return xml_unescape(start, (size_t)(end - start), ret);
        }
        /* <tag/> form */
        for (const char *p = strchr(xml, '<'); p; p = strchr(p + 1, '<')) {
                const char *n = p + 1;
                const char *colon = NULL;
                for (const char *q = n; *q && *q != '>' && *q != ' ' && *q != '/'; q++)
                        if (*q == ':')
                                colon = q;
                if (colon)
                        n = colon + 1;
                size_t tl = strlen(tag);
                if (strncmp(n, tag, tl) == 0 &&
                    (strncmp(n + tl, "/>", 2) == 0 || strncmp(n + tl, " />", 3) == 0)) {
                        char *e = strdup("");
                        if (!e)
                                return -ENOMEM;
                        *ret = e;
                        return 0;
                }
        }
        return -ENOENT;
}
