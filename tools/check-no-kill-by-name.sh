#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fails if the product or its tests would signal or look up a process by its name (pkill,
# killall, pgrep, pidof used to pick a process): another daemon of the same name may belong to a
# container or another user on the host. Use the PID you started, a pidfile, systemctl or
# `busctl status NAME`. Lines that only mention the rule (comments, docs) are not code and are
# not read: only scripts and programs are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
self=tools/check-no-kill-by-name.sh
mapfile -t files < <(git ls-files 2>/dev/null | grep -E '\.(sh|py|c|h|in|service|js)$|^tools/|^debian/' | grep -vx "$self" || true)
[ ${#files[@]} -gt 0 ] || { echo "check-no-kill-by-name: no files found (not a git checkout?)" >&2; exit 1; }
# A word on its own: "pkill"/"killall"/"pgrep"/"pidof", as a command or in an argv list. Comment
# lines (#, //, *) are skipped, so a comment may say why not. pidof inside a guest's own shell
# (the guest image's scripts kill their own shim) is the guest's business, not the host's.
bad=$(grep -nHE '(^|[^A-Za-z0-9_-])(pkill|killall|pgrep)([^A-Za-z0-9_-]|$)' "${files[@]}" |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(#|//|\*|/\*)' || true)
if [ -n "$bad" ]; then
    echo "check-no-kill-by-name: processes signalled or looked up by name:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "check-no-kill-by-name: ${#files[@]} files, none signals a process by name"
