/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim-tty.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "macro.h"

#define AUX_UART_COMPATIBLE "brcm,bcm2835-aux-uart"
#define DT_BASE_MARKER      "/devicetree/base"

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Reads a small file whole; device-tree properties are at most a few hundred bytes here. */
static ssize_t read_small_file(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        while (done < size) {
                ssize_t k = read(fd, buf + done, size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                done += (size_t)k;
        }
        return (ssize_t)done;
}

/* compatible is a list of NUL-terminated strings. */
static bool node_is_compatible(const char *node_dir, const char *compat) {
        char path[PATH_MAX], buf[512];
        ssize_t n;

        if (snprintf(path, sizeof(path), "%s/compatible", node_dir) >= (int)sizeof(path))
                return false;
        n = read_small_file(path, buf, sizeof(buf));
        for (ssize_t i = 0; i < n;) {
                size_t len = strnlen(buf + i, (size_t)(n - i));
                if (len == strlen(compat) && memcmp(buf + i, compat, len) == 0)
                        return true;
                i += (ssize_t)len + 1;
        }
        return false;
}

static int set_result(char *ret, size_t size, const char *name) {
        if (snprintf(ret, size, "/dev/%s", name) >= (int)size)
                return -ENOBUFS;
        return 1;
}

int shim_find_host_tty(const char *sysfs_root, const char *dt_root, char *ret, size_t size) {
        _cleanup_(closedirp) DIR *d = NULL;
        char alias[256] = "", by_compat[NAME_MAX + 1] = "", by_alias[NAME_MAX + 1] = "";
        char path[PATH_MAX];
        ssize_t n;

        if (!sysfs_root)
                sysfs_root = "/sys";
        if (!dt_root)
                dt_root = "/proc/device-tree";

        /* The property is the node path with a trailing NUL. */
        if (snprintf(path, sizeof(path), "%s/aliases/serial1", dt_root) < (int)sizeof(path)) {
                n = read_small_file(path, alias, sizeof(alias) - 1);
                alias[n > 0 ? n : 0] = '\0';
        }

        if (snprintf(path, sizeof(path), "%s/class/tty", sysfs_root) >= (int)sizeof(path))
                return -ENOBUFS;
        d = opendir(path);
        for (struct dirent *de; d && (de = readdir(d));) {
                char link[PATH_MAX], node[PATH_MAX];
                const char *p;

                if (de->d_name[0] == '.')
                        continue;
                if (snprintf(link, sizeof(link), "%s/class/tty/%s/device/of_node", sysfs_root, de->d_name) >=
                    (int)sizeof(link))
                        continue;
                if (!realpath(link, node))
                        continue; /* no device or no device-tree node: not ours */

                /* readdir order is arbitrary; prefer the smallest name so the answer is stable
                 * should two ttys ever match. */
                if (node_is_compatible(node, AUX_UART_COMPATIBLE) &&
                    (!by_compat[0] || strcmp(de->d_name, by_compat) < 0))
                        snprintf(by_compat, sizeof(by_compat), "%s", de->d_name);

                p = strstr(node, DT_BASE_MARKER);
                if (alias[0] && p && streq(p + strlen(DT_BASE_MARKER), alias) &&
                    (!by_alias[0] || strcmp(de->d_name, by_alias) < 0))
                        snprintf(by_alias, sizeof(by_alias), "%s", de->d_name);
        }

        if (by_compat[0])
                return set_result(ret, size, by_compat);
        if (by_alias[0])
                return set_result(ret, size, by_alias);
        if (snprintf(ret, size, "%s", SHIM_TTY_FALLBACK) >= (int)size)
                return -ENOBUFS;
        return 0;
}

int shim_open_host_line(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct termios t;

        fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();

        if (tcgetattr(fd, &t) < 0) {
                /* A pipe or socket given with --device (testing) has no line settings. */
                if (errno == ENOTTY || errno == EINVAL)
                        return TAKE_FD(fd);
                return negative_errno();
        }

        /* No echo (the host would read its own SETs back), no CR/LF mangling, no signals
         * from ^C in the data, and no modem or RTS/CTS control: the other end is a QEMU
         * chardev that never raises them. */
        cfmakeraw(&t);
        t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CRTSCTS | CSIZE);
        t.c_cflag |= CS8 | CREAD | CLOCAL;
        t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (cfsetispeed(&t, SHIM_LINE_BAUD) < 0 || cfsetospeed(&t, SHIM_LINE_BAUD) < 0)
                return negative_errno();
        if (tcsetattr(fd, TCSANOW, &t) < 0)
                return negative_errno();

        /* Whatever arrived while the line was still cooked (and may have been echoed) is
         * stale; the host re-sends its levels after HELLO anyway. */
        (void)tcflush(fd, TCIFLUSH);

        return TAKE_FD(fd);
}
