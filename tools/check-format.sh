#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fails if any C source in the tree differs from what .clang-format makes of it.
# Usage: tools/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(find src tests bench -name '*.[ch]' -not -path '*/corpus/*' | sort)
if [ "${1:-}" = --fix ]; then
    exec clang-format -i "${files[@]}"
fi
clang-format --dry-run --Werror "${files[@]}" || {
    echo "check-format: run tools/check-format.sh --fix" >&2
    exit 1
}
echo "check-format: ${#files[@]} files formatted as .clang-format says"
