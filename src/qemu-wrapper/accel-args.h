/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Why this exists: raspi3b always has four vCPUs, and under multi-threaded TCG the three secondary
 * ones spin in QEMU's boot stub (TCG implements WFE as a yield) while the boot CPU works. Early
 * kernel boot patches its own text tens of thousands of times, and every patch is followed by a
 * TLB flush that QEMU must run on all vCPU threads at once; with the spinning threads competing for
 * the host's cores each flush waits for the scheduler. Single-threaded TCG has no such rendezvous:
 * the default image reaches its shell in ~3 s instead of 8-27 s. libvirt offers no XML for the TCG
 * thread mode and QEMU honours only the first -accel, so this wrapper edits libvirt's own -accel. */

/* Rewrites argv in place: the value after each "-accel"/"--accel" that selects tcg ("tcg" or
 * "tcg,...") and does not already say thread= gets ",thread=single". *storage receives what must be
 * freed after use (NULL when nothing changed). Returns the number of arguments changed (>= 0) or
 * -ENOMEM. */
int accel_args_force_single_thread(int argc, char **argv, char **storage);
