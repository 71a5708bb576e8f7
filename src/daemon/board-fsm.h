/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* A board's life as data: which verb is allowed in which state (and which named error refuses it
 * otherwise), and what a libvirt lifecycle event does in each. Pure: board.c asks, acts and emits;
 * tests/unit/test-board-fsm.c walks every cell. */

typedef enum BoardState {
        BOARD_STOPPED,
        BOARD_STARTING,
        BOARD_RUNNING,
        BOARD_STOPPING,
        BOARD_CRASHED,
        _BOARD_STATE_MAX,
} BoardState;

/* The one libvirt operation in flight per board (on a worker thread). */
typedef enum BoardOp {
        BOARD_OP_NONE,
        BOARD_OP_DEFINE,
        BOARD_OP_START,
        BOARD_OP_STOP,
        BOARD_OP_DELETE,
        BOARD_OP_CLEANUP,
        BOARD_OP_REFRESH, /* asking libvirt how the domain is, after an event during an operation */
        _BOARD_OP_MAX,
} BoardOp;

/* A lifecycle event remembered during an operation, applied after it. */
typedef enum BoardEvent {
        BOARD_EVENT_NONE,
        BOARD_EVENT_STOPPED,
        BOARD_EVENT_CRASHED,
} BoardEvent;

typedef enum BoardVerb {
        BOARD_VERB_DEFINE, /* CreateBoard's libvirt definition */
        BOARD_VERB_START,
        BOARD_VERB_STOP,
        BOARD_VERB_DELETE,
        _BOARD_VERB_MAX,
} BoardVerb;

/* A verb's answer before it does anything: go ahead, or the named error that refuses it. */
typedef enum BoardVerdict {
        BOARD_VERDICT_OK,
        BOARD_VERDICT_UNAVAILABLE,     /* libvirtd is away: org.piemu.Error.Unavailable */
        BOARD_VERDICT_BUSY,            /* another operation or a transition: Busy */
        BOARD_VERDICT_ALREADY_RUNNING, /* AlreadyRunning */
        BOARD_VERDICT_NOT_RUNNING,     /* NotRunning */
        _BOARD_VERDICT_MAX,
} BoardVerdict;

/* What libvirt telling "the domain stopped (or crashed)" does to a board. */
typedef enum BoardEventAction {
        BOARD_EVENT_IGNORE,       /* nothing changes: our own Stop/Delete/cleanup, or not running */
        BOARD_EVENT_DEFER,        /* during a Start or a refresh: remembered, applied after it */
        BOARD_EVENT_START_FAILED, /* QEMU went away while piemud waited for it to dial the lines */
        BOARD_EVENT_POWERED_OFF,  /* it was running: now stopped, or crashed */
} BoardEventAction;

const char *board_state_to_string(BoardState s);
const char *board_verb_to_string(BoardVerb v);

/* The one check every verb starts with; `libvirt_up` is the libvirt guard. */
BoardVerdict board_fsm_verb(BoardVerb verb, BoardState state, BoardOp op, bool libvirt_up);
/* The D-Bus error name of a refusal (NULL for BOARD_VERDICT_OK). */
const char *board_verdict_error_name(BoardVerdict v);

BoardEventAction board_fsm_event(BoardState state, BoardOp op, bool waiting_for_lines);
/* The state a running board is in after BOARD_EVENT_POWERED_OFF. */
BoardState board_fsm_state_after_power_off(bool crashed);
