/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "accel-args.h"
#include "chardev-args.h"
#include "qemu-choice.h"
#include "tests.h"

static void run(int argc, char **argv, int expect_changed) {
        char *storage = (char *)1;
        int n = accel_args_force_single_thread(argc, argv, &storage);

        CHECK(n == expect_changed);
        CHECK((storage == NULL) == (n == 0));
        /* The wrapper execs right after; here the block is freed to keep the sanitizers quiet. */
        free(storage);
}

static void test_libvirt_command_line(void) {
        char *argv[] = {"qemu",   "-name", "guest=x", "-machine",      "raspi3b,usb=off",
                        "-accel", "tcg",   "-m",      "size=1048576k", NULL};
        char *storage = NULL;

        CHECK(accel_args_force_single_thread(9, argv, &storage) == 1);
        CHECK_STREQ(argv[6], "tcg,thread=single");
        /* Everything else untouched. */
        CHECK_STREQ(argv[5], "-accel");
        CHECK_STREQ(argv[4], "raspi3b,usb=off");
        CHECK_STREQ(argv[8], "size=1048576k");
        CHECK(argv[9] == NULL);
        free(storage);
}

static void test_options_kept(void) {
        char *argv[] = {"qemu", "--accel", "tcg,tb-size=128", NULL};
        char *storage = NULL;

        CHECK(accel_args_force_single_thread(3, argv, &storage) == 1);
        CHECK_STREQ(argv[2], "tcg,tb-size=128,thread=single");
        free(storage);
}

static void test_left_alone(void) {
        /* The caller already chose; other accelerators; a value that only starts like "tcg";
         * "thread=" inside another option's value; -accel as the last argument. */
        char *a1[] = {"qemu", "-accel", "tcg,thread=multi", NULL};
        char *a2[] = {"qemu", "-accel", "kvm", NULL};
        char *a3[] = {"qemu", "-accel", "tcgx", NULL};
        char *a4[] = {"qemu", "-machine", "none,accel=tcg", "-accel", NULL};
        char *a5[] = {"qemu", "-append", "tcg", NULL};
        char *a6[] = {"qemu", NULL};

        run(3, a1, 0);
        CHECK_STREQ(a1[2], "tcg,thread=multi");
        run(3, a2, 0);
        run(3, a3, 0);
        CHECK_STREQ(a3[2], "tcgx");
        run(4, a4, 0);
        run(3, a5, 0);
        CHECK_STREQ(a5[2], "tcg");
        run(1, a6, 0);
}

static void test_several(void) {
        char *argv[] = {"qemu", "-accel", "kvm", "-accel", "tcg", "-accel", "tcg,tb-size=64", NULL};
        char *storage = NULL;

        CHECK(accel_args_force_single_thread(7, argv, &storage) == 2);
        CHECK_STREQ(argv[2], "kvm");
        CHECK_STREQ(argv[4], "tcg,thread=single");
        CHECK_STREQ(argv[6], "tcg,tb-size=64,thread=single");
        free(storage);
}

static void test_chardev_nodelay(void) {
        char *argv[] = {"qemu",
                        "-chardev",
                        "socket,id=charserial0,host=127.0.0.1,port=4000,reconnect-ms=1000,tls-creds="
                        "objcharserial0_tls0",
                        "-chardev",
                        "socket,id=charmonitor,fd=27,server=on,wait=off",
                        "-chardev",
                        "socket,id=charserial1,host=127.0.0.1,port=4001,tls-creds=t,nodelay=off",
                        "-object",
                        "socket,tls-creds=x",
                        NULL};
        char *storage = NULL;

        CHECK(chardev_args_nodelay(9, argv, &storage) == 1);
        CHECK_STREQ(argv[2], "socket,id=charserial0,host=127.0.0.1,port=4000,reconnect-ms=1000,tls-creds="
                             "objcharserial0_tls0,"
                             "nodelay=on");
        /* The monitor (no TLS), a chardev that already says nodelay, and a non-chardev: untouched. */
        CHECK_STREQ(argv[4], "socket,id=charmonitor,fd=27,server=on,wait=off");
        CHECK_STREQ(argv[6], "socket,id=charserial1,host=127.0.0.1,port=4001,tls-creds=t,nodelay=off");
        CHECK_STREQ(argv[8], "socket,tls-creds=x");
        free(storage);
        char *none[] = {"qemu", "-chardev", "pty,id=x", NULL};
        CHECK(chardev_args_nodelay(3, none, &storage) == 0 && storage == NULL);
}

static void test_qemu_choice(void) {
        CHECK_STREQ(qemu_choose(NULL, "/stock", "/own"), "/stock");
        CHECK_STREQ(qemu_choose("piemu", "/stock", "/own"), "/own");
        /* anything else is Debian's QEMU: only piemud's one value picks piemu's */
        CHECK_STREQ(qemu_choose("", "/stock", "/own"), "/stock");
        CHECK_STREQ(qemu_choose("piemu ", "/stock", "/own"), "/stock");
        CHECK_STREQ(qemu_choose("PIEMU", "/stock", "/own"), "/stock");
        CHECK_STREQ(qemu_choose("/tmp/evil", "/stock", "/own"), "/stock");
}

int main(void) {
        test_chardev_nodelay();
        test_libvirt_command_line();
        test_options_kept();
        test_left_alone();
        test_several();
        test_qemu_choice();
        printf("test-accel-args: ok\n");
        return 0;
}
