# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by tools/build-image.sh and tools/build-rpios-image.sh, what both share: which Debian
# packages of a guest architecture (arm64, armhf, armel) an image is made of, where their apt index
# comes from, and a device-tree helper.
# arm64 comes from the host's apt lists (tools/install-deps.sh adds the arm64 architecture); armhf
# and armel from a private index (private_apt_conf): adding them to the host would make its own
# `apt-get update` fail whenever one of their indexes is out of sync on the mirror (measured here:
# bookworm-security's armhf Packages.xz, for days). Both scripts put this file's hash into their
# stamps.

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

# Prints a phandle no node of the device tree blob DTB uses yet (the largest one + 1), for a node
# that must be referred to and has none.
dtb_free_phandle() { # DTB
    local max
    max=$(dtc -I dtb -O dts "$1" 2>/dev/null | sed -n 's/.*phandle = <0x\([0-9a-f]*\)>;.*/\1/p' |
        while read -r h; do echo $((16#$h)); done | sort -n | tail -n1)
    echo $((${max:-0} + 1))
}

# Is there a Packages index of SUITE main for ARCH in the private lists of DIR?
private_apt_has_list() { # DIR SUITE ARCH
    [ -n "$(find "$1/lists" -maxdepth 1 -type f \
        -name "*_dists_${2}_main_binary-${3}_Packages*" ! -name '*.diff_Index' -print -quit)" ]
}
