/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "names.h"
#include "tests.h"

int main(void) {
        char long63[64], long64[65];

        memset(long63, 'a', 63);
        long63[63] = 0;
        memset(long64, 'a', 64);
        long64[64] = 0;

        CHECK(piemu_name_is_valid("b1"));
        CHECK(piemu_name_is_valid("A"));
        CHECK(piemu_name_is_valid("my-board_2.test"));
        CHECK(piemu_name_is_valid(long63));
        CHECK(!piemu_name_is_valid(long64));
        CHECK(!piemu_name_is_valid(""));
        CHECK(!piemu_name_is_valid(NULL));
        CHECK(!piemu_name_is_valid("a/b"));
        CHECK(!piemu_name_is_valid("/etc/shadow"));
        CHECK(!piemu_name_is_valid(".."));
        CHECK(!piemu_name_is_valid("../x"));
        CHECK(!piemu_name_is_valid(".hidden"));
        CHECK(!piemu_name_is_valid("-rf"));
        CHECK(!piemu_name_is_valid("_x"));
        CHECK(!piemu_name_is_valid("a b"));
        CHECK(!piemu_name_is_valid("a\nb"));
        CHECK(!piemu_name_is_valid("caf\xc3\xa9"));
        CHECK(!piemu_name_is_valid("a'b"));
        CHECK(!piemu_name_is_valid("a<b"));
        printf("test-names: ok\n");
        return 0;
}
