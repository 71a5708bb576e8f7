/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "board-fsm.h"

#include <stddef.h>

#include "piemu-errors.h"

static const char *const state_names[_BOARD_STATE_MAX] = {
        [BOARD_STOPPED] = "stopped",   [BOARD_STARTING] = "starting", [BOARD_RUNNING] = "running",
        [BOARD_STOPPING] = "stopping", [BOARD_CRASHED] = "crashed",
};

static const char *const verb_names[_BOARD_VERB_MAX] = {
        [BOARD_VERB_DEFINE] = "define",
        [BOARD_VERB_START] = "start",
        [BOARD_VERB_STOP] = "stop",
        [BOARD_VERB_DELETE] = "delete",
};

/* Which verb in which state, when no operation is in flight and libvirtd answers. (With an
 * operation in flight every verb is Busy; without libvirtd every verb is Unavailable.)
 *   define: only a board that was never started (CreateBoard);
 *   start: a stopped or crashed board; a starting or running one is already running; a stopping
 *          one is busy;
 *   stop: only a running board (a power cut);
 *   delete: any board that is not between two states (it cuts a running board's power first). */
static const BoardVerdict verb_table[_BOARD_VERB_MAX][_BOARD_STATE_MAX] = {
        [BOARD_VERB_DEFINE] =
                {
                        [BOARD_STOPPED] = BOARD_VERDICT_OK,
                        [BOARD_STARTING] = BOARD_VERDICT_BUSY,
                        [BOARD_RUNNING] = BOARD_VERDICT_BUSY,
                        [BOARD_STOPPING] = BOARD_VERDICT_BUSY,
                        [BOARD_CRASHED] = BOARD_VERDICT_BUSY,
                },
        [BOARD_VERB_START] =
                {
                        [BOARD_STOPPED] = BOARD_VERDICT_OK,
                        [BOARD_STARTING] = BOARD_VERDICT_ALREADY_RUNNING,
                        [BOARD_RUNNING] = BOARD_VERDICT_ALREADY_RUNNING,
                        [BOARD_STOPPING] = BOARD_VERDICT_BUSY,
                        [BOARD_CRASHED] = BOARD_VERDICT_OK,
                },
        [BOARD_VERB_STOP] =
                {
                        [BOARD_STOPPED] = BOARD_VERDICT_NOT_RUNNING,
                        [BOARD_STARTING] = BOARD_VERDICT_NOT_RUNNING,
                        [BOARD_RUNNING] = BOARD_VERDICT_OK,
                        [BOARD_STOPPING] = BOARD_VERDICT_NOT_RUNNING,
                        [BOARD_CRASHED] = BOARD_VERDICT_NOT_RUNNING,
                },
        [BOARD_VERB_DELETE] =
                {
                        [BOARD_STOPPED] = BOARD_VERDICT_OK,
                        [BOARD_STARTING] = BOARD_VERDICT_BUSY,
                        [BOARD_RUNNING] = BOARD_VERDICT_OK,
                        [BOARD_STOPPING] = BOARD_VERDICT_BUSY,
                        [BOARD_CRASHED] = BOARD_VERDICT_OK,
                },
};

static const char *const verdict_errors[_BOARD_VERDICT_MAX] = {
        [BOARD_VERDICT_OK] = NULL,
        [BOARD_VERDICT_UNAVAILABLE] = PIEMU_ERROR_UNAVAILABLE,
        [BOARD_VERDICT_BUSY] = PIEMU_ERROR_BUSY,
        [BOARD_VERDICT_ALREADY_RUNNING] = PIEMU_ERROR_ALREADY_RUNNING,
        [BOARD_VERDICT_NOT_RUNNING] = PIEMU_ERROR_NOT_RUNNING,
};

const char *board_state_to_string(BoardState s) {
        return s >= 0 && s < _BOARD_STATE_MAX ? state_names[s] : "unknown";
}

const char *board_verb_to_string(BoardVerb v) {
        return v >= 0 && v < _BOARD_VERB_MAX ? verb_names[v] : "unknown";
}

BoardVerdict board_fsm_verb(BoardVerb verb, BoardState state, BoardOp op, bool libvirt_up) {
        if (verb < 0 || verb >= _BOARD_VERB_MAX || state < 0 || state >= _BOARD_STATE_MAX)
                return BOARD_VERDICT_BUSY;
        if (!libvirt_up)
                return BOARD_VERDICT_UNAVAILABLE;
        if (op != BOARD_OP_NONE)
                return BOARD_VERDICT_BUSY;
        return verb_table[verb][state];
}

const char *board_verdict_error_name(BoardVerdict v) {
        return v >= 0 && v < _BOARD_VERDICT_MAX ? verdict_errors[v] : PIEMU_ERROR_FAILED;
}

BoardEventAction board_fsm_event(BoardState state, BoardOp op, bool waiting_for_lines) {
        switch (op) {
        case BOARD_OP_NONE:
                break;
        case BOARD_OP_START:
        case BOARD_OP_REFRESH:
                /* It says something new: applied when the operation ends, after asking libvirt. */
                return BOARD_EVENT_DEFER;
        default:
                /* Stop, Delete, define and cleanups end with the domain off anyway. */
                return BOARD_EVENT_IGNORE;
        }
        if (state == BOARD_STARTING && waiting_for_lines)
                return BOARD_EVENT_START_FAILED;
        if (state == BOARD_RUNNING)
                return BOARD_EVENT_POWERED_OFF;
        return BOARD_EVENT_IGNORE; /* our own Stop/Delete/failed start, handled where it began */
}

BoardState board_fsm_state_after_power_off(bool crashed) {
        return crashed ? BOARD_CRASHED : BOARD_STOPPED;
}
