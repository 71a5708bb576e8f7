/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpio-regs.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpio-proto.h"
#include "macro.h"

/* Bits 32-53 live in the second register of each pair. */
#define PINS_IN_REG1_MASK ((UINT32_C(1) << (GPIO_PROTO_NPINS - 32)) - 1)

static volatile uint32_t *reg(const GpioRegs *r, unsigned offset) {
        return r->base + offset / 4;
}

static int map_device(GpioRegs *r, const char *path, off_t offset) {
        _cleanup_close_ int fd = -EBADF;
        long page = sysconf(_SC_PAGESIZE);
        size_t size;
        void *p;

        /* O_SYNC makes /dev/mem hand out an uncached mapping, as registers need. */
        fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();

        size = page > 0 && (size_t)page > GPIO_REGS_SIZE ? (size_t)page : GPIO_REGS_SIZE;
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
        if (p == MAP_FAILED)
                return negative_errno();

        /* The mapping keeps the device open; the fd is not needed any more. */
        r->map = p;
        r->map_size = size;
        r->base = p;
        r->fake = false;
        return 0;
}

static bool names(const char *s, size_t n, const char *what) {
        return n == strlen(what) && memcmp(s, what, n) == 0;
}

uint32_t gpio_regs_phys_for(const char *compatible, size_t size) {
        bool bcm2711 = false, bcm2836_7 = false, bcm2835 = false;

        for (size_t i = 0; i < size;) {
                const char *s = compatible + i;
                size_t n = strnlen(s, size - i);

                bcm2711 = bcm2711 || names(s, n, "brcm,bcm2711");
                bcm2836_7 = bcm2836_7 || names(s, n, "brcm,bcm2836") || names(s, n, "brcm,bcm2837");
                bcm2835 = bcm2835 || names(s, n, "brcm,bcm2835");
                i += n + 1;
        }
        /* A later SoC's tree may name bcm2835 as well (the family): the latest one named counts. */
        if (bcm2711)
                return BCM2711_GPIO_PHYS;
        if (bcm2836_7)
                return BCM2837_GPIO_PHYS;
        return bcm2835 ? BCM2835_GPIO_PHYS : BCM2837_GPIO_PHYS;
}

/* Which board this is, from the device tree the kernel booted with. */
static uint32_t board_gpio_phys(void) {
        char buf[512];
        _cleanup_close_ int fd = open(DT_COMPATIBLE, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

        return n > 0 ? gpio_regs_phys_for(buf, (size_t)n) : BCM2837_GPIO_PHYS;
}

int gpio_regs_open(GpioRegs *r, const char **ret_path) {
        int r1, r2;

        memset(r, 0, sizeof(*r));

        /* /dev/gpiomem maps exactly the GPIO block at offset 0. */
        r1 = map_device(r, "/dev/gpiomem", 0);
        if (r1 >= 0) {
                if (ret_path)
                        *ret_path = "/dev/gpiomem";
                return 0;
        }

        r2 = map_device(r, "/dev/mem", (off_t)board_gpio_phys());
        if (r2 >= 0) {
                if (ret_path)
                        *ret_path = "/dev/mem";
                return 0;
        }

        /* The /dev/mem error is the interesting one when gpiomem simply does not exist. */
        return r1 == -ENOENT ? r2 : r1;
}

void gpio_regs_close(GpioRegs *r) {
        if (r->map)
                (void)munmap(r->map, r->map_size);
        memset(r, 0, sizeof(*r));
}

void gpio_regs_init_fake(GpioRegs *r, uint32_t *words) {
        memset(r, 0, sizeof(*r));
        r->base = words;
        r->fake = true;
}

uint64_t gpio_regs_read_levels(const GpioRegs *r) {
        uint64_t lo = *reg(r, GPIO_REG_GPLEV0);
        uint64_t hi = *reg(r, GPIO_REG_GPLEV1) & PINS_IN_REG1_MASK;

        return lo | hi << 32;
}

bool gpio_regs_get_level(const GpioRegs *r, unsigned pin) {
        return (gpio_regs_read_levels(r) >> pin) & 1;
}

void gpio_regs_write_level(GpioRegs *r, unsigned pin, bool value) {
        unsigned bank = pin / 32;
        uint32_t bit = UINT32_C(1) << (pin % 32);

        if (pin >= GPIO_PROTO_NPINS)
                return;

        /* GPSET/GPCLR are write-1-to-act: writing the single bit leaves every other pin alone
         * without a read-modify-write race against the kernel or other programs. */
        *reg(r, (value ? GPIO_REG_GPSET0 : GPIO_REG_GPCLR0) + 4 * bank) = bit;

        if (r->fake) {
                volatile uint32_t *lev = reg(r, GPIO_REG_GPLEV0 + 4 * bank);
                *lev = value ? (*lev | bit) : (*lev & ~bit);
        }
}

unsigned gpio_regs_get_function(const GpioRegs *r, unsigned pin) {
        if (pin >= GPIO_PROTO_NPINS)
                return 0;
        return (*reg(r, GPIO_REG_GPFSEL0 + 4 * (pin / 10)) >> (3 * (pin % 10))) & 7;
}

void gpio_regs_set_function(GpioRegs *r, unsigned pin, unsigned fsel) {
        volatile uint32_t *f;
        unsigned shift = 3 * (pin % 10);

        if (pin >= GPIO_PROTO_NPINS)
                return;
        /* GPFSEL has no set/clear twins, so this is a read-modify-write; it runs only from the
         * one-shot "set" command, never concurrently with itself. */
        f = reg(r, GPIO_REG_GPFSEL0 + 4 * (pin / 10));
        *f = (*f & ~(UINT32_C(7) << shift)) | ((uint32_t)(fsel & 7) << shift);
}
