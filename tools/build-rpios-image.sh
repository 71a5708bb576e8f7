#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build a test SD card image shaped like a Raspberry Pi OS (bookworm) release,
# from Debian packages only: an MBR disk with a FAT32 "bootfs" (kernel8.img,
# initramfs8, bcm2710-rpi-3-b.dtb, cmdline.txt, config.txt) and an ext4
# "rootfs" holding an armhf Debian bookworm userland (systemd, python3,
# gpiozero, RPi.GPIO, libgpiod). Nothing is loop-mounted. `--help` tells more.
set -euo pipefail
umask 022

prog=build-rpios-image

usage() {
    cat <<'EOF'
NAME
    build-rpios-image.sh - build a Raspberry Pi OS-shaped test image from Debian packages

SYNOPSIS
    tools/build-rpios-image.sh [--output DIR] [--cache DIR] [--mirror URL]
                               [--security-mirror URL | --no-security] [--force]
                               [--verbose]
    tools/build-rpios-image.sh --help

DESCRIPTION
    Builds piemu-rpios-test.img, a raw SD card image laid out like a Raspberry Pi
    OS bookworm release, and piemu-rpios-test.img.xz, the same compressed with
    "xz -3". It is made from Debian packages only (no Raspberry Pi firmware, no
    Raspberry Pi kernel), for testing how piemu imports and boots RPi OS images
    on its emulated boards (QEMU raspi3b). Run it as root.

    The image is cached: when the output directory holds both files and a stamp
    matching this script, tools/lib/image-build.sh, images/rpios/init and the
    versions of every package that would go into the image, nothing is
    rebuilt. Downloaded .debs are kept in the cache directory, so a rebuild on
    the same machine downloads nothing again.

    Steps, each timed:
      resolve    Resolve linux-image-arm64:arm64 (from the host's apt lists, as
                 tools/build-image.sh does) and busybox-static:arm64; refresh a
                 private armhf apt index of bookworm, bookworm-updates and
                 bookworm-security (retried once; without the security suite if
                 it keeps failing) and resolve the armhf package set.
      binfmt     Mount binfmt_misc and register qemu-arm from
                 /usr/lib/binfmt.d/qemu-arm.conf if armhf binaries do not run.
      fetch      Download the arm64 kernel and busybox .debs (if not cached).
      rootfs     mmdebstrap --mode=root --variant=minbase --architectures=armhf
                 into a directory, reusing the cached .debs and the index above.
      customize  Hostname, root password, fstab, serial getty, masked units,
                 kernel modules (a Pi-relevant subset), cache the new .debs.
      initramfs  busybox-static + SD card and ext4 modules + an /init
                 (images/rpios/init) that mounts root= and switch_root's to
                 /sbin/init.
      fs         mkfs.vfat + mcopy for bootfs, mkfs.ext4 -d for rootfs (files,
                 not mounts), checked with fsck.fat -n and e2fsck -fn.
      disk       Sparse raw disk: sfdisk MBR, dd conv=sparse,notrunc of both
                 file systems at their partition offsets.
      xz         xz -T0 -3.

IMAGE LAYOUT
    MBR (dos) partition table, disk identifier 0x5049454d ("PIEM"):
      p1  start 4 MiB, 128 MiB, type 0x0c (W95 FAT32 LBA), FAT32 label "bootfs",
          PARTUUID 5049454d-01, mounted at /boot/firmware
      p2  start 132 MiB to the end, type 0x83, ext4 label "rootfs",
          PARTUUID 5049454d-02, mounted at /
    The disk is the smallest power of two (at least 1 GiB) that leaves the root
    file system at least 25% free: QEMU's SD card model wants a power of two.

    bootfs:
      kernel8.img           Debian's arm64 kernel, raw Image (gunzip'd)
      initramfs8            gzip'd newc cpio (busybox /init, see above); it
                            understands root=PARTUUID=|UUID=|LABEL=|/dev/...,
                            rootfstype=, rootflags=, rootwait, rootdelay=,
                            ro, rw (read-only unless rw) and init=
      bcm2710-rpi-3-b.dtb   Debian's broadcom/bcm2837-rpi-3-b.dtb with the header's
                            I2C bus off and an __overrides__/i2c_arm for it, as
                            in Raspberry Pi OS's own tree
      cmdline.txt           console=serial0,115200 console=tty1
                            root=PARTUUID=5049454d-02 rootfstype=ext4
                            fsck.repair=yes rootwait
      config.txt            Raspberry Pi OS bookworm's, plus enable_uart=1 and
                            dtparam=i2c_arm=on (what raspi-config's serial login
                            and I2C options set)
      issue.txt             what built the image, from which packages

    rootfs: Debian bookworm armhf, minbase plus systemd, systemd-sysv, udev,
    kmod, procps, dosfstools, python3, python3-gpiozero, python3-rpi.gpio,
    python3-libgpiod, gpiod, debian-archive-keyring (no recommends, no
    manual pages or documentation besides copyright files; merged /usr).
    Hostname raspberrypi; root password "raspberry" (no other user, no
    autologin); a login prompt on ttyAMA0 (serial-getty@ttyAMA0) and tty1; no
    network configuration; masked: units that wait for the network or run
    timers (apt, dpkg, e2scrub, fstrim, man-db), dev-hugepages.mount,
    sys-kernel-tracing.mount, modprobe@efi_pstore, modprobe@dm_mod. /usr/lib/modules/KVER holds the kernel's
    modules for the SoC, buses, USB, sensors, file systems and crypto (not the
    GPU, media, PCI/SCSI/NIC drivers) with a matching modules.dep.

BOOTING IT IN PLAIN QEMU
    The firmware's work is left to the caller: the dtb needs
    /system/linux,revision (gpiozero and RPi.GPIO want it) and no bluetooth
    child under /soc/serial@7e201000 (else there is no /dev/ttyAMA0), and
    console=serial0 must become console=ttyAMA0. tools/check-rpios-image.py
    does all this and checks that the image boots to a login prompt.

    RPi.GPIO and gpiozero's native pin factory map the GPIO registers through
    /dev/gpiomem (a Raspberry Pi kernel driver; Debian's kernel has none), else
    /dev/mem. Debian's kernel has STRICT_DEVMEM and IO_STRICT_DEVMEM, and the
    GPIO block belongs to pinctrl-bcm2835, so that mmap fails ("Mmap of GPIO
    registers failed", PermissionError) unless the kernel command line has
    iomem=relaxed. The image does not add it; libgpiod (gpioget, gpioset,
    python3-libgpiod) needs nothing.

OPTIONS
    --output DIR
        Where the image, its .xz and the stamp go
        (default /var/cache/piemu/rpios).
    --cache DIR
        Where downloaded .debs and the armhf apt index are kept
        (default /var/cache/piemu/rpios/cache).
    --mirror URL
        Debian mirror for the armhf root (default http://deb.debian.org/debian).
    --security-mirror URL
        Debian security mirror (default http://deb.debian.org/debian-security).
    --no-security
        Build from bookworm and bookworm-updates only.
    --force
        Rebuild even if the image is up to date.
    --verbose
        Run mmdebstrap with --verbose (its log, with time stamps, is kept in
        CACHE/mmdebstrap.log after every build anyway).
    -h, --help
        Show this text.

FILES
    DIR/piemu-rpios-test.img       the raw image (sparse)
    DIR/piemu-rpios-test.img.xz    the same, xz -3
    DIR/.piemu-rpios-stamp         what the image was built from
    CACHE/debs-armhf, CACHE/debs-arm64
                                   .debs of the last build (older ones pruned)
    CACHE/apt-armhf                private apt index (armhf)
    CACHE/host-pkgcache.bin        apt's binary cache of the host's lists
    CACHE/mmdebstrap.log           mmdebstrap's output of the last build

ENVIRONMENT
    Runs without a terminal (CI=true, stdin closed). Needs mmdebstrap,
    arch-test, qemu-user-static (qemu-arm), apt-get, dpkg-deb, depmod,
    modprobe, cpio, gzip, xz, mkfs.ext4, e2fsck, mkfs.vfat, fsck.fat, mcopy,
    sfdisk, dd, flock; the host's apt must know arm64 (dpkg
    --add-architecture arm64; apt-get update), as for tools/build-image.sh.

EXIT STATUS
    0 when the image is built or already up to date, non-zero on error.

EXAMPLES
    tools/build-rpios-image.sh
    tools/build-rpios-image.sh --output /tmp/rpios --force
    tools/check-rpios-image.py /var/cache/piemu/rpios/piemu-rpios-test.img
EOF
}

script_path=$(readlink -f -- "${BASH_SOURCE[0]}")
script_dir=$(dirname -- "$script_path")
# shellcheck source=tools/lib/image-build.sh
. "$script_dir/lib/image-build.sh"
init_src=$(readlink -f -- "$script_dir/../images/rpios/init")

output=/var/cache/piemu/rpios
cache=""
mirror=http://deb.debian.org/debian
security_mirror=http://deb.debian.org/debian-security
security=1
force=0
verbose=""
while [ $# -gt 0 ]; do
    case "$1" in
        --output) [ $# -ge 2 ] || die "--output needs a directory"; output=$2; shift 2 ;;
        --output=*) output=${1#*=}; shift ;;
        --cache) [ $# -ge 2 ] || die "--cache needs a directory"; cache=$2; shift 2 ;;
        --cache=*) cache=${1#*=}; shift ;;
        --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; mirror=$2; shift 2 ;;
        --mirror=*) mirror=${1#*=}; shift ;;
        --security-mirror) [ $# -ge 2 ] || die "--security-mirror needs a URL"; security_mirror=$2; shift 2 ;;
        --security-mirror=*) security_mirror=${1#*=}; shift ;;
        --no-security) security=0; shift ;;
        --force) force=1; shift ;;
        --verbose) verbose=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "Try 'tools/build-rpios-image.sh --help'." >&2; die "unknown argument: $1" ;;
    esac
done
[ -n "$cache" ] || cache=/var/cache/piemu/rpios/cache
output=$(readlink -m -- "$output")
cache=$(readlink -m -- "$cache")
[ "$output" != / ] && [ "$cache" != / ] || die "/ makes no sense as a directory here"
[[ "$mirror" =~ ^(https?|file):// ]] || die "--mirror: not an http(s):// or file:// URL: $mirror"
[[ "$security_mirror" =~ ^(https?|file):// ]] || die "--security-mirror: not a URL: $security_mirror"
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap --mode=root, binfmt_misc, device nodes)"
require_tools " (packages: mmdebstrap arch-test qemu-user-static e2fsprogs dosfstools mtools fdisk xz-utils cpio kmod)" \
    mmdebstrap arch-test apt-get apt-cache /usr/lib/apt/apt-helper dpkg-deb dpkg-query depmod \
    modprobe cpio gzip xz mkfs.ext4 e2fsck mkfs.vfat fsck.fat mcopy sfdisk dd truncate flock \
    sha256sum od chroot fdtget fdtput dtc
[ -f "$init_src" ] || die "missing $init_src (the initramfs' /init, next to this script)"

img_name=piemu-rpios-test.img
stamp_name=.piemu-rpios-stamp
disk_id=5049454d                 # "PIEM": PARTUUIDs 5049454d-01 and 5049454d-02
boot_start_mib=4
boot_size_mib=128
root_start_mib=$((boot_start_mib + boot_size_mib))
suite=bookworm
dtb_rel=broadcom/bcm2837-rpi-3-b.dtb
dtb_name=bcm2710-rpi-3-b.dtb     # what RPi OS's firmware loads on a Pi 3 B
cmdline_txt="console=serial0,115200 console=tty1 root=PARTUUID=$disk_id-02 rootfstype=ext4 fsck.repair=yes rootwait"
root_password=raspberry
hostname=raspberrypi
armhf_pkgs=(systemd systemd-sysv udev kmod procps dosfstools python3 python3-gpiozero
            python3-rpi.gpio python3-libgpiod gpiod debian-archive-keyring)
# Modules the initramfs loads (with their dependencies), in this order. The SD
# card is on the SDHOST controller (mmc/host/bcm2835): QEMU moves the card there
# when the kernel muxes GPIO48-53 to it. The Arasan SDHCI (sdhci-iproc) is the
# Wi-Fi's in the device tree; udev loads it later from the root file system.
initramfs_modules=(bcm2835 crc32c_generic ext4)
# Kernel modules copied into the root (paths under lib/modules/KVER/kernel/),
# plus whatever they depend on: the SoC, its buses, USB, sensors, input, file
# systems, crypto. Not: GPUs, media, PCI/SATA/SCSI/NIC hardware a Pi 3 lacks,
# lib/test_*, or the VideoCore services (vchiq: audio, camera), which fail in
# QEMU and cost boot time.
module_include='^(arch|block|crypto|mm)/|^lib/([^t]|t[^e])'
module_include+='|^fs/(ext4|jbd2|fat|nls|autofs|fuse|overlayfs|squashfs|isofs|udf|exfat|configfs|pstore|quota)/'
module_include+='|^fs/(mbcache|binfmt_misc)\.ko'
module_include+='|^drivers/(base|bcma|bluetooth|bus|char|clk|cpufreq|dma|extcon|firmware|gpio|hid|hwmon|i2c|iio|input|irqchip|leds|mailbox|mfd|misc|mmc|mux|nvmem|phy|pinctrl|power|pps|ptp|pwm|regulator|reset|rtc|soc|spi|thermal|tty|uio|usb|video|w1|watchdog)/'
module_include+='|^drivers/block/(loop|nbd)\.ko|^drivers/block/zram/'
module_include+='|^drivers/net/(usb|phy|mdio|wireless/broadcom)/|^drivers/net/[^/]*\.ko'
module_include+='|^drivers/scsi/(scsi_mod|scsi_common|sd_mod|sg)\.ko'
module_include+='|^net/(packet|unix|ipv6|rfkill|bluetooth|wireless|can|llc|802|8021q|bridge)/'
module_include+='|^sound/(core|usb|soc/bcm)/|^sound/(soundcore|ac97_bus)\.ko'

# --- timing ---------------------------------------------------------------------------
t_start=$(date +%s%N)
phase_names=()
phase_secs=()
phase_t0=0
phase_name=""
phase() { # phase NAME: start timing a phase (ends the previous one)
    phase_end
    phase_name=$1
    phase_t0=$(date +%s%N)
    say "== $1"
}
phase_end() {
    [ -n "$phase_name" ] || return 0
    local s
    s=$(awk -v a="$phase_t0" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b - a) / 1e9}')
    phase_names+=("$phase_name"); phase_secs+=("$s")
    say "   $phase_name took $s s"
    phase_name=""
}
timing_summary() {
    local i total
    phase_end
    total=$(awk -v a="$t_start" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b - a) / 1e9}')
    say "timing (seconds):"
    for i in "${!phase_names[@]}"; do printf '  %-10s %7s\n' "${phase_names[$i]}" "${phase_secs[$i]}"; done
    printf '  %-10s %7s\n' total "$total"
}

# --- locking, temporary directories -----------------------------------------------
mkdir -p "$cache" "$output"
# One build at a time per cache and per output directory (flock on the
# directories themselves: no lock files).
exec 9<"$cache"
flock -w 1800 9 || die "another build is using $cache"
exec 8<"$output"
flock -w 1800 8 || die "another build is writing $output"

# Leftovers of a build that was killed (we hold the locks: none is running).
remove_leftovers "$cache" '.work.??????'
remove_leftovers "$output" ".$img_name.tmp.??????"
work=$(mktemp -d "$cache/.work.XXXXXX")
remove_on_exit "$work"
export DEBIAN_FRONTEND=noninteractive

# --- resolve ------------------------------------------------------------------------
phase resolve
# The arm64 kernel and busybox, from the host's apt lists (tools/build-image.sh
# does the same), with our own binary cache of them (Debian's container images
# turn apt's off; apt rebuilds it when the lists change).
# shellcheck disable=SC2034 # (passed by name)
host_apt=(-o "Dir::Cache::pkgcache=$cache/host-pkgcache.bin" -o Dir::Cache::srcpkgcache=)
kpkg=$(deb_kernel_package host_apt arm64 linux-image-arm64) || true
[ -n "$kpkg" ] || die "cannot resolve linux-image-arm64:arm64; is the arm64 architecture" \
    "added and 'apt-get update' done? (tools/install-deps.sh does both)"
kver=${kpkg#linux-image-}
arm64_pkgs=("$kpkg" busybox-static)
declare -A ver file sha
deb_resolve host_apt arm64 "${arm64_pkgs[@]}" || die "cannot resolve the arm64 packages"

# The armhf root: a private apt configuration and index in the cache. mmdebstrap
# gets this very index (--skip=update), so what it installs is what we resolved.
aptdir=$cache/apt-armhf
write_sources() { # $1: 1 = with the security suite
    private_apt_sources "$aptdir" "$mirror" "$suite" "$([ "$1" = 0 ] || echo "$security_mirror")" ||
        die "cannot set up the armhf index"
}
private_apt_conf armhf "$aptdir"
armhf_apt() { APT_CONFIG=$aptdir/apt.conf apt-get -q "$@" </dev/null; }
apt_update() {
    armhf_apt -o APT::Update::Error-Mode=any update >"$work/apt-update.log" 2>&1
}
show_apt_errors() { grep -E '^(E|W):' "$work/apt-update.log" | sed 's/^/    /' >&2 || true; }
has_list() { private_apt_has_list "$aptdir" "$1" armhf; }
used_security=$security
write_sources "$security"
if ! apt_update; then
    warn "apt-get update (armhf) failed; retrying once in 5 s:"
    show_apt_errors
    sleep 5
    updated=0
    if apt_update; then
        updated=1
    else
        show_apt_errors
        if [ "$security" = 1 ]; then
            warn "apt-get update failed twice; trying $suite and $suite-updates only" \
                "(the next run tries $suite-security again)"
            used_security=0
            write_sources 0
            if apt_update; then updated=1; else show_apt_errors; fi
        fi
    fi
    if [ "$updated" = 0 ]; then
        # Offline? The index of the last successful update still resolves, and
        # if the image was built from it, nothing needs downloading.
        has_list "$suite" || die "apt-get update (armhf) failed and there is no earlier index"
        used_security=0
        [ "$security" = 0 ] || ! has_list "$suite-security" || used_security=1
        write_sources "$used_security"
        warn "apt-get update failed; using the armhf index of the last successful update"
    fi
fi
# mmdebstrap minbase = Essential:yes of the suite + Priority:required + apt +
# --include; resolve that set with an empty dpkg status.
# (apt may keep the lists compressed: apt-helper cat-file reads any of them.)
has_list "$suite" || die "no armhf Packages index of $suite main in $aptdir/lists"
main_packages=$(find "$aptdir/lists" -maxdepth 1 -type f \
    -name "*_dists_${suite}_main_binary-armhf_Packages*" ! -name '*.diff_Index' -print -quit)
mapfile -t base_pkgs < <(/usr/lib/apt/apt-helper cat-file "$main_packages" | awk '
    /^Package: /{p=$2} /^Essential: yes/{e=1} /^Priority: required/{r=1}
    /^$/{if (p != "" && (e || r)) print p; p=""; e=r=0}
    END{if (p != "" && (e || r)) print p}' | LC_ALL=C sort -u)
[ "${#base_pkgs[@]}" -gt 10 ] || die "found no Essential/required packages in $main_packages"
# (usr-is-merged: mmdebstrap's merged-usr hook installs it, instead of usrmerge.)
armhf_apt -s install "${base_pkgs[@]}" apt usr-is-merged "${armhf_pkgs[@]}" >"$work/resolve.log" 2>&1 ||
    die "cannot resolve the armhf package set: $(grep -E '^E:' "$work/resolve.log" | head -n3)"
sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' "$work/resolve.log" | LC_ALL=C sort >"$work/resolved"
[ -s "$work/resolved" ] || die "apt resolved no armhf packages (see $work/resolve.log)"
say "kernel $kpkg ${ver[$kpkg]}, busybox-static ${ver[busybox-static]}," \
    "$(wc -l <"$work/resolved") armhf packages$([ "$used_security" = 1 ] || echo ' (no security suite)')"

# --- up to date? -------------------------------------------------------------------
stamp=$(
    stamp_code "$script_path" "init=$init_src"
    echo "mirror=$mirror"
    [ "$used_security" = 0 ] || echo "security=$security_mirror"
    for p in "${arm64_pkgs[@]}"; do echo "arm64=$p=${ver[$p]}"; done
    sed 's/^/armhf=/' "$work/resolved"
)
up_to_date() {
    stamp_is "$output/$stamp_name" "$stamp" || return 1
    [ -s "$output/$img_name" ] && [ -s "$output/$img_name.xz" ] &&
        [ ! "$output/$img_name" -nt "$output/$stamp_name" ]
}
if [ "$force" = 0 ] && up_to_date; then
    phase_end
    say "$output/$img_name is up to date ($kpkg ${ver[$kpkg]}," \
        "$(wc -l <"$work/resolved") armhf packages); --force rebuilds"
    timing_summary
    exit 0
fi

# --- binfmt ------------------------------------------------------------------------
phase binfmt
if ! arch-test armhf >/dev/null 2>&1; then
    bm=/proc/sys/fs/binfmt_misc
    if [ ! -e "$bm/register" ]; then
        mount -t binfmt_misc binfmt_misc "$bm" ||
            die "cannot mount binfmt_misc on $bm (a container without privileges?)"
    fi
    if [ -e "$bm/qemu-arm" ]; then
        echo 1 >"$bm/qemu-arm"
    else
        conf=/usr/lib/binfmt.d/qemu-arm.conf
        [ -f "$conf" ] || die "missing $conf (package qemu-user-binfmt / qemu-user-static)"
        grep -v '^[#;]' "$conf" | grep -m1 '^:qemu-arm:' >"$bm/register" ||
            die "cannot register $conf with binfmt_misc"
    fi
    arch-test armhf >/dev/null 2>&1 ||
        die "armhf binaries still do not run after registering qemu-arm ($(arch-test armhf 2>&1))"
    say "registered qemu-arm with binfmt_misc"
else
    say "armhf binaries run already"
fi

# --- fetch the arm64 .debs ---------------------------------------------------------
phase fetch
debs64=$cache/debs-arm64
mkdir -p "$debs64"
remove_leftovers "$debs64" '.download.??????'
# tools/build-image.sh's cache may have them already (read only).
kdeb=$(deb_fetch host_apt arm64 "$kpkg" "$debs64" /var/cache/piemu/debs)
bdeb=$(deb_fetch host_apt arm64 busybox-static "$debs64" /var/cache/piemu/debs)
# Keep only these two in the cache.
find "$debs64" -maxdepth 1 -type f -name '*.deb' ! -name "${file[$kpkg]}" \
    ! -name "${file[busybox-static]}" -delete
kx=$work/kernel-pkg
bx=$work/busybox-pkg
deb_unpack_kernel_busybox "$kdeb" "$kx" "$bdeb" "$bx" "$kver"

# --- rootfs: mmdebstrap ------------------------------------------------------------
phase rootfs
debs32=$cache/debs-armhf
mkdir -p "$debs32"
root=$work/root
# No manual pages, documentation (but copyright files) or translations. Not a
# --dpkgopt: mmdebstrap would pipe every essential package through its (slow,
# Python) tar filter; dpkg in the chroot honours the file from the extract hook
# on, and what the essential packages' extraction left is deleted afterwards.
nodoc=$work/01-piemu-nodoc
cat >"$nodoc" <<'EOF'
# piemu test image: no manual pages, documentation or translations
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
export PIEMU_LISTS=$aptdir/lists PIEMU_DEBS=$debs32 PIEMU_NODOC=$nodoc
# Reuse the index resolved above and the cached .debs (hard links when the cache
# and the work directory share a file system); keep the downloaded .debs in the
# tree (essential/unlink, cleanup/apt/cache) to move them into the cache after.
mm_log=$work/mmdebstrap.log
# The merged-usr hook makes the /bin, /sbin, /lib symlinks up front as
# debootstrap does, instead of the usrmerge package converting the tree after
# the fact (a Perl script under emulation: ~20 s).
mm_hooks=/usr/share/mmdebstrap/hooks/merged-usr
[ -f "$mm_hooks/setup00.sh" ] || die "missing $mm_hooks (mmdebstrap's hooks)"
mm_sources=("deb $mirror $suite main" "deb $mirror $suite-updates main")
[ "$used_security" = 0 ] || mm_sources+=("deb $security_mirror $suite-security main")
if ! mmdebstrap --mode=root --variant=minbase --architectures=armhf \
        --skip=update --skip=essential/unlink --skip=cleanup/apt/cache \
        --aptopt='APT::Install-Recommends "false"' \
        --aptopt='Acquire::Languages "none"' \
        --dpkgopt='force-unsafe-io' ${verbose:+--verbose} --hook-dir="$mm_hooks" \
        --include="$(IFS=,; echo "${armhf_pkgs[*]}")" \
        --setup-hook='find "$PIEMU_LISTS" -maxdepth 1 -type f ! -name lock -exec cp -t "$1/var/lib/apt/lists/" {} +' \
        --setup-hook='mkdir -p "$1/var/cache/apt/archives/partial" && for d in "$PIEMU_DEBS"/*.deb; do [ -e "$d" ] || continue; cp -l "$d" "$1/var/cache/apt/archives/" 2>/dev/null || cp "$d" "$1/var/cache/apt/archives/"; done' \
        --extract-hook='cp "$PIEMU_NODOC" "$1/etc/dpkg/dpkg.cfg.d/01-piemu-nodoc"' \
        "$suite" "$root" "${mm_sources[@]}" </dev/null 2>&1 |
        while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done >"$mm_log"; then
    cp -f -- "$mm_log" "$cache/mmdebstrap.log"
    tail -n 40 "$mm_log" >&2
    die "mmdebstrap failed (last lines above; all in $cache/mmdebstrap.log)"
fi
cp -f -- "$mm_log" "$cache/mmdebstrap.log"
say "mmdebstrap done ($(du -sm --exclude=var/cache/apt "$root" | cut -f1) MiB)"

# --- customize ---------------------------------------------------------------------
phase customize
# Cache the .debs: move the new ones out of the tree, drop the ones no longer used.
mapfile -t installed < <(dpkg-query --admindir="$root/var/lib/dpkg" -W \
    -f='${db:Status-Abbrev}${Package}_${Version}_${Architecture}.deb\n' |
    sed -n 's/^ii *//p' | sed 's/:/%3a/g' | LC_ALL=C sort)
[ "${#installed[@]}" -gt 50 ] || die "dpkg in the new root lists only ${#installed[@]} packages"
new_debs=0
for d in "$root"/var/cache/apt/archives/*.deb; do
    [ -e "$d" ] || continue
    b=$(basename -- "$d")
    if [ -e "$debs32/$b" ]; then rm -f -- "$d"; else mv -- "$d" "$debs32/$b"; new_debs=$((new_debs + 1)); fi
done
printf '%s\n' "${installed[@]}" >"$work/installed-debs"
find "$debs32" -maxdepth 1 -type f -name '*.deb' -printf '%f\n' | LC_ALL=C sort |
    LC_ALL=C comm -23 - "$work/installed-debs" | sed "s|^|$debs32/|" | xargs -r rm -f --
rm -rf -- "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/partial/* "$root"/var/lib/apt/lists/*
mkdir -p "$root/var/lib/apt/lists/partial"
say "$new_debs .debs downloaded (now cached), $(ls "$debs32" | wc -l) in $debs32"
# What got installed versus what was resolved (the stamp is made of the latter).
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${db:Status-Abbrev}${Package}=${Version}\n' |
    sed -n 's/^ii *//p' | LC_ALL=C sort >"$work/installed"
if ! cmp -s "$work/installed" "$work/resolved"; then
    warn "installed packages differ from the resolved set:"
    diff "$work/resolved" "$work/installed" | grep '^[<>]' | head -n 20 >&2 || true
fi

# mmdebstrap's build-time settings go; the "no docs" dpkg setting stays, and
# what the extraction of the essential packages put there before it goes too.
rm -f -- "$root/etc/apt/apt.conf.d/99mmdebstrap" "$root/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
rm -rf -- "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf -- {} +
# mmdebstrap copied the host's resolv.conf and hostname.
rm -f -- "$root/etc/resolv.conf"
echo "$hostname" >"$root/etc/hostname"
cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters

127.0.1.1	$hostname
EOF
cat >"$root/etc/fstab" <<EOF
proc            /proc           proc    defaults          0       0
PARTUUID=$disk_id-01  /boot/firmware  vfat    defaults          0       2
PARTUUID=$disk_id-02  /               ext4    defaults,noatime  0       1
EOF
mkdir -p "$root/boot/firmware"
printf 'root:%s\n' "$root_password" | chroot "$root" /usr/sbin/chpasswd ||
    die "chpasswd in the new root failed"
grep -q '^root:\$' "$root/etc/shadow" || die "root has no password hash in /etc/shadow"
# A login prompt on the PL011 (QEMU's serial0); tty1 gets one from getty@tty1 as usual.
mkdir -p "$root/etc/systemd/system/getty.target.wants"
ln -sfn /lib/systemd/system/serial-getty@.service \
    "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyAMA0.service"
# Nothing waits for a network or runs housekeeping timers while a test runs,
# and units of no use on an emulated Pi 3 go (each costs seconds of emulated CPU).
for u in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
         apt-daily.service apt-daily-upgrade.service dpkg-db-backup.timer e2scrub_all.timer \
         e2scrub_reap.service fstrim.timer man-db.timer \
         dev-hugepages.mount sys-kernel-tracing.mount modprobe@efi_pstore.service \
         modprobe@dm_mod.service; do
    ln -sfn /dev/null "$root/etc/systemd/system/$u"
done

# Kernel modules: the Pi-relevant subset (module_include) and its dependencies.
mdir=$kx/lib/modules/$kver
re=$module_include awk '
    { sub(/:$/, "", $1); m = $1; sub(/^kernel\//, "", m) }
    m ~ ENVIRON["re"] { sel[$1] = 1; for (i = 2; i <= NF; i++) sel[$i] = 1 }
    END { for (k in sel) print k }' <(sed 's/:/: /' "$mdir/modules.dep") | LC_ALL=C sort >"$work/modules"
# (modules.dep lists all dependencies of a module, not only the direct ones.)
rmdir="$root/usr/lib/modules/$kver"
mkdir -p "$rmdir"
(cd "$mdir" && cpio -pdm --quiet "$rmdir" <"$work/modules")
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ ! -f "$mdir/$f" ] || cp -- "$mdir/$f" "$rmdir/"
done
depmod -b "$root" "$kver"
say "$(wc -l <"$work/modules") of $(wc -l <"$mdir/modules.dep") kernel modules in /usr/lib/modules/$kver" \
    "($(du -sm "$rmdir" | cut -f1) MiB)"
# /etc and /var are up to date with /usr (ldconfig, hwdb, journal catalog were
# all done by the package scripts): skip the ConditionNeedsUpdate= units, which
# take long under emulation, at first boot.
touch -r "$root/usr" "$root/etc/.updated" "$root/var/.updated"
cat >"$root/etc/piemu-rpios-test" <<EOF
piemu Raspberry Pi OS-shaped test image, built by tools/build-rpios-image.sh
kernel: $kpkg ${ver[$kpkg]} (arm64), userland: Debian $suite armhf
EOF

# --- initramfs ---------------------------------------------------------------------
phase initramfs
ir=$work/initramfs
initramfs_skeleton "$ir" "$kver" "$bx/bin/busybox"
initramfs_modules "$kx" "$kver" "$ir" "$work/load-order" "${initramfs_modules[@]}"
cp -- "$work/load-order" "$ir/etc/modules-load"
install -m 0755 "$init_src" "$ir/init"
initramfs_pack "$ir" "$work/initramfs8"
say "initramfs8: $(stat -c %s "$work/initramfs8") bytes, modules: $(paste -sd' ' "$work/load-order")"

# --- bootfs and rootfs file systems ------------------------------------------------
phase fs
boot=$work/bootfs
mkdir -p "$boot"
vmlinuz=$kx/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "$kpkg has no boot/vmlinuz-$kver"
arm64_raw_image "$vmlinuz" "$boot/kernel8.img" ||
    die "boot/vmlinuz-$kver is neither a raw nor a gzip'd arm64 Image"
cp -- "$work/initramfs8" "$boot/initramfs8"
dtb_src=$kx/usr/lib/linux-image-$kver/$dtb_rel
[ -f "$dtb_src" ] || die "$kpkg has no usr/lib/linux-image-$kver/$dtb_rel"
cp -- "$dtb_src" "$boot/$dtb_name"     # piemu patches the rest when importing
# Raspberry Pi OS's tree keeps the header's I2C bus (i2c1, BSC1) off until config.txt says
# dtparam=i2c_arm=on, which the firmware applies through the base tree's __overrides__/i2c_arm
# (<&i2c1>, "status"); Debian's tree has the bus on. Make this one behave like Raspberry Pi OS's.
i2c1=/soc/i2c@7e804000
fdtput -t s "$boot/$dtb_name" "$i2c1" status disabled
i2c1_phandle=$(fdtget -t u "$boot/$dtb_name" "$i2c1" phandle 2>/dev/null) || i2c1_phandle=""
if [ -z "$i2c1_phandle" ]; then
    i2c1_phandle=$(dtb_free_phandle "$boot/$dtb_name")
    fdtput -t u "$boot/$dtb_name" "$i2c1" phandle "$i2c1_phandle"
fi
fdtget -l "$boot/$dtb_name" / | grep -qx __overrides__ || fdtput -c "$boot/$dtb_name" /__overrides__
# A phandle cell, then "status" and its NUL, as bytes.
fdtput -t bx "$boot/$dtb_name" /__overrides__ i2c_arm \
    $(printf '%08x' "$i2c1_phandle" | sed 's/../& /g') 73 74 61 74 75 73 00
echo "$cmdline_txt" >"$boot/cmdline.txt"
# Raspberry Pi OS bookworm's config.txt (2023-10-10 release), plus enable_uart=1.
cat >"$boot/config.txt" <<'EOF'
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Additional overlays and parameters are documented
# /boot/firmware/overlays/README

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[pi4]
# Run as fast as firmware / board allows
arm_boost=1

[all]
# Serial console on serial0 (what raspi-config's serial login option sets)
enable_uart=1
# The header's I2C bus (what raspi-config's I2C option sets)
dtparam=i2c_arm=on
EOF
cat >"$boot/issue.txt" <<EOF
piemu Raspberry Pi OS-shaped test image (not Raspberry Pi OS)
Generated using tools/build-rpios-image.sh, sha256 $(sha256sum <"$script_path" | cut -c1-16)
kernel: $kpkg ${ver[$kpkg]} (Debian arm64), initramfs: busybox-static ${ver[busybox-static]}
rootfs: Debian $suite armhf, $(wc -l <"$work/installed") packages from $mirror ($suite $suite-updates)$(
    [ "$used_security" = 0 ] || echo " and $security_mirror ($suite-security)")
EOF

boot_img=$work/bootfs.img
rm -f -- "$boot_img"
# (A lowercase label, as Raspberry Pi OS has; mkfs.fat warns about it.)
mkfs.vfat -C -F 32 -n bootfs -i "$disk_id" "$boot_img" $((boot_size_mib * 1024)) >"$work/mkfs.log" 2>&1 ||
    die "mkfs.vfat failed: $(cat "$work/mkfs.log")"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$boot_img" -m -- "$boot"/* ::/ || die "mcopy to the bootfs image failed"
fsck.fat -n "$boot_img" >/dev/null || die "fsck.fat finds errors in the new bootfs"

# Size: the smallest power of two >= 1 GiB that leaves the root >= 25% free.
root_mib=$(du -sm "$root" | cut -f1)
disk_mib=1024
while [ $(( (disk_mib - root_start_mib) * 3 / 4 )) -lt $((root_mib + 16)) ]; do
    disk_mib=$((disk_mib * 2))
done
rootfs_mib=$((disk_mib - root_start_mib))
root_img=$work/rootfs.img
truncate -s "${rootfs_mib}M" "$root_img"
mkfs.ext4 -q -F -L rootfs -d "$root" "$root_img" >/dev/null 2>"$work/mkfs.log" ||
    die "mkfs.ext4 -d failed: $(cat "$work/mkfs.log")"
e2fsck -fn "$root_img" >"$work/e2fsck.log" 2>&1 || die "e2fsck finds errors in the new rootfs: $(tail -n5 "$work/e2fsck.log")"
say "rootfs: $root_mib MiB of files in a $rootfs_mib MiB ext4; disk $disk_mib MiB"

# --- disk ---------------------------------------------------------------------------
phase disk
tmp_img=$(mktemp "$output/.$img_name.tmp.XXXXXX")
remove_on_exit "$tmp_img"
truncate -s "${disk_mib}M" "$tmp_img"
sfdisk -q --no-reread --no-tell-kernel "$tmp_img" >"$work/sfdisk.log" 2>&1 <<EOF || die "sfdisk failed: $(cat "$work/sfdisk.log")"
label: dos
label-id: 0x$disk_id
unit: sectors

start=$((boot_start_mib * 2048)), size=$((boot_size_mib * 2048)), type=c
start=$((root_start_mib * 2048)), type=83
EOF
dd if="$boot_img" of="$tmp_img" bs=1M seek="$boot_start_mib" conv=sparse,notrunc status=none
dd if="$root_img" of="$tmp_img" bs=1M seek="$root_start_mib" conv=sparse,notrunc status=none
[ "$(stat -c %s "$tmp_img")" = $((disk_mib * 1024 * 1024)) ] || die "the disk image changed size"
sfdisk -d "$tmp_img" >"$work/table" 2>/dev/null
grep -q "^label-id: 0x$disk_id\$" "$work/table" &&
    grep -q "start= *$((root_start_mib * 2048)),.*type=83" "$work/table" ||
    die "unexpected partition table: $(cat "$work/table")"
rm -f -- "$root_img" "$boot_img"

# --- xz ----------------------------------------------------------------------------
phase xz
tmp_xz=$(mktemp "$output/.$img_name.tmp.XXXXXX")
remove_on_exit "$tmp_xz"
xz -T0 -3 -c <"$tmp_img" >"$tmp_xz" || die "xz failed"
phase_end

# --- install -----------------------------------------------------------------------
rm -f -- "$output/$stamp_name"
chmod 0644 "$tmp_img" "$tmp_xz"
mv -f -- "$tmp_img" "$output/$img_name"
mv -f -- "$tmp_xz" "$output/$img_name.xz"
echo "$stamp" >"$output/$stamp_name.tmp"
mv -f -- "$output/$stamp_name.tmp" "$output/$stamp_name"
say "built $output:"
for f in "$img_name" "$img_name.xz"; do
    printf '  %-26s %12s bytes (%s MiB on disk)\n' "$f" "$(stat -c %s "$output/$f")" \
        "$(du -m "$output/$f" | cut -f1)"
done
say "kernel $kver ($kpkg ${ver[$kpkg]}), $(wc -l <"$work/installed") armhf packages"
timing_summary
