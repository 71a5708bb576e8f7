#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the page's third-party files from the lockfile: `npm ci` in a scratch copy inside the
# build directory, then copies xterm.js, xterm.css and xterm.js's licence (MIT: it travels with
# the code) out.
#   npm-build.sh NPM SRCDIR WORKDIR CACHE OUT_JS OUT_CSS OUT_LICENSE
# npm ci installs exactly what package-lock.json names and checks each tarball's integrity hash,
# so the page is the same on every machine. The cache (default /var/cache/piemu/npm) makes a
# rebuild work offline; --prefer-offline keeps npm from asking the registry when it has a copy.
set -eu
npm=$1 src=$2 work=$3 cache=$4 out_js=$5 out_css=$6 out_license=$7

mkdir -p "$work"
cp "$src/package.json" "$src/package-lock.json" "$work/"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    # A build by an ordinary user cannot write the system cache: keep one in the build tree.
    cache=$work/.npm-cache
fi
(cd "$work" && "$npm" ci --ignore-scripts --no-audit --no-fund --prefer-offline \
    --loglevel=warn --cache "$cache")
cp "$work/node_modules/@xterm/xterm/lib/xterm.js" "$out_js"
cp "$work/node_modules/@xterm/xterm/css/xterm.css" "$out_css"
cp "$work/node_modules/@xterm/xterm/LICENSE" "$out_license"
