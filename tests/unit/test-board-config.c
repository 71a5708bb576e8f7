/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>

#include "board-config.h"
#include "config.h"
#include "image.h"
#include "macro.h"
#include "tests.h"

static const ImagePaths img = {
        .kernel = "/var/lib/piemu/images/default/kernel",
        .dtb = "/var/lib/piemu/images/default/dtb",
        .initrd = "/var/lib/piemu/images/default/initrd",
        .sd = "/var/lib/piemu/images/default/sd.img",
        .sd_format = "raw",
        .cmdline = "console=ttyAMA0,115200 rdinit=/init",
};

static void test_domain_xml(void) {
        BoardConfig c = {
                .name = (char *)"b1",
                .image = (char *)"default",
                .model = (char *)"raspi3b",
                .cmdline = (char *)"quiet x=<&>",
                .owner = 1000,
                .persistent = true,
                .serial_port = 40001,
                .gpio_port = 40002,
        };
        _cleanup_free_ char *xml = NULL;

        CHECK(domain_xml_build(&c, &img, NULL, NULL, &xml) == 0);
        CHECK_CONTAINS(xml, "<name>piemu-b1</name>");
        CHECK_CONTAINS(xml, "machine='raspi3b'");
        CHECK_CONTAINS(xml, "<memory unit='MiB'>1024</memory>");
        CHECK_CONTAINS(xml, "<target dev='sda' bus='sd'/>");
        /* The SD card is the board's overlay in piemu's pool directory, its backing chain spelled out
         * (libvirt's AppArmor helper labels file disks only: see domain_xml_build). */
        CHECK_CONTAINS(xml, "    <disk type='file' device='disk'>\n"
                            "      <driver name='qemu' type='qcow2'/>\n"
                            "      <source file='" PIEMU_POOL_DIR "/b1.qcow2'/>\n"
                            "      <backingStore type='file'>\n"
                            "        <format type='raw'/>\n"
                            "        <source file='/var/lib/piemu/images/default/sd.img'/>\n"
                            "        <backingStore/>\n"
                            "      </backingStore>\n"
                            "      <target dev='sda' bus='sd'/>\n");
        CHECK(!strstr(xml, "pool="));
        CHECK_CONTAINS(xml, "<source mode='connect' host='127.0.0.1' service='40001' tls='yes'>");
        CHECK_CONTAINS(xml, "<source mode='connect' host='127.0.0.1' service='40002' tls='yes'>");
        CHECK_CONTAINS(xml, "<reconnect enabled='yes' timeout='1'/>");
        CHECK(domain_xml_has_tls_lines(xml));
        CHECK_CONTAINS(xml, "<initrd>/var/lib/piemu/images/default/initrd</initrd>");
        /* User text is escaped and iomem=relaxed is added for the shim. */
        CHECK_CONTAINS(xml, "<cmdline>console=ttyAMA0,115200 rdinit=/init earlycon=pl011,mmio32,0x3f201000 "
                            "iomem=relaxed quiet x=&lt;&amp;&gt;</cmdline>");
        CHECK_CONTAINS(xml, "<owner>1000</owner>");
        CHECK_CONTAINS(xml, "<persistent>yes</persistent>");
        CHECK(!strstr(xml, "<uuid>"));
        CHECK(!strstr(xml, "<emulator>"));

        /* Another model: its machine, RAM, CPUs and console address; an unknown one is refused. */
        {
                _cleanup_free_ char *x4 = NULL, *xz = NULL, *xbad = NULL;
                BoardConfig m = c;
                m.model = (char *)"raspi4b";
                CHECK(domain_xml_build(&m, &img, NULL, NULL, &x4) == 0);
                CHECK_CONTAINS(x4, "machine='raspi4b'");
                CHECK_CONTAINS(x4, "<memory unit='MiB'>2048</memory>");
                CHECK_CONTAINS(x4, "earlycon=pl011,mmio32,0xfe201000");
                m.model = (char *)"raspi0";
                CHECK(domain_xml_build(&m, &img, NULL, NULL, &xz) == 0);
                CHECK_CONTAINS(xz, "<memory unit='MiB'>512</memory>\n  <vcpu>1</vcpu>");
                CHECK_CONTAINS(xz, "earlycon=pl011,mmio32,0x20201000");
                m.model = (char *)"raspi5";
                CHECK(domain_xml_build(&m, &img, NULL, NULL, &xbad) == -EOPNOTSUPP);
        }

        /* Round trip through the metadata parser. */
        BoardConfig back = {};
        /* libvirt hands back just the element (virDomainGetMetadata). */
        const char *from = strstr(xml, "<piemu:board"), *to = strstr(xml, "</piemu:board>");
        CHECK(from && to);
        _cleanup_free_ char *element = strndup(from, (size_t)(to - from) + strlen("</piemu:board>"));
        CHECK(element);
        CHECK(metadata_xml_parse(element, &back) == 0);
        CHECK_STREQ(back.name, "b1");
        CHECK_STREQ(back.image, "default");
        CHECK_STREQ(back.cmdline, "quiet x=<&>");
        CHECK(back.owner == 1000);
        CHECK(back.persistent);
        CHECK(back.serial_port == 40001 && back.gpio_port == 40002);
        board_config_done(&back);

        free(xml);
        xml = NULL;
        CHECK(domain_xml_build(&c, &img, "e0ed8b30-0859-4907-8e2c-0b3a4270b870", NULL, &xml) == 0);
        CHECK_CONTAINS(xml, "<uuid>e0ed8b30-0859-4907-8e2c-0b3a4270b870</uuid>");
        free(xml);
        xml = NULL;
        CHECK(domain_xml_build(&c, &img, "e0ed8b30'/><evil", NULL, &xml) == -EINVAL);

        /* The emulator is the first device, escaped; only absolute paths. */
        CHECK(domain_xml_build(&c, &img, NULL, "/usr/bin/piemu-qemu-system-aarch64", &xml) == 0);
        CHECK_CONTAINS(xml, "  <devices>\n    <emulator>/usr/bin/piemu-qemu-system-aarch64</emulator>\n"
                            "    <disk ");
        free(xml);
        xml = NULL;
        CHECK(domain_xml_build(&c, &img, NULL, "/opt/q&<x>", &xml) == 0);
        CHECK_CONTAINS(xml, "<emulator>/opt/q&amp;&lt;x&gt;</emulator>");
        free(xml);
        xml = NULL;
        CHECK(domain_xml_build(&c, &img, NULL, "qemu-system-aarch64", &xml) == -EINVAL);
        CHECK(xml == NULL);

        /* A qcow2 image is named as such; its path is escaped; no image or an unknown format: refused. */
        {
                _cleanup_free_ char *xq = NULL, *xn = NULL, *xf = NULL;
                ImagePaths q = img;
                q.sd = "/srv/a&b/sd.qcow2";
                q.sd_format = "qcow2";
                CHECK(domain_xml_build(&c, &q, NULL, NULL, &xq) == 0);
                CHECK_CONTAINS(xq, "<format type='qcow2'/>\n        <source file='/srv/a&amp;b/sd.qcow2'/>");
                q.sd = NULL;
                CHECK(domain_xml_build(&c, &q, NULL, NULL, &xn) == -EINVAL);
                q.sd = img.sd;
                q.sd_format = "vmdk";
                CHECK(domain_xml_build(&c, &q, NULL, NULL, &xf) == -EINVAL);
        }

        c.model = (char *)"raspi5";
        CHECK(domain_xml_build(&c, &img, NULL, NULL, &xml) == -EOPNOTSUPP);
        c.model = (char *)"raspi3b";
        c.name = (char *)"../x";
        CHECK(domain_xml_build(&c, &img, NULL, NULL, &xml) == -EINVAL);
        c.name = (char *)"b1";
        c.cmdline = (char *)"bad\x01";
        CHECK(domain_xml_build(&c, &img, NULL, NULL, &xml) == -EINVAL);
}

static void test_metadata_parse_bad(void) {
        BoardConfig c = {};
        CHECK(metadata_xml_parse("<board><name>b1</name></board>", &c) < 0);
        /* Hostile or broken input: refused, nothing fetched, nothing expanded. */
        CHECK(metadata_xml_parse("<board><name>b1</name><image>default", &c) < 0);
        CHECK(metadata_xml_parse("<other><name>b</name><image>i</image><owner>7</owner></other>", &c) < 0);
        CHECK(metadata_xml_parse("<!DOCTYPE board SYSTEM 'http://127.0.0.1:9/x.dtd'><board><name>b</name>"
                                 "<image>i</image><owner>7</owner></board>",
                                 &c) == 0);
        board_config_done(&c);
        CHECK(metadata_xml_parse(
                      "<!DOCTYPE board [<!ENTITY e 'x'>]><board><name>&e;&e;</name><image>i</image>"
                      "<owner>7</owner></board>",
                      &c) < 0 ||
              (c.name && strlen(c.name) <= 63));
        board_config_done(&c);
        CHECK(!domain_xml_has_tls_lines("<domain><devices><serial type='tcp'>"));
        CHECK(metadata_xml_parse("<board><name>../x</name><image>default</image><owner>0</owner></board>",
                                 &c) == -EINVAL);
        CHECK(metadata_xml_parse(
                      "<board><name>b</name><image>default</image><owner>99999999999</owner></board>", &c) ==
              -ERANGE);
        CHECK(metadata_xml_parse("<board><name>b</name><image>/etc</image><owner>1</owner></board>", &c) ==
              -EINVAL);
        CHECK(metadata_xml_parse("<board xmlns='u'><name>b</name><image>i</image><owner>7</owner></board>",
                                 &c) == 0);
        CHECK_STREQ(c.model, "raspi3b");
        CHECK(!c.persistent && c.owner == 7);
        board_config_done(&c);
}

static void test_volume_and_pool(void) {
        _cleanup_free_ char *v = NULL, *p = NULL;
        CHECK(volume_xml_build("b1.qcow2", 67108864, "/x/sd.img", "raw", &v) == 0);
        CHECK_CONTAINS(v, "<capacity unit='bytes'>67108864</capacity>");
        CHECK_CONTAINS(v, "<path>/x/sd.img</path>");
        CHECK_CONTAINS(v, "<format type='raw'/>");
        CHECK(volume_xml_build("b1.qcow2", 1, "/x", "vmdk", &p) == -EINVAL);
        CHECK(pool_xml_build("piemu", "/var/lib/piemu/overlays", &p) == 0);
        CHECK_CONTAINS(p, "<pool type='dir'>");
        CHECK_CONTAINS(p, "<path>/var/lib/piemu/overlays</path>");
}

static void test_capacity(void) {
        CHECK(sd_capacity_for(0) == 64ULL << 20);
        CHECK(sd_capacity_for(30ULL << 20) == 64ULL << 20);
        CHECK(sd_capacity_for(64ULL << 20) == 64ULL << 20);
        CHECK(sd_capacity_for((64ULL << 20) + 1) == 128ULL << 20);
        CHECK(sd_capacity_for(5ULL << 30) == 8ULL << 30);
}

static void test_names(void) {
        _cleanup_free_ char *d = NULL, *v = NULL;
        CHECK(board_domain_name("b1", &d) == 0);
        CHECK_STREQ(d, "piemu-b1");
        CHECK(board_volume_name("b1", &v) == 0);
        CHECK_STREQ(v, "b1.qcow2");
        CHECK_STREQ(board_name_from_domain("piemu-b1"), "b1");
        CHECK(board_name_from_domain("other-b1") == NULL);
        CHECK(board_name_from_domain("piemu-") == NULL);
        CHECK(board_name_from_domain("piemu-../x") == NULL);
}

static void test_cmdline(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        _cleanup_free_ char *d = NULL, *e = NULL;
        CHECK(kernel_cmdline_build("console=ttyAMA0", NULL, NULL, &a) == 0);
        CHECK_STREQ(a, "console=ttyAMA0 iomem=relaxed");
        CHECK(kernel_cmdline_build("console=ttyAMA0 iomem=relaxed", NULL, "quiet", &b) == 0);
        CHECK_STREQ(b, "console=ttyAMA0 iomem=relaxed quiet");
        CHECK(kernel_cmdline_build("", NULL, "", &c) == 0);
        CHECK_STREQ(c, "iomem=relaxed");
        /* The model's earlycon, unless the image or the user named one. */
        CHECK(kernel_cmdline_build("console=ttyAMA0", "earlycon=pl011,mmio32,0xfe201000", NULL, &d) == 0);
        CHECK_STREQ(d, "console=ttyAMA0 earlycon=pl011,mmio32,0xfe201000 iomem=relaxed");
        CHECK(kernel_cmdline_build("earlycon=x", "earlycon=pl011,mmio32,0xfe201000", NULL, &e) == 0);
        CHECK_STREQ(e, "earlycon=x iomem=relaxed");
}

static void test_tls_lines(void) {
        const char *tls = "<domain><devices><serial type='tcp'><source mode='connect' host='127.0.0.1' "
                          "service='40001' tls='yes'><reconnect enabled='yes' timeout='1'/></source>"
                          "</serial></devices></domain>";
        const char *plain = "<domain><devices><serial type='tcp'><source mode='bind' host='127.0.0.1' "
                            "service='40001'/></serial></devices></domain>";
        const char *mixed =
                "<domain><serial type='tcp'><source mode='connect' service='1' tls='yes'/></serial>"
                "<serial type='tcp'><source mode='bind' service='2'/></serial></domain>";
        CHECK(domain_xml_has_tls_lines(tls));
        CHECK(!domain_xml_has_tls_lines(plain));
        CHECK(!domain_xml_has_tls_lines(mixed));
        CHECK(!domain_xml_has_tls_lines(NULL));
}

static void test_qtest(void) {
        BoardConfig c = {.name = (char *)"b2", .image = (char *)"default", .serial_port = 1, .gpio_port = 2};
        ImagePaths with = img;
        _cleanup_free_ char *plain = NULL, *xml = NULL, *arg = NULL;

        CHECK(domain_xml_build(&c, &img, NULL, NULL, &plain) == 0);
        CHECK(!domain_xml_has_qtest(plain));
        CHECK(!strstr(plain, "qemu:commandline"));

        with.qtest_socket = "/run/piemu/qtest/b2.sock";
        CHECK(domain_xml_build(&c, &with, NULL, NULL, &xml) == 0);
        CHECK_CONTAINS(xml, "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>");
        CHECK_CONTAINS(xml, "<qemu:arg value='-qtest'/>");
        CHECK_CONTAINS(xml, "<qemu:arg value='unix:/run/piemu/qtest/b2.sock,reconnect-ms=1000'/>");
        CHECK_CONTAINS(xml, "<qemu:arg value='-qtest-log'/>\n    <qemu:arg value='none'/>");
        CHECK(domain_xml_has_qtest(xml));
        CHECK(domain_xml_has_tls_lines(xml));
        CHECK(!domain_xml_runs_piemu_qemu(xml));
        CHECK(!strstr(xml, "qemu:env"));

        /* piemu's own QEMU: said in QEMU's environment, for the wrapper; only along with qtest. */
        with.piemu_qemu = true;
        free(xml);
        xml = NULL;
        CHECK(domain_xml_build(&c, &with, NULL, NULL, &xml) == 0);
        CHECK_CONTAINS(xml, "<qemu:env name='PIEMU_QEMU' value='piemu'/>\n  </qemu:commandline>");
        CHECK(domain_xml_runs_piemu_qemu(xml));
        CHECK(domain_xml_has_qtest(xml));
        free(plain);
        plain = NULL;
        ImagePaths no_qtest = img;
        no_qtest.piemu_qemu = true;
        CHECK(domain_xml_build(&c, &no_qtest, NULL, NULL, &plain) == 0);
        CHECK(!domain_xml_runs_piemu_qemu(plain) && !strstr(plain, "qemu:env"));
        CHECK(!domain_xml_runs_piemu_qemu("<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
                                          "<qemu:commandline><qemu:env name='PIEMU_QEMU' value='x'/>"
                                          "<qemu:arg value='piemu'/></qemu:commandline></domain>"));
        with.piemu_qemu = false;

        /* A comma would let the path add chardev options; relative paths are not ours. */
        CHECK(qtest_chardev_arg("/run/x,server=on", &arg) == -EINVAL);
        CHECK(qtest_chardev_arg("run/x", &arg) == -EINVAL);
        CHECK(qtest_chardev_arg(NULL, &arg) == -EINVAL);
        with.qtest_socket = "/run/a,b";
        free(xml);
        xml = NULL;
        CHECK(domain_xml_build(&c, &with, NULL, NULL, &xml) == -EINVAL && !xml);

        /* Only a -qtest argument in libvirt's qemu namespace counts. */
        CHECK(!domain_xml_has_qtest("<domain><commandline><arg value='-qtest'/></commandline></domain>"));
        CHECK(!domain_xml_has_qtest("<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
                                    "<qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>"));
        CHECK(!domain_xml_has_qtest("<domain"));
        CHECK(!domain_xml_has_qtest(NULL));
}

static void test_image_meta(void) {
        _cleanup_free_ char *d = NULL, *c = NULL;
        uint8_t qcow[32] = {'Q', 'F', 'I', 0xfb};
        uint64_t size = 0;

        _cleanup_free_ char *m = NULL, *m2 = NULL;
        CHECK(image_meta_parse(
                      "# comment\ndescription=Debian arm64\ncmdline=console=ttyAMA0 a=b\nfuture=1\n", &d, &c,
                      &m) == 0);
        CHECK_STREQ(d, "Debian arm64");
        CHECK_STREQ(c, "console=ttyAMA0 a=b");
        CHECK_STREQ(m, "raspi3b"); /* no models=: an image from before other models */
        free(d);
        free(c);
        d = c = NULL;
        CHECK(image_meta_parse("models=raspi3b raspi3ap raspi4b\n", &d, &c, &m2) == 0);
        CHECK(image_models_include(m2, "raspi4b") && image_models_include(m2, "raspi3b"));
        CHECK(!image_models_include(m2, "raspi3") && !image_models_include(m2, "raspi2b") &&
              !image_models_include(m2, ""));
        free(d);
        free(c);
        d = c = NULL;
        CHECK(image_meta_parse("models=../x\n", &d, &c, &m2) == -EINVAL);
        CHECK(image_meta_parse("", &d, &c, NULL) == 0);
        CHECK_STREQ(d, "");
        free(d);
        free(c);
        d = c = NULL;
        CHECK(image_meta_parse("cmdline=a\x01\n", &d, &c, NULL) == -EINVAL);
        qcow[31] = 0x40;
        qcow[30] = 0x00;
        qcow[29] = 0x00;
        qcow[28] = 0x04; /* bytes 24..31 big-endian: 0x04000040 */
        CHECK(image_qcow2_size(qcow, sizeof qcow, &size) == 0 && size == 0x04000040ULL);
        CHECK(image_qcow2_size((const uint8_t *)"raw data raw data raw data raw data", 32, &size) ==
              -EINVAL);
}

/* Each of `bad`, inside an otherwise valid <board>, makes the whole element invalid. */
static void check_bad_metadata(const char *const *bad, size_t n) {
        for (size_t i = 0; i < n; i++) {
                BoardConfig back = {};
                char *element = NULL;

                CHECK(asprintf(&element,
                               "<board><name>a</name><image>default</image><owner>1</owner>%s</board>",
                               bad[i]) > 0);
                if (metadata_xml_parse(element, &back) >= 0) {
                        fprintf(stderr, "accepted: %s\n", bad[i]);
                        CHECK(false);
                }
                free(element);
        }
}

/* Wires live in the board's metadata and come back from it; damaged ones spoil the whole element. */
static void test_wires_metadata(void) {
        BoardConfig c =
                            {
                                    .name = (char *)"a",
                                    .image = (char *)"default",
                                    .owner = 1000,
                            },
                    back = {}, copy = {};
        char *meta = NULL, *element = NULL;

        CHECK(board_config_add_wire(&c, 23, "b", 17) == 0);
        CHECK(board_config_add_wire(&c, 23, "c-1", 0) == 0);
        CHECK(board_config_add_wire(&c, 4, "a", 53) == 0);
        CHECK(board_config_add_wire(&c, 4, "../x", 53) == -EINVAL);
        CHECK(c.n_wires == 3);
        CHECK(metadata_xml_build(&c, &meta) == 0);
        CHECK_CONTAINS(meta, "<wire from-pin='23' to-board='b' to-pin='17'/>");
        CHECK(asprintf(&element, "<board>%s</board>", meta) > 0);
        CHECK(metadata_xml_parse(element, &back) == 0);
        CHECK(back.n_wires == 3);
        CHECK(back.wires[1].from_pin == 23 && back.wires[1].to_pin == 0);
        CHECK_STREQ(back.wires[1].to_board, "c-1");
        CHECK(board_config_copy(&back, &copy) == 0);
        CHECK(copy.n_wires == 3 && copy.wires[2].to_pin == 53 &&
              copy.wires[2].to_board != back.wires[2].to_board);
        board_config_remove_wire(&copy, 0);
        CHECK(copy.n_wires == 2 && copy.wires[0].from_pin == 23 && copy.wires[0].to_pin == 0);
        board_config_done(&copy);
        board_config_done(&back);
        free(element);
        free(meta);
        /* c's strings are literals: free only the wires. */
        while (c.n_wires > 0)
                board_config_remove_wire(&c, 0);
        free(c.wires);

        const char *bad[] = {
                "<wire from-pin='54' to-board='b' to-pin='1'/>",
                "<wire from-pin='1' to-board='b' to-pin='-1'/>",
                "<wire from-pin='1' to-board='../b' to-pin='1'/>",
                "<wire from-pin='1' to-pin='1'/>",
                "<wire to-board='b' to-pin='1'/>",
                "<wire from-pin='x' to-board='b' to-pin='1'/>",
        };
        check_bad_metadata(bad, ELEMENTSOF(bad));
}

/* I2C devices: in the metadata, and as QEMU -device arguments in the domain (with the qemu namespace
 * even without qtest). */
static void test_i2c_config(void) {
        BoardConfig c =
                            {
                                    .name = (char *)"s",
                                    .image = (char *)"default",
                                    .owner = 1000,
                            },
                    back = {};
        char *xml = NULL, *element = NULL;

        CHECK(board_config_add_i2c(&c, "tmp105", 0x48) == 0);
        CHECK(board_config_add_i2c(&c, "ds1338", 0x68) == 0);
        CHECK(board_config_add_i2c(&c, "tmp421", 0x48) == -EEXIST);
        CHECK(board_config_add_i2c(&c, "at24c-eeprom", 0x50) == -EINVAL);
        CHECK(board_config_add_i2c(&c, "tmp105", 0x78) == -EINVAL);
        CHECK(board_config_find_i2c(&c, 0x68) && !board_config_find_i2c(&c, 0x69));
        CHECK(domain_xml_build(&c, &img, NULL, NULL, &xml) == 0);
        CHECK_CONTAINS(xml, "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'");
        CHECK_CONTAINS(xml,
                       "<qemu:arg value='-device'/>\n    <qemu:arg value='tmp105,bus=i2c-bus.1,address=0x48,"
                       "id=piemu-i2c-48'/>");
        CHECK_CONTAINS(xml, "<qemu:arg value='ds1338,bus=i2c-bus.1,address=0x68,id=piemu-i2c-68'/>");
        CHECK_CONTAINS(xml, "<i2c device='tmp105' address='72'/>");
        CHECK(!domain_xml_has_qtest(xml));
        const char *from = strstr(xml, "<piemu:board"), *to = strstr(xml, "</piemu:board>");
        CHECK(from && to);
        element = strndup(from, (size_t)(to - from) + strlen("</piemu:board>"));
        CHECK(element);
        CHECK(metadata_xml_parse(element, &back) == 0);
        CHECK(back.n_i2c == 2 && back.i2c[0].address == 0x48 && back.i2c[1].address == 0x68);
        CHECK_STREQ(back.i2c[1].model, "ds1338");
        board_config_done(&back);
        free(element);
        free(xml);
        for (size_t i = 0; i < c.n_i2c; i++)
                free(c.i2c[i].model);
        free(c.i2c);

        const char *bad[] = {
                "<i2c device='pca9552' address='96'/>",
                "<i2c device='tmp105' address='7'/>",
                "<i2c device='tmp105' address='200'/>",
                "<i2c address='72'/>",
                "<i2c device='tmp105' address='72'/><i2c device='tmp421' address='72'/>",
        };
        check_bad_metadata(bad, ELEMENTSOF(bad));
}

int main(void) {
        test_domain_xml();
        test_i2c_config();
        test_wires_metadata();
        test_metadata_parse_bad();
        test_volume_and_pool();
        test_capacity();
        test_names();
        test_cmdline();
        test_tls_lines();
        test_qtest();
        test_image_meta();
        printf("test-board-config: ok\n");
        return 0;
}
