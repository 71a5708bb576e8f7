#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian packages piemu and cockpit-piemu from the current tree and puts them in OUTDIR:
#   piemu_VERSION_ARCH.deb  cockpit-piemu_VERSION_all.deb
#   piemu_VERSION_ARCH.changes  piemu_VERSION_ARCH.buildinfo
#   piemu-dbgsym_VERSION_ARCH.deb  (debug symbols)
#   lintian.txt  (lintian's verdict on the .changes)  build.log  (dpkg-buildpackage's output)
# and prints the paths of the two .deb files, one a line, last (other tests read them from there).
#
# The files `git ls-files` lists (tracked, and new ones not ignored) are copied from the working
# tree (uncommitted edits included) to
# a temporary directory and built there with `dpkg-buildpackage -b -us -uc`, so the checkout and
# its build directories are left alone. Run as root, missing build dependencies are installed
# with `apt-get build-dep`. lintian runs on the result; an error fails the build.
# Cost: about 3-4 minutes on 2 cores (compile, unit tests, npm; xterm.js comes from the npm cache
# /var/cache/piemu/npm when it has it); a second run with the same inputs (the tree's files, this
# script, the build tools' versions, the options) is a hash check of a second or two.
#
#   tools/build-debs.sh [--version VERSION] [--nocheck] [--force] OUTDIR
#     --version V  package version V instead of debian/changelog's (e.g. for an upgrade test)
#     --nocheck    skip the unit tests during the build (DEB_BUILD_OPTIONS=nocheck)
#     --force      rebuild even if OUTDIR holds packages of the same inputs
set -euo pipefail

# All of it in one function, read whole before it runs: other tests call this script while the
# tree (this file included) may be edited.
main() {

prog=build-debs
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
usage() { sed -n '/^#   tools\/build-debs.sh/,/^#     --force/s/^# \{0,3\}//p' "$0"; }

version=""
nocheck=0
force=0
outdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --version) [ $# -ge 2 ] || die "--version needs a value"; version=$2; shift 2 ;;
        --version=*) version=${1#*=}; shift ;;
        --nocheck) nocheck=1; shift ;;
        --force) force=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) [ -z "$outdir" ] || die "one OUTDIR only"; outdir=$1; shift ;;
    esac
done
[ -n "$outdir" ] || { usage >&2; exit 2; }
[ -z "$version" ] || [[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] ||
    die "--version $version: not a native Debian version"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
script=$here/tools/build-debs.sh
for t in git dpkg-buildpackage dpkg-parsechangelog lintian sha256sum flock tar; do
    command -v "$t" >/dev/null || die "'$t' is missing (apt-get install git dpkg-dev debhelper lintian)"
done
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# One build per OUTDIR at a time: the container and VM tests may ask at once.
exec 9>"$outdir/.build-debs.lock"
flock -w 1800 9 || die "another build-debs into $outdir did not finish within 30 minutes"

# --- What the packages are made of --------------------------------------------------------------
# Tracked files and new ones not yet added (but not ignored ones: build directories, debian/'s
# build leftovers), so that a tree in the middle of an edit builds as it is. dpkg-buildpackage's
# obj-* directory of a build in the checkout itself is left out too.
mapfile -d '' files < <(git -C "$here" ls-files -z --cached --others --exclude-standard |
    grep -z -v -E '^obj-[^/]*/')
[ ${#files[@]} -gt 0 ] || die "git ls-files lists nothing in $here"
present=()
for f in "${files[@]}"; do
    # A file deleted in the working tree but still in the index is not part of it.
    [ -e "$here/$f" ] || [ -L "$here/$f" ] && present+=("$f")
done
pkgversion=${version:-$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)}
arch=$(dpkg --print-architecture)
inputs=$(
    echo "script=$(sha256sum <"$script" | cut -d' ' -f1)"
    echo "version=$pkgversion nocheck=$nocheck arch=$arch"
    # The tools that shape the result.
    dpkg-query -W -f '${Package}=${Version}\n' debhelper dpkg-dev lintian meson libvirt-dev \
        gcc gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi 2>/dev/null || true
    (cd "$here" && printf '%s\0' "${present[@]}" | LC_ALL=C sort -z | xargs -0 sha256sum) |
        sha256sum
    (cd "$here" && printf '%s\0' "${present[@]}" | LC_ALL=C sort -z | xargs -0 stat -c '%a %n') |
        sha256sum
)
stamp_hash=$(sha256sum <<<"$inputs" | cut -d' ' -f1)
deb=piemu_${pkgversion}_$arch.deb
cdeb=cockpit-piemu_${pkgversion}_all.deb
changes=piemu_${pkgversion}_$arch.changes
buildinfo=piemu_${pkgversion}_$arch.buildinfo
outputs=("$deb" "$cdeb" "$changes" "$buildinfo" lintian.txt)
stamp=$outdir/.build-debs.stamp

up_to_date() {
    [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_hash" ] || return 1
    local f
    for f in "${outputs[@]}"; do [ -s "$outdir/$f" ] || return 1; done
}
if up_to_date; then
    say "up to date in $outdir (inputs $stamp_hash); --force rebuilds"
    printf '%s\n' "$outdir/$deb" "$outdir/$cdeb"
    exit 0
fi

# --- Build dependencies -------------------------------------------------------------------------
work=$(mktemp -d /var/tmp/piemu-debs.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT TERM HUP
src=$work/piemu-$pkgversion
mkdir "$src"
(cd "$here" && printf '%s\0' "${present[@]}" | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$src"
if [ -n "$version" ]; then
    # Only the copy's changelog: the first line's version.
    sed -i "1s/^piemu ([^)]*)/piemu ($version)/" "$src/debian/changelog"
    [ "$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)" = "$version" ] ||
        die "could not set the version to $version"
fi

profiles=()
if [ "$nocheck" = 1 ]; then
    export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"
    profiles=(-Pnocheck)
fi
if ! (cd "$src" && dpkg-checkbuilddeps "${profiles[@]}" >/dev/null 2>&1); then
    [ "$(id -u)" = 0 ] || die "build dependencies missing (as root this script installs them): $(cd "$src" && dpkg-checkbuilddeps "${profiles[@]}" 2>&1 | tail -n1)"
    # libvirt-dev >= 11 exists only in bookworm-backports on Debian 12, and apt-get build-dep takes
    # no release per package: install it by name from there first (its own dependencies follow;
    # systemd stays at bookworm's).
    if ! (cd "$src" && dpkg-checkbuilddeps "${profiles[@]}" 2>&1 | grep -q 'libvirt-dev') ||
        ! apt-cache policy libvirt-dev 2>/dev/null | grep -q bookworm-backports; then
        :
    else
        say "installing libvirt-dev from bookworm-backports"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q -y \
            --no-install-recommends install libvirt-dev/bookworm-backports >"$outdir/build-dep.log" 2>&1 ||
            die "apt-get install libvirt-dev/bookworm-backports failed; see $outdir/build-dep.log"
    fi
    say "installing build dependencies (apt-get build-dep)"
    (cd "$src" && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q -y \
        --no-install-recommends build-dep "${profiles[@]}" ./) >>"$outdir/build-dep.log" 2>&1 ||
        die "apt-get build-dep failed; see $outdir/build-dep.log"
fi

# --- Build --------------------------------------------------------------------------------------
# npm's cache for xterm.js: the shared one when we may write it (a rebuild needs no network),
# else one inside the temporary tree.
npm_cache=/var/cache/piemu/npm
if ! mkdir -p "$npm_cache" 2>/dev/null || [ ! -w "$npm_cache" ]; then
    npm_cache=$work/npm-cache
fi
say "building $deb and $cdeb in $work (log: $outdir/build.log)"
start=$(date +%s)
if ! (cd "$src" && PIEMU_NPM_CACHE=$npm_cache dpkg-buildpackage -b -us -uc "${profiles[@]}") \
    >"$outdir/build.log" 2>&1; then
    tail -n 30 "$outdir/build.log" >&2
    die "dpkg-buildpackage failed; see $outdir/build.log"
fi
say "built in $(($(date +%s) - start)) s"
for f in "$deb" "$cdeb" "$changes" "$buildinfo"; do
    [ -s "$work/$f" ] || die "dpkg-buildpackage did not make $f"
done

# --- Lint, then publish -------------------------------------------------------------------------
# lintian reads the .changes and both .debs. Root is fine here (it only unpacks).
set +e
lintian --fail-on error --display-info --tag-display-limit 0 "$work/$changes" >"$work/lintian.txt" 2>&1
lrc=$?
set -e
grep -v 'running with root privileges' "$work/lintian.txt" >&2 || true
[ "$lrc" = 0 ] || { cp "$work/lintian.txt" "$outdir/lintian.txt"; die "lintian reports errors (see $outdir/lintian.txt)"; }

rm -f "$outdir"/piemu_*.deb "$outdir"/cockpit-piemu_*.deb "$outdir"/piemu-dbgsym_*.deb \
    "$outdir"/piemu_*.changes "$outdir"/piemu_*.buildinfo "$stamp"
cp "$work/$deb" "$work/$cdeb" "$work/$changes" "$work/$buildinfo" "$work/lintian.txt" "$outdir/"
# The debug symbols, which the .changes lists too (debhelper makes them; nothing installs them).
cp "$work"/piemu-dbgsym_*.deb "$outdir/" 2>/dev/null || true
echo "$stamp_hash" >"$stamp"
say "packages in $outdir: $deb $cdeb $changes $buildinfo (lintian: $outdir/lintian.txt)"
printf '%s\n' "$outdir/$deb" "$outdir/$cdeb"
}

# One line: bash has read it whole before main runs, whatever the file becomes meanwhile.
main "$@"; exit $?
