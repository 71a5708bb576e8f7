/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config.txt as the firmware reads it for each QEMU model, and cmdline.txt as piemu rewrites it. */

#include <string.h>

#include "macro.h"
#include "rpi-config.h"
#include "tests.h"

static char *mfree_ptr(char *p) {
        free(p);
        return NULL;
}

static void parse(const char *text, RpiModel m, RpiConfig *c) {
        CHECK(rpi_config_parse(text, strlen(text), m, c) == 0);
}

static bool has_note(const RpiConfig *c, const char *needle) {
        for (size_t i = 0; i < c->n_notes; i++)
                if (strstr(c->notes[i], needle))
                        return true;
        return false;
}

static void test_models(void) {
        CHECK(rpi_model_from_string("raspi3b") == RPI_MODEL_RASPI3B);
        CHECK(rpi_model_from_string("raspi4b") == RPI_MODEL_RASPI4B);
        CHECK(rpi_model_from_string("raspi3") == _RPI_MODEL_INVALID);
        CHECK(rpi_model_from_string("") == _RPI_MODEL_INVALID);
        CHECK(rpi_model_from_string(NULL) == _RPI_MODEL_INVALID);
        for (int m = 0; m < _RPI_MODEL_MAX; m++) {
                const char *const *d = rpi_model_dtb_names(m, false);

                CHECK(rpi_model_from_string(rpi_model_to_string(m)) == m);
                CHECK(rpi_model_revision(m) != 0);
                CHECK(d && d[0]);
                for (; *d; d++)
                        CHECK(rpi_boot_name_is_valid(*d));
                d = rpi_model_dtb_names(m, true);
                CHECK(d && d[0]);
        }
        /* QEMU 10's board_rev values */
        CHECK(rpi_model_revision(RPI_MODEL_RASPI3B) == 0xa02082);
        CHECK(rpi_model_revision(RPI_MODEL_RASPI3AP) == 0x9020e0);
        CHECK(rpi_model_revision(RPI_MODEL_RASPI2B) == 0xa21041);
        CHECK(rpi_model_revision(RPI_MODEL_RASPI0) == 0x920092);
        CHECK(rpi_model_revision(RPI_MODEL_RASPI1AP) == 0x900021);
        CHECK(rpi_model_revision(RPI_MODEL_RASPI4B) == 0xb03115);

        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI3B, false)[0], "bcm2710-rpi-3-b.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI3B, false)[2], "broadcom/bcm2837-rpi-3-b.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI3B, true)[0], "bcm2837-rpi-3-b.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI3AP, false)[0], "bcm2710-rpi-3-a-plus.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI2B, false)[0], "bcm2709-rpi-2-b.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI4B, false)[0], "bcm2711-rpi-4-b.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI0, false)[0], "bcm2708-rpi-zero.dtb");
        CHECK_STREQ(rpi_model_dtb_names(RPI_MODEL_RASPI1AP, false)[0], "bcm2708-rpi-a-plus.dtb");
}

static void test_names(void) {
        CHECK(rpi_boot_name_is_valid("kernel8.img"));
        CHECK(rpi_boot_name_is_valid("broadcom/bcm2837-rpi-3-b.dtb"));
        CHECK(rpi_boot_name_is_valid("a/b/c_d+e,f~g=h-i"));
        CHECK(!rpi_boot_name_is_valid(""));
        CHECK(!rpi_boot_name_is_valid(NULL));
        CHECK(!rpi_boot_name_is_valid("/kernel8.img"));
        CHECK(!rpi_boot_name_is_valid("dir/"));
        CHECK(!rpi_boot_name_is_valid("a//b"));
        CHECK(!rpi_boot_name_is_valid("../x"));
        CHECK(!rpi_boot_name_is_valid("a/./x"));
        CHECK(!rpi_boot_name_is_valid(".."));
        CHECK(!rpi_boot_name_is_valid("*.img"));
        CHECK(!rpi_boot_name_is_valid("kernel?.img"));
        CHECK(!rpi_boot_name_is_valid("[k]ernel"));
        CHECK(!rpi_boot_name_is_valid("a b"));
        CHECK(!rpi_boot_name_is_valid("a\\b"));
        CHECK(!rpi_boot_name_is_valid("x@@1"));
        CHECK(!rpi_boot_name_is_valid("x:y"));
        CHECK(!rpi_boot_name_is_valid("k\xc3\xa9"));
        {
                char longname[RPI_BOOT_NAME_MAX + 2];
                memset(longname, 'a', sizeof(longname) - 1);
                longname[sizeof(longname) - 1] = '\0';
                CHECK(!rpi_boot_name_is_valid(longname));
                longname[RPI_BOOT_NAME_MAX] = '\0';
                CHECK(rpi_boot_name_is_valid(longname));
        }
}

static void test_defaults(void) {
        RpiConfig c;

        /* no config.txt at all */
        CHECK(rpi_config_parse("", 0, RPI_MODEL_RASPI3B, &c) == 0);
        CHECK(c.arm_64bit == -1 && !c.kernel && !c.initramfs && !c.auto_initramfs && !c.notes);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3B), "kernel7.img");
        CHECK(!rpi_config_arm_64bit(&c, RPI_MODEL_RASPI3B));
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3AP), "kernel7.img");
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI2B), "kernel7.img");
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI0), "kernel.img");
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI1AP), "kernel.img");
        /* the Pi 4's firmware defaults to 64-bit */
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI4B), "kernel8.img");
        CHECK(rpi_config_arm_64bit(&c, RPI_MODEL_RASPI4B));
        rpi_config_done(&c);

        parse("arm_64bit=1\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.arm_64bit == 1);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3B), "kernel8.img");
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3AP), "kernel8.img");
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI4B), "kernel8.img");
        /* no 64-bit CPU: arm_64bit does not matter */
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI2B), "kernel7.img");
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI0), "kernel.img");
        CHECK(!rpi_config_arm_64bit(&c, RPI_MODEL_RASPI2B));
        rpi_config_done(&c);

        parse("arm_64bit=0\n", RPI_MODEL_RASPI4B, &c);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI4B), "kernel7l.img");
        CHECK(!rpi_config_arm_64bit(&c, RPI_MODEL_RASPI4B));
        rpi_config_done(&c);

        /* the deprecated arm_control bit 9 */
        parse("arm_control=0x200\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3B), "kernel8.img");
        rpi_config_done(&c);

        /* kernel= wins; a known name sets the mode */
        parse("arm_64bit=1\nkernel=kernel7.img\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3B), "kernel7.img");
        CHECK(!rpi_config_arm_64bit(&c, RPI_MODEL_RASPI3B));
        rpi_config_done(&c);
        parse("kernel=kernel8.img\n", RPI_MODEL_RASPI3B, &c);
        CHECK(rpi_config_arm_64bit(&c, RPI_MODEL_RASPI3B));
        rpi_config_done(&c);
        parse("kernel=Image\narm_64bit=1\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3B), "Image");
        CHECK(rpi_config_arm_64bit(&c, RPI_MODEL_RASPI3B));
        rpi_config_done(&c);
}

/* Raspberry Pi OS Bookworm's config.txt, abbreviated, with CR-LF. */
static const char bookworm[] = "# For more options and information see\r\n"
                               "# http://rptl.io/configtxt\r\n"
                               "dtparam=audio=on\r\n"
                               "camera_auto_detect=1\r\n"
                               "display_auto_detect=1\r\n"
                               "auto_initramfs=1\r\n"
                               "dtoverlay=vc4-kms-v3d\r\n"
                               "max_framebuffers=2\r\n"
                               "disable_fw_kms_setup=1\r\n"
                               "arm_64bit=1\r\n"
                               "disable_overscan=1\r\n"
                               "arm_boost=1\r\n"
                               "\r\n"
                               "[cm4]\r\n"
                               "otg_mode=1\r\n"
                               "\r\n"
                               "[cm5]\r\n"
                               "dtoverlay=dwc2,dr_mode=host\r\n"
                               "\r\n"
                               "[all]\r\n";

static void test_sections(void) {
        RpiConfig c;

        parse(bookworm, RPI_MODEL_RASPI3B, &c);
        CHECK(c.arm_64bit == 1 && c.auto_initramfs && !c.kernel && !c.notes);
        CHECK_STREQ(rpi_config_kernel(&c, RPI_MODEL_RASPI3B), "kernel8.img");
        rpi_config_done(&c);

        /* model filters replace each other; [all] resets; unknown filters do not match */
        static const char sections[] = "kernel=k-all.img\n"
                                       "[pi4]\n"
                                       "kernel=k-pi4.img\n"
                                       "[pi3]\n"
                                       "device_tree=dt-pi3.dtb\n"
                                       "[pi3+]\n"
                                       "initramfs if-pi3plus followkernel\n"
                                       "[pi0]\n"
                                       "cmdline=c-pi0.txt\n"
                                       "[pi02]\n"
                                       "cmdline=c-pi02.txt\n"
                                       "[pi1]\n"
                                       "cmdline=c-pi1.txt\n"
                                       "[pi2]\n"
                                       "cmdline=c-pi2.txt\n"
                                       "[pi400]\n"
                                       "cmdline=c-pi400.txt\n"
                                       "[all]\n"
                                       "[board-type=0x8]\n"
                                       "kernel=k-board.img\n"
                                       "[pi3]\n" /* still under board-type: blocked until [all] */
                                       "kernel=k-board-pi3.img\n"
                                       "[all]\n"
                                       "[gpio4=1]\n"
                                       "kernel=k-gpio.img\n"
                                       "[all]\n"
                                       "[EDID=VSC-TD2220]\n"
                                       "kernel=k-edid.img\n"
                                       "[all]\n"
                                       "[0x12345678]\n"
                                       "kernel=k-serial.img\n"
                                       "[all]\n"
                                       "[none]\n"
                                       "kernel=k-none.img\n"
                                       "[pi3]\n" /* [none] holds until [all] */
                                       "kernel=k-none-pi3.img\n"
                                       "[tryboot]\n"
                                       "kernel=k-tryboot.img\n"
                                       "[all]\n"
                                       "arm_64bit=1\n";

        parse(sections, RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.kernel, "k-all.img");
        CHECK_STREQ(c.device_tree, "dt-pi3.dtb");
        CHECK(!c.initramfs);
        CHECK(!c.cmdline);
        CHECK(c.arm_64bit == 1);
        rpi_config_done(&c);

        parse(sections, RPI_MODEL_RASPI3AP, &c);
        CHECK_STREQ(c.kernel, "k-all.img");
        CHECK_STREQ(c.device_tree, "dt-pi3.dtb");
        CHECK_STREQ(c.initramfs, "if-pi3plus");
        rpi_config_done(&c);

        parse(sections, RPI_MODEL_RASPI4B, &c);
        CHECK_STREQ(c.kernel, "k-pi4.img");
        CHECK(!c.device_tree && !c.cmdline);
        rpi_config_done(&c);

        parse(sections, RPI_MODEL_RASPI0, &c);
        CHECK_STREQ(c.cmdline, "c-pi0.txt");
        rpi_config_done(&c);
        parse(sections, RPI_MODEL_RASPI1AP, &c);
        CHECK_STREQ(c.cmdline, "c-pi1.txt");
        rpi_config_done(&c);
        parse(sections, RPI_MODEL_RASPI2B, &c);
        CHECK_STREQ(c.cmdline, "c-pi2.txt");
        CHECK(!c.device_tree);
        rpi_config_done(&c);

        /* filters are case-insensitive, may carry blanks and comments after them */
        parse("[PI3]  # the threes\nkernel=a.img\n[Pi4]\nkernel=b.img\n[ALL]\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.kernel, "a.img");
        rpi_config_done(&c);

        /* an unterminated filter line is ignored */
        parse("[pi4\nkernel=a.img\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.kernel, "a.img");
        rpi_config_done(&c);
}

static void test_keys(void) {
        RpiConfig c;

        /* blanks around '=', CR-LF, no final newline, comments, last one wins */
        parse("  kernel = first.img \r\n#kernel=commented.img\nkernel=second.img  # trailing\r\n"
              "  # indented comment\n\n\t\ndevice_tree=my.dtb\ncmdline=cmd2.txt\nauto_initramfs=1\n"
              "upstream_kernel=1\ninitramfs\tinitrd.img 0x00800000",
              RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.kernel, "second.img");
        CHECK_STREQ(c.device_tree, "my.dtb");
        CHECK_STREQ(c.cmdline, "cmd2.txt");
        CHECK_STREQ(c.initramfs, "initrd.img");
        CHECK(c.auto_initramfs && c.upstream_kernel);
        rpi_config_done(&c);

        /* ramfsfile= is the old spelling; initramfs= is tolerated */
        parse("ramfsfile=old.cpio\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.initramfs, "old.cpio");
        rpi_config_done(&c);
        parse("initramfs=eq.cpio\n", RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.initramfs, "eq.cpio");
        rpi_config_done(&c);

        /* an empty value unsets; invalid names are ignored with a note */
        parse("kernel=a.img\nkernel=\ndevice_tree=\n", RPI_MODEL_RASPI3B, &c);
        CHECK(!c.kernel && !c.device_tree);
        CHECK(has_note(&c, "device_tree= is empty"));
        rpi_config_done(&c);
        parse("kernel=good.img\nkernel=../../etc/passwd\nkernel=*.img\ndevice_tree=/abs.dtb\n",
              RPI_MODEL_RASPI3B, &c);
        CHECK_STREQ(c.kernel, "good.img");
        CHECK(!c.device_tree);
        CHECK(has_note(&c, "ignoring kernel=../../etc/passwd"));
        CHECK(has_note(&c, "ignoring device_tree=/abs.dtb"));
        rpi_config_done(&c);

        /* numbers: decimal, hex, garbage */
        parse("arm_64bit=0x1\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.arm_64bit == 1);
        rpi_config_done(&c);
        parse("arm_64bit=1\narm_64bit=yes\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.arm_64bit == 1);
        CHECK(has_note(&c, "non-numeric"));
        rpi_config_done(&c);
        parse("arm_64bit=99999999999999999999999\nauto_initramfs=0\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.arm_64bit == 1 && !c.auto_initramfs);
        rpi_config_done(&c);

        /* include is noted, not followed; os_prefix is noted and ignored */
        parse("include extraconfig.txt\n[pi4]\ninclude pi4.txt\n[all]\nos_prefix=next/\n", RPI_MODEL_RASPI3B,
              &c);
        CHECK(c.n_includes == 1);
        CHECK(has_note(&c, "not following \"include extraconfig.txt\""));
        CHECK(!has_note(&c, "pi4.txt"));
        CHECK(has_note(&c, "os_prefix=next/ is not supported"));
        rpi_config_done(&c);

        /* NUL bytes and junk do not confuse it */
        {
                static const char nul[] = "kernel=a\0b.img\n\xff\xfe=\x01\n"
                                          "kernel8.img\n=x\n[\n]\ninitramfs \n";
                CHECK(rpi_config_parse(nul, sizeof(nul) - 1, RPI_MODEL_RASPI3B, &c) == 0);
                CHECK(!c.kernel || rpi_boot_name_is_valid(c.kernel));
                CHECK(!c.initramfs);
                rpi_config_done(&c);
        }

        /* notes are capped and sanitized */
        {
                char big[RPI_CONFIG_MAX_NOTES * 40 + 64] = "";
                for (int i = 0; i < RPI_CONFIG_MAX_NOTES + 5; i++)
                        strcat(big, "kernel=\x01"
                                    "bad\n");
                parse(big, RPI_MODEL_RASPI3B, &c);
                CHECK(c.n_notes == RPI_CONFIG_MAX_NOTES);
                CHECK(c.notes[c.n_notes] == NULL);
                for (size_t i = 0; i < c.n_notes; i++)
                        for (const char *p = c.notes[i]; *p; p++)
                                CHECK(*p >= 0x20 && *p < 0x7f);
                rpi_config_done(&c);
        }

        CHECK(rpi_config_parse("", 0, _RPI_MODEL_MAX, &c) == -EINVAL);
        CHECK(rpi_config_parse("", 0, _RPI_MODEL_INVALID, &c) == -EINVAL);
}

static void test_dtparam(void) {
        RpiConfig c;

        parse("kernel=k.img\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == -1); /* not set: the tree's own status stays */
        rpi_config_done(&c);

        /* Raspberry Pi OS's own lines: audio and the overlay are ignored without a note each */
        parse("dtparam=audio=on\n#dtparam=spi=on\ndtoverlay=vc4-kms-v3d\ndtoverlay=\ndtparam=i2c_arm=on\n",
              RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 1 && !c.notes);
        rpi_config_done(&c);

        /* a list, the alias, no value = on, the last one wins */
        parse("dtparam=spi=on, i2c_arm_baudrate=400000 ,i2c\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 1 && !c.notes);
        rpi_config_done(&c);
        parse("dtparam=i2c_arm=on\ndtparam=i2c=OFF\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 0);
        rpi_config_done(&c);
        parse("dtparam=i2c_arm=true\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 1);
        rpi_config_done(&c);
        parse("dtparam=i2c_arm=1,i2c_arm=0\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 0);
        rpi_config_done(&c);

        /* a value that is neither: noted, the setting stays */
        parse("dtparam=i2c_arm=on\ndtparam=i2c_arm=maybe\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 1 && has_note(&c, "ignoring dtparam i2c_arm=maybe"));
        rpi_config_done(&c);

        /* after a dtoverlay=, a parameter the overlay does not have is still the base tree's: a line
         * appended after Raspberry Pi OS's dtoverlay=vc4-kms-v3d counts */
        parse("dtoverlay=vc4-kms-v3d\nmax_framebuffers=2\n[all]\ndtparam=i2c_arm=on\n", RPI_MODEL_RASPI3B,
              &c);
        CHECK(c.i2c_arm == 1);
        rpi_config_done(&c);
        parse("dtoverlay=i2c-rtc\ndtparam=ds3231\ndtoverlay=\ndtparam=i2c=off\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == 0 && !c.notes);
        rpi_config_done(&c);

        /* sections apply as for every other key */
        parse("[pi4]\ndtparam=i2c_arm=on\n[all]\n", RPI_MODEL_RASPI3B, &c);
        CHECK(c.i2c_arm == -1);
        rpi_config_done(&c);
        parse("[pi4]\ndtparam=i2c_arm=on\n[all]\n", RPI_MODEL_RASPI4B, &c);
        CHECK(c.i2c_arm == 1);
        rpi_config_done(&c);
}

static void test_auto_initramfs(void) {
        char *s;

        CHECK(rpi_auto_initramfs_name("kernel8.img", &s) == 0);
        CHECK_STREQ(s, "initramfs8");
        free(s);
        CHECK(rpi_auto_initramfs_name("kernel7l.img", &s) == 0);
        CHECK_STREQ(s, "initramfs7l");
        free(s);
        CHECK(rpi_auto_initramfs_name("kernel.img", &s) == 0);
        CHECK_STREQ(s, "initramfs");
        free(s);
        CHECK(rpi_auto_initramfs_name("kernel_2712.img", &s) == 0);
        CHECK_STREQ(s, "initramfs_2712");
        free(s);
        CHECK(rpi_auto_initramfs_name("boot/kernel8.img", &s) == 0);
        CHECK_STREQ(s, "boot/initramfs8");
        free(s);
        CHECK(rpi_auto_initramfs_name("Image", &s) == -EINVAL);
        CHECK(rpi_auto_initramfs_name("vmlinuz.img", &s) == -EINVAL);
        CHECK(rpi_auto_initramfs_name("kernel8.bin", &s) == -EINVAL);
        CHECK(rpi_auto_initramfs_name("kernel", &s) == -EINVAL);
        CHECK(rpi_auto_initramfs_name(NULL, &s) == -EINVAL);
}

static void rewrite_ok(const char *in, const char *want, bool want_root) {
        _cleanup_free_ char *out = NULL;
        bool root = !want_root;

        CHECK(rpi_cmdline_rewrite(in, strlen(in), &out, &root) == 0);
        CHECK_STREQ(out, want);
        CHECK(root == want_root);
}

static void test_cmdline(void) {
        char *out = NULL;

        /* Raspberry Pi OS Bookworm's, with a PARTUUID */
        rewrite_ok(
                "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
                "fsck.repair=yes "
                "rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot splash "
                "plymouth.ignore-serial-consoles\n",
                "root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait console=ttyAMA0,115200",
                true);
        /* Bullseye's resizer, CR-LF, tabs, further lines ignored */
        rewrite_ok(
                "console=serial0,115200\tconsole=tty1 root=PARTUUID=abc-02  rootfstype=ext4 "
                "elevator=deadline "
                "fsck.repair=yes rootwait quiet init=/usr/lib/raspi-config/init_resize.sh\r\nsecond line\n",
                "root=PARTUUID=abc-02 rootfstype=ext4 elevator=deadline fsck.repair=yes rootwait "
                "console=ttyAMA0,115200",
                true);
        /* other init= are kept; so is whatever else */
        rewrite_ok("root=/dev/mmcblk0p2 init=/bin/sh plymouth.enable=0 splash=verbose cgroup_enable=memory",
                   "root=/dev/mmcblk0p2 init=/bin/sh splash=verbose cgroup_enable=memory "
                   "console=ttyAMA0,115200",
                   true);
        /* empty, blank, missing root=, root= without a value */
        rewrite_ok("", "console=ttyAMA0,115200", false);
        rewrite_ok("  \t \r\n", "console=ttyAMA0,115200", false);
        rewrite_ok("\nroot=/dev/sda1\n", "console=ttyAMA0,115200", false);
        rewrite_ok("rootwait root= ro", "rootwait root= ro console=ttyAMA0,115200", false);
        rewrite_ok("rootfstype=ext4 rootwait", "rootfstype=ext4 rootwait console=ttyAMA0,115200", false);
        /* quotes keep blanks together, and a quoted console= is still a console= */
        rewrite_ok("root=/dev/x dyndbg=\"file drivers/* +p\" \"console=ttyS0\" console=\"tty1\"",
                   "root=/dev/x dyndbg=\"file drivers/* +p\" console=ttyAMA0,115200", true);
        /* everything after -- is init's: our console goes before it */
        rewrite_ok("root=/dev/x quiet -- single console=foo quiet",
                   "root=/dev/x console=ttyAMA0,115200 -- single console=foo quiet", true);
        rewrite_ok("--", "console=ttyAMA0,115200 --", false);
        /* our own console is not doubled */
        rewrite_ok("console=ttyAMA0,115200 root=/dev/x console=ttyAMA0,115200",
                   "root=/dev/x console=ttyAMA0,115200", true);

        /* control characters, DEL, non-ASCII, NUL */
        CHECK(rpi_cmdline_rewrite("root=/dev/x \x01", 13, &out, NULL) == -EBADMSG);
        CHECK(rpi_cmdline_rewrite("root=/dev/x\x7f", 12, &out, NULL) == -EBADMSG);
        CHECK(rpi_cmdline_rewrite("root=/d\xc3\xa9v", 10, &out, NULL) == -EBADMSG);
        CHECK(rpi_cmdline_rewrite("root=/dev/x\0y", 13, &out, NULL) == -EBADMSG);
        CHECK(rpi_cmdline_rewrite("a\rb", 3, &out, NULL) == -EBADMSG);
        /* an unterminated quote would swallow our console */
        CHECK(rpi_cmdline_rewrite("root=/dev/x \"a b", strlen("root=/dev/x \"a b"), &out, NULL) == -EBADMSG);
        CHECK(rpi_cmdline_rewrite("a=\"b\"c\"", strlen("a=\"b\"c\""), &out, NULL) == -EBADMSG);
        /* junk after the first line does not matter */
        CHECK(rpi_cmdline_rewrite("rootwait\n\x01\xff", 11, &out, NULL) == 0);
        CHECK_STREQ(out, "rootwait console=ttyAMA0,115200");
        out = mfree_ptr(out);

        /* length limits, on the input line and on the result */
        {
                char big[RPI_CMDLINE_MAX + 2];

                memset(big, 'a', sizeof(big));
                CHECK(rpi_cmdline_rewrite(big, RPI_CMDLINE_MAX + 1, &out, NULL) == -E2BIG);
                /* 4096 bytes fit, but not with the console added */
                CHECK(rpi_cmdline_rewrite(big, RPI_CMDLINE_MAX, &out, NULL) == -E2BIG);
                /* ... unless console= made room */
                memcpy(big, "console=ttyS0,115200 ", 21);
                CHECK(rpi_cmdline_rewrite(big, RPI_CMDLINE_MAX - 10, &out, NULL) == 0);
                CHECK(strlen(out) <= RPI_CMDLINE_MAX);
                out = mfree_ptr(out);
                /* a long line with a newline after it is judged by the line */
                big[RPI_CMDLINE_MAX - 100] = '\n';
                CHECK(rpi_cmdline_rewrite(big, sizeof(big), &out, NULL) == 0);
                out = mfree_ptr(out);
        }
}

int main(void) {
        test_models();
        test_names();
        test_defaults();
        test_sections();
        test_keys();
        test_dtparam();
        test_auto_initramfs();
        test_cmdline();
        printf("test-rpi-config: OK\n");
        return 0;
}
