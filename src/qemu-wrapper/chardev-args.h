/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Why this exists: QEMU's socket chardevs keep Nagle's algorithm on unless told `nodelay=on`, and
 * libvirt has no XML for it. A guest UART hands QEMU one byte at a time and, over TLS, each byte
 * becomes a record and a segment of its own; with Nagle each waits for the previous one's ACK, so
 * a 10-byte GPIO report took ~2.3 ms to reach piemud instead of ~1.5 ms. piemu's lines are the only
 * TLS chardevs of its domains: those, and only those, get nodelay. */

/* Rewrites argv in place: the value after each "-chardev" that is a socket chardev with
 * "tls-creds=" and no "nodelay=" gets ",nodelay=on". *storage receives what must be freed after
 * use (NULL when nothing changed). Returns the number of arguments changed (>= 0) or -ENOMEM. */
int chardev_args_nodelay(int argc, char **argv, char **storage);
