/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-lines.h"

#include <errno.h>

int board_lines_open(BoardLines *l, sd_event *e, TlsCreds *creds, uid_t qemu_uid, uint16_t console_port,
                     uint16_t gpio_port, const SerialCallbacks *console_cb, const SerialCallbacks *gpio_cb) {
        int r;

        board_lines_close(l, false);
        if (!creds) {
                r = serial_connect(e, console_port, console_cb, &l->console);
                if (r >= 0)
                        r = serial_connect(e, gpio_port, gpio_cb, &l->gpio);
        } else {
                r = serial_listen(e, console_port, creds, qemu_uid, console_cb, &l->console);
                if (r >= 0)
                        r = serial_listen(e, gpio_port, creds, qemu_uid, gpio_cb, &l->gpio);
        }
        if (r < 0)
                board_lines_close(l, false);
        return r;
}

void board_lines_close(BoardLines *l, bool keep_ports) {
        if (keep_ports) {
                l->console = serial_free(l->console);
                l->gpio = serial_free(l->gpio);
        } else {
                l->console = serial_close(l->console);
                l->gpio = serial_close(l->gpio);
        }
        l->console_up = l->gpio_up = false;
}

bool board_lines_set_up(BoardLines *l, const Serial *s, bool up) {
        bool console = s == l->console;
        if (console)
                l->console_up = up;
        else
                l->gpio_up = up;
        return console;
}

void board_lines_drop(BoardLines *l, const Serial *s) {
        if (s == l->console) {
                l->console = serial_free(l->console);
                l->console_up = false;
        } else if (s == l->gpio) {
                l->gpio = serial_free(l->gpio);
                l->gpio_up = false;
        }
}

bool board_lines_all_up(const BoardLines *l) {
        return l->console_up && l->gpio_up;
}
