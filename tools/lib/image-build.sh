# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2154 # prog, ver, file and sha are the caller's
# Sourced by tools/build-image.sh and tools/build-rpios-image.sh: what building a guest image takes
# in both, so that it is written once. The caller sets prog (its name in messages) and, for
# deb_resolve and deb_fetch, declares the associative arrays ver, file and sha. In here:
#   messages     die, warn, say, require_tools
#   packages     which Debian packages of a guest architecture (arm64, armhf, armel) an image is
#                made of (deb_kernel_package, deb_resolve), the private apt index armhf and armel
#                come from, and the .deb cache (deb_fetch, deb_unpack_kernel_busybox)
#   kernel       arm64_raw_image, dtb_free_phandle
#   initramfs    initramfs_skeleton, initramfs_modules (the module dependency closure),
#                initramfs_pack
#   stamps       sha256_of, hash_tree, stamp_code, stamp_is: what says "this image is up to date"
#   clean-up     remove_on_exit, remove_leftovers, unmount_below
# arm64 comes from the host's apt lists (tools/install-deps.sh adds the arm64 architecture); armhf
# and armel from a private index (private_apt_conf): adding them to the host would make its own
# `apt-get update` fail whenever one of their indexes is out of sync on the mirror (measured here:
# bookworm-security's armhf Packages.xz, for days).

image_build_lib=$(readlink -f -- "${BASH_SOURCE[0]}")

# --- messages -------------------------------------------------------------------------------
die() { echo "$prog: error: $*" >&2; exit 1; }
warn() { echo "$prog: warning: $*" >&2; }
say() { echo "$prog: $*"; }

# Dies naming the first TOOL that is not on PATH, followed by HINT (what to install).
require_tools() { # HINT TOOL...
    local hint=$1 t
    shift
    for t; do
        command -v "$t" >/dev/null || die "'$t' not found$hint"
    done
}

# --- packages -------------------------------------------------------------------------------
# Prints the versioned kernel package (linux-image-<abi>-<flavour>) the meta package $3 of
# architecture $2 depends on; apt-cache options come from the array named $1.
deb_kernel_package() { # APT_OPTS_ARRAY ARCH META_PACKAGE
    local -n _opts=$1
    local flavour=${3#linux-image-}
    apt-cache "${_opts[@]}" show --no-all-versions "$3:$2" 2>/dev/null |
        sed -n "s/^Depends:.*\(linux-image-[^ ,:]*-$flavour\).*/\1/p" | head -n1
}

# Fills the caller's associative arrays ver, file and sha (version, .deb file name, SHA256) for
# each package named, of architecture $2; apt-cache options come from the array named $1.
# Returns 1 (and names the package on stderr) if one has no installable candidate.
deb_resolve() { # APT_OPTS_ARRAY ARCH PACKAGE...
    local -n _opts=$1
    local arch=$2
    shift 2
    local p v f h
    # shellcheck disable=SC2004 # associative arrays: the $ is needed
    while read -r p v f h; do
        ver[$p]=$v; file[$p]=$(basename -- "$f"); sha[$p]=$h
    done < <(apt-cache "${_opts[@]}" show --no-all-versions "${@/%/:$arch}" 2>/dev/null |
        awk '/^Package: /{p=$2} /^Version: /{v=$2} /^Filename: /{f=$2} /^SHA256: /{h=$2}
             /^$/{if (p != "") print p, v, f, h; p=v=f=h=""}
             END{if (p != "") print p, v, f, h}')
    for p in "$@"; do
        if [ -z "${ver[$p]:-}" ] || [ -z "${file[$p]:-}" ] || [ -z "${sha[$p]:-}" ]; then
            echo "no installable candidate for $p:$arch (see: apt-cache policy $p:$arch)" >&2
            return 1
        fi
    done
}

# A private apt configuration for architecture $1 in directory $2 (state, lists, cache, an
# empty dpkg status: nothing of the host's apt is read or written but its keyring). The caller
# writes $2/sources.list and runs `APT_CONFIG=$2/apt.conf apt-get update`.
private_apt_conf() { # ARCH DIR
    local arch=$1 dir=$2
    mkdir -p "$dir"/{lists/partial,archives/partial,etc/apt.conf.d,etc/preferences.d,etc/sources.list.d}
    : >"$dir/status"
    cat >"$dir/apt.conf" <<EOC
Dir::State "$dir";
Dir::State::Lists "$dir/lists";
Dir::State::status "$dir/status";
Dir::Cache "$dir";
Dir::Cache::archives "$dir/archives";
Dir::Cache::pkgcache "$dir/pkgcache.bin";
Dir::Cache::srcpkgcache "";
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "$dir/etc/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$dir/etc/preferences.d";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::Retries "3";
Debug::NoLocking "true";
EOC
}

# Writes DIR/sources.list for a private index: SUITE and SUITE-updates (main) from MIRROR and,
# unless SECURITY_MIRROR is empty, SUITE-security from there, all checked against Debian's archive
# keyring. Returns 1 (and says why on stderr) without the keyring.
private_apt_sources() { # DIR MIRROR SUITE [SECURITY_MIRROR]
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [ ! -f "$keyring" ]; then
        echo "missing $keyring (package debian-archive-keyring)" >&2
        return 1
    fi
    {
        echo "deb [signed-by=$keyring] $2 $3 main"
        echo "deb [signed-by=$keyring] $2 $3-updates main"
        [ -z "${4:-}" ] || echo "deb [signed-by=$keyring] $4 $3-security main"
    } >"$1/sources.list"
}

# Is there a Packages index of SUITE main for ARCH in the private lists of DIR?
private_apt_has_list() { # DIR SUITE ARCH
    [ -n "$(find "$1/lists" -maxdepth 1 -type f \
        -name "*_dists_${2}_main_binary-${3}_Packages*" ! -name '*.diff_Index' -print -quit)" ]
}

# Prints the path of package P's .deb (architecture ARCH; ver[P], file[P] and sha[P] as
# deb_resolve filled them) in the cache directory DIR. A cached file is used if its SHA256 is the
# lists' one; else a copy from OTHER_DIR (another cache, only read) if that has it; else apt-get
# downloads it (options: the array named OPTS_ARRAY) into a hidden sibling, checks it and moves it
# in. Pruning older versions is the caller's: the two caches keep different sets.
deb_fetch() { # OPTS_ARRAY ARCH P DIR [OTHER_DIR]
    local -n _fopts=$1
    local arch=$2 p=$3 dir=$4 other=${5:-} deb dl
    deb=$dir/${file[$p]}
    if [ -f "$deb" ] && [ "$(sha256_of "$deb")" = "${sha[$p]}" ]; then
        echo "$deb"
        return
    fi
    if [ -n "$other" ] && [ -f "$other/${file[$p]}" ] &&
        [ "$(sha256_of "$other/${file[$p]}")" = "${sha[$p]}" ]; then
        cp -- "$other/${file[$p]}" "$deb.tmp" && mv -f -- "$deb.tmp" "$deb"
        chmod 0644 "$deb"
        echo "$deb"
        return
    fi
    say "downloading $p:$arch=${ver[$p]}" >&2
    dl=$(mktemp -d "$dir/.download.XXXXXX")
    chmod 0755 "$dl"
    if ! (cd "$dl" && apt-get download -q "${_fopts[@]}" -o APT::Sandbox::User=root \
            "$p:$arch=${ver[$p]}" </dev/null >&2); then
        rm -rf -- "$dl"
        die "apt-get download $p:$arch=${ver[$p]} failed (network? stale lists: apt-get update)"
    fi
    local got=("$dl"/*.deb)
    if [ "${#got[@]}" != 1 ] || [ "$(sha256_of "${got[0]}")" != "${sha[$p]}" ]; then
        rm -rf -- "$dl"
        die "downloaded $p does not match the SHA256 of the apt lists"
    fi
    chmod 0644 "${got[0]}"
    mv -f -- "${got[0]}" "$deb"
    rm -rf -- "$dl"
    echo "$deb"
}

# Unpacks a kernel package's .deb into KX and busybox-static's into BX, checks that they hold
# lib/modules/KVER and bin/busybox, and indexes KX's modules (modprobe -d KX reads the index).
deb_unpack_kernel_busybox() { # KERNEL_DEB KX BUSYBOX_DEB BX KVER
    dpkg-deb -x "$1" "$2"
    dpkg-deb -x "$3" "$4"
    [ -d "$2/lib/modules/$5" ] || die "$(basename -- "$1") has no lib/modules/$5"
    [ -x "$4/bin/busybox" ] || die "busybox-static has no bin/busybox"
    depmod -b "$2" "$5"
}

# --- kernel ---------------------------------------------------------------------------------
# Writes the raw arm64 Image of the kernel VMLINUZ (a raw or a gzip'd one) to OUT: QEMU and the
# Pi firmware load it raw. Returns 1 if OUT is no arm64 Image (an EFI zboot kernel?).
arm64_raw_image() { # VMLINUZ OUT
    case "$(od -An -tx1 -N2 "$1" | tr -d ' \n')" in
        1f8b) gzip -dc <"$1" >"$2" ;;
        *) cp -- "$1" "$2" ;;
    esac
    [ "$(od -An -c -j56 -N4 "$2" | tr -d ' \n')" = ARMd ]
}

# Prints a phandle no node of the device tree blob DTB uses yet (the largest one + 1), for a node
# that must be referred to and has none.
dtb_free_phandle() { # DTB
    local max
    max=$(dtc -I dtb -O dts "$1" 2>/dev/null | sed -n 's/.*phandle = <0x\([0-9a-f]*\)>;.*/\1/p' |
        while read -r h; do echo $((16#$h)); done | sort -n | tail -n1)
    echo $((${max:-0} + 1))
}

# --- initramfs ------------------------------------------------------------------------------
# The directories, device nodes and busybox both images' initramfs have; the caller adds the
# rest (its /init, its modules with initramfs_modules) and packs it with initramfs_pack.
initramfs_skeleton() { # IR KVER BUSYBOX
    mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,run,tmp,root,lib/modules/"$2"}
    chmod 1777 "$1/tmp"
    mknod -m 0600 "$1/dev/console" c 5 1
    mknod -m 0666 "$1/dev/null" c 1 3
    install -m 0755 "$3" "$1/bin/busybox"
}

# Copies each MODULE and every module it depends on, soft dependencies included (busybox modprobe
# ignores those), from the kernel package unpacked in KX (deb_unpack_kernel_busybox) into the
# initramfs IR, uncompressed; writes their names to ORDER in the order to load them; indexes IR's
# small tree with depmod. A MODULE written NAME? is optional: a kernel without it gets a note.
initramfs_modules() { # KX KVER IR ORDER MODULE...
    local kx=$1 kver=$2 ir=$3 order=$4 want mod deps verb path rel ko m f
    shift 4
    : >"$order"
    for want; do
        mod=${want%\?}
        if ! deps=$(modprobe -d "$kx" -S "$kver" --show-depends "$mod" 2>&1); then
            [ "$mod" != "$want" ] || die "module $mod: $deps"
            say "note: kernel $kver has no module $mod (optional), leaving it out"
            continue
        fi
        while read -r verb path _; do
            case "$verb" in
                builtin) continue ;;
                insmod) ;;
                *) die "module $mod: unexpected modprobe output: $verb $path" ;;
            esac
            rel=${path#"$kx/lib/modules/$kver/"}
            ko=${rel%.xz}; ko=${ko%.zst}; ko=${ko%.gz}
            m=$(basename -- "$ko" .ko)
            grep -qx -- "$m" "$order" && continue
            echo "$m" >>"$order"
            mkdir -p "$ir/lib/modules/$kver/$(dirname -- "$ko")"
            case "$rel" in
                *.ko.xz) xz -dc <"$path" >"$ir/lib/modules/$kver/$ko" ;;
                *.ko.zst) zstd -qdc <"$path" >"$ir/lib/modules/$kver/$ko" ;;
                *.ko.gz) gzip -dc <"$path" >"$ir/lib/modules/$kver/$ko" ;;
                *.ko) cp -- "$path" "$ir/lib/modules/$kver/$ko" ;;
                *) die "module $mod: unexpected file $path" ;;
            esac
        done <<<"$deps"
    done
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ ! -f "$kx/lib/modules/$kver/$f" ] || cp -- "$kx/lib/modules/$kver/$f" "$ir/lib/modules/$kver/"
    done
    depmod -b "$ir" "$kver"
    # depmod's input only, and binary indexes busybox modprobe does not read.
    rm -f "$ir/lib/modules/$kver/modules.builtin.modinfo" "$ir/lib/modules/$kver"/*.bin
}

# Packs the tree IR into OUT, a gzip'd newc cpio archive. Owners and times are normalized, so that
# the archive depends on the content only.
initramfs_pack() { # IR OUT
    chown -R -h 0:0 "$1"
    find "$1" -exec touch -h -d @0 {} +
    (cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --quiet) | gzip -9 -n >"$2"
}

# --- stamps ---------------------------------------------------------------------------------
# A build leaves a stamp of everything the image is made from; when the stamp it would write is
# the one there, the image is up to date.
sha256_of() { # FILE
    sha256sum <"$1" | cut -d' ' -f1
}

# One hash of the names and contents of the files in a directory tree, in a stable order.
hash_tree() { # DIR
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) |
        sha256sum | cut -d' ' -f1
}

# The stamp's lines for the code that builds the image: the script, this library and each other
# input given as NAME=FILE (an /init, a helper program), so that a change to any rebuilds.
stamp_code() { # SCRIPT [NAME=FILE]...
    local f
    echo "script=$(sha256_of "$1")"
    echo "lib=$(sha256_of "$image_build_lib")"
    shift
    for f; do
        echo "${f%%=*}=$(sha256_of "${f#*=}")"
    done
}

# Does the stamp file FILE hold STAMP?
stamp_is() { # FILE STAMP
    [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# --- clean-up -------------------------------------------------------------------------------
# Lazily unmounts anything mounted at or below DIR, the deepest first (mmdebstrap's chroot).
unmount_below() { # DIR
    local m
    awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l -- "$m" 2>/dev/null || true; done
}

# Removes the entries of DIR whose names match a find -name PATTERN: what a killed build left.
# Call it holding the lock that keeps other builds out of DIR.
remove_leftovers() { # DIR PATTERN...
    local dir=$1 p d expr=()
    shift
    for p; do
        expr+=(${expr[0]+-o} -name "$p")
    done
    while IFS= read -r -d '' d; do
        unmount_below "$d"
        rm -rf --one-file-system -- "$d"
    done < <(find "$dir" -mindepth 1 -maxdepth 1 \( "${expr[@]}" \) -print0)
}

# Each PATH given (a work directory, a temporary file) is removed when the script exits, however
# it exits (a signal too), anything mounted below it first. A path gone by then (renamed into
# place) is passed over.
_remove_on_exit=()
remove_on_exit() { # PATH...
    if [ ${#_remove_on_exit[@]} = 0 ]; then
        trap _remove_at_exit EXIT
        trap 'exit 130' INT TERM HUP
    fi
    _remove_on_exit+=("$@")
}
_remove_at_exit() {
    local rc=$? p
    for p in "${_remove_on_exit[@]}"; do
        [ -e "$p" ] || [ -L "$p" ] || continue
        unmount_below "$p"
        rm -rf --one-file-system -- "$p"
    done
    exit "$rc"
}
