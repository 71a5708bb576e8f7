/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one table of Pi models (src/shared/pi-models.c): its rows are consistent with each other, with
 * what the board revision codes say, with piemud's default model, and with the extractor's list of
 * models (src/image-extract/rpi-config.c), which keeps per-model device tree names of its own. */
#include <stdint.h>
#include <string.h>

#include "board-config.h"
#include "names.h"
#include "pi-models.h"
#include "rpi-config.h"
#include "tests.h"

/* The new-style revision code (Raspberry Pi documentation, "Raspberry Pi revision codes"):
 * bit 23 new-style, bits 20-22 memory (256 MB << n), bits 4-11 the board type. */
static unsigned revision_memory_mib(uint32_t rev) {
        return 256u << ((rev >> 20) & 7);
}

static unsigned revision_type(uint32_t rev) {
        return (rev >> 4) & 0xff;
}

static const struct {
        const char *name;
        unsigned type;
} board_types[] = {
        {"raspi1ap", 0x02}, {"raspi2b", 0x04},  {"raspi3b", 0x08},
        {"raspi0", 0x09},   {"raspi3ap", 0x0e}, {"raspi4b", 0x11},
};

static void test_rows(void) {
        size_t n;
        const PiModel *m = pi_models(&n);

        CHECK(n == 6);
        for (size_t i = 0; i < n; i++) {
                bool typed = false;

                /* A QEMU machine name, a title, an image name piemud would accept. */
                CHECK(m[i].name && strncmp(m[i].name, "raspi", 5) == 0 && strlen(m[i].name) < 16);
                CHECK(m[i].name[strspn(m[i].name, "abcdefghijklmnopqrstuvwxyz0123456789")] == 0);
                CHECK(m[i].title && strncmp(m[i].title, "Raspberry Pi ", 13) == 0);
                CHECK(m[i].default_image && piemu_name_is_valid(m[i].default_image));
                CHECK(m[i].memory_mib >= 512 && m[i].vcpus >= 1 && m[i].vcpus <= 4);

                /* Names, titles and revisions are each unique. */
                for (size_t k = 0; k < i; k++) {
                        CHECK(strcmp(m[i].name, m[k].name) != 0);
                        CHECK(strcmp(m[i].title, m[k].title) != 0);
                        CHECK(m[i].revision != m[k].revision);
                }

                /* The revision says what the row says: new-style, this RAM, this board. */
                CHECK(m[i].revision & (UINT32_C(1) << 23));
                if (revision_memory_mib(m[i].revision) != m[i].memory_mib) {
                        fprintf(stderr, "%s: revision %06x means %u MiB, the row says %u\n", m[i].name,
                                m[i].revision, revision_memory_mib(m[i].revision), m[i].memory_mib);
                        CHECK(!"revision and memory agree");
                }
                for (size_t k = 0; k < sizeof board_types / sizeof board_types[0]; k++)
                        if (strcmp(board_types[k].name, m[i].name) == 0) {
                                CHECK(revision_type(m[i].revision) == board_types[k].type);
                                typed = true;
                        }
                CHECK(typed);

                CHECK(pi_model_find(m[i].name) == &m[i]);
        }
        CHECK(!pi_model_find(NULL));
        CHECK(!pi_model_find(""));
        CHECK(!pi_model_find("raspi3"));
        CHECK(!pi_model_find("RASPI3B"));
}

static void test_default_first(void) {
        size_t n;
        const PiModel *m = pi_models(&n);

        /* The Cockpit page and `piemuctl models` offer the rows in this order: the default first. */
        CHECK_STREQ(m[0].name, PIEMU_DEFAULT_MODEL);
        CHECK_STREQ(m[0].default_image, "default");
}

static void test_names(void) {
        const char *names = pi_model_names();
        size_t n;
        const PiModel *m = pi_models(&n);

        /* The text piemud's "Unknown model" error has always carried. */
        CHECK_STREQ(names, "raspi0, raspi1ap, raspi2b, raspi3ap, raspi3b, raspi4b");
        CHECK(pi_model_names() == names);
        for (size_t i = 0; i < n; i++)
                CHECK_CONTAINS(names, m[i].name);
}

static void test_extractor_knows_the_same_models(void) {
        size_t n;
        const PiModel *m = pi_models(&n);

        CHECK((size_t)_RPI_MODEL_MAX == n);
        for (int i = 0; i < _RPI_MODEL_MAX; i++) {
                const char *name = rpi_model_to_string((RpiModel)i);
                const PiModel *p = pi_model_find(name);

                CHECK(p);
                CHECK(rpi_model_from_string(name) == (RpiModel)i);
                CHECK(rpi_model_revision((RpiModel)i) == p->revision);
                CHECK(rpi_model_dtb_names((RpiModel)i, false));
        }
        for (size_t i = 0; i < n; i++)
                CHECK(rpi_model_from_string(m[i].name) >= 0);
}

int main(void) {
        test_rows();
        test_default_first();
        test_names();
        test_extractor_knows_the_same_models();
        printf("test-pi-models: ok\n");
        return 0;
}
