#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build piemu's QEMU: the Debian source of the QEMU version piemu runs on (the orig
# tarball of bookworm-backports' qemu), with piemu's patches (qemu/patches/*.patch,
# see qemu/README.md), configured for the Raspberry Pi machines only, installed
# under piemu's own prefix beside Debian's QEMU, which stays as it is.
#
# Downloads (orig tarball, the newer meson and pycotap QEMU's configure needs) are
# cached in /var/cache/piemu/qemu. The install is keyed by a hash of the Debian
# version, the patches, this script and the configure options: when the key of the
# installed copy matches, a run does nothing. The source and build tree of the last
# build stay in the cache for --check.
set -euo pipefail
umask 022

prog=build-qemu
usage() {
    cat <<EOF
Usage: tools/build-qemu.sh [--prefix DIR] [--cache DIR] [--jobs N] [--force] [--check]
                           [--print-path]

Build Debian's QEMU source with piemu's patches (qemu/patches) for the raspi
machines and install it under DIR. Run as root (it installs missing build
dependencies with apt-get).

  --prefix DIR   where to install (default /usr/lib/piemu/qemu); the binary is
                 DIR/bin/qemu-system-aarch64
  --cache DIR    downloads, the source and the build tree (default /var/cache/piemu/qemu)
  --jobs N       parallel compile jobs (default: the number of CPUs)
  --force        build even if the installed copy is up to date
  --check        also run the patches' qtests and QEMU's other raspi qtests in the
                 build tree (building it first if it is not the installed one's)
  --print-path   print the installed binary's path and exit (status 1 if absent)
  -h, --help     this text
EOF
}

# The QEMU piemu runs on: bookworm-backports' qemu (see /work/shared/FACTS.md,
# "Building QEMU here"). The patches apply to this upstream version.
debian_version='1:10.0.2+ds-2+deb13u1~bpo12+1'
orig_tarball='qemu_10.0.2+ds.orig.tar.xz'
orig_dir='qemu-10.0.2'
mirror=${PIEMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# QEMU 10 needs meson >= 1.5 (bookworm has 1.0.1, which piemu's own build uses) and
# pycotap; both are taken from bookworm-backports' .debs, unpacked into the cache
# and put on PYTHONPATH for this build only, so nothing on the host changes.
py_debs=('meson=1.7.0-1~bpo12+1' 'python3-pycotap=1.3.1-2~bpo12+1')
build_deps=(gcc make ninja-build pkg-config python3 python3-venv bzip2 flex bison
    libglib2.0-dev libpixman-1-dev libgnutls28-dev libslirp-dev libseccomp-dev
    libfdt-dev zlib1g-dev)

# Only what the raspi machines and piemu's boards use: qemu-system-aarch64 runs all
# six models (piemu never runs qemu-system-arm), TCG, gnutls for the TLS lines,
# slirp for -netdev user, VNC for a board's screen, seccomp for libvirt's -sandbox.
devices_mak='# piemu: the Raspberry Pi machines and the devices piemu plugs into them
CONFIG_RASPI=y
# Used by the raspi machines but not selected by CONFIG_RASPI in QEMU 10.0
CONFIG_ARM_GIC=y
CONFIG_OR_IRQ=y
CONFIG_UNIMP=y
# The I2C devices piemu offers (src/daemon/i2c-devices.c)
CONFIG_I2C_DEVICES=y
CONFIG_TMP105=y
CONFIG_TMP421=y
CONFIG_DS1338=y
# USB on DWC2: a hub (QEMU adds one when the port is taken), usb-net, keyboard/tablet
CONFIG_USB_HUB=y
CONFIG_USB_NETWORK=y
CONFIG_USB_HID=y'
configure_opts=(--target-list=aarch64-softmmu
    --without-default-features --without-default-devices --with-devices-aarch64=piemu
    --enable-tcg --enable-fdt=system --enable-gnutls --enable-slirp --enable-vnc
    --enable-pixman --enable-seccomp
    --disable-docs --disable-tools --disable-debug-info --disable-install-blobs
    "--with-pkgversion=piemu $debian_version")
# The tests --check runs: the patches' own and QEMU's other raspi ones.
check_tests=(bcm2835-gpio-test bcm2838-gpio-test bcm2835-dma-test bcm2835-i2c-test
    qom-test device-introspect-test)

prefix=/usr/lib/piemu/qemu
cache=/var/cache/piemu/qemu
jobs=$(nproc)
force=0
check=0
print_path=0
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --cache) cache=${2:?--cache needs a directory}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --force) force=1 ;;
    --check) check=1 ;;
    --print-path) print_path=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$prog: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $prefix in /*) ;; *) echo "$prog: --prefix must be absolute" >&2; exit 2 ;; esac
case $cache in /*) ;; *) echo "$prog: --cache must be absolute" >&2; exit 2 ;; esac

binary=$prefix/bin/qemu-system-aarch64
if [ "$print_path" = 1 ]; then
    echo "$binary"
    [ -x "$binary" ]
    exit
fi

say() { echo "$prog: $*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "run as root"
script_path=$(readlink -f -- "${BASH_SOURCE[0]}")
repo=$(dirname -- "$(dirname -- "$script_path")")
patches=("$repo"/qemu/patches/*.patch)
[ -e "${patches[0]}" ] || die "no patches in $repo/qemu/patches"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# The key of a build: everything that changes what gets installed.
key=$( {
    echo "$debian_version $orig_tarball"
    echo "${py_debs[*]}"
    echo "$devices_mak"
    echo "${configure_opts[*]}"
    cat -- "$script_path" "${patches[@]}"
} | sha256sum | cut -c1-16)
stamp=$prefix/share/piemu-qemu/build-key
work=$cache/work
start=$(now)

installed_key=$(cat "$stamp" 2>/dev/null || true)
if [ "$force" = 0 ] && [ "$installed_key" = "$key" ] && [ -x "$binary" ]; then
    say "up to date: $binary (key $key), nothing built"
    if [ "$check" = 0 ]; then
        exit 0
    fi
    if [ "$(cat "$work/key" 2>/dev/null || true)" != "$key" ]; then
        say "the build tree for --check is gone: building it again"
        force=1
    fi
fi

need_build=1
if [ "$force" = 0 ] && [ "$installed_key" = "$key" ] && [ -x "$binary" ]; then
    need_build=0
fi

# A private apt index of bookworm-backports (sources and .debs), so the host's own
# sources list and state stay untouched.
apt_private() {
    local dir=$cache/apt
    mkdir -p "$dir/lists/partial"
    if [ ! -s "$dir/sources.list" ]; then
        local kr=/usr/share/keyrings/debian-archive-keyring.gpg
        printf 'deb [signed-by=%s] %s bookworm-backports main\n' "$kr" "$mirror" >"$dir/sources.list"
        printf 'deb-src [signed-by=%s] %s bookworm-backports main\n' "$kr" "$mirror" \
            >>"$dir/sources.list"
    fi
    apt_opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$dir/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        -o APT::Sandbox::User=root)
    if [ -z "${apt_updated:-}" ]; then
        apt-get -q "${apt_opts[@]}" update >&2
        apt_updated=1
    fi
}

fetch_orig() {
    [ -s "$cache/$orig_tarball" ] && return
    say "fetching $orig_tarball (qemu $debian_version)"
    apt_private
    # apt checks the tarball against the signed index. The .dsc and debian.tar.xz
    # of a backport can be gone from the mirror: only the orig tarball matters here.
    (cd "$cache" && apt-get -q "${apt_opts[@]}" source --download-only \
        "qemu=$debian_version" >&2) || true
    [ -s "$cache/$orig_tarball" ] || die "could not fetch $orig_tarball"
}

# meson and pycotap from their .debs, unpacked under $cache/python.
fetch_python_deps() {
    local pydir=$cache/python p name deb
    for p in "${py_debs[@]}"; do
        name=${p%%=*}
        if [ ! -e "$pydir/$p.done" ]; then
            apt_private
            say "fetching $p"
            rm -f "$cache/${name}"_*.deb
            (cd "$cache" && apt-get -q "${apt_opts[@]}" download "$p" >&2)
            deb=$(ls "$cache/${name}"_*.deb)
            mkdir -p "$pydir/root"
            dpkg-deb -x "$deb" "$pydir/root"
            touch "$pydir/$p.done"
        fi
    done
    export PYTHONPATH=$pydir/root/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
}

install_build_deps() {
    local missing=() p
    for p in "${build_deps[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return
    say "installing build dependencies: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
        "${missing[@]}" >&2
}

# The files a set of patches touches.
patched_files() {
    sed -n 's|^--- a/||p; s|^+++ b/||p' "$@" | sort -u
}

# Bring tree $2 to tree $1 for the files the old and the new patches touch (the rest
# is the same tarball): a file that differs is copied, one $1 lacks is deleted, and
# every other file keeps its time stamp, so ninja rebuilds only what changed.
sync_patched() {
    local new=$1 old=$2 list=$3 f n=0
    while read -r f; do
        if [ -e "$new/$f" ]; then
            if ! cmp -s "$new/$f" "$old/$f"; then
                mkdir -p "$(dirname "$old/$f")"
                cp "$new/$f" "$old/$f"
                n=$((n + 1))
            fi
        elif [ -e "$old/$f" ]; then
            rm -f "$old/$f"
            n=$((n + 1))
        fi
    done <"$list"
    echo "$n"
}

build() {
    local t src=$work/$orig_dir bld=$work/build fresh=$work/fresh p n
    # What the configured build tree depends on, the patches aside.
    local base_key
    base_key=$(printf '%s\n' "$debian_version" "$devices_mak" "${configure_opts[*]}" "$prefix" |
        sha256sum | cut -c1-16)
    if [ "$force" = 1 ] || [ "$(cat "$work/base-key" 2>/dev/null || true)" != "$base_key" ]; then
        rm -rf "$work"
    fi
    rm -f "$work/key"
    mkdir -p "$work"
    t=$(now)
    rm -rf "$fresh"
    mkdir -p "$fresh"
    tar -C "$fresh" --no-same-owner -xf "$cache/$orig_tarball"
    for p in "${patches[@]}"; do
        patch -d "$fresh/$orig_dir" -p1 --batch --quiet <"$p" ||
            die "$(basename "$p") does not apply"
    done
    prepare_tree "$fresh/$orig_dir"
    if [ -d "$src" ] && [ -s "$work/patched-files" ]; then
        { cat "$work/patched-files"; patched_files "${patches[@]}"; } | sort -u >"$work/sync-files"
        n=$(sync_patched "$fresh/$orig_dir" "$src" "$work/sync-files")
        rm -rf "$fresh" "$work/sync-files"
        say "unpacked and patched (${#patches[@]} patches) in $(since "$t") s: $n files changed"
    else
        rm -rf "$src"
        mv "$fresh/$orig_dir" "$src"
        rm -rf "$fresh"
        say "unpacked and patched (${#patches[@]} patches) in $(since "$t") s"
    fi
    patched_files "${patches[@]}" >"$work/patched-files"

    if [ ! -e "$bld/build.ninja" ]; then
        t=$(now)
        mkdir -p "$bld"
        (cd "$bld" && "$src/configure" --python=/usr/bin/python3 --prefix="$prefix" \
            "${configure_opts[@]}" >configure.log 2>&1) ||
            { tail -30 "$bld/configure.log" >&2; die "configure failed ($bld/configure.log)"; }
        echo "$base_key" >"$work/base-key"
        say "configured in $(since "$t") s"
    fi
    t=$(now)
    ninja -C "$bld" -j "$jobs" >"$bld/build.log" 2>&1 ||
        { tail -30 "$bld/build.log" >&2; die "build failed ($bld/build.log)"; }
    say "compiled in $(since "$t") s ($(grep -c '^\[' "$bld/build.log") steps)"
    echo "$key" >"$work/key"
}

prepare_tree() {
    local src=$1
    printf '%s\n' "$devices_mak" >"$src/configs/devices/aarch64-softmmu/piemu.mak"
    # The +ds tarball has no firmware blobs, but QEMU's meson declares the edk2 ones
    # for an aarch64 target whenever bzip2 exists: empty stand-ins, never installed
    # (--disable-install-blobs), nor used by the raspi machines.
    sed -n "s/.*'\(edk2-[a-z0-9_-]*\.fd\)'.*/\1/p" "$src/pc-bios/meson.build" |
        while read -r f; do
            [ -e "$src/pc-bios/$f.bz2" ] || bzip2 -c </dev/null >"$src/pc-bios/$f.bz2"
        done
}

install_build() {
    local stage=$work/stage
    rm -rf "$stage" "$prefix.new"
    "$work/build/pyvenv/bin/meson" install -C "$work/build" --no-rebuild --strip \
        --destdir "$stage" >"$work/build/install.log" 2>&1 ||
        { tail -30 "$work/build/install.log" >&2; die "install failed"; }
    mkdir -p "$(dirname "$prefix")"
    mv "$stage$prefix" "$prefix.new"
    rm -rf "$stage"
    mkdir -p "$prefix.new/share/piemu-qemu"
    {
        echo "debian-version=$debian_version"
        echo "key=$key"
        for p in "${patches[@]}"; do echo "patch=$(basename "$p")"; done
        echo "configure=${configure_opts[*]}"
    } >"$prefix.new/share/piemu-qemu/build-info"
    echo "$key" >"$prefix.new/share/piemu-qemu/build-key"
    # Replace the old copy whole, so a board never runs a half-installed QEMU.
    rm -rf "$prefix.old"
    if [ -e "$prefix" ]; then mv "$prefix" "$prefix.old"; fi
    mv "$prefix.new" "$prefix"
    rm -rf "$prefix.old"
}

run_checks() {
    local tests=() t
    for t in "${check_tests[@]}"; do tests+=("qtest-aarch64/$t"); done
    say "running ${tests[*]}"
    # meson builds the test programs; the qtests start the build's own binary.
    "$work/build/pyvenv/bin/meson" test -C "$work/build" --num-processes "$jobs" \
        --print-errorlogs "${tests[@]}" >&2
}

if [ "$need_build" = 1 ]; then
    inst=$(dpkg-query -W -f '${Version}' qemu-system-arm 2>/dev/null || true)
    if [ -n "$inst" ] && [ "$inst" != "$debian_version" ]; then
        say "note: the installed Debian QEMU is $inst, piemu's QEMU is built from $debian_version"
    fi
    install_build_deps
    fetch_orig
    fetch_python_deps
    if [ "$(cat "$work/key" 2>/dev/null || true)" = "$key" ] && [ "$force" = 0 ]; then
        say "build tree for key $key is there: installing it"
    else
        build
    fi
    install_build
    say "installed $binary (key $key, $(du -sh "$prefix" | cut -f1)) in $(since "$start") s"
else
    fetch_python_deps
fi

if [ "$check" = 1 ]; then
    run_checks
fi
