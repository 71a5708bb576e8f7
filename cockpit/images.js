// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The image catalog: list, import and remove. Importing goes through `piemuctl import-image NAME -`
// with the file on its stdin: the browser cannot hand piemud a file descriptor over cockpit.dbus,
// so the bridge spawns piemuctl as the logged-in user and piemuctl passes its stdin on.
"use strict";

(function () {
    const CHUNK = 1 << 20;          // bytes per channel message
    const WINDOW = 16 * CHUNK;      // at most this much sent and not yet read by the bridge

    class ImagesView {
        // client: cockpit.dbus client; onError(err, context); onChanged(images) after each listing.
        constructor(client, onError, onChanged) {
            this.client = client;
            this.onError = onError;
            this.onChanged = onChanged;
            this.mayManage = false;
            this.body = document.getElementById("images-body");
            this.note = document.getElementById("images-note");
            this.form = document.getElementById("import-form");
            this.progress = document.getElementById("import-progress");
            this.form.addEventListener("submit", ev => { ev.preventDefault(); this.importSelected() });
        }

        setMayManage(may) {
            this.mayManage = may;
            this.note.hidden = may;
            this.note.textContent = may ? "" : "You may not manage images on this host";
            for (const el of this.form.elements)
                el.disabled = !may;
            for (const btn of this.body.querySelectorAll("button"))
                btn.disabled = !may;
        }

        refresh() {
            return this.client.call("/org/piemu", "org.piemu.Manager", "ListImages", [])
                .then(([images]) => {
                    images.sort((a, b) => a[0].localeCompare(b[0]));
                    this.render(images);
                    this.onChanged(images);
                })
                .catch(err => this.onError(err, { what: "image" }));
        }

        render(images) {
            const rows = images.map(([name, description]) => {
                const tr = document.createElement("tr");
                tr.dataset.image = name;
                const tdName = document.createElement("td");
                tdName.textContent = name === "default" ? "default (the built-in image)" : name;
                const tdDesc = document.createElement("td");
                tdDesc.textContent = description;
                const tdAct = document.createElement("td");
                const remove = document.createElement("button");
                remove.type = "button";
                remove.textContent = "Remove";
                remove.dataset.action = "remove-image";
                remove.disabled = !this.mayManage;
                remove.addEventListener("click", () => this.remove(name));
                tdAct.append(remove);
                tr.append(tdName, tdDesc, tdAct);
                return tr;
            });
            this.body.replaceChildren(...rows);
        }

        remove(name) {
            this.client.call("/org/piemu", "org.piemu.Manager", "RemoveImage", [name])
                .catch(err => this.onError(err, { what: "image" }))
                .finally(() => this.refresh());
        }

        importSelected() {
            const name = document.getElementById("import-name").value.trim();
            const file = document.getElementById("import-file").files[0];
            if (!name || !file)
                return;
            const button = document.getElementById("import-button");
            button.disabled = true;
            this.stream(name, file)
                .then(() => {
                    this.form.reset();
                    this.progress.textContent = "Imported " + name + ".";
                })
                .catch(err => {
                    this.progress.hidden = true;
                    this.onError(err, { what: "image" });
                })
                .finally(() => {
                    button.disabled = !this.mayManage;
                    this.refresh();
                });
        }

        // Streams the file to piemuctl's stdin in chunks, reading the file as it goes so a
        // multi-gigabyte image never sits in the page's memory. Cockpit 287's bridge does not
        // answer a "ping" on a stream channel, so after every WINDOW bytes the page makes a round
        // trip to the bridge on another channel (its internal bus): the bridge reads the
        // WebSocket in order, so when that answer comes it has taken every chunk sent before.
        stream(name, file) {
            const channel = window.cockpit.channel({
                payload: "stream",
                spawn: ["piemuctl", "import-image", name, "-"],
                binary: true,
                err: "message",
            });
            const progress = this.progress;
            progress.hidden = false;
            progress.dataset.state = "running";
            const show = sent => {
                progress.textContent = "Importing " + name + ": " + Math.floor(sent / CHUNK) + " of " +
                    Math.ceil(file.size / CHUNK) + " MiB";
            };

            let closed = null;
            const done = new Promise((resolve, reject) => {
                channel.addEventListener("close", (ev, options) => {
                    closed = options;
                    progress.dataset.state = "done";
                    if (!options.problem && !options["exit-status"] && !options["exit-signal"]) {
                        resolve();
                        return;
                    }
                    // piemuctl says on stderr what went wrong; that is the sentence to show.
                    const text = (options.message || "").trim().split("\n").filter(l => l).pop();
                    if (options.problem === "not-found")
                        reject(new Error("piemuctl is not installed on this host."));
                    else if (options.problem)
                        reject(new Error(window.cockpit.message(options)));
                    else
                        reject(new Error(text || "Importing " + name + " failed."));
                });
            });

            const bridge = window.cockpit.dbus(null, { bus: "internal" });
            const drain = () => bridge.call("/superuser", "org.freedesktop.DBus.Properties", "GetAll",
                                            ["cockpit.Superuser"])
                .catch(() => {}); // only the round trip matters, not its answer

            const pump = async () => {
                let inFlight = 0;
                for (let offset = 0; offset < file.size && !closed; offset += CHUNK) {
                    const bytes = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
                    channel.send(bytes);
                    inFlight += bytes.length;
                    show(offset + bytes.length);
                    if (inFlight >= WINDOW) {
                        await drain();
                        inFlight = 0;
                    }
                }
                if (!closed) {
                    channel.control({ command: "done" });
                    progress.textContent = "Importing " + name + ": checking the image…";
                }
            };
            show(0);
            return Promise.all([pump(), done]).finally(() => {
                if (!closed)
                    channel.close();
                bridge.close();
            });
        }
    }

    window.PiemuImagesView = ImagesView;
})();
