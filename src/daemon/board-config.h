/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "qemu-flavor.h"

#define PIEMU_DOMAIN_PREFIX   "piemu-"
#define PIEMU_POOL_NAME       "piemu"
#define PIEMU_METADATA_URI    "https://piemu.org/xmlns/board/1"
#define PIEMU_METADATA_PREFIX "piemu"
#define PIEMU_DEFAULT_MODEL   "raspi3b"
#define QEMU_XML_NS           "http://libvirt.org/schemas/domain/qemu/1.0"
/* QEMU dials the qtest socket again this soon after losing it (piemud restarted). */
#define QTEST_RECONNECT_MS 1000u

/* A wire from one of this board's pins to a pin of another board (or of this one): piemud drives
 * to_pin with from_pin's level. Kept with the board it starts from. */
typedef struct BoardWire {
        unsigned from_pin;
        char *to_board;
        unsigned to_pin;
} BoardWire;

/* A QEMU I2C device on the header bus (i2c-devices.h lists the models). */
typedef struct BoardI2c {
        char *model;
        uint8_t address;
} BoardI2c;

/* More than a 40-pin header can sensibly fan out: a bound on what metadata may make us allocate. */
#define BOARD_WIRES_MAX 256

/* Everything piemu needs to know about a board. It lives in the libvirt domain's
 * <metadata>, so libvirt stays the only registry; this struct is what that XML
 * element round-trips through. */
typedef struct BoardConfig {
        char *name;
        char *image;
        char *model;
        char *cmdline; /* extra kernel arguments the user asked for */
        uid_t owner;
        bool persistent;
        uint16_t serial_port;
        uint16_t gpio_port;
        BoardWire *wires; /* outgoing wires */
        size_t n_wires;
        BoardI2c *i2c; /* devices on the header's I2C bus, fixed at CreateBoard */
        size_t n_i2c;
} BoardConfig;

/* Files of a catalog image, resolved by the caller. */
typedef struct ImagePaths {
        const char *kernel;
        const char *dtb;
        const char *initrd; /* may be NULL */
        const char *sd;
        const char *sd_format; /* "raw" or "qcow2" */
        const char *cmdline;   /* the image's own kernel arguments */
        /* piemud's listening socket for QEMU's qtest channel (GPIO with no agent in the guest), or
         * NULL: the board then has GPIO only through a shim in the guest. */
        const char *qtest_socket;
        /* With qtest_socket: piemu's own QEMU runs the board (PIEMU_QEMU_ENV in its environment, which
         * piemu's QEMU wrapper reads). */
        bool piemu_qemu;
} ImagePaths;

void board_config_done(BoardConfig *c);
int board_config_copy(const BoardConfig *src, BoardConfig *dst);
/* Appends a copy of the wire; -E2BIG past BOARD_WIRES_MAX. */
int board_config_add_wire(BoardConfig *c, unsigned from_pin, const char *to_board, unsigned to_pin);
/* Appends an I2C device: -EINVAL for a model piemu does not offer or a bad address, -EEXIST for an
 * address in use, -E2BIG past I2C_DEVICES_MAX. */
int board_config_add_i2c(BoardConfig *c, const char *model, uint8_t address);
const BoardI2c *board_config_find_i2c(const BoardConfig *c, uint8_t address);
/* Removes wire i (order kept). */
void board_config_remove_wire(BoardConfig *c, size_t i);

/* Pure builders: return 0 and a malloc'd string, or negative errno. */
/* uuid: the domain's UUID when it exists already (libvirt refuses a redefinition without it), or NULL.
 * emulator: the QEMU binary libvirt should run (piemu's single-threaded TCG wrapper), or NULL for
 * libvirt's own choice. */
int domain_xml_build(const BoardConfig *c, const ImagePaths *img, const char *uuid, const char *emulator,
                     char **ret);
/* The children of piemu's metadata element (the caller wraps them in its namespaced element). */
int metadata_xml_build(const BoardConfig *c, char **ret);
int metadata_xml_parse(const char *xml, BoardConfig *ret);
int volume_xml_build(const char *vol_name, uint64_t capacity, const char *backing_path,
                     const char *backing_format, char **ret);
int pool_xml_build(const char *name, const char *path, char **ret);
/* The image's kernel arguments, then `earlycon` (the model's console; NULL: none) unless an earlycon is
 * given already, iomem=relaxed (for the shim) unless given, then the user's `extra`. */
int kernel_cmdline_build(const char *image_cmdline, const char *earlycon, const char *extra, char **ret);

/* The SD card of raspi3b must be a power of two in size. */
uint64_t sd_capacity_for(uint64_t backing_size);

int board_domain_name(const char *board, char **ret);
/* Returns the board name for a domain name "piemu-<name>", or NULL if not ours. */
const char *board_name_from_domain(const char *domain);
int board_volume_name(const char *board, char **ret);

/* True if a live domain XML has piemu's TLS lines (QEMU dials piemud), false for the plain TCP
 * listeners of boards started by an older piemu. */
bool domain_xml_has_tls_lines(const char *xml);
/* Pure: true if the domain XML gives QEMU a qtest channel (piemu's agentless GPIO path). */
bool domain_xml_has_qtest(const char *xml);
/* Whether the domain runs piemu's own QEMU (PIEMU_QEMU_ENV=PIEMU_QEMU_ENV_OWN in <qemu:commandline>). */
bool domain_xml_runs_piemu_qemu(const char *xml);
/* The -qtest argument that makes QEMU dial `socket_path` (and dial again after piemud restarts). */
int qtest_chardev_arg(const char *socket_path, char **ret);
