#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build a default piemu guest image from Debian packages of one architecture and
# install it into the image catalog (/var/lib/piemu/images/<name>/):
#   arm64  "default"        linux-image-arm64, for raspi3b (dtb), raspi3ap, raspi4b
#   armhf  "default-armhf"  linux-image-armmp, for raspi2b
#   armel  "default-armel"  linux-image-rpi, for raspi0 (dtb) and raspi1ap
# Each image holds:
#   kernel     the kernel of that package (arm64: raw Image; armhf/armel: zImage)
#   dtb[.M]    the device tree of each model it boots, patched (see patch_dtb)
#   initrd     gzip'd newc cpio: busybox-static, SD/ext4/I2C modules, images/default/*
#   sd.img     64 MiB raw SD card, ext4 on the whole device (mke2fs -d, nothing mounted)
#   meta       description=, cmdline= and models=
# arm64 packages come from the host's apt lists, armhf and armel from a private
# index in /var/cache/piemu/apt-ARCH (see tools/lib/image-build.sh for why). The
# .debs are cached in /var/cache/piemu/debs; an up-to-date image is left alone
# (stamp: this script, its library, images/default/*, the shim, the package versions).
# An existing image is never changed in place: the new one is built in a
# sibling temporary directory and renamed over it.
set -euo pipefail
umask 022

prog=build-image
usage() {
    cat <<EOF
Usage: tools/build-image.sh [--arch ARCH] [--shim PATH] [--output DIR] [--name NAME] [--force]
                            [--private-index] [--models-table FILE] [--print-models]

Build a piemu default guest image (a Debian kernel + busybox initramfs + ext4 SD
card) and install it into the image catalog. Run as root.

  --arch ARCH    arm64 (default): image "default", for raspi3b, raspi3ap, raspi4b
                 armhf: image "default-armhf", for raspi2b
                 armel: image "default-armel", for raspi0 and raspi1ap
  --shim PATH    static piemu-gpio-shim for ARCH (build/src/shim/piemu-gpio-shim-
                 aarch64, -armhf or -armel) to put in the initramfs at
                 /usr/bin/piemu-gpio-shim (started by /init); default: none
  --output DIR   image directory to (re)place (default /var/lib/piemu/images/NAME)
  --name NAME    catalog name (default: the one ARCH's models use, above)
  --force        rebuild even if the image is up to date
  --private-index  arm64 too from a private index in /var/cache/piemu/apt-arm64 (as
                 armhf and armel always are), not from the host's arm64 lists: for
                 hosts without the arm64 architecture (piemu-build-images uses it)
  --models-table FILE  the model table: piemu's src/shared/pi-models.c (the default
                 in a checkout) or the generated pi-models.table an installed copy
                 reads (lines "MODEL REVISION DEFAULT_IMAGE")
  --print-models print the model table as such lines and exit
  -h, --help     this text

Environment: PIEMU_DEBIAN_MIRROR, PIEMU_DEBIAN_SECURITY_MIRROR (armhf/armel index;
default http://deb.debian.org/debian and http://deb.debian.org/debian-security).
EOF
}

script_path=$(readlink -f -- "${BASH_SOURCE[0]}")
script_dir=$(dirname -- "$script_path")
# shellcheck source=tools/lib/image-build.sh
. "$script_dir/lib/image-build.sh"
src_dir=$(readlink -f -- "$script_dir/../images/default")
# In a checkout the revisions come from piemud's model table itself; an installed copy
# (/usr/share/piemu/image-builder, see tools/meson.build) has a table generated from it at build
# time beside images/.
models_table=$(readlink -m -- "$script_dir/../src/shared/pi-models.c")
[ -f "$models_table" ] || models_table=$(readlink -m -- "$script_dir/../pi-models.table")

cache_dir=/var/cache/piemu/debs
catalog_dir=/var/lib/piemu/images
sd_size_mib=64          # a power of two: QEMU's SD model wants one
sd_label=piemu-sd
# (piemud adds the model's earlycon, so that the kernel's first lines reach the console at once.)
cmdline="console=ttyAMA0,115200 rdinit=/init iomem=relaxed"
prune_tool=$script_dir/dtb-prune-unmapped.py
uart0_path=/soc/serial@7e201000     # PL011: QEMU serial0 -> ttyAMA0
uart1_path=/soc/serial@7e215040     # mini UART: QEMU serial1 -> ttyS1

shim=""
output=""
name=""
force=0
arch=arm64
private_index=0
print_models=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || die "--arch needs a value"; arch=$2; shift 2 ;;
        --arch=*) arch=${1#*=}; shift ;;
        --shim) [ $# -ge 2 ] || die "--shim needs a path"; shim=$2; shift 2 ;;
        --shim=*) shim=${1#*=}; shift ;;
        --output) [ $# -ge 2 ] || die "--output needs a directory"; output=$2; shift 2 ;;
        --output=*) output=${1#*=}; shift ;;
        --name) [ $# -ge 2 ] || die "--name needs a value"; name=$2; shift 2 ;;
        --name=*) name=${1#*=}; shift ;;
        --force) force=1; shift ;;
        --private-index) private_index=1; shift ;;
        --models-table) [ $# -ge 2 ] || die "--models-table needs a file"; models_table=$2; shift 2 ;;
        --models-table=*) models_table=${1#*=}; shift ;;
        --print-models) print_models=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# What each architecture's kernel boots (docs/research/pi-models): the models in the order their
# device trees are stored (the first one's is "dtb", the others' "dtb.MODEL"), and each model's
# tree in the kernel package.
declare -A model_dtb
case "$arch" in
    arm64)
        default_name=default meta_pkg=linux-image-arm64 elf_machine=183 shim_arch=aarch64
        models="raspi3b raspi3ap raspi4b"
        model_dtb=([raspi3b]=broadcom/bcm2837-rpi-3-b.dtb [raspi3ap]=broadcom/bcm2837-rpi-3-a-plus.dtb
                   [raspi4b]=broadcom/bcm2711-rpi-4-b.dtb)
        ;;
    armhf)
        # The armmp flavour: ARMv7 multiplatform, with the Pi 2's tree.
        default_name=default-armhf meta_pkg=linux-image-armmp elf_machine=40 shim_arch=armhf
        models=raspi2b
        model_dtb=([raspi2b]=bcm2836-rpi-2-b.dtb)
        # QEMU's raspi2b has four CPUs; under piemu's single-threaded TCG this kernel brings all
        # four up and then crawls (no shell within 300 s, measured); with one it boots (the
        # slowest of the six all the same: see docs/models.md).
        cmdline="$cmdline maxcpus=1"
        ;;
    armel)
        # The rpi flavour: the only Debian kernel built for ARMv6 (the Zero's and A+'s ARM1176).
        default_name=default-armel meta_pkg=linux-image-rpi elf_machine=40 shim_arch=armel
        models="raspi0 raspi1ap"
        model_dtb=([raspi0]=bcm2835-rpi-zero.dtb [raspi1ap]=bcm2835-rpi-a-plus.dtb)
        ;;
    *) die "--arch $arch: want arm64, armhf or armel" ;;
esac
[ -n "$name" ] || name=$default_name
kflavour=${meta_pkg#linux-image-}
# The models whose power block QEMU maps without its ASB window (see patch_dtb's caller).
asb_models="raspi0 raspi1ap raspi3ap"

# Board revisions come from piemud's own model table (QEMU's board-rev of each machine), which
# must also name this architecture's image as the model's default.
[ -f "$models_table" ] || die "missing $models_table (piemu's model table)"
# Prints "MODEL REVISION DEFAULT_IMAGE" lines: parsed from pi-models.c, or a generated table as is.
model_lines() {
    case "$models_table" in
        *.c) sed -n 's/^ *{"\([a-z0-9]*\)", "[^"]*", [0-9]*, [0-9]*, UINT64_C(0x[0-9a-f]*), 0x\([0-9a-f]*\), "\([^"]*\)"},.*/\1 \2 \3/p' \
                 "$models_table" ;;
        *) grep -E '^[a-z0-9]+ [0-9a-f]+ [A-Za-z0-9_.-]+$' "$models_table" ;;
    esac
}
if [ "$print_models" = 1 ]; then
    model_lines
    exit 0
fi
declare -A model_rev
while read -r m rev img; do
    model_rev[$m]=$rev
    [[ " $models " != *" $m "* ]] || [ "$img" = "$default_name" ] ||
        die "$models_table: $m's default image is $img, this script builds $default_name for it"
done < <(model_lines)
for m in $models; do
    [ -n "${model_rev[$m]:-}" ] || die "$models_table has no revision for $m"
done

[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] ||
    die "invalid image name '$name' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,62})"
[ -n "$output" ] || output=$catalog_dir/$name
output=$(readlink -m -- "$output")
[ "$output" != / ] || die "--output / makes no sense"
[ "$(id -u)" = 0 ] || die "must run as root (apt-get download, device nodes, ownership)"
[ -d "$src_dir" ] || die "missing $src_dir (the image sources next to this script)"
for f in init inittab shell shutdown profile modules sd; do
    [ -e "$src_dir/$f" ] || die "missing $src_dir/$f"
done
require_tools "; run tools/install-deps.sh (as root) first" apt-get apt-cache dpkg-deb depmod \
    modprobe cpio gzip mke2fs fdtput fdtget dtc sha256sum flock od

# The shim must be a static ELF of the image's architecture: the initramfs has no C library.
shim_hash=none
if [ -n "$shim" ]; then
    [ -f "$shim" ] || die "--shim $shim: no such file"
    shim=$(readlink -f -- "$shim")
    [ "$(od -An -tx1 -N4 "$shim" | tr -d ' \n')" = 7f454c46 ] || die "--shim $shim: not an ELF file"
    [ "$(od -An -tu2 -j18 -N2 "$shim" | tr -d ' \n')" = "$elf_machine" ] ||
        die "--shim $shim: not a $shim_arch binary (ELF machine $elf_machine; build/src/shim/piemu-gpio-shim-$shim_arch)"
    # The float ABI tells Debian's two 32-bit toolchains apart (ELF e_flags: 0x400 hard, 0x200
    # soft): armhf code is ARMv7 and dies with SIGILL on the ARMv6 boards.
    eflags=$(od -An -tu4 -j36 -N4 "$shim" | tr -d ' \n')
    case "$arch" in
        armhf) [ $((eflags & 0x400)) != 0 ] || die "--shim $shim: not a hard-float (armhf) binary" ;;
        armel) [ $((eflags & 0x400)) = 0 ] ||
            die "--shim $shim: a hard-float (armhf, ARMv7) binary; raspi0 and raspi1ap need armel" ;;
    esac
    if command -v readelf >/dev/null &&
        readelf -lW "$shim" 2>/dev/null | grep -q 'Requesting program interpreter'; then
        die "--shim $shim: dynamically linked; the initramfs needs a static binary"
    fi
    shim_hash=$(sha256_of "$shim")
fi

# One build at a time (the cache and the catalog are shared).
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock -w 600 9 || die "another build-image is running (lock $cache_dir/.lock)"

# --- Resolve the packages ---------------------------------------------------------
if [ "$arch" = arm64 ] && [ "$private_index" = 0 ]; then
    # From the host's lists (no network). Our own binary package cache makes apt-cache fast
    # (Debian images often turn apt's off); apt rebuilds it whenever the lists change.
    apt_opts=(-o "Dir::Cache::pkgcache=/var/cache/piemu/apt-pkgcache.bin")
    apt_hint="is the arm64 architecture added and 'apt-get update' done? (tools/install-deps.sh does both)"
else
    # A private index of bookworm, bookworm-updates and bookworm-security for this architecture,
    # refreshed on every build. An index that fails to download (a mirror out of sync) or no
    # network is not fatal: apt keeps what it had, and what resolves from that is verified
    # against the signed lists all the same.
    aptdir=/var/cache/piemu/apt-$arch
    private_apt_conf "$arch" "$aptdir"
    private_apt_sources "$aptdir" "${PIEMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}" bookworm \
        "${PIEMU_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}" ||
        die "cannot set up the $arch index"
    apt_opts=(-c "$aptdir/apt.conf")
    apt_hint="see $aptdir/update.log"
    if ! apt-get -q "${apt_opts[@]}" update </dev/null >"$aptdir/update.log" 2>&1; then
        say "warning: apt-get update ($arch) reported errors; going on with the lists it has:" >&2
        grep -E '^(E|W):' "$aptdir/update.log" | head -n 4 | sed 's/^/    /' >&2 || true
    fi
    private_apt_has_list "$aptdir" bookworm "$arch" ||
        die "no $arch package index of bookworm main (network? see $aptdir/update.log)"
fi
kpkg=$(deb_kernel_package apt_opts "$arch" "$meta_pkg") || true
[ -n "$kpkg" ] || die "cannot resolve $meta_pkg:$arch to a kernel package; $apt_hint"
pkgs=("$kpkg" busybox-static)
declare -A ver file sha
deb_resolve apt_opts "$arch" "${pkgs[@]}" || die "cannot resolve the image's packages; $apt_hint"
kver=${kpkg#linux-image-}

# --- Up to date? ----------------------------------------------------------------
sd_hash=$(printf '%s\n' "size=$sd_size_mib" "label=$sd_label" "$(hash_tree "$src_dir/sd")" |
    sha256sum | cut -d' ' -f1)
stamp=$(
    stamp_code "$script_path" "prune=$prune_tool"
    echo "arch=$arch"
    for m in $models; do echo "model=$m=${model_rev[$m]}"; done
    echo "sources=$(hash_tree "$src_dir")"
    echo "name=$name"
    echo "shim=$shim_hash"
    for p in "${pkgs[@]}"; do echo "pkg=$p=${ver[$p]}"; done
    echo "sd=$sd_hash"
)
stamp_name=.piemu-build-stamp
outputs=(kernel dtb)
read -ra model_list <<<"$models"
for m in "${model_list[@]:1}"; do outputs+=("dtb.$m"); done
outputs+=(initrd sd.img meta)
up_to_date() {
    stamp_is "$output/$stamp_name" "$stamp" || return 1
    local f
    for f in "${outputs[@]}"; do [ -s "$output/$f" ] || return 1; done
}
if [ "$force" = 0 ] && up_to_date; then
    say "$output is up to date ($kpkg ${ver[$kpkg]}, shim: $shim_hash); --force rebuilds"
    exit 0
fi

# --- Fetch the .debs into the cache ---------------------------------------------
work=$(mktemp -d /var/tmp/piemu-build-image.XXXXXX)
remove_on_exit "$work"
remove_leftovers "$cache_dir" '.download.??????'
kdeb=$(deb_fetch apt_opts "$arch" "$kpkg" "$cache_dir")
bdeb=$(deb_fetch apt_opts "$arch" busybox-static "$cache_dir")
# Drop older versions of these packages, and other kernels of this flavour, from the cache.
find "$cache_dir" -maxdepth 1 -type f \( -name "busybox-static_*_$arch.deb" -o \
    -name "linux-image-*-${kflavour}_*_$arch.deb" \) ! -name "${file[$kpkg]}" \
    ! -name "${file[busybox-static]}" -delete

# --- Unpack ------------------------------------------------------------------------
say "unpacking $kpkg ${ver[$kpkg]} and busybox-static ${ver[busybox-static]}"
kx=$work/kernel-pkg
bx=$work/busybox-pkg
deb_unpack_kernel_busybox "$kdeb" "$kx" "$bdeb" "$bx" "$kver"

# The new image is built in a hidden sibling of the target (same file system),
# then swapped in with one rename. The catalog may belong to piemud's user: work
# inside our own 0700 directory, by relative paths from it as the current
# directory, so nothing in there can be swapped for a symlink under our feet.
parent=$(dirname -- "$output")
base=$(basename -- "$output")
[ ! -L "$output" ] || die "$output is a symbolic link; give the real directory"
[ ! -e "$output" ] || [ -d "$output" ] || die "$output exists and is not a directory"
mkdir -p "$parent"
# Leftovers of a build that was killed (we hold the lock: none is running).
remove_leftovers "$parent" ".$base.new.??????" ".$base.old.??????"
owner=$(stat -c %u:%g "$parent")   # the image belongs to whoever owns the catalog
newdir=$(mktemp -d "$parent/.$base.new.XXXXXX")
remove_on_exit "$newdir"   # (once installed, nothing is left at this path)
cd "$newdir"
[ "$(stat -c %u:%a .)" = 0:700 ] || die "$newdir is not our private directory"
img=.

vmlinuz=$kx/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "$kpkg has no boot/vmlinuz-$kver"
if [ "$arch" = arm64 ]; then
    # QEMU loads a raw arm64 Image (or a gzip'd one); ship it raw.
    arm64_raw_image "$vmlinuz" "$img/kernel" ||
        die "boot/vmlinuz-$kver is neither a raw nor a gzip'd arm64 Image (EFI zboot?)"
else
    # A 32-bit zImage, which QEMU loads as it is (magic 0x016f2818 at offset 0x24).
    [ "$(od -An -tx4 -j36 -N4 "$vmlinuz" | tr -d ' \n')" = 016f2818 ] ||
        die "boot/vmlinuz-$kver is not an ARM zImage"
    cp -- "$vmlinuz" "$img/kernel"
fi

# dtb. The stock one hangs a Bluetooth serdev device under the PL011: the kernel
# then turns ttyAMA0 into a serdev controller and creates no /dev/ttyAMA0, so
# no shell could run on serial0. Remove that node, and pin the aliases so that
# the PL011 is ttyAMA0 (QEMU serial0) and the mini UART ttyS1 (serial1).
patch_dtb() {
    local dtb=$1 rev=$2
    if fdtget -l "$dtb" "$uart0_path" 2>/dev/null | grep -qx bluetooth; then
        fdtput -r "$dtb" "$uart0_path/bluetooth"
    fi
    fdtput -t s "$dtb" /aliases serial0 "$uart0_path"
    fdtput -t s "$dtb" /aliases serial1 "$uart1_path"
    # The GPIO shim's line: the 32-bit boards' trees leave the mini UART disabled.
    fdtput -t s "$dtb" "$uart1_path" status okay
    # The board revision the Pi firmware would write (the one QEMU's machine reports): without it
    # gpiozero, RPi.GPIO and pinout refuse to run ("unable to locate Pi revision").
    fdtget -l "$dtb" / | grep -qx system || fdtput -c "$dtb" /system
    fdtput -t x "$dtb" /system linux,revision "$rev"
    [ "$(fdtget -t x "$dtb" /system linux,revision)" = "$rev" ] || die "dtb: cannot set linux,revision"
    fdtget -l "$dtb" "$uart0_path" 2>/dev/null | grep -q . && die "dtb: $uart0_path still has children"
    [ "$(fdtget -t s "$dtb" /aliases serial0)" = "$uart0_path" ] || die "dtb: cannot set serial0 alias"
}
first=1
for m in $models; do
    out=$img/dtb
    [ "$first" = 1 ] || out=$img/dtb.$m
    first=0
    src=$kx/usr/lib/linux-image-$kver/${model_dtb[$m]}
    [ -f "$src" ] || die "$kpkg has no usr/lib/linux-image-$kver/${model_dtb[$m]}"
    cp -- "$src" "$out"
    fdtget -t s "$out" "$uart0_path" compatible >/dev/null 2>&1 || die "${model_dtb[$m]} has no $uart0_path"
    fdtget -t s "$out" "$uart1_path" compatible >/dev/null 2>&1 || die "${model_dtb[$m]} has no $uart1_path"
    patch_dtb "$out" "${model_rev[$m]}"
    # raspi0, raspi1ap and raspi3ap: QEMU leaves the power block's second window (the ASB,
    # 0x7e00a000) unmapped and raises a bus error there, which the power driver's probe turns
    # into a panic: keep only the PM window. (raspi2b and raspi3b ignore such errors, and raspi4b
    # maps the window.)
    if [[ " $asb_models " == *" $m "* ]]; then
        fdtput -t x "$out" /soc/watchdog@7e100000 reg 0x7e100000 0x114
        fdtput -t s "$out" /soc/watchdog@7e100000 reg-names pm
    fi
done
if [ "$arch" = arm64 ]; then
    # raspi4b: QEMU has no PCIe, GENET, HDMI, PWM and more; their nodes would panic the kernel the same
    # way. Disable every node QEMU does not map (QEMU's own memory map says which).
    "$prune_tool" raspi4b "$img/dtb.raspi4b" | sed 's/^/build-image: /'
    [ "$(fdtget -t s "$img/dtb.raspi4b" /scb/pcie@7d500000 status 2>/dev/null)" = disabled ] ||
            die "dtb.raspi4b: the PCIe node is still enabled (dtb-prune-unmapped.py)"
    # raspi4b's SD card: QEMU puts it on the Arasan SDHCI (0x7e300000) and moves it to the SDHOST
    # controller (0x7e202000) once GPIO48-53 are muxed to that (ALT0), as on raspi3b. The Arasan
    # shares its interrupt with the EMMC2 controller in QEMU; boots on it hung with lost command
    # interrupts and an interrupt storm, which turned out to come from the mini UART (see
    # SHIM_LINE_BAUD), but the SDHOST, with an interrupt of its own, is the path every other
    # model takes and what was measured after that fix. So it is the slot: enabled, with the tree's
    # sdhost_gpio48 pin group (given a phandle here); the Arasan (the real board's Wi-Fi) and
    # EMMC2 (the real board's slot, empty in QEMU) are disabled.
    dtb4=$img/dtb.raspi4b
    phandle=$(dtb_free_phandle "$dtb4")
    [ "$phandle" -gt 1 ] || die "dtb.raspi4b: no phandles found (dtc)"
    fdtput -t u "$dtb4" /soc/gpio@7e200000/sdhost_gpio48 phandle "$phandle"
    fdtput -t s "$dtb4" /soc/mmc@7e202000 pinctrl-names default
    fdtput -t u "$dtb4" /soc/mmc@7e202000 pinctrl-0 "$phandle"
    fdtput -t u "$dtb4" /soc/mmc@7e202000 bus-width 4
    fdtput -t s "$dtb4" /soc/mmc@7e202000 status okay
    fdtput -t s "$dtb4" /soc/mmc@7e300000 status disabled
    fdtput -t s "$dtb4" /emmc2bus/mmc@7e340000 status disabled
    # QEMU maps raspi4b's 2 GiB of RAM at 0-0x7fffffff but describes only the low part in the
    # tree (/memory: 0-0x3bffffff, below the VideoCore's share): QEMU 10 adds the node for the
    # upper GiB only when the low part is larger than 1 GiB, which it never is. Describe it here,
    # under a name QEMU would not use, so that a QEMU that adds its own does not collide.
    [ "$(fdtget "$img/dtb.raspi4b" / '#address-cells') $(fdtget "$img/dtb.raspi4b" / '#size-cells')" = "2 1" ] ||
        die "dtb.raspi4b: expected 2 address cells and 1 size cell at the root"
    fdtput -c "$img/dtb.raspi4b" /memory-upper@40000000
    fdtput -t s "$img/dtb.raspi4b" /memory-upper@40000000 device_type memory
    fdtput -t x "$img/dtb.raspi4b" /memory-upper@40000000 reg 0 0x40000000 0x40000000
fi

# --- initramfs --------------------------------------------------------------------
say "building the initramfs"
ir=$work/initramfs
initramfs_skeleton "$ir" "$kver" "$bx/bin/busybox"
mkdir -p "$ir/etc/piemu" "$ir/mnt/sd"
chmod 0700 "$ir/root"
install -m 0755 "$src_dir/init" "$ir/init"
install -m 0644 "$src_dir/inittab" "$ir/etc/inittab"
install -m 0644 "$src_dir/profile" "$ir/etc/profile"
install -m 0755 "$src_dir/shell" "$ir/etc/piemu/shell"
install -m 0755 "$src_dir/shutdown" "$ir/etc/piemu/shutdown"
echo piemu >"$ir/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ir/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$ir/etc/group"
echo "$name $kpkg=${ver[$kpkg]} busybox-static=${ver[busybox-static]}" >"$ir/etc/piemu/version"
if [ -n "$shim" ]; then
    install -m 0755 "$shim" "$ir/usr/bin/piemu-gpio-shim"
fi

# Modules, with their dependencies. A line "MODULE optional" names one that not
# every kernel flavour has.
mods=()
while read -r mod flag _; do
    mod=${mod%%#*}
    [ -n "$mod" ] || continue
    [ "$flag" != optional ] || mod+="?"
    mods+=("$mod")
done <"$src_dir/modules"
initramfs_modules "$kx" "$kver" "$ir" "$work/load-order" "${mods[@]}"
{
    echo "# SPDX-License-Identifier: LGPL-2.1-or-later"
    echo "# Generated by tools/build-image.sh: modules /init loads, in this order."
    cat "$work/load-order"
} >"$ir/etc/piemu/modules"
initramfs_pack "$ir" "$img/initrd"

# --- SD card ----------------------------------------------------------------------
old_stamp_sd=""
if [ -f "$output/$stamp_name" ]; then
    old_stamp_sd=$(sed -n 's/^sd=//p' "$output/$stamp_name")
fi
if [ "$old_stamp_sd" = "$sd_hash" ] && [ -f "$output/sd.img" ] && [ ! -L "$output/sd.img" ] &&
    [ "$(stat -c %s "$output/sd.img")" = $((sd_size_mib * 1024 * 1024)) ]; then
    # Same content: keep the very same file, so the qcow2 overlays of
    # persistent boards stay valid on top of it. (Its owner and mode are left
    # alone: libvirt may have lent it to a running board.)
    say "sd.img unchanged, keeping the same file"
    ln -P -- "$output/sd.img" "$img/sd.img"
else
    say "building sd.img ($sd_size_mib MiB ext4)"
    sdroot=$work/sdroot
    mkdir -m 0755 "$sdroot"
    cp -R -- "$src_dir/sd/." "$sdroot/"
    chown -R 0:0 "$sdroot"
    find "$sdroot" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
    truncate -s "${sd_size_mib}M" "$img/sd.img"
    mke2fs -q -F -t ext4 -L "$sd_label" -E root_owner=0:0 -d "$sdroot" "$img/sd.img" ||
        die "mke2fs failed"
    chown "$owner" "$img/sd.img"
    chmod 0644 "$img/sd.img"
fi

# --- meta, permissions, stamp -------------------------------------------------------
{
    printf 'description=piemu %s image: Debian %s Linux %s (%s), busybox %s initramfs, %d MiB ext4 SD card%s\n' \
        "$name" "$arch" "$kver" "${ver[$kpkg]}" "${ver[busybox-static]#*:}" "$sd_size_mib" \
        "$([ -n "$shim" ] && echo ', GPIO shim' || true)"
    printf 'cmdline=%s\n' "$cmdline"
    printf 'models=%s\n' "$models"
} >"$img/meta"
echo "$stamp" >"$img/$stamp_name"
for f in "${outputs[@]}" "$stamp_name"; do
    [ "$f" = sd.img ] && continue     # (kept as it was, or made above)
    chown "$owner" "$img/$f"
    chmod 0644 "$img/$f"
done
sync -f "$img/kernel" 2>/dev/null || sync
chown "$owner" .
chmod 0755 .

# --- Install: swap the new directory in ----------------------------------------------
exchange() { # atomically swap two paths (renameat2 RENAME_EXCHANGE)
    command -v python3 >/dev/null || return 1
    python3 - "$1" "$2" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, os.fsencode(sys.argv[1]), AT_FDCWD, os.fsencode(sys.argv[2]), RENAME_EXCHANGE) != 0:
    sys.exit(1)
EOF
}
if [ -d "$output" ]; then
    if exchange "$newdir" "$output" 2>/dev/null; then
        rm -rf -- "$newdir"          # now the old image
    else
        old=$(mktemp -u "$parent/.$base.old.XXXXXX")
        mv -T -- "$output" "$old"
        mv -T -- "$newdir" "$output" || { mv -T -- "$old" "$output"; die "cannot install $output"; }
        rm -rf -- "$old"
    fi
else
    mv -T -- "$newdir" "$output"
fi
say "installed $output:"
(cd "$output" && for f in "${outputs[@]}"; do
    printf '  %-7s %10s bytes\n' "$f" "$(stat -c %s "$f")"
done)
say "modules: $(paste -sd' ' "$work/load-order")"
