// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The "Raspberry Pi boards" page: piemud's boards and images, as the logged-in user. Every call
// goes to org.piemu on the system bus through cockpit.dbus, so piemud and polkit judge this user
// exactly as they would judge piemuctl run by them; the page only mirrors those answers.
"use strict";

(function () {
    const cockpit = window.cockpit;
    const { describeError } = window.piemuErrors;
    const MANAGER_PATH = "/org/piemu";
    const MANAGER_IFACE = "org.piemu.Manager";
    const BOARD_IFACE = "org.piemu.Board";

    const client = cockpit.dbus("org.piemu", { bus: "system" });
    const boards = new Map();      // name -> board record (see addBoard)
    const userNames = new Map();   // uid -> Promise of the user name
    let me = { id: -1, name: "" };
    // What polkit lets this user do without a password (see checkAuthorization).
    const may = { create: false, own: false, others: false, images: false };
    let view = null;               // the open PiemuBoardView, if any
    let images = null;             // the PiemuImagesView, made once the DOM is there

    const $ = id => document.getElementById(id);

    // --- messages ----------------------------------------------------------------------------

    function showError(err, context) {
        const text = describeError(err, context);
        $("alert-text").textContent = text;
        $("alert").dataset.error = (err && err.name) || "";
        $("alert").hidden = false;
    }

    function clearError() {
        $("alert").hidden = true;
        $("alert-text").textContent = "";
    }

    function boardContext(board) {
        return { what: "board", owner: board ? board.ownerName : "" };
    }

    // --- authorization -----------------------------------------------------------------------

    // Asks polkit whether this user holds an action without being asked for a password. pkcheck
    // checks its own process, which the bridge started as the logged-in user in their session;
    // exit 0 is "yes". Anything else, a challenge included, is "no": the page has no way to show
    // polkit's password prompt, so an action that needs one cannot be done from here.
    function checkAuthorization(action) {
        return cockpit.spawn(["sh", "-c", 'exec pkcheck --action-id "$0" --process $$', action],
                             { err: "ignore" })
            .then(() => true, () => false);
    }

    function userName(uid) {
        if (uid === me.id)
            return Promise.resolve(me.name);
        if (!userNames.has(uid)) {
            userNames.set(uid, cockpit.spawn(["getent", "passwd", String(uid)], { err: "ignore" })
                .then(out => out.split(":")[0] || String(uid), () => String(uid)));
        }
        return userNames.get(uid);
    }

    function manageable(board) {
        return board.owner === me.id ? may.own : may.others;
    }

    // --- the board list ----------------------------------------------------------------------

    function button(label, action, onClick) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = label;
        b.dataset.action = action;
        b.addEventListener("click", onClick);
        return b;
    }

    function cell(field) {
        const td = document.createElement("td");
        td.dataset.field = field;
        return td;
    }

    function makeRow(board) {
        const tr = document.createElement("tr");
        tr.dataset.board = board.name;
        const cells = {};
        for (const f of ["name", "state", "guest", "owner", "model", "image", "actions"])
            cells[f] = cell(f);
        cells.name.textContent = board.name;
        const actions = document.createElement("div");
        actions.className = "actions";
        actions.append(
            button("Console", "open", () => openView(board)),
            button("Start", "start", () => boardCall(board, "Start")),
            button("Stop", "stop", () => boardCall(board, "Stop")),
            button("Delete", "delete", () => askDelete(board)));
        const confirm = document.createElement("div");
        confirm.className = "confirm";
        confirm.hidden = true;
        const question = document.createElement("span");
        question.textContent = "Delete " + board.name + " and its disk?";
        confirm.append(question,
                       button("Delete", "confirm-delete", () => deleteBoard(board)),
                       button("Cancel", "cancel-delete", () => { confirm.hidden = true; actions.hidden = false }));
        const note = document.createElement("span");
        note.className = "note";
        note.dataset.note = "not-manageable";
        note.hidden = true;
        cells.actions.append(actions, confirm, note);
        tr.append(...Object.values(cells));
        board.row = tr;
        board.cells = cells;
        board.confirm = confirm;
        board.actions = actions;
        board.note = note;
        return tr;
    }

    function renderBoard(board) {
        if (!board.row)
            return;
        const c = board.cells;
        const tr = board.row;
        tr.dataset.state = board.state;
        tr.dataset.guestReady = String(board.guestReady);
        tr.dataset.gpioInterrupts = String(board.gpioInterrupts);
        c.state.textContent = board.state;
        c.state.className = "state state-" + board.state;
        c.guest.textContent = board.state === "running" ? (board.guestReady ? "ready" : "booting") : "";
        // piemu's own QEMU: the guest's GPIO has interrupts (edge detection) on this run.
        if (board.state === "running" && board.gpioInterrupts)
            c.guest.textContent += " · GPIO interrupts";
        c.owner.textContent = board.ownerName || String(board.owner);
        c.model.textContent = board.model;
        c.image.textContent = board.image + (board.persistent ? " (persistent)" : "");
        if (board.lastError) {
            c.state.title = board.lastError;
        } else {
            c.state.removeAttribute("title");
        }

        const ok = manageable(board);
        tr.dataset.manageable = String(ok);
        const running = board.state === "running" || board.state === "starting";
        const busy = board.state === "starting" || board.state === "stopping";
        for (const b of board.actions.querySelectorAll("button")) {
            const a = b.dataset.action;
            b.disabled = !ok || busy ||
                (a === "start" && running) || (a === "stop" && !running);
        }
        board.note.hidden = ok;
        board.note.textContent = ok ? "" : "You may not manage " + (board.ownerName || board.owner) + "'s boards";
        if (view && view.board === board)
            view.setManageable(ok);
    }

    function sortRows() {
        const body = $("boards-body");
        const rows = [...boards.values()].sort((a, b) => a.name.localeCompare(b.name)).map(b => b.row);
        body.replaceChildren(...rows);
        $("boards-empty").hidden = boards.size > 0;
    }

    // Adds a board by name and object path (from ListBoards, BoardAdded or CreateBoard's answer,
    // whichever comes first) and reads its properties once; PropertiesChanged keeps them current.
    function addBoard(name, path, owner) {
        if (boards.has(name))
            return boards.get(name);
        const board = {
            name, path, owner: owner === undefined ? -1 : owner, ownerName: "",
            state: "", guestReady: false, gpioInterrupts: false, model: "", image: "", persistent: false,
            lastError: "",
        };
        boards.set(name, board);
        makeRow(board);
        sortRows();
        client.call(path, "org.freedesktop.DBus.Properties", "GetAll", [BOARD_IFACE])
            .then(([props]) => {
                applyProperties(board, props);
                return userName(board.owner);
            })
            .then(ownerName => { board.ownerName = ownerName; renderBoard(board) })
            // Gone again before we asked: BoardRemoved takes care of the row.
            .catch(err => { if (err.name !== "org.freedesktop.DBus.Error.UnknownObject") showError(err) });
        renderBoard(board);
        return board;
    }

    function removeBoard(name) {
        const board = boards.get(name);
        if (!board)
            return;
        boards.delete(name);
        if (view && view.board === board)
            closeView();
        board.row.remove();
        $("boards-empty").hidden = boards.size > 0;
    }

    function applyProperties(board, props) {
        // cockpit.dbus hands variants over as {t: signature, v: value}.
        const val = key => props[key] && props[key].v;
        if ("Owner" in props) board.owner = val("Owner");
        if ("State" in props) board.state = val("State");
        if ("GuestReady" in props) board.guestReady = !!val("GuestReady");
        if ("GpioInterrupts" in props) board.gpioInterrupts = !!val("GpioInterrupts");
        if ("Model" in props) board.model = val("Model");
        if ("Image" in props) board.image = val("Image");
        if ("Persistent" in props) board.persistent = !!val("Persistent");
        if ("LastError" in props) board.lastError = val("LastError");
    }

    function boardByPath(path) {
        for (const b of boards.values())
            if (b.path === path)
                return b;
        return null;
    }

    function onPropertiesChanged(path, iface, signal, [changedIface, changed, invalidated]) {
        if (changedIface !== BOARD_IFACE)
            return;
        const board = boardByPath(path);
        if (!board)
            return;
        const oldState = board.state;
        applyProperties(board, changed);
        if (invalidated.includes("LastError")) {
            // Announced without its value (only the owner may read it).
            client.call(path, "org.freedesktop.DBus.Properties", "Get", [BOARD_IFACE, "LastError"])
                .then(([v]) => { board.lastError = v.v; renderBoard(board) })
                .catch(() => {});
        }
        renderBoard(board);
        if (view && view.board === board && oldState !== board.state)
            view.stateChanged(board.state);
    }

    function boardCall(board, method) {
        clearError();
        client.call(board.path, BOARD_IFACE, method, [])
            .catch(err => showError(err, boardContext(board)));
    }

    function askDelete(board) {
        board.actions.hidden = true;
        board.confirm.hidden = false;
    }

    function deleteBoard(board) {
        clearError();
        board.confirm.hidden = true;
        board.actions.hidden = false;
        client.call(MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", [board.name])
            .then(() => removeBoard(board.name))
            .catch(err => showError(err, boardContext(board)));
    }

    // The models piemud offers, from its Models property (the one table, src/shared/pi-models.c):
    // the default first, each as name (description). The page keeps no list of its own.
    function fillModelChoice() {
        return client.call(MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get", [MANAGER_IFACE, "Models"],
                           { type: "ss" })
            .then(([models]) => {
                $("create-model").replaceChildren(...models.v.map(([name, description]) => {
                    const o = document.createElement("option");
                    o.value = name;
                    o.textContent = name + " (" + description + ")";
                    return o;
                }));
            });
    }

    function createBoard(ev) {
        ev.preventDefault();
        clearError();
        const name = $("create-name").value.trim();
        const model = $("create-model").value;
        const image = $("create-image").value;
        const persistent = $("create-persistent").checked;
        $("create-button").disabled = true;
        // An image "" is the model's own default image (piemud picks it).
        client.call(MANAGER_PATH, MANAGER_IFACE, "CreateBoard",
                    [name, image, { persistent: cockpit.variant("b", persistent), model: cockpit.variant("s", model) }])
            .then(([path]) => {
                addBoard(name, path, me.id);
                $("create-name").value = "";
            })
            .catch(err => showError(err, { what: "create" }))
            .finally(() => { $("create-button").disabled = !may.create });
    }

    // --- the console and header view ---------------------------------------------------------

    function openView(board) {
        clearError();
        closeView();
        $("detail-title").textContent = board.name + ": console and GPIO header";
        $("board-detail").hidden = false;
        $("board-detail").dataset.board = board.name;
        view = new window.PiemuBoardView(client, board, $("console"), $("gpio-header"),
                                         (err, b) => showError(err, boardContext(b)));
        view.setManageable(manageable(board));
        view.open();
    }

    function closeView() {
        if (!view)
            return;
        view.close();
        view = null;
        $("board-detail").hidden = true;
        delete $("board-detail").dataset.board;
    }

    // --- images ------------------------------------------------------------------------------

    // The create form offers the model's default image first (piemud's "": "default" for the
    // Pi 3 and 4, "default-armhf" or "default-armel" for the 32-bit boards), then the catalog.
    function fillImageChoice(list) {
        const select = $("create-image");
        const current = select.value;
        const names = list.map(i => i[0]).sort((a, b) => a.localeCompare(b));
        const first = document.createElement("option");
        first.value = "";
        first.textContent = "the model's default";
        select.replaceChildren(first, ...names.map(n => {
            const o = document.createElement("option");
            o.value = n;
            o.textContent = n;
            return o;
        }));
        if (names.includes(current))
            select.value = current;
    }

    // --- start-up ----------------------------------------------------------------------------

    function applyPermissions() {
        $("create-note").hidden = may.create;
        $("create-note").textContent = may.create ? "" : "You may not create boards on this host";
        for (const el of $("create-form").elements)
            el.disabled = !may.create;
        images.setMayManage(may.images);
        for (const b of boards.values())
            renderBoard(b);
    }

    function init() {
        images = new window.PiemuImagesView(client, showError, fillImageChoice);
        $("create-form").addEventListener("submit", createBoard);
        $("detail-close").addEventListener("click", closeView);
        $("alert-close").addEventListener("click", clearError);
        // Tell piemud we stopped watching, rather than leaving it to the bridge's exit.
        window.addEventListener("pagehide", closeView);

        client.subscribe({ path: MANAGER_PATH, interface: MANAGER_IFACE, member: "BoardAdded" },
                         (path, iface, signal, [name, board]) => addBoard(name, board));
        client.subscribe({ path: MANAGER_PATH, interface: MANAGER_IFACE, member: "BoardRemoved" },
                         (path, iface, signal, [name]) => removeBoard(name));
        client.subscribe({ path_namespace: "/org/piemu/board", interface: "org.freedesktop.DBus.Properties",
                           member: "PropertiesChanged" }, onPropertiesChanged);

        const user = cockpit.user().then(u => { me = { id: u.id, name: u.name } });
        const perms = Promise.all([
            checkAuthorization("org.piemu.create-board").then(v => { may.create = v }),
            checkAuthorization("org.piemu.manage-own-board").then(v => { may.own = v }),
            checkAuthorization("org.piemu.manage-boards").then(v => { may.others = v }),
            checkAuthorization("org.piemu.manage-images").then(v => { may.images = v }),
        ]);
        Promise.all([user, perms])
            .then(() => {
                applyPermissions();
                return Promise.all([
                    client.call(MANAGER_PATH, MANAGER_IFACE, "ListBoards", [])
                        .then(([list]) => list.forEach(([name, state, owner, path]) => addBoard(name, path, owner))),
                    images.refresh(),
                    fillModelChoice(),
                ]);
            })
            .catch(err => showError(err))
            .finally(() => { $("piemu").dataset.ready = "true" });
    }

    document.addEventListener("DOMContentLoaded", init);
})();
