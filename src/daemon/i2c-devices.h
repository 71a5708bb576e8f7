/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The I2C devices piemu lets users put on a board's header bus: which of QEMU's models (only small,
 * self-contained sensor and clock models, listed here), at which address, and which of their
 * properties SetSensor may change within which range. Pure: parsing, checking and the strings handed
 * to QEMU. */

#include <stddef.h>
#include <stdint.h>

#define I2C_ADDRESS_MIN 0x08 /* 0x00-0x07 and 0x78-0x7f are reserved by the I2C specification */
#define I2C_ADDRESS_MAX 0x77
#define I2C_DEVICES_MAX 16 /* per board */

typedef struct I2cProperty {
        const char *name;
        int64_t min, max; /* inclusive */
        const char *unit;
} I2cProperty;

typedef struct I2cModel {
        const char *name; /* QEMU's device name */
        const char *what;
        const I2cProperty *properties;
        size_t n_properties;
} I2cModel;

const I2cModel *i2c_model_find(const char *name);
/* "tmp105, tmp421, ds1338": for error messages. Static storage. */
const char *i2c_model_names(void);
const I2cProperty *i2c_property_find(const I2cModel *m, const char *name);

/* "DEVICE@ADDRESS" (address 0x08-0x77, hexadecimal with 0x or decimal): -EINVAL for a malformed entry
 * or a bad address, -ENOENT for a device piemu does not offer. */
int i2c_spec_parse(const char *spec, const I2cModel **ret_model, uint8_t *ret_address);

/* QEMU's -device argument for the device on the header bus (raspi3b's i2c-bus.1, the guest's i2c-1),
 * with an id that names its address, and the QOM path of that id. */
int i2c_device_arg(const I2cModel *m, uint8_t address, char **ret);
int i2c_qom_path(uint8_t address, char **ret);
/* The QMP command setting an integer property of the device at address. */
int i2c_qom_set_command(uint8_t address, const char *property, int64_t value, char **ret);
