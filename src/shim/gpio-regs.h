/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The BCM2837 GPIO register block, and nothing else: everything that touches the hardware (or
 * QEMU's model of it) goes through here, so the shim's logic can run against fake registers. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BCM2837_GPIO_PHYS 0x3F200000u /* BCM2836/7: Pi 2 and 3 */
#define BCM2835_GPIO_PHYS 0x20200000u /* Pi Zero and 1 */
#define BCM2711_GPIO_PHYS 0xFE200000u /* Pi 4 */
#define DT_COMPATIBLE     "/sys/firmware/devicetree/base/compatible"
#define GPIO_REGS_SIZE    0xB4u

/* byte offsets */
#define GPIO_REG_GPFSEL0 0x00u /* 3 bits per pin, 10 pins per register, up to GPFSEL5 at 0x14 */
#define GPIO_REG_GPSET0  0x1Cu /* write 1 to drive pins 0-31 high */
#define GPIO_REG_GPSET1  0x20u /* pins 32-53 */
#define GPIO_REG_GPCLR0  0x28u /* write 1 to drive pins 0-31 low */
#define GPIO_REG_GPCLR1  0x2Cu
#define GPIO_REG_GPLEV0  0x34u /* levels of pins 0-31 */
#define GPIO_REG_GPLEV1  0x38u /* levels of pins 32-53 */

#define GPIO_FSEL_INPUT  0u
#define GPIO_FSEL_OUTPUT 1u

typedef struct {
        volatile uint32_t *base; /* GPIO_REGS_SIZE bytes of registers */
        void *map;               /* what to munmap, NULL for fake registers */
        size_t map_size;
        /* Fake registers have no hardware behind them: make GPSET/GPCLR writes show up in GPLEV,
         * as QEMU's bcm2835_gpio model does, so tests see what a guest would see. */
        bool fake;
} GpioRegs;

/* Maps the real block: /dev/gpiomem if the kernel offers it (Raspberry Pi kernels; no root
 * needed beyond the gpio group), else /dev/mem at BCM2837_GPIO_PHYS (mainline kernels need
 * iomem=relaxed for that, because pinctrl-bcm2835 has claimed the region). On success *ret_path
 * (if given) names the device used. Returns 0 or a negative errno. */
int gpio_regs_open(GpioRegs *r, const char **ret_path);
/* Pure: the GPIO block's physical address for the board's device-tree "compatible" list
 * (NUL-separated strings, `size` bytes): by SoC, BCM2837's when nothing says otherwise. */
uint32_t gpio_regs_phys_for(const char *compatible, size_t size);
void gpio_regs_close(GpioRegs *r);

/* words must hold GPIO_REGS_SIZE / 4 entries and outlive r. */
void gpio_regs_init_fake(GpioRegs *r, uint32_t *words);

/* All 54 levels, pin N = bit N. */
uint64_t gpio_regs_read_levels(const GpioRegs *r);
bool gpio_regs_get_level(const GpioRegs *r, unsigned pin);
/* GPSET/GPCLR for one pin; does not change its function. pin must be < 54. */
void gpio_regs_write_level(GpioRegs *r, unsigned pin, bool value);
unsigned gpio_regs_get_function(const GpioRegs *r, unsigned pin);
void gpio_regs_set_function(GpioRegs *r, unsigned pin, unsigned fsel);
