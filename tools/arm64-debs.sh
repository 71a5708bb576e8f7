# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by tools/build-image.sh and tools/build-rpios-image.sh: which Debian arm64 packages a
# guest image is made of, resolved from the host's apt lists (tools/install-deps.sh adds the arm64
# architecture and updates them). Both scripts put this file's hash into their stamps.

# Prints the versioned kernel package (linux-image-<abi>-arm64) the meta package $2 depends on;
# apt-cache options come from the array named $1.
arm64_kernel_package() { # APT_OPTS_ARRAY META_PACKAGE
    local -n _opts=$1
    apt-cache "${_opts[@]}" show --no-all-versions "$2:arm64" 2>/dev/null |
        sed -n 's/^Depends:.*\(linux-image-[^ ,:]*-arm64\).*/\1/p' | head -n1
}

# Fills the caller's associative arrays ver, file and sha (version, .deb file name, SHA256) for
# each arm64 package named; apt-cache options come from the array named $1. Returns 1 (and names
# the package on stderr) if one has no installable candidate.
arm64_resolve() { # APT_OPTS_ARRAY PACKAGE...
    local -n _opts=$1
    shift
    local p v f h
    while read -r p v f h; do
        ver[$p]=$v; file[$p]=$(basename -- "$f"); sha[$p]=$h
    done < <(apt-cache "${_opts[@]}" show --no-all-versions "${@/%/:arm64}" 2>/dev/null |
        awk '/^Package: /{p=$2} /^Version: /{v=$2} /^Filename: /{f=$2} /^SHA256: /{h=$2}
             /^$/{if (p != "") print p, v, f, h; p=v=f=h=""}
             END{if (p != "") print p, v, f, h}')
    for p in "$@"; do
        if [ -z "${ver[$p]:-}" ] || [ -z "${file[$p]:-}" ] || [ -z "${sha[$p]:-}" ]; then
            echo "no installable candidate for $p:arm64 (see: apt-cache policy $p:arm64)" >&2
            return 1
        fi
    done
}
