// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Turns a refusal from piemud (or polkit through it) into one sentence for the page. The page
// never shows a stack trace: whatever reaches the user goes through describeError().
"use strict";

(function () {
    const DENIED = new Set([
        "org.freedesktop.DBus.Error.AccessDenied",
        // The page has no way to answer a polkit password prompt, so "would need a password"
        // is the same as "no" here.
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
    ]);

    // One sentence per org.piemu.Error.* (src/shared/piemu-errors.h). The daemon's message is
    // appended where it carries the detail (libvirt's text, what is wrong with an image).
    const SENTENCES = {
        "org.piemu.Error.InvalidName": "That name is not allowed: use letters, digits, '.', '_' or '-', starting with a letter or digit.",
        "org.piemu.Error.NoSuchBoard": "That board does not exist (any more).",
        "org.piemu.Error.BoardExists": "A board with that name already exists.",
        "org.piemu.Error.NoSuchImage": "That image is not in the catalog.",
        "org.piemu.Error.NotRunning": "The board is not running.",
        "org.piemu.Error.AlreadyRunning": "The board is already running.",
        "org.piemu.Error.InvalidPin": "That pin number does not exist on this board.",
        "org.piemu.Error.InvalidOption": "An option of the request was not accepted.",
        "org.piemu.Error.Busy": "The board or image is busy; try again in a moment.",
        "org.piemu.Error.Unavailable": "The virtualization service is reconnecting; try again in a few seconds.",
        "org.piemu.Error.Failed": "The operation failed.",
        "org.piemu.Error.ImageNotMBR": "The file is not a disk image with an MBR partition table.",
        "org.piemu.Error.ImageNoBootPartition": "The disk image has no FAT boot partition.",
        "org.piemu.Error.ImageNoKernel": "The disk image's boot partition has no kernel.",
        "org.piemu.Error.ImageNoDeviceTree": "The disk image's boot partition has no device tree for this board.",
        "org.piemu.Error.ImageTruncated": "The disk image is truncated.",
        "org.piemu.Error.ImageTooLarge": "The disk image is too large.",
        "org.piemu.Error.ImageInvalid": "The disk image is not valid.",
        "org.piemu.Error.NoSuchWire": "That wire does not exist (any more).",
        "org.piemu.Error.WireExists": "That wire exists already.",
        "org.piemu.Error.PinDriven": "That pin is driven by a wire from another board.",
        "org.piemu.Error.WireCycle": "That wire would close a loop between boards.",
        "org.piemu.Error.ImageModelMismatch": "That image does not boot on this model.",
        "org.piemu.Error.NoSuchSensor": "The board has no sensor at that address.",
        "org.freedesktop.DBus.Error.InvalidArgs": "The request was not accepted (invalid arguments).",
        "org.freedesktop.DBus.Error.ServiceUnknown": "The piemu service (piemud) is not available on this host.",
        "org.freedesktop.DBus.Error.NoReply": "The piemu service did not answer in time.",
    };
    // For these the daemon's own message is the useful part, so it follows the sentence.
    const WITH_DETAIL = new Set([
        "org.piemu.Error.Failed", "org.piemu.Error.InvalidOption",
        "org.piemu.Error.ImageNotMBR", "org.piemu.Error.ImageNoBootPartition",
        "org.piemu.Error.ImageNoKernel", "org.piemu.Error.ImageNoDeviceTree",
        "org.piemu.Error.ImageTruncated", "org.piemu.Error.ImageTooLarge",
        "org.piemu.Error.ImageInvalid", "org.piemu.Error.ImageModelMismatch",
    ]);

    function deniedSentence(context) {
        if (context && context.what === "image")
            return "You may not manage images on this host";
        if (context && context.what === "create")
            return "You may not create boards on this host";
        if (context && context.owner)
            return "You may not manage " + context.owner + "'s boards";
        return "You are not allowed to do that";
    }

    function messageOf(err) {
        if (!err)
            return "";
        if (typeof err === "string")
            return err;
        return String(err.message || err.problem || "");
    }

    // context: {what: "board"|"image"|"create", owner: "NAME"} — who the refusal is about.
    function describeError(err, context) {
        const name = err && typeof err === "object" ? err.name : undefined;
        if (name && DENIED.has(name))
            return deniedSentence(context);
        if (name && SENTENCES[name]) {
            const detail = messageOf(err).trim();
            if (WITH_DETAIL.has(name) && detail)
                return SENTENCES[name] + " " + detail;
            return SENTENCES[name];
        }
        // Cockpit's own channel problems (the bridge went away, and so on).
        if (err && err.problem === "access-denied" || err && err.problem === "not-authorized")
            return deniedSentence(context);
        const text = messageOf(err).trim();
        return text || "Something went wrong.";
    }

    window.piemuErrors = { describeError, DENIED };
})();
