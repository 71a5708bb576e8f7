#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# TLS for the boards' serial lines, as root. Safe to run again.
#
# A board's two serial lines are TCP on 127.0.0.1, authenticated at both ends: piemud listens
# (TLS server, /etc/piemu/tls) and QEMU dials it (TLS client, libvirt's chardev_tls_x509_cert_dir).
# Both certificates come from one CA, and each end refuses a peer without a certificate from it.
#
#   /etc/piemu/ca/ca-key.pem        piemu's CA key (ECDSA P-256), root only, used only here
#   /etc/piemu/tls/                 piemud's side: ca-cert.pem, server-cert.pem (for 127.0.0.1),
#                                   server-key.pem (0400, owner piemu)
#   /etc/pki/piemu-qemu/            QEMU's side: ca-cert.pem, client-cert.pem, client-key.pem
#                                   (0640, group of QEMU's user); qemu.conf's
#                                   chardev_tls_x509_cert_dir points here
#
# It never overwrites an administrator's CA or certificates: if qemu.conf already names another
# chardev_tls_x509_cert_dir, or libvirt's default directory already holds a CA, that directory
# stays as it is and piemud needs its own certificate from that CA in /etc/piemu/tls (this
# script then says exactly what is missing). libvirtd is restarted once if qemu.conf changed.
#
#   tools/setup-tls.sh                  the system set-up above
#   tools/setup-tls.sh --no-libvirt     the same without qemu.conf and libvirtd: the package's
#                                       postinst (qemu.conf is libvirt's conffile); it says whether
#                                       the full command still has to run
#   tools/setup-tls.sh --remove-qemu-conf  takes piemu's lines out of qemu.conf again (before
#                                       purging the package: libvirt refuses a
#                                       chardev_tls_x509_cert_dir that does not exist)
#   tools/setup-tls.sh --throwaway DIR  a self-contained set (CA, server and client pairs) in DIR,
#                                       for tests and benchmarks; touches nothing else
# Installed as piemu-setup-tls (man piemu-setup-tls).
set -euo pipefail

QEMU_CONF=${QEMU_CONF:-/etc/libvirt/qemu.conf}
CA_DIR=${PIEMU_CA_DIR:-/etc/piemu/ca}
PIEMUD_DIR=${PIEMU_TLS_DIR:-/etc/piemu/tls}
QEMU_DIR=${PIEMU_QEMU_TLS_DIR:-/etc/pki/piemu-qemu}
CERT_DAYS=365
RENEW_SECONDS=$((30 * 24 * 3600))

prog=$(basename -- "$0" .sh)
say() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }

usage() {
    cat <<USAGE
Usage: $prog [--no-libvirt | --remove-qemu-conf | --throwaway DIR]

TLS for piemu's serial lines, as root: piemu's CA ($CA_DIR), piemud's server
certificate ($PIEMUD_DIR) and QEMU's client certificate ($QEMU_DIR), and
chardev_tls_x509_cert_dir in $QEMU_CONF pointing at the latter (libvirtd is
restarted once when that line is added; running boards keep running). Safe to
run again: certificates are renewed 30 days before they expire.

  --no-libvirt        credentials only; qemu.conf and libvirtd are left alone
                      (the package's postinst runs this)
  --remove-qemu-conf  remove piemu's chardev_tls_x509_cert_dir from qemu.conf
                      again (run it before purging piemu)
  --throwaway DIR     a self-contained CA and pairs in DIR, for tests
  -h, --help          this text
USAGE
}
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    ''|--no-libvirt|--remove-qemu-conf|--throwaway) ;;
    *) usage >&2; exit 2 ;;
esac

command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"

# new_key FILE: an ECDSA P-256 key, created with no permissions for others from the start.
new_key() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

# new_ca DIR: ca-key.pem and ca-cert.pem.
new_ca() {
    new_key "$1/ca-key.pem"
    openssl req -new -x509 -key "$1/ca-key.pem" -subj "/CN=piemu serial lines CA/O=piemu" \
        -days 3650 -sha256 -out "$1/ca-cert.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# issue CADIR KEY CERT server|client CN: a certificate for KEY signed by the CA in CADIR.
# QEMU refuses a certificate whose (critical) key usage lacks keyEncipherment, even for an EC key.
issue() {
    local ca=$1 key=$2 cert=$3 kind=$4 cn=$5 ext csr
    ext=$(mktemp)
    csr=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [ "$kind" = server ]; then
            echo "extendedKeyUsage=serverAuth"
            echo "subjectAltName=IP:127.0.0.1"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$ext"
    openssl req -new -key "$key" -subj "/CN=$cn/O=piemu" -out "$csr" 2>/dev/null
    openssl x509 -req -in "$csr" -CA "$ca/ca-cert.pem" -CAkey "$ca/ca-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
        -days "$CERT_DAYS" -sha256 -extfile "$ext" -out "$cert" 2>/dev/null
    rm -f "$ext" "$csr"
}

# valid CERT CA: CERT exists, chains to CA, and is good for another 30 days.
valid() {
    [ -s "$1" ] && openssl verify -CAfile "$2" "$1" >/dev/null 2>&1 &&
        openssl x509 -in "$1" -noout -checkend "$RENEW_SECONDS" >/dev/null 2>&1
}

if [ "${1:-}" = --throwaway ]; then
    dir=${2:?usage: setup-tls.sh --throwaway DIR}
    mkdir -p "$dir"
    new_ca "$dir"
    new_key "$dir/server-key.pem"
    issue "$dir" "$dir/server-key.pem" "$dir/server-cert.pem" server piemud
    new_key "$dir/client-key.pem"
    issue "$dir" "$dir/client-key.pem" "$dir/client-cert.pem" client piemu-qemu
    exit 0
fi

# Makes libvirt read qemu.conf again. With systemd: a restart of its unit (running domains keep
# running). Without: the libvirtd tools/start-services.sh started (libvirtd -d writes
# /run/libvirtd.pid), by its pidfile: never by name, which would also hit the libvirtd of a
# container on this host. tools/start-services.sh starts it again (it waits for this one to exit
# first); elsewhere whoever started it does.
reload_libvirt() {
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl try-restart libvirtd.service virtqemud.service 2>/dev/null || true
        say "restarted libvirtd to read qemu.conf"
    else
        local pid
        pid=$(cat /run/libvirtd.pid 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ]; then
            kill -TERM "$pid" || true
            say "stopped libvirtd (pid $pid) so that it reads qemu.conf when it starts again"
        fi
    fi
}

if [ "${1:-}" = --remove-qemu-conf ]; then
    [ "$(id -u)" = 0 ] || die "must run as root"
    if ! [ -f "$QEMU_CONF" ] ||
        ! grep -qE "^[[:space:]]*chardev_tls_x509_cert_dir[[:space:]]*=[[:space:]]*\"$QEMU_DIR\"" "$QEMU_CONF"; then
        say "$QEMU_CONF does not name $QEMU_DIR: nothing to remove"
        exit 0
    fi
    # The line and the comment this script wrote above it; the rest of the file stays as it is
    # (owner and mode too: the new file is a copy of the old one, edited in place).
    tmp=$(mktemp "$QEMU_CONF.piemu.XXXXXX")
    cp -p -- "$QEMU_CONF" "$tmp"
    awk -v dir="$QEMU_DIR" '
        { lines[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                l = lines[i]; gsub(/[ \t]/, "", l)
                if (l == "chardev_tls_x509_cert_dir=\"" dir "\"") {
                    drop[i] = 1
                    if (i > 2 && lines[i - 2] ~ /^# Added by piemu \(tools\/setup-tls.sh\)/) {
                        drop[i - 1] = drop[i - 2] = 1
                        if (i > 3 && lines[i - 3] == "") drop[i - 3] = 1
                    }
                }
            }
            for (i = 1; i <= NR; i++) if (!drop[i]) print lines[i]
        }' "$QEMU_CONF" >"$tmp"
    mv -f -- "$tmp" "$QEMU_CONF"
    say "removed chardev_tls_x509_cert_dir = \"$QEMU_DIR\" from $QEMU_CONF"
    reload_libvirt
    exit 0
fi

no_libvirt=no
[ "${1:-}" != --no-libvirt ] || no_libvirt=yes

[ "$(id -u)" = 0 ] || die "must run as root"
getent passwd piemu >/dev/null || die "the piemu user is missing (tools/start-services.sh creates it)"

# The last uncommented "key = "value"" of qemu.conf, or nothing.
conf_value() {
    [ -f "$QEMU_CONF" ] || return 0
    sed -n -E "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"([^\"]*)\".*/\1/p" "$QEMU_CONF" | tail -n 1
}

qemu_user=$(conf_value user)
qemu_user=${qemu_user:-libvirt-qemu}
qemu_group=$(conf_value group)
qemu_group=${qemu_group:-libvirt-qemu}
getent group "$qemu_group" >/dev/null || qemu_group=$(id -gn "$qemu_user" 2>/dev/null || echo root)

chardev_dir=$(conf_value chardev_tls_x509_cert_dir)
conf_changed=no
if [ -z "$chardev_dir" ]; then
    default_dir=$(conf_value default_tls_x509_cert_dir)
    default_dir=${default_dir:-/etc/pki/qemu}
    if [ -e "$default_dir/ca-cert.pem" ]; then
        # libvirt would use the administrator's CA for chardevs: leave it alone.
        admin_dir=$default_dir
    elif [ "$no_libvirt" = yes ]; then
        # qemu.conf belongs to libvirt's package: only the full command (an administrator's
        # decision) edits it.
        admin_dir=
        conf_changed=needed
    else
        admin_dir=
        printf '\n# Added by piemu (tools/setup-tls.sh): the CA and client certificate QEMU uses to\n# dial piemud'"'"'s TLS serial lines.\nchardev_tls_x509_cert_dir = "%s"\n' \
            "$QEMU_DIR" >>"$QEMU_CONF"
        conf_changed=yes
        say "qemu.conf: chardev_tls_x509_cert_dir = \"$QEMU_DIR\""
    fi
elif [ "$chardev_dir" = "$QEMU_DIR" ]; then
    admin_dir=
else
    admin_dir=$chardev_dir
fi

if [ -n "$admin_dir" ]; then
    # Someone else's CA: check, explain, change nothing.
    missing=()
    for f in ca-cert.pem client-cert.pem client-key.pem; do
        [ -e "$admin_dir/$f" ] || missing+=("$admin_dir/$f (QEMU's client certificate for dialing piemud)")
    done
    for f in ca-cert.pem server-cert.pem server-key.pem; do
        [ -e "$PIEMUD_DIR/$f" ] || missing+=("$PIEMUD_DIR/$f")
    done
    say "libvirt's chardev TLS directory $admin_dir belongs to an existing CA; piemu leaves it alone."
    if [ ${#missing[@]} -gt 0 ]; then
        say "piemud's serial lines need, from that CA:"
        for m in "${missing[@]}"; do say "  missing: $m"; done
        say "  $PIEMUD_DIR/server-cert.pem must be for IP 127.0.0.1 (subjectAltName), its key 0400 owned by piemu;"
        say "  $PIEMUD_DIR/ca-cert.pem is the CA that signed $admin_dir/client-cert.pem."
        say "Boards cannot start until then (piemud says so at start-up)."
    else
        say "piemud's credentials in $PIEMUD_DIR are in place"
    fi
    exit 0
fi

install -d -m 0700 -o root -g root "$CA_DIR"
install -d -m 0750 -o root -g piemu "$(dirname "$PIEMUD_DIR")" "$PIEMUD_DIR"
install -d -m 0755 -o root -g root "$QEMU_DIR"

if [ ! -s "$CA_DIR/ca-key.pem" ] || [ ! -s "$CA_DIR/ca-cert.pem" ]; then
    new_ca "$CA_DIR"
    say "made piemu's CA ($CA_DIR, root only)"
fi
chmod 0600 "$CA_DIR/ca-key.pem"
install -m 0644 -o root -g root "$CA_DIR/ca-cert.pem" "$PIEMUD_DIR/ca-cert.pem"
install -m 0644 -o root -g root "$CA_DIR/ca-cert.pem" "$QEMU_DIR/ca-cert.pem"

if ! valid "$PIEMUD_DIR/server-cert.pem" "$CA_DIR/ca-cert.pem" || [ ! -s "$PIEMUD_DIR/server-key.pem" ]; then
    tmp=$(mktemp -d)
    new_key "$tmp/key.pem"
    issue "$CA_DIR" "$tmp/key.pem" "$tmp/cert.pem" server piemud
    install -m 0644 -o root -g root "$tmp/cert.pem" "$PIEMUD_DIR/server-cert.pem"
    install -m 0400 -o piemu -g piemu "$tmp/key.pem" "$PIEMUD_DIR/server-key.pem"
    rm -rf "$tmp"
    say "issued piemud's server certificate ($PIEMUD_DIR)"
fi
chown piemu:piemu "$PIEMUD_DIR/server-key.pem"
chmod 0400 "$PIEMUD_DIR/server-key.pem"

if ! valid "$QEMU_DIR/client-cert.pem" "$CA_DIR/ca-cert.pem" || [ ! -s "$QEMU_DIR/client-key.pem" ]; then
    tmp=$(mktemp -d)
    new_key "$tmp/key.pem"
    issue "$CA_DIR" "$tmp/key.pem" "$tmp/cert.pem" client piemu-qemu
    install -m 0644 -o root -g root "$tmp/cert.pem" "$QEMU_DIR/client-cert.pem"
    install -m 0640 -o root -g "$qemu_group" "$tmp/key.pem" "$QEMU_DIR/client-key.pem"
    rm -rf "$tmp"
    say "issued QEMU's client certificate ($QEMU_DIR)"
fi
chgrp "$qemu_group" "$QEMU_DIR/client-key.pem"
chmod 0640 "$QEMU_DIR/client-key.pem"

if [ "$conf_changed" = yes ]; then
    reload_libvirt
fi
if [ "$conf_changed" = needed ]; then
    say "credentials ready (piemud: $PIEMUD_DIR, QEMU: $QEMU_DIR). To let QEMU use them,"
    say "run '$prog' as root: it adds chardev_tls_x509_cert_dir to $QEMU_CONF and restarts"
    say "libvirtd (running boards keep running)"
    exit 0
fi
say "TLS for the serial lines ready (piemud: $PIEMUD_DIR, QEMU: $QEMU_DIR)"
