/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "macro.h"
#include "tests.h"
#include "xml-util.h"

static void test_escape(void) {
        _cleanup_free_ char *e = NULL;
        CHECK(xml_escape("a<b>&'\"c", &e) == 0);
        CHECK_STREQ(e, "a&lt;b&gt;&amp;&apos;&quot;c");
        free(e);
        e = NULL;
        CHECK(xml_escape("", &e) == 0);
        CHECK_STREQ(e, "");
        free(e);
        e = NULL;
        CHECK(xml_escape("bad\x01", &e) == -EINVAL);
        CHECK(!e);
}

static void test_find(void) {
        char *t = NULL;
        CHECK(xml_find_element_text("<board><name>b1</name></board>", "name", &t) == 0);
        CHECK_STREQ(t, "b1");
        free(t);
        /* libvirt may hand the element back with a prefix or a default namespace. */
        CHECK(xml_find_element_text("<piemu:board xmlns:piemu='x'><piemu:name>b2</piemu:name></piemu:board>",
                                    "name", &t) == 0);
        CHECK_STREQ(t, "b2");
        free(t);
        CHECK(xml_find_element_text(
                      "<board xmlns=\"x\">\n  <cmdline>a &amp; b &#10;&lt;</cmdline>\n</board>", "cmdline",
                      &t) == 0);
        CHECK_STREQ(t, "a & b \n<");
        free(t);
        /* A longer tag with the same prefix is a different element. */
        CHECK(xml_find_element_text("<board><names>x</names><name>y</name></board>", "name", &t) == 0);
        CHECK_STREQ(t, "y");
        free(t);
        CHECK(xml_find_element_text("<board><cmdline/></board>", "cmdline", &t) == 0);
        CHECK_STREQ(t, "");
        free(t);
        CHECK(xml_find_element_text("<board></board>", "name", &t) == -ENOENT);
        CHECK(xml_find_element_text("<name>x &bogus; y</name>", "name", &t) == -EINVAL);
        CHECK(xml_find_element_text("<name>x &#0; y</name>", "name", &t) == -EINVAL);
        CHECK(xml_find_element_text("<name>unterminated", "name", &t) == -EINVAL);
}

int main(void) {
        test_escape();
        test_find();
        printf("test-xml-util: ok\n");
        return 0;
}
