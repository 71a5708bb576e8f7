// SPDX-License-Identifier: LGPL-2.1-or-later
//
// One open board: its serial console in an xterm.js terminal and its 40-pin header, both fed by
// the board's private signals. piemud sends SerialOutput and GpioChanged only to connections that
// called Watch() on the board, so the view Watches while open and Unwatches when closed.
"use strict";

(function () {
    const BOARD_IFACE = "org.piemu.Board";

    class BoardView {
        // client: the cockpit.dbus client; board: {name, path, ownerName}; onError(err, board)
        // reports refusals the page shows in its alert area.
        constructor(client, board, consoleEl, headerEl, onError) {
            this.client = client;
            this.board = board;
            this.consoleEl = consoleEl;
            this.onError = onError;
            this.closed = false;
            this.live = false;       // true once the recent output is on screen
            this.pending = [];       // SerialOutput that came before the recent output was shown
            this.encoder = new TextEncoder();

            this.term = new window.Terminal({
                cols: 80,
                rows: 24,
                scrollback: 5000,
                convertEol: false,   // the guest's tty already sends CR LF
                cursorBlink: true,
                fontFamily: "monospace",
            });
            this.term.open(consoleEl);
            // The integration test reads what the terminal shows through its buffer (the DOM
            // renderer only holds the visible rows); this is the same object the user sees.
            consoleEl.terminal = this.term;
            consoleEl.dataset.board = board.name;
            consoleEl.dataset.live = "false";
            this.term.onData(data => this.send(this.encoder.encode(data)));
            // Mouse reports and other binary input come as strings of byte values.
            this.term.onBinary(data => this.send(Uint8Array.from(data, c => c.charCodeAt(0) & 0xff)));

            this.header = new window.PiemuHeader(headerEl, (pin, level) => this.toggle(pin, level));
            headerEl.dataset.board = board.name;

            this.subscription = client.subscribe(
                { path: board.path, interface: BOARD_IFACE },
                (path, iface, signal, args) => this.onSignal(signal, args));
        }

        // Shows what the console printed so far, then follows it live. GetRecentSerial and Watch
        // go out back to back on one connection: piemud answers the first before it has this
        // connection as a watcher, so nothing is shown twice.
        open() {
            const recent = this.call("GetRecentSerial");
            const watch = this.call("Watch");
            recent
                .then(([data]) => {
                    if (this.closed)
                        return;
                    this.write(data);
                })
                .catch(err => this.report(err))
                .finally(() => {
                    if (this.closed)
                        return;
                    this.live = true;
                    this.consoleEl.dataset.live = "true";
                    for (const data of this.pending)
                        this.write(data);
                    this.pending = [];
                });
            watch.catch(err => this.report(err));
            this.refreshPins();
            this.term.focus();
        }

        close() {
            if (this.closed)
                return;
            this.closed = true;
            this.subscription.remove();
            // Best effort: a board deleted meanwhile answers NoSuchBoard, which is fine.
            this.call("Unwatch").catch(() => {});
            delete this.consoleEl.terminal;
            this.term.dispose();
            this.consoleEl.replaceChildren();
        }

        // The board's State changed: the header only has levels while it runs.
        stateChanged(state) {
            if (state === "running")
                this.refreshPins();
            else
                this.header.setAll(null);
        }

        setManageable(manageable) {
            this.header.setEnabled(manageable);
            this.term.options.disableStdin = !manageable;
        }

        call(method, args) {
            return this.client.call(this.board.path, BOARD_IFACE, method, args || []);
        }

        report(err) {
            if (!this.closed)
                this.onError(err, this.board);
        }

        onSignal(signal, args) {
            if (this.closed)
                return;
            if (signal === "SerialOutput") {
                if (this.live)
                    this.write(args[0]);
                else
                    this.pending.push(args[0]);
            } else if (signal === "GpioChanged") {
                this.header.setLevel(args[0], !!args[1]);
            }
        }

        // cockpit.dbus carries "ay" as base64; xterm.js takes raw bytes and decodes UTF-8 itself
        // (also across chunk boundaries).
        write(base64) {
            if (base64)
                this.term.write(window.cockpit.base64_decode(base64, Uint8Array));
        }

        send(bytes) {
            if (bytes.length === 0)
                return;
            this.call("SendSerial", [window.cockpit.base64_encode(bytes)]).catch(err => this.report(err));
        }

        refreshPins() {
            this.call("GetPins")
                .then(([levels]) => { if (!this.closed) this.header.setAll(levels) })
                // A stopped board has no pins to read: show them as unknown, not as an error. Busy
                // means piemud does not know the levels yet (QEMU is connecting its qtest channel
                // after a start or a piemud restart): ask again shortly.
                .catch(err => {
                    if (this.closed)
                        return;
                    this.header.setAll(null);
                    if (err.name === "org.piemu.Error.Busy")
                        window.setTimeout(() => { if (!this.closed) this.refreshPins() }, 500);
                    else if (err.name !== "org.piemu.Error.NotRunning")
                        this.report(err);
                });
        }

        // Drives the opposite of the level the pin shows now. GpioChanged brings the result; the
        // GetPin afterwards covers a level that did not change (nothing is signalled then).
        toggle(pin, level) {
            this.call("SetPin", [pin, !level])
                .then(() => this.call("GetPin", [pin]))
                .then(([value]) => { if (!this.closed) this.header.setLevel(pin, !!value) })
                .catch(err => this.report(err));
        }
    }

    window.PiemuBoardView = BoardView;
})();
