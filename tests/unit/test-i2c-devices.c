/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What CreateBoard's i2c option accepts and what goes to QEMU. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "i2c-devices.h"
#include "tests.h"

int main(void) {
        const I2cModel *m = NULL;
        uint8_t a = 0;
        char *s = NULL;

        CHECK(i2c_spec_parse("tmp105@0x48", &m, &a) == 0);
        CHECK_STREQ(m->name, "tmp105");
        CHECK(a == 0x48);
        CHECK(i2c_spec_parse("tmp421@0X4C", &m, &a) == 0 && a == 0x4c);
        CHECK(i2c_spec_parse("ds1338@104", &m, &a) == 0 && a == 0x68 && m->n_properties == 0);
        CHECK(i2c_spec_parse("tmp105@0x08", &m, &a) == 0 && a == 0x08);
        CHECK(i2c_spec_parse("tmp105@0x77", &m, &a) == 0 && a == 0x77);

        const char *bad[] = {
                "tmp105",        "tmp105@",
                "@0x48",         "tmp105@0x07",
                "tmp105@0x78",   "tmp105@0x",
                "tmp105@0x148",  "tmp105@48x",
                "tmp105@-1",     "tmp105@0x4g",
                "tmp105@ 0x48",  "tmp105@0x48 ",
                "tmp105@0x48@1", "a-very-long-device-name-that-is-far-too-long@0x48",
                "tmp105@1000",   NULL,
        };
        for (size_t i = 0; bad[i]; i++)
                if (i2c_spec_parse(bad[i], &m, &a) != -EINVAL) {
                        fprintf(stderr, "accepted: %s\n", bad[i]);
                        CHECK(false);
                }
        CHECK(i2c_spec_parse(NULL, &m, &a) == -EINVAL);
        /* Models piemu does not offer, however real in QEMU. */
        CHECK(i2c_spec_parse("at24c-eeprom@0x50", &m, &a) == -ENOENT);
        CHECK(i2c_spec_parse("pca9552@0x60", &m, &a) == -ENOENT);
        CHECK(i2c_spec_parse("TMP105@0x48", &m, &a) == -ENOENT);

        m = i2c_model_find("tmp105");
        CHECK(m);
        const I2cProperty *p = i2c_property_find(m, "temperature");
        CHECK(p && p->min == -128000 && p->max == 127999);
        CHECK(!i2c_property_find(m, "temperature0"));
        CHECK(!i2c_property_find(i2c_model_find("ds1338"), "time"));
        CHECK(i2c_property_find(i2c_model_find("tmp421"), "temperature3"));

        CHECK(i2c_device_arg(m, 0x48, &s) == 0);
        CHECK_STREQ(s, "tmp105,bus=i2c-bus.1,address=0x48,id=piemu-i2c-48");
        free(s);
        CHECK(i2c_device_arg(m, 0x78, &s) == -EINVAL);
        CHECK(i2c_qom_path(0x4c, &s) == 0);
        CHECK_STREQ(s, "/machine/peripheral/piemu-i2c-4c");
        free(s);
        CHECK(i2c_qom_set_command(0x48, "temperature", -42500, &s) == 0);
        CHECK_STREQ(s,
                    "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral/piemu-i2c-48\","
                    "\"property\":\"temperature\",\"value\":-42500}}");
        free(s);
        CHECK(i2c_qom_set_command(0x48, "temp\",\"x", 1, &s) == -EINVAL);
        CHECK(i2c_qom_set_command(0x48, "", 1, &s) == -EINVAL);
        CHECK_STREQ(i2c_model_names(), "tmp105, tmp421, ds1338");
        return 0;
}
