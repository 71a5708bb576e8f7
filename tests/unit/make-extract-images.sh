#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the small disk images test-image-extract feeds to piemu-image-extract, without mounting
# anything: sfdisk for the MBR, mkfs.vfat and mcopy on a separate FAT file dd'd in at its offset.
# Usage: make-extract-images.sh OUTDIR DTB
#   OUTDIR/files/   what went into the good image's FAT (the test compares against it)
#   OUTDIR/*.img    the images; see the list at the end
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null

out=$1
dtb=$(readlink -f -- "$2")
mkdir -p "$out/files"
cd "$out"

# The disk: 4 MiB gap, 40 MiB FAT32 (LBA) boot partition, 8 MiB Linux root, 64 MiB in all.
disk_id=0x3a90e54f
fat_start=8192
fat_sectors=81920
root_start=90112
root_sectors=16384

# --- the boot files ---------------------------------------------------------------------------
# Content that cannot be mistaken for another file's, with a zero run inside (sparseness).
{ printf 'KERNEL8 '; head -c 300000 /dev/urandom; head -c 70000 /dev/zero; head -c 700000 /dev/urandom; } >files/kernel8.img
{ printf 'KERNEL7 '; head -c 100000 /dev/urandom; } >files/kernel7.img
{ printf 'INITRD8 '; head -c 50000 /dev/urandom; } >files/initramfs8
cp -- "$dtb" files/bcm2710-rpi-3-b.dtb
# A Raspberry Pi OS Bookworm config.txt, CR-LF in places, with sections for other boards.
printf '%s\n' \
    '# For more options and information see' \
    '# http://rptl.io/configtxt' \
    'dtparam=audio=on' \
    'camera_auto_detect=1' \
    'auto_initramfs=1' \
    'dtoverlay=vc4-kms-v3d' \
    '' \
    '[pi4]' \
    'kernel=kernel7l.img' \
    'arm_64bit=0' \
    '' \
    '[cm4]' \
    'otg_mode=1' \
    '' \
    '[all]' \
    'arm_64bit=1' \
    'include extra.txt' \
    '[gpio4=1]' \
    'kernel=kernel7.img' \
    '[all]' | sed 's/^\(arm_64bit=1\)$/\1\r/' >files/config.txt
printf '%s\n' 'console=serial0,115200 console=tty1 root=PARTUUID=3a90e54f-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot splash plymouth.ignore-serial-consoles' \
    'second line is ignored' >files/cmdline.txt

# make_fat FATFILE FILE... (NAME=PATH to rename, DIR/NAME=PATH for a subdirectory)
make_fat() {
    local fat=$1 spec name src
    shift
    rm -f -- "$fat"
    truncate -s $((fat_sectors * 512)) "$fat"
    mkfs.vfat -F 32 -s 1 -n BOOTFS "$fat" >/dev/null
    for spec in "$@"; do
        name=${spec%%=*}
        src=${spec#*=}
        if [[ $name == */* ]]; then
            mmd -i "$fat" "::${name%/*}" 2>/dev/null || true
        fi
        mcopy -i "$fat" -- "$src" "::$name"
    done
}

# make_disk IMG FATFILE [FATTYPE [SECOND_FATFILE]]: the MBR, the FAT in partition 1 (or, with a
# second FAT file, an empty FAT-typed partition 1 and the FAT in partition 2), Linux after it.
make_disk() {
    local img=$1 fat=$2 type=${3:-c} fat2=${4:-}
    rm -f -- "$img"
    truncate -s 64M "$img"
    if [ -z "$fat2" ]; then
        printf 'label: dos\nlabel-id: %s\nunit: sectors\n\nstart=%d, size=%d, type=%s\nstart=%d, size=%d, type=83\n' \
            "$disk_id" "$fat_start" "$fat_sectors" "$type" "$root_start" "$root_sectors" |
            sfdisk -q "$img"
        dd if="$fat" of="$img" bs=512 seek="$fat_start" conv=notrunc,sparse status=none
    else
        # partition 1: 2 MiB of zeros typed FAT; partition 2: the real one
        printf 'label: dos\nlabel-id: %s\nunit: sectors\n\nstart=2048, size=4096, type=c\nstart=%d, size=%d, type=%s\nstart=%d, size=%d, type=83\n' \
            "$disk_id" "$fat_start" "$fat_sectors" "$type" "$root_start" "$root_sectors" |
            sfdisk -q "$img"
        dd if="$fat2" of="$img" bs=512 seek="$fat_start" conv=notrunc,sparse status=none
    fi
}

good_files=(kernel8.img=files/kernel8.img kernel7.img=files/kernel7.img initramfs8=files/initramfs8
    bcm2710-rpi-3-b.dtb=files/bcm2710-rpi-3-b.dtb config.txt=files/config.txt cmdline.txt=files/cmdline.txt)

make_fat fat.tmp "${good_files[@]}"
make_disk good.img fat.tmp
make_disk fake-fat-first.img "" c fat.tmp

xz -T1 -0 -k -c good.img >good.img.xz
head -c $(($(stat -c %s good.img.xz) / 2)) good.img.xz >truncated.img.xz
# Damage in the middle of the compressed data: caught by LZMA's own checks or by the CRC64.
cp good.img.xz corrupt.img.xz
size=$(stat -c %s corrupt.img.xz)
printf '\x55\xaa\x55\xaa\x55\xaa\x55\xaa' | dd of=corrupt.img.xz bs=1 seek=$((size / 2)) conv=notrunc status=none
# Not xz after the magic at all.
{ printf '\xfd7zXZ\x00'; head -c 4096 /dev/urandom; } >garbage.img.xz

# Random bytes, minus any chance of an MBR signature.
head -c 1048576 /dev/urandom >random.img
printf '\x00\x00' | dd of=random.img bs=1 seek=510 conv=notrunc status=none

# An MBR with only a Linux partition.
truncate -s 16M linux-only.img
printf 'label: dos\nunit: sectors\n\nstart=2048, type=83\n' | sfdisk -q linux-only.img

# A GPT disk with a FAT partition (protective MBR): not what Raspberry Pi OS uses.
truncate -s 64M gpt.img
printf 'label: gpt\nunit: sectors\n\nstart=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' \
    "$fat_start" "$fat_sectors" | sfdisk -q gpt.img
dd if=fat.tmp of=gpt.img bs=512 seek="$fat_start" conv=notrunc,sparse status=none

# A FAT without the kernel, one without any dtb, one with a broken dtb.
make_fat fat.tmp kernel7.img=files/kernel7.img bcm2710-rpi-3-b.dtb=files/bcm2710-rpi-3-b.dtb \
    config.txt=files/config.txt cmdline.txt=files/cmdline.txt
make_disk nokernel.img fat.tmp
make_fat fat.tmp kernel8.img=files/kernel8.img config.txt=files/config.txt cmdline.txt=files/cmdline.txt
make_disk nodtb.img fat.tmp
printf 'this is not a device tree, just bytes\n' >bad.dtb
make_fat fat.tmp kernel8.img=files/kernel8.img bcm2710-rpi-3-b.dtb=bad.dtb config.txt=files/config.txt \
    cmdline.txt=files/cmdline.txt
make_disk baddtb.img fat.tmp

# A control character in cmdline.txt.
printf 'root=/dev/mmcblk0p2 \001 rootwait\n' >badcmdline.txt
make_fat fat.tmp kernel8.img=files/kernel8.img bcm2710-rpi-3-b.dtb=files/bcm2710-rpi-3-b.dtb \
    config.txt=files/config.txt cmdline.txt=badcmdline.txt
make_disk badcmdline.img fat.tmp

# Upstream-kernel style, FAT16 partition type 0x0e: no config.txt arm_64bit (so kernel7.img), the
# dtb only under broadcom/ with its upstream name, a cmdline file named by config.txt, upper case
# file names (FAT is case-insensitive), no initramfs.
printf 'cmdline=CMDLINE2.TXT\r\n' >upstream-config.txt
printf 'root=/dev/mmcblk0p2 rootwait console=ttyS1,115200 -- single console=foo\n' >upstream-cmdline.txt
make_fat fat.tmp KERNEL7.IMG=files/kernel7.img broadcom/bcm2837-rpi-3-b.dtb=files/bcm2710-rpi-3-b.dtb \
    CONFIG.TXT=upstream-config.txt CMDLINE2.TXT=upstream-cmdline.txt
make_disk upstream.img fat.tmp e

rm -f fat.tmp bad.dtb badcmdline.txt upstream-config.txt upstream-cmdline.txt
