/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* board-fsm.c: every verb in every state, with and without an operation in flight and libvirtd,
 * against the rules as docs/dbus-api.md and piemud(8) state them (written out here independently of the
 * table), and every lifecycle event in every state and operation. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board-fsm.h"
#include "tests.h"
#include "piemu-errors.h"

/* The documented rules, one verb at a time. */
static BoardVerdict expected(BoardVerb verb, BoardState s, BoardOp op, bool libvirt_up) {
        if (!libvirt_up)
                return BOARD_VERDICT_UNAVAILABLE; /* "libvirtd is away and piemud is reconnecting" */
        if (op != BOARD_OP_NONE)
                return BOARD_VERDICT_BUSY; /* one libvirt operation at a time per board */
        switch (verb) {
        case BOARD_VERB_DEFINE:
                return s == BOARD_STOPPED ? BOARD_VERDICT_OK : BOARD_VERDICT_BUSY;
        case BOARD_VERB_START:
                if (s == BOARD_STOPPED || s == BOARD_CRASHED)
                        return BOARD_VERDICT_OK; /* "A crashed board can be started again" */
                if (s == BOARD_STOPPING)
                        return BOARD_VERDICT_BUSY;
                return BOARD_VERDICT_ALREADY_RUNNING;
        case BOARD_VERB_STOP:
                return s == BOARD_RUNNING ? BOARD_VERDICT_OK : BOARD_VERDICT_NOT_RUNNING;
        case BOARD_VERB_DELETE:
                /* "DeleteBoard on a running board cuts its power first"; not between two states. */
                return s == BOARD_STARTING || s == BOARD_STOPPING ? BOARD_VERDICT_BUSY : BOARD_VERDICT_OK;
        default:
                abort();
        }
}

static void test_verbs(void) {
        unsigned cells = 0;
        for (int verb = 0; verb < _BOARD_VERB_MAX; verb++)
                for (int s = 0; s < _BOARD_STATE_MAX; s++)
                        for (int op = 0; op < _BOARD_OP_MAX; op++)
                                for (int up = 0; up < 2; up++) {
                                        BoardVerdict got = board_fsm_verb(verb, s, op, up);
                                        BoardVerdict want = expected(verb, s, op, up);
                                        if (got != want) {
                                                fprintf(stderr,
                                                        "%s in %s, op %d, libvirt %s: %d, expected %d\n",
                                                        board_verb_to_string(verb), board_state_to_string(s),
                                                        op, up ? "up" : "down", got, want);
                                                abort();
                                        }
                                        const char *name = board_verdict_error_name(got);
                                        CHECK((got == BOARD_VERDICT_OK) == (name == NULL));
                                        cells++;
                                }
        CHECK(cells == _BOARD_VERB_MAX * _BOARD_STATE_MAX * _BOARD_OP_MAX * 2);
        CHECK(strcmp(board_verdict_error_name(BOARD_VERDICT_BUSY), PIEMU_ERROR_BUSY) == 0);
        CHECK(strcmp(board_verdict_error_name(BOARD_VERDICT_UNAVAILABLE), PIEMU_ERROR_UNAVAILABLE) == 0);
        CHECK(strcmp(board_verdict_error_name(BOARD_VERDICT_ALREADY_RUNNING), PIEMU_ERROR_ALREADY_RUNNING) ==
              0);
        CHECK(strcmp(board_verdict_error_name(BOARD_VERDICT_NOT_RUNNING), PIEMU_ERROR_NOT_RUNNING) == 0);
        /* Out of range never reads past the table. */
        CHECK(board_fsm_verb(_BOARD_VERB_MAX, BOARD_STOPPED, BOARD_OP_NONE, true) == BOARD_VERDICT_BUSY);
        CHECK(board_fsm_verb(BOARD_VERB_START, _BOARD_STATE_MAX, BOARD_OP_NONE, true) == BOARD_VERDICT_BUSY);
}

static void test_events(void) {
        for (int s = 0; s < _BOARD_STATE_MAX; s++)
                for (int op = 0; op < _BOARD_OP_MAX; op++)
                        for (int wait = 0; wait < 2; wait++) {
                                BoardEventAction a = board_fsm_event(s, op, wait);
                                BoardEventAction want;
                                if (op == BOARD_OP_START || op == BOARD_OP_REFRESH)
                                        want = BOARD_EVENT_DEFER; /* says something new: asked after */
                                else if (op != BOARD_OP_NONE)
                                        want = BOARD_EVENT_IGNORE; /* Stop/Delete/cleanup end off anyway */
                                else if (s == BOARD_STARTING && wait)
                                        want = BOARD_EVENT_START_FAILED;
                                else if (s == BOARD_RUNNING)
                                        want = BOARD_EVENT_POWERED_OFF;
                                else
                                        want = BOARD_EVENT_IGNORE;
                                CHECK(a == want);
                        }
        CHECK(board_fsm_state_after_power_off(true) == BOARD_CRASHED);
        CHECK(board_fsm_state_after_power_off(false) == BOARD_STOPPED);
}

static void test_names(void) {
        const char *states[] = {"stopped", "starting", "running", "stopping", "crashed"};
        CHECK(sizeof states / sizeof *states == _BOARD_STATE_MAX);
        for (int s = 0; s < _BOARD_STATE_MAX; s++)
                CHECK(strcmp(board_state_to_string(s), states[s]) == 0);
        CHECK(strcmp(board_state_to_string(_BOARD_STATE_MAX), "unknown") == 0);
        CHECK(strcmp(board_state_to_string(-1), "unknown") == 0);
        for (int v = 0; v < _BOARD_VERB_MAX; v++)
                CHECK(strcmp(board_verb_to_string(v), "unknown") != 0);
}

int main(void) {
        test_verbs();
        test_events();
        test_names();
        printf("test-board-fsm: ok\n");
        return 0;
}
