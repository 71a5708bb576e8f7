/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-config.h"
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "gpio-proto.h"
#include "i2c-devices.h"
#include "macro.h"
#include "names.h"
#include "pi-models.h"
#include "xml-util.h"

static void wires_free(BoardWire *w, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(w[i].to_board);
        free(w);
}

void board_config_done(BoardConfig *c) {
        if (!c)
                return;
        wires_free(c->wires, c->n_wires);
        for (size_t i = 0; i < c->n_i2c; i++)
                free(c->i2c[i].model);
        free(c->i2c);
        free(c->name);
        free(c->image);
        free(c->model);
        free(c->cmdline);
        *c = (BoardConfig){};
}

static int strdup_or_null(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int board_config_copy(const BoardConfig *src, BoardConfig *dst) {
        BoardConfig c = {
                .owner = src->owner,
                .persistent = src->persistent,
                .serial_port = src->serial_port,
                .gpio_port = src->gpio_port,
        };
        if (strdup_or_null(src->name, &c.name) < 0 || strdup_or_null(src->image, &c.image) < 0 ||
            strdup_or_null(src->model, &c.model) < 0 || strdup_or_null(src->cmdline, &c.cmdline) < 0) {
                board_config_done(&c);
                return -ENOMEM;
        }
        for (size_t i = 0; i < src->n_wires; i++)
                if (board_config_add_wire(&c, src->wires[i].from_pin, src->wires[i].to_board,
                                          src->wires[i].to_pin) < 0) {
                        board_config_done(&c);
                        return -ENOMEM;
                }
        for (size_t i = 0; i < src->n_i2c; i++)
                if (board_config_add_i2c(&c, src->i2c[i].model, src->i2c[i].address) < 0) {
                        board_config_done(&c);
                        return -ENOMEM;
                }
        *dst = c;
        return 0;
}

int board_config_add_wire(BoardConfig *c, unsigned from_pin, const char *to_board, unsigned to_pin) {
        BoardWire *n;
        char *t;

        if (!piemu_name_is_valid(to_board))
                return -EINVAL;
        if (c->n_wires >= BOARD_WIRES_MAX)
                return -E2BIG;
        t = strdup(to_board);
        if (!t)
                return -ENOMEM;
        n = realloc(c->wires, (c->n_wires + 1) * sizeof *n);
        if (!n) {
                free(t);
                return -ENOMEM;
        }
        n[c->n_wires++] = (BoardWire){.from_pin = from_pin, .to_board = t, .to_pin = to_pin};
        c->wires = n;
        return 0;
}

const BoardI2c *board_config_find_i2c(const BoardConfig *c, uint8_t address) {
        for (size_t i = 0; i < c->n_i2c; i++)
                if (c->i2c[i].address == address)
                        return &c->i2c[i];
        return NULL;
}

int board_config_add_i2c(BoardConfig *c, const char *model, uint8_t address) {
        BoardI2c *n;
        char *m;

        if (!i2c_model_find(model) || address < I2C_ADDRESS_MIN || address > I2C_ADDRESS_MAX)
                return -EINVAL;
        if (board_config_find_i2c(c, address))
                return -EEXIST;
        if (c->n_i2c >= I2C_DEVICES_MAX)
                return -E2BIG;
        m = strdup(model);
        if (!m)
                return -ENOMEM;
        n = realloc(c->i2c, (c->n_i2c + 1) * sizeof *n);
        if (!n) {
                free(m);
                return -ENOMEM;
        }
        n[c->n_i2c++] = (BoardI2c){.model = m, .address = address};
        c->i2c = n;
        return 0;
}

void board_config_remove_wire(BoardConfig *c, size_t i) {
        assert(i < c->n_wires);
        free(c->wires[i].to_board);
        memmove(c->wires + i, c->wires + i + 1, (c->n_wires - i - 1) * sizeof *c->wires);
        c->n_wires--;
}

/* open_memstream() gives us printf-style building with one error check at the end. */
typedef struct {
        FILE *f;
        char *buf;
        size_t size;
        int r;
} Builder;

static int builder_open(Builder *b) {
        *b = (Builder){};
        b->f = open_memstream(&b->buf, &b->size);
        return b->f ? 0 : -ENOMEM;
}

static void builder_abort(Builder *b) {
        if (b->f)
                fclose(b->f);
        free(b->buf);
        *b = (Builder){};
}

static int builder_finish(Builder *b, char **ret) {
        int r = b->r;
        if (fclose(b->f) != 0 && r >= 0)
                r = -ENOMEM;
        b->f = NULL;
        if (r < 0) {
                builder_abort(b);
                return r;
        }
        *ret = TAKE_PTR(b->buf);
        return 0;
}

/* Adds <tag>escaped</tag>; records the first failure in b->r. */
static void builder_element(Builder *b, const char *indent, const char *tag, const char *value) {
        _cleanup_free_ char *e = NULL;
        int r;

        if (b->r < 0)
                return;
        r = xml_escape(strempty(value), &e);
        if (r < 0) {
                b->r = r;
                return;
        }
        fprintf(b->f, "%s<%s>%s</%s>\n", indent, tag, e, tag);
}

int metadata_xml_build(const BoardConfig *c, char **ret) {
        Builder b;
        char num[32];
        int r;

        if (!c || !piemu_name_is_valid(c->name))
                return -EINVAL;
        r = builder_open(&b);
        if (r < 0)
                return r;
        fprintf(b.f, "\n");
        builder_element(&b, "  ", "name", c->name);
        builder_element(&b, "  ", "image", c->image);
        builder_element(&b, "  ", "model", c->model ?: PIEMU_DEFAULT_MODEL);
        builder_element(&b, "  ", "cmdline", c->cmdline);
        snprintf(num, sizeof num, "%u", (unsigned)c->owner);
        builder_element(&b, "  ", "owner", num);
        builder_element(&b, "  ", "persistent", c->persistent ? "yes" : "no");
        snprintf(num, sizeof num, "%u", (unsigned)c->serial_port);
        builder_element(&b, "  ", "serial-port", num);
        snprintf(num, sizeof num, "%u", (unsigned)c->gpio_port);
        builder_element(&b, "  ", "gpio-port", num);
        for (size_t i = 0; i < c->n_wires && b.r >= 0; i++) {
                /* Board names need no escaping (piemu_name_is_valid), but they are checked here, not
                 * trusted. */
                if (!piemu_name_is_valid(c->wires[i].to_board)) {
                        b.r = -EINVAL;
                        break;
                }
                fprintf(b.f, "  <wire from-pin='%u' to-board='%s' to-pin='%u'/>\n", c->wires[i].from_pin,
                        c->wires[i].to_board, c->wires[i].to_pin);
        }
        for (size_t i = 0; i < c->n_i2c && b.r >= 0; i++) {
                /* Model names come from i2c-devices.c's table: no escaping needed, checked anyway. */
                if (!i2c_model_find(c->i2c[i].model)) {
                        b.r = -EINVAL;
                        break;
                }
                fprintf(b.f, "  <i2c device='%s' address='%u'/>\n", c->i2c[i].model, c->i2c[i].address);
        }
        return builder_finish(&b, ret);
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;
        if (isempty(s))
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (v > (max - (uint64_t)(*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        *ret = v;
        return 0;
}

/* libvirt's XML is read with libxml2 (libvirt's own parser): no network, no DTD, no entity
 * substitution, errors kept quiet (the caller says what failed). */
static xmlDoc *read_xml(const char *xml) {
        size_t n = strlen(xml);
        if (n > INT_MAX)
                return NULL;
        return xmlReadMemory(xml, (int)n, NULL, NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool is_element(const xmlNode *n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

/* The text of `parent`'s first child element called `name`: -ENOENT if there is none. */
static int child_text(const xmlNode *parent, const char *name, char **ret) {
        for (xmlNode *c = parent->children; c; c = c->next)
                if (is_element(c, name)) {
                        xmlChar *t = xmlNodeGetContent(c);
                        char *copy = strdup(t ? (const char *)t : "");
                        xmlFree(t);
                        if (!copy)
                                return -ENOMEM;
                        *ret = copy;
                        return 0;
                }
        return -ENOENT;
}

static const xmlNode *child(const xmlNode *parent, const char *name) {
        for (const xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
                if (is_element(c, name))
                        return c;
        return NULL;
}

static int attr_uint(const xmlNode *n, const char *name, uint64_t max, uint64_t *ret) {
        xmlChar *a = xmlGetProp(n, (const xmlChar *)name);
        int r = a ? parse_uint((const char *)a, max, ret) : -EINVAL;
        xmlFree(a);
        return r;
}

/* <wire from-pin= to-board= to-pin=/>: a wire that does not parse makes the whole metadata invalid
 * (it was written by piemud; anything else is damage, and a half-read board is worse than none). */
static int parse_wires(const xmlNode *root, BoardConfig *c) {
        for (const xmlNode *n = root->children; n; n = n->next) {
                uint64_t from_pin, to_pin;
                xmlChar *to;
                int r;

                if (!is_element(n, "wire"))
                        continue;
                if (attr_uint(n, "from-pin", GPIO_PROTO_NPINS - 1, &from_pin) < 0 ||
                    attr_uint(n, "to-pin", GPIO_PROTO_NPINS - 1, &to_pin) < 0)
                        return -EINVAL;
                to = xmlGetProp(n, (const xmlChar *)"to-board");
                r = to ? board_config_add_wire(c, (unsigned)from_pin, (const char *)to, (unsigned)to_pin)
                       : -EINVAL;
                xmlFree(to);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_i2c(const xmlNode *root, BoardConfig *c) {
        for (const xmlNode *n = root->children; n; n = n->next) {
                uint64_t address;
                xmlChar *model;
                int r;

                if (!is_element(n, "i2c"))
                        continue;
                if (attr_uint(n, "address", I2C_ADDRESS_MAX, &address) < 0)
                        return -EINVAL;
                model = xmlGetProp(n, (const xmlChar *)"device");
                r = model ? board_config_add_i2c(c, (const char *)model, (uint8_t)address) : -EINVAL;
                xmlFree(model);
                if (r < 0)
                        return r == -ENOMEM ? r : -EINVAL;
        }
        return 0;
}

int metadata_xml_parse(const char *xml, BoardConfig *ret) {
        BoardConfig c = {};
        _cleanup_free_ char *owner = NULL, *persistent = NULL, *sport = NULL, *gport = NULL;
        xmlDoc *doc;
        const xmlNode *root;
        uint64_t v;
        int r;

        if (!xml || !ret)
                return -EINVAL;
        doc = read_xml(xml);
        root = doc ? xmlDocGetRootElement(doc) : NULL;
        /* The element libvirt hands back is piemu's <board> (prefixed or not: the name is local). */
        if (!is_element(root, "board")) {
                r = -EINVAL;
                goto fail;
        }
        r = child_text(root, "name", &c.name);
        if (r < 0)
                goto fail;
        r = child_text(root, "image", &c.image);
        if (r < 0)
                goto fail;
        r = child_text(root, "owner", &owner);
        if (r < 0)
                goto fail;
        r = child_text(root, "model", &c.model);
        if (r == -ENOENT) {
                c.model = strdup(PIEMU_DEFAULT_MODEL);
                r = c.model ? 0 : -ENOMEM;
        }
        if (r < 0)
                goto fail;
        r = child_text(root, "cmdline", &c.cmdline);
        if (r == -ENOENT)
                r = 0;
        if (r < 0)
                goto fail;
        r = -EINVAL;
        if (!piemu_name_is_valid(c.name) || !piemu_name_is_valid(c.image))
                goto fail;
        r = parse_uint(owner, UINT32_MAX - 1, &v);
        if (r < 0)
                goto fail;
        c.owner = (uid_t)v;
        if (child_text(root, "persistent", &persistent) >= 0)
                c.persistent = streq(persistent, "yes");
        if (child_text(root, "serial-port", &sport) >= 0 && parse_uint(sport, UINT16_MAX, &v) >= 0)
                c.serial_port = (uint16_t)v;
        if (child_text(root, "gpio-port", &gport) >= 0 && parse_uint(gport, UINT16_MAX, &v) >= 0)
                c.gpio_port = (uint16_t)v;
        r = parse_wires(root, &c);
        if (r < 0)
                goto fail;
        r = parse_i2c(root, &c);
        if (r < 0)
                goto fail;
        xmlFreeDoc(doc);
        *ret = c;
        return 0;
fail:
        xmlFreeDoc(doc);
        board_config_done(&c);
        return r;
}

int kernel_cmdline_build(const char *image_cmdline, const char *earlycon, const char *extra, char **ret) {
        const char *parts[4] = {strempty(image_cmdline), NULL, NULL, strempty(extra)};
        size_t n = 0;
        char *s, *p;

        /* The model's console from the kernel's first line on, unless the image says otherwise. */
        if (!strstr(parts[0], "earlycon") && !strstr(parts[3], "earlycon"))
                parts[1] = earlycon;
        /* The shim maps the GPIO block through /dev/mem when the kernel has no /dev/gpiomem,
         * which mainline kernels only allow with iomem=relaxed. */
        if (!strstr(parts[0], "iomem=relaxed") && !strstr(parts[3], "iomem=relaxed"))
                parts[2] = "iomem=relaxed";
        for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                n += strlen(strempty(parts[i])) + 1;
        s = p = malloc(n + 1);
        if (!s)
                return -ENOMEM;
        *p = 0;
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                if (isempty(parts[i]))
                        continue;
                if (p != s)
                        *p++ = ' ';
                p = stpcpy(p, parts[i]);
        }
        *ret = s;
        return 0;
}

int qtest_chardev_arg(const char *socket_path, char **ret) {
        char *s;

        /* A path with a comma would be split into options by QEMU's parser. */
        if (!socket_path || socket_path[0] != '/' || strpbrk(socket_path, ",=\n"))
                return -EINVAL;
        if (asprintf(&s, "unix:%s,reconnect-ms=%u", socket_path, QTEST_RECONNECT_MS) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* What a domain's XML takes from outside the model table, each checked and escaped for XML. */
typedef struct DomainStrings {
        char *domain;  /* the libvirt domain's name */
        char *meta;    /* piemu's metadata element, XML already */
        char *overlay; /* the SD card's overlay: a file in piemu's pool */
        char *sd;      /* the image's SD card, the overlay's backing file */
        char *kernel;
        char *dtb;
        char *initrd;   /* or NULL */
        char *cmdline;  /* the whole kernel command line */
        char *emulator; /* or NULL: libvirt's default */
        char *qtest;    /* QEMU's -qtest argument, or NULL */
} DomainStrings;

static void domain_strings_done(DomainStrings *s) {
        free(s->domain);
        free(s->meta);
        free(s->overlay);
        free(s->sd);
        free(s->kernel);
        free(s->dtb);
        free(s->initrd);
        free(s->cmdline);
        free(s->emulator);
        free(s->qtest);
}

static int domain_strings_prepare(const BoardConfig *c, const ImagePaths *img, const PiModel *model,
                                  const char *emulator, DomainStrings *s) {
        _cleanup_free_ char *vol = NULL, *overlay = NULL, *cmdline = NULL, *qtest = NULL;
        char earlycon[64];
        int r;

        /* The PL011 (ttyAMA0, QEMU's serial0) at the model's address. */
        snprintf(earlycon, sizeof earlycon, "earlycon=pl011,mmio32,0x%" PRIx64,
                 model->periph_base + PI_MODEL_PL011_OFFSET);
        r = board_domain_name(c->name, &s->domain);
        if (r < 0)
                return r;
        r = board_volume_name(c->name, &vol);
        if (r < 0)
                return r;
        /* The overlay is a volume of piemu's pool (created and deleted through the pool), and the
         * pool is a directory: the volume's file is PIEMU_POOL_DIR/<volume>. */
        if (asprintf(&overlay, "%s/%s", PIEMU_POOL_DIR, vol) < 0)
                return -ENOMEM;
        if ((r = xml_escape(overlay, &s->overlay)) < 0 || (r = xml_escape(img->sd, &s->sd)) < 0)
                return r;
        r = metadata_xml_build(c, &s->meta);
        if (r < 0)
                return r;
        r = kernel_cmdline_build(img->cmdline, earlycon, c->cmdline, &cmdline);
        if (r < 0)
                return r;
        if ((r = xml_escape(img->kernel, &s->kernel)) < 0 || (r = xml_escape(img->dtb, &s->dtb)) < 0 ||
            (r = xml_escape(cmdline, &s->cmdline)) < 0)
                return r;
        if (img->initrd && (r = xml_escape(img->initrd, &s->initrd)) < 0)
                return r;
        if (emulator && (emulator[0] != '/' || (r = xml_escape(emulator, &s->emulator)) < 0))
                return r < 0 ? r : -EINVAL;

        if (img->qtest_socket && ((r = qtest_chardev_arg(img->qtest_socket, &qtest)) < 0 ||
                                  (r = xml_escape(qtest, &s->qtest)) < 0))
                return r;
        return 0;
}

/* From <domain> to the opening of <devices>: identity, metadata, the model's fixed hardware, and how
 * the kernel boots. */
static void domain_xml_write_head(Builder *b, const BoardConfig *c, const PiModel *model, const char *uuid,
                                  const DomainStrings *s) {
        if (s->qtest || c->n_i2c > 0)
                fprintf(b->f, "<domain type='qemu' xmlns:qemu='%s'>\n", QEMU_XML_NS);
        else
                fprintf(b->f, "<domain type='qemu'>\n");
        if (uuid)
                fprintf(b->f, "  <uuid>%s</uuid>\n", uuid);
        /* Fixed hardware: QEMU accepts only the model's own RAM size and CPU count. Every model runs
         * under qemu-system-aarch64, which has the 32-bit machines too. */
        fprintf(b->f,
                "  <name>%s</name>\n"
                "  <title>piemu board %s</title>\n"
                "  <metadata>\n"
                "    <%s:board xmlns:%s='%s'>%s</%s:board>\n"
                "  </metadata>\n"
                "  <memory unit='MiB'>%u</memory>\n"
                "  <vcpu>%u</vcpu>\n"
                "  <os>\n"
                "    <type arch='aarch64' machine='%s'>hvm</type>\n"
                "    <kernel>%s</kernel>\n",
                s->domain, c->name, PIEMU_METADATA_PREFIX, PIEMU_METADATA_PREFIX, PIEMU_METADATA_URI,
                s->meta, PIEMU_METADATA_PREFIX, model->memory_mib, model->vcpus, model->name, s->kernel);
        if (s->initrd)
                fprintf(b->f, "    <initrd>%s</initrd>\n", s->initrd);
        fprintf(b->f,
                "    <dtb>%s</dtb>\n"
                "    <cmdline>%s</cmdline>\n"
                "  </os>\n"
                "  <on_poweroff>destroy</on_poweroff>\n"
                "  <on_reboot>restart</on_reboot>\n"
                "  <on_crash>destroy</on_crash>\n"
                "  <devices>\n",
                s->dtb, s->cmdline);
}

/* The devices libvirt has XML for, through </devices>: the emulator, the SD card and the two serial
 * lines. */
static void domain_xml_write_devices(Builder *b, const BoardConfig *c, const ImagePaths *img,
                                     const DomainStrings *s) {
        if (s->emulator)
                fprintf(b->f, "    <emulator>%s</emulator>\n", s->emulator);
        /* The SD card as a file with its whole backing chain spelled out, not as <source pool=
         * volume=>: libvirt's AppArmor helper (virt-aa-helper) puts a disk's files into the domain's
         * profile only for local file disks it can name from the XML alone; a pool volume gets no
         * rule, and QEMU is then denied its own overlay. This way each board's profile allows
         * exactly its overlay (rwk) and its image (rk), and libvirt probes no chain itself. */
        fprintf(b->f,
                "    <disk type='file' device='disk'>\n"
                "      <driver name='qemu' type='qcow2'/>\n"
                "      <source file='%s'/>\n"
                "      <backingStore type='file'>\n"
                "        <format type='%s'/>\n"
                "        <source file='%s'/>\n"
                "        <backingStore/>\n"
                "      </backingStore>\n"
                "      <target dev='sda' bus='sd'/>\n"
                "    </disk>\n"
                /* QEMU dials piemud's TLS listeners and dials again a second after a connection is
                 * lost (piemud restarted): see serial.h for why QEMU is the client. */
                "    <serial type='tcp'>\n"
                "      <source mode='connect' host='127.0.0.1' service='%u' tls='yes'>\n"
                "        <reconnect enabled='yes' timeout='1'/>\n"
                "      </source>\n"
                "      <protocol type='raw'/>\n"
                "      <target port='0'/>\n"
                "    </serial>\n"
                "    <serial type='tcp'>\n"
                "      <source mode='connect' host='127.0.0.1' service='%u' tls='yes'>\n"
                "        <reconnect enabled='yes' timeout='1'/>\n"
                "      </source>\n"
                "      <protocol type='raw'/>\n"
                "      <target port='1'/>\n"
                "    </serial>\n"
                "    <memballoon model='none'/>\n"
                "  </devices>\n",
                s->overlay, img->sd_format, s->sd, (unsigned)c->serial_port, (unsigned)c->gpio_port);
}

/* QEMU arguments libvirt has no XML for, if the board needs any: qtest and the I2C devices. Records
 * a failure in b->r. */
static void domain_xml_write_qemu_args(Builder *b, const BoardConfig *c, const char *e_qtest,
                                       bool piemu_qemu) {
        int r;

        if (!e_qtest && c->n_i2c == 0)
                return;
        /* libvirt marks the domain tainted (custom-argv) for these, which only says that libvirt did
         * not vet the arguments: QEMU dials piemud's socket, in a directory only piemud and QEMU can
         * reach (see README). */
        fprintf(b->f, "  <qemu:commandline>\n");
        if (e_qtest)
                fprintf(b->f,
                        "    <qemu:arg value='-qtest'/>\n"
                        "    <qemu:arg value='%s'/>\n"
                        /* Else QEMU logs every command, reply and IRQ to stderr, which is the
                         * domain's log file: 12,000 lines for 6,000 commands, measured. */
                        "    <qemu:arg value='-qtest-log'/>\n"
                        "    <qemu:arg value='none'/>\n",
                        e_qtest);
        /* The I2C devices' arguments are built from the table in i2c-devices.c only (model names and
         * addresses, nothing a user typed). */
        for (size_t i = 0; i < c->n_i2c && b->r >= 0; i++) {
                _cleanup_free_ char *arg = NULL;
                const I2cModel *m = i2c_model_find(c->i2c[i].model);
                r = m ? i2c_device_arg(m, c->i2c[i].address, &arg) : -EINVAL;
                if (r < 0) {
                        b->r = r;
                        break;
                }
                fprintf(b->f, "    <qemu:arg value='-device'/>\n    <qemu:arg value='%s'/>\n", arg);
        }
        /* piemu's own QEMU (event detection, input lines) runs the board: the wrapper reads this.
         * Only with qtest, the one path that uses what it adds. */
        if (e_qtest && piemu_qemu)
                fprintf(b->f, "    <qemu:env name='" PIEMU_QEMU_ENV "' value='" PIEMU_QEMU_ENV_OWN "'/>\n");
        fprintf(b->f, "  </qemu:commandline>\n");
}

int domain_xml_build(const BoardConfig *c, const ImagePaths *img, const char *uuid, const char *emulator,
                     char **ret) {
        _cleanup_(domain_strings_done) DomainStrings s = {};
        Builder b;
        int r;

        const PiModel *model = pi_model_find(c ? c->model ?: PIEMU_DEFAULT_MODEL : NULL);

        if (!c || !img || !img->kernel || !img->dtb || !img->sd ||
            !(streq_ptr(img->sd_format, "raw") || streq_ptr(img->sd_format, "qcow2")))
                return -EINVAL;
        if (!model)
                return -EOPNOTSUPP;
        r = domain_strings_prepare(c, img, model, emulator, &s);
        if (r < 0)
                return r;
        if (uuid && (strlen(uuid) != 36 || strspn(uuid, "0123456789abcdef-") != 36))
                return -EINVAL;

        r = builder_open(&b);
        if (r < 0)
                return r;
        domain_xml_write_head(&b, c, model, uuid, &s);
        domain_xml_write_devices(&b, c, img, &s);
        domain_xml_write_qemu_args(&b, c, s.qtest, img->piemu_qemu);
        fprintf(b.f, "</domain>\n");
        return builder_finish(&b, ret);
}

int volume_xml_build(const char *vol_name, uint64_t capacity, const char *backing_path,
                     const char *backing_format, char **ret) {
        _cleanup_free_ char *e_name = NULL, *e_path = NULL;
        char *s;
        int r;

        if (!vol_name || !backing_path || capacity == 0 ||
            !(streq_ptr(backing_format, "raw") || streq_ptr(backing_format, "qcow2")))
                return -EINVAL;
        if ((r = xml_escape(vol_name, &e_name)) < 0 || (r = xml_escape(backing_path, &e_path)) < 0)
                return r;
        if (asprintf(&s,
                     "<volume>\n"
                     "  <name>%s</name>\n"
                     "  <capacity unit='bytes'>%" PRIu64 "</capacity>\n"
                     "  <target>\n"
                     "    <format type='qcow2'/>\n"
                     "    <permissions><mode>0600</mode></permissions>\n"
                     "  </target>\n"
                     "  <backingStore>\n"
                     "    <path>%s</path>\n"
                     "    <format type='%s'/>\n"
                     "  </backingStore>\n"
                     "</volume>\n",
                     e_name, capacity, e_path, backing_format) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int pool_xml_build(const char *name, const char *path, char **ret) {
        _cleanup_free_ char *e_name = NULL, *e_path = NULL;
        char *s;
        int r;

        if ((r = xml_escape(name, &e_name)) < 0 || (r = xml_escape(path, &e_path)) < 0)
                return r;
        if (asprintf(&s,
                     "<pool type='dir'>\n"
                     "  <name>%s</name>\n"
                     "  <target>\n"
                     "    <path>%s</path>\n"
                     "    <permissions><mode>0711</mode></permissions>\n"
                     "  </target>\n"
                     "</pool>\n",
                     e_name, e_path) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

uint64_t sd_capacity_for(uint64_t backing_size) {
        uint64_t c = 64ULL << 20;
        while (c < backing_size && c < (1ULL << 62))
                c <<= 1;
        return c;
}

int board_domain_name(const char *board, char **ret) {
        char *s;
        if (!piemu_name_is_valid(board))
                return -EINVAL;
        if (asprintf(&s, PIEMU_DOMAIN_PREFIX "%s", board) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

const char *board_name_from_domain(const char *domain) {
        size_t l = strlen(PIEMU_DOMAIN_PREFIX);
        if (!domain || strncmp(domain, PIEMU_DOMAIN_PREFIX, l) != 0)
                return NULL;
        return piemu_name_is_valid(domain + l) ? domain + l : NULL;
}

int board_volume_name(const char *board, char **ret) {
        char *s;
        if (!piemu_name_is_valid(board))
                return -EINVAL;
        if (asprintf(&s, "%s.qcow2", board) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Whether the domain's <qemu:commandline> (libvirt's qemu namespace only) has an element `element`
 * with value='value' (and, if name is not NULL, name='name'). */
static bool qemu_commandline_has(const char *xml, const char *element, const char *name, const char *value) {
        xmlDoc *doc = xml ? read_xml(xml) : NULL;
        const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
        bool found = false;

        for (const xmlNode *n = root ? root->children : NULL; n && !found; n = n->next) {
                if (n->type != XML_ELEMENT_NODE || !n->ns || !n->ns->href ||
                    xmlStrcmp(n->ns->href, (const xmlChar *)QEMU_XML_NS) != 0 ||
                    xmlStrcmp(n->name, (const xmlChar *)"commandline") != 0)
                        continue;
                for (const xmlNode *a = n->children; a && !found; a = a->next) {
                        if (a->type != XML_ELEMENT_NODE || xmlStrcmp(a->name, (const xmlChar *)element) != 0)
                                continue;
                        xmlChar *v = xmlGetProp(a, (const xmlChar *)"value");
                        xmlChar *nm = name ? xmlGetProp(a, (const xmlChar *)"name") : NULL;
                        found = v && xmlStrcmp(v, (const xmlChar *)value) == 0 &&
                                (!name || (nm && xmlStrcmp(nm, (const xmlChar *)name) == 0));
                        xmlFree(v);
                        xmlFree(nm);
                }
        }
        xmlFreeDoc(doc);
        return found;
}

bool domain_xml_has_qtest(const char *xml) {
        return qemu_commandline_has(xml, "arg", NULL, "-qtest");
}

bool domain_xml_runs_piemu_qemu(const char *xml) {
        return qemu_commandline_has(xml, "env", PIEMU_QEMU_ENV, PIEMU_QEMU_ENV_OWN);
}

bool domain_xml_has_tls_lines(const char *xml) {
        xmlDoc *doc = xml ? read_xml(xml) : NULL;
        const xmlNode *devices = child(doc ? xmlDocGetRootElement(doc) : NULL, "devices");
        unsigned tls = 0, other = 0;

        /* piemu's lines are the only TCP chardevs of its domains: TLS lines are dialed by QEMU
         * (mode='connect', tls='yes'); an older piemu's were plain listeners (mode='bind'). */
        for (const xmlNode *n = devices ? devices->children : NULL; n; n = n->next) {
                if (!is_element(n, "serial"))
                        continue;
                const xmlNode *src = child(n, "source");
                xmlChar *type = xmlGetProp(n, (const xmlChar *)"type");
                xmlChar *mode = src ? xmlGetProp(src, (const xmlChar *)"mode") : NULL;
                xmlChar *t = src ? xmlGetProp(src, (const xmlChar *)"tls") : NULL;
                if (type && xmlStrcmp(type, (const xmlChar *)"tcp") == 0) {
                        if (mode && t && xmlStrcmp(mode, (const xmlChar *)"connect") == 0 &&
                            xmlStrcmp(t, (const xmlChar *)"yes") == 0)
                                tls++;
                        else
                                other++;
                }
                xmlFree(type);
                xmlFree(mode);
                xmlFree(t);
        }
        xmlFreeDoc(doc);
        return tls > 0 && other == 0;
}
