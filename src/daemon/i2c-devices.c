/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "i2c-devices.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* Ranges are QEMU's own (a value outside is refused by QEMU with a less helpful message). */
static const I2cProperty tmp105_properties[] = {
        {"temperature", -128000, 127999, "m°C"},
};
static const I2cProperty tmp421_properties[] = {
        {"temperature0", -40000, 127000, "m°C"},
        {"temperature1", -40000, 127000, "m°C"},
        {"temperature2", -40000, 127000, "m°C"},
        {"temperature3", -40000, 127000, "m°C"},
};

static const I2cModel models[] = {
        {"tmp105", "TI TMP105 temperature sensor (Linux: lm75)", tmp105_properties,
         ELEMENTSOF(tmp105_properties)},
        {"tmp421", "TI TMP421 temperature sensor (Linux: tmp421)", tmp421_properties,
         ELEMENTSOF(tmp421_properties)},
        {"ds1338", "Maxim DS1338 real-time clock (Linux: rtc-ds1307)", NULL, 0},
};

const I2cModel *i2c_model_find(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(models); i++)
                if (streq(models[i].name, name))
                        return &models[i];
        return NULL;
}

const char *i2c_model_names(void) {
        return "tmp105, tmp421, ds1338";
}

const I2cProperty *i2c_property_find(const I2cModel *m, const char *name) {
        for (size_t i = 0; m && name && i < m->n_properties; i++)
                if (streq(m->properties[i].name, name))
                        return &m->properties[i];
        return NULL;
}

static int parse_address(const char *s, uint8_t *ret) {
        unsigned v = 0, base = 10;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                s += 2;
        }
        if (!*s || strlen(s) > 3)
                return -EINVAL;
        for (; *s; s++) {
                unsigned d;
                if (*s >= '0' && *s <= '9')
                        d = (unsigned)(*s - '0');
                else if (base == 16 && *s >= 'a' && *s <= 'f')
                        d = (unsigned)(*s - 'a' + 10);
                else if (base == 16 && *s >= 'A' && *s <= 'F')
                        d = (unsigned)(*s - 'A' + 10);
                else
                        return -EINVAL;
                v = v * base + d;
        }
        if (v < I2C_ADDRESS_MIN || v > I2C_ADDRESS_MAX)
                return -EINVAL;
        *ret = (uint8_t)v;
        return 0;
}

int i2c_spec_parse(const char *spec, const I2cModel **ret_model, uint8_t *ret_address) {
        char name[32];
        const char *at;
        const I2cModel *m;
        uint8_t address;

        if (!spec)
                return -EINVAL;
        at = strchr(spec, '@');
        if (!at || at == spec || (size_t)(at - spec) >= sizeof name)
                return -EINVAL;
        memcpy(name, spec, (size_t)(at - spec));
        name[at - spec] = 0;
        if (parse_address(at + 1, &address) < 0)
                return -EINVAL;
        m = i2c_model_find(name);
        if (!m)
                return -ENOENT;
        *ret_model = m;
        *ret_address = address;
        return 0;
}

int i2c_device_arg(const I2cModel *m, uint8_t address, char **ret) {
        if (!m || address < I2C_ADDRESS_MIN || address > I2C_ADDRESS_MAX)
                return -EINVAL;
        return asprintf(ret, "%s,bus=i2c-bus.1,address=0x%02x,id=piemu-i2c-%02x", m->name, address,
                        address) < 0
                       ? -ENOMEM
                       : 0;
}

int i2c_qom_path(uint8_t address, char **ret) {
        if (address < I2C_ADDRESS_MIN || address > I2C_ADDRESS_MAX)
                return -EINVAL;
        return asprintf(ret, "/machine/peripheral/piemu-i2c-%02x", address) < 0 ? -ENOMEM : 0;
}

int i2c_qom_set_command(uint8_t address, const char *property, int64_t value, char **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        /* The property name goes into JSON unescaped: only names from the table (letters, digits). */
        if (!property || !*property ||
            strspn(property, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(property))
                return -EINVAL;
        r = i2c_qom_path(address, &path);
        if (r < 0)
                return r;
        return asprintf(ret,
                        "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"%s\",\"property\":\"%s\","
                        "\"value\":%" PRId64 "}}",
                        path, property, value) < 0
                       ? -ENOMEM
                       : 0;
}
