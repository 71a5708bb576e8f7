#!/usr/bin/env bash
# usage: try-model.sh MODEL [extra qemu args...]   MODEL: raspi0 raspi1ap raspi2b raspi3ap raspi3b raspi4b
# Downloads (private apt config, no change to the host's apt), unpacks, builds a busybox initramfs,
# boots with single-threaded TCG and runs boot.py (marker timing, qtest GPIO, info qtree).
# Env: DTB=override dtb file name, APPEND_EXTRA=more cmdline, NOQTEST=1, PATCH_DTB=1 (disable BT serdev node)
set -euo pipefail
R=${R:-/tmp/models-research}  # scratch: downloads, unpacked packages, runs
model=${1:?model}; shift || true
case $model in
  raspi0)   qemu=qemu-system-arm;     karch=armel; flav=rpi;   bbarch=armel; dtb=bcm2835-rpi-zero.dtb;            periph=0x20000000 ;;
  raspi1ap) qemu=qemu-system-arm;     karch=armel; flav=rpi;   bbarch=armel; dtb=bcm2835-rpi-a-plus.dtb;          periph=0x20000000 ;;
  raspi2b)  qemu=qemu-system-arm;     karch=armhf; flav=armmp; bbarch=armhf; dtb=bcm2836-rpi-2-b.dtb;             periph=0x3f000000 ;;
  raspi3ap) qemu=qemu-system-aarch64; karch=arm64; flav=arm64; bbarch=arm64; dtb=broadcom/bcm2837-rpi-3-a-plus.dtb; periph=0x3f000000 ;;
  raspi3b)  qemu=qemu-system-aarch64; karch=arm64; flav=arm64; bbarch=arm64; dtb=broadcom/bcm2837-rpi-3-b.dtb;    periph=0x3f000000 ;;
  raspi4b)  qemu=qemu-system-aarch64; karch=arm64; flav=arm64; bbarch=arm64; dtb=broadcom/bcm2711-rpi-4-b.dtb;    periph=0xfe000000 ;;
  *) echo "unknown model $model" >&2; exit 2 ;;
esac
dtb=${DTB:-$dtb}
gpiobase=$(printf '0x%x' $((periph + 0x200000)))
uart=$(printf '0x%x' $((periph + 0x201000)))

# --- private apt (armel/armhf/arm64 lists without touching /etc/apt or /var/lib/apt)
mkdir -p $R/apt/state/lists/partial $R/apt/cache/archives/partial $R/apt/etc $R/debs $R/x
[ -f $R/apt/etc/sources.list ] || cat > $R/apt/etc/sources.list <<'S'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
S
[ -f $R/apt/apt.conf ] || cat > $R/apt/apt.conf <<S
Dir::State "$R/apt/state"; Dir::State::status "$R/apt/state/status";
Dir::Cache "$R/apt/cache";
Dir::Etc::SourceList "$R/apt/etc/sources.list"; Dir::Etc::SourceParts "/nonexistent";
APT::Architectures { "amd64"; "arm64"; "armhf"; "armel"; };
Acquire::Languages "none";
S
touch $R/apt/state/status
export APT_CONFIG=$R/apt/apt.conf
ls $R/apt/state/lists/*binary-${karch}_Packages* >/dev/null 2>&1 || nice -n 19 apt-get update || true
kpkg=$(apt-cache depends linux-image-$flav:$karch | sed -n "s/.*Depends: \(linux-image-[^:]*-$flav\)\(:$karch\)\?$/\1/p" | head -1)
kver=$(apt-cache policy $kpkg:$karch | sed -n 's/.*Candidate: //p')
bbver=$(apt-cache policy busybox-static:$bbarch | sed -n 's/.*Candidate: //p')
echo "kernel: $kpkg:$karch $kver  busybox-static:$bbarch $bbver  dtb: $dtb"
kx=$R/x/${kpkg}_$karch; bx=$R/x/busybox-static_$bbarch
if [ ! -d "$kx" ]; then (cd $R/debs && nice -n 19 apt-get download $kpkg:$karch); mkdir -p $kx; nice -n 19 dpkg-deb -x $R/debs/${kpkg}_*_$karch.deb $kx; fi
if [ ! -d "$bx" ]; then (cd $R/debs && nice -n 19 apt-get download busybox-static:$bbarch); mkdir -p $bx; nice -n 19 dpkg-deb -x $R/debs/busybox-static_*_$bbarch.deb $bx; fi
kabi=${kpkg#linux-image-}
kernel=$kx/boot/vmlinuz-$kabi
dtbpath=$kx/usr/lib/linux-image-$kabi/$dtb

# --- initramfs per (busybox arch, kernel)
ird=$R/ir/$model; rm -rf $ird; mkdir -p $ird/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,lib/modules,tmp}
cp $bx/bin/busybox $ird/bin/busybox
cp $R/initfs/init $ird/init
for m in kernel/drivers/i2c/busses/i2c-bcm2835.ko kernel/drivers/i2c/i2c-dev.ko; do
  [ -f $kx/lib/modules/$kabi/$m ] && cp $kx/lib/modules/$kabi/$m $ird/lib/modules/
done
initrd=$R/ir/$model.cpio.gz
(cd $ird && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) > $initrd

# --- dtb (optionally patched)
mkdir -p $R/run/$model; rm -f $R/run/$model/*.sock
cp $dtbpath $R/run/$model/board.dtb
# NOASB=1: keep only the "pm" region of the PM/watchdog node. QEMU's newer raspi machines (raspi0,
# raspi1ap, raspi3ap, raspi4b) do not set ignore_memory_transaction_failures, so the kernel's read of
# the unimplemented ASB block (0x7e00a000) is an external abort -> panic in bcm2835_power_probe.
case $model in raspi2b|raspi3b|raspi4b) noasb_def=0 ;; *) noasb_def=1 ;; esac
# PRUNE=1: disable DT nodes whose MMIO window QEMU does not map at all (needed on raspi4b).
case $model in raspi4b) prune_def=1 ;; *) prune_def=0 ;; esac
[ "${PRUNE:-$prune_def}" = 1 ] && python3 "$(dirname "$0")/../../../tools/dtb-prune-unmapped.py" $model $R/run/$model/board.dtb
if [ "${NOASB:-$noasb_def}" = 1 ]; then
  pmn=/soc/$(fdtget -l $R/run/$model/board.dtb /soc | grep '^watchdog@7e100000')
  fdtput -t x $R/run/$model/board.dtb $pmn reg 0x7e100000 0x114
  fdtput -t s $R/run/$model/board.dtb $pmn reg-names pm
  echo "dtb patch: $pmn reg=<0x7e100000 0x114> reg-names=pm (ASB dropped)"
fi
if [ "${PATCH_DTB:-0}" = 1 ]; then
  for n in $(fdtget -l $R/run/$model/board.dtb /soc 2>/dev/null | grep '^serial@'); do
    for c in $(fdtget -l $R/run/$model/board.dtb /soc/$n 2>/dev/null); do
      echo "dtb patch: disable /soc/$n/$c"; fdtput -t s $R/run/$model/board.dtb /soc/$n/$c status disabled
    done
  done
fi
# raspi2b + armmp + single-threaded TCG with 4 vCPUs crawls/stalls before /init: default to maxcpus=1.
if [ $model = raspi2b ] && [ -z "${APPEND_EXTRA+x}" ] && [ "${ACCEL:-tcg,thread=single}" = tcg,thread=single ]; then APPEND_EXTRA=maxcpus=1; fi
append="console=ttyAMA0,115200 earlycon=pl011,mmio32,$uart rdinit=/init iomem=relaxed gpiobase=$gpiobase ${APPEND_EXTRA:-}"
qargs=(nice -n 19 $qemu -M $model -accel ${ACCEL:-tcg,thread=single} -display none -no-reboot
       -kernel $kernel -dtb $R/run/$model/board.dtb -initrd $initrd -append "$append"
       -serial stdio -monitor unix:$R/run/$model/mon.sock,server=on,wait=off)
[ "${NOQTEST:-0}" = 1 ] || qargs+=(-qtest unix:$R/run/$model/q.sock,server=on,wait=off)
qargs+=("$@")
{ echo "kernel-pkg=$kpkg:$karch $kver"; echo "busybox=busybox-static:$bbarch $bbver"; echo "dtb=$dtb"; } > $R/run/$model/packages.txt
exec python3 $R/boot.py $R/run/$model $gpiobase -- "${qargs[@]}"
