# SPDX-License-Identifier: LGPL-2.1-or-later
"""piemuctl -H USER@HOST:PORT: every kind of command through a real ssh and systemd-stdio-bridge.

The "other host" is this one: the test starts its own sshd on 127.0.0.1 (a free port, its own host
key, keys only) and makes two users: the remote one ssh logs in as (in group piemu, like a lab user),
and a client user who runs piemuctl with a key, a known_hosts and an ssh config in its home, as
someone would from their laptop. Through that: list, create, start, status, wait, the console (which
cannot get OpenSerial's descriptor over the bridge and goes through Watch/SendSerial), pins,
import-image (which travels as ssh's stdin to "piemuctl import-image NAME -" over there), a polkit
refusal that names the host, an unreachable host, and the option conflicts.

Runs as root with piemud on the system bus (see test_ctl.py); the far side runs /usr/bin/piemuctl.
One guest boot for the module.
"""

import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import tempfile
import termios
import time
import uuid

import pytest

from conftest import _require
import piemu_bus as pb

BOOT_TIMEOUT = float(os.environ.get("PIEMU_BOOT_TIMEOUT", "120"))
PROMPT_RE = "piemu:[^ ]*# "
EXIT_USAGE, EXIT_STATE, EXIT_ACCESS, EXIT_NO_DAEMON = 2, 4, 5, 7
REMOTE_USER = "piemu-t-ssh"  # ssh logs in as this one (member of group piemu)
CLIENT_USER = "piemu-t-sshc"  # runs piemuctl -H
RULES = "/etc/polkit-1/rules.d/10-piemu-test-remote.rules"
SSHD = "/usr/sbin/sshd"


def unique(prefix="t-rem"):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    pb.CREATED.add(name)  # joins the session's leak check (conftest)
    return name


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_user(name, home, groups):
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    # sshd without PAM turns away locked ("!") accounts; "*" is no password at all, keys only.
    subprocess.run(["usermod", "--home", home, "--shell", "/bin/sh", "--groups", ",".join(groups),
                    "--password", "*", name], check=True)
    pw = pwd.getpwnam(name)
    os.makedirs(home, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o700)
    return pw


def write(path, text, mode, owner=None):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if owner:
        os.chown(path, owner.pw_uid, owner.pw_gid)


class Remote:
    def __init__(self, tmp, port, client):
        self.tmp = tmp
        self.port = port
        self.client = client
        self.host = f"{REMOTE_USER}@127.0.0.1:{port}"

    def argv(self, *args, host=None):
        return ["setpriv", f"--reuid={self.client.pw_uid}", f"--regid={self.client.pw_gid}", "--init-groups",
                "piemuctl", "-H", host or self.host, *args]

    def env(self):
        return {"PATH": "/usr/bin:/bin", "HOME": self.client.pw_dir, "LANG": "C.UTF-8"}

    def run(self, *args, host=None, timeout=180, stdin=subprocess.DEVNULL, input=None, extra_env=None):
        env = self.env()
        env.update(extra_env or {})
        kw = {"input": input} if input is not None else {"stdin": stdin}
        return subprocess.run(self.argv(*args, host=host), capture_output=True, env=env, timeout=timeout, **kw)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"piemuctl -H {' '.join(args)} failed ({r.returncode}): {r.stderr!r}"
        return r

    def fails(self, code, *args, message=None, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == code, f"piemuctl -H {' '.join(args)}: expected {code}, got {r.returncode}: {r.stderr!r}"
        if message:
            assert re.search(message, r.stderr.decode()), f"{message!r} not in {r.stderr!r}"
        return r

    def spawn(self, *args, **kw):
        return subprocess.Popen(self.argv(*args), env=self.env(), **kw)


@pytest.fixture(scope="module")
def remote(daemon):
    for tool in (SSHD, "ssh", "ssh-keygen", "setpriv", "systemd-stdio-bridge", "useradd"):
        if not shutil.which(tool):
            _require(f"{tool} is not installed (openssh-server, openssh-client, systemd, util-linux)")
    tmp = tempfile.mkdtemp(prefix="piemu-remote-")
    os.chmod(tmp, 0o755)  # sshd (StrictModes) and both users walk through it
    sshd = log = None
    try:
        rpw = ensure_user(REMOTE_USER, os.path.join(tmp, "remote-home"), ["piemu"])
        cpw = ensure_user(CLIENT_USER, os.path.join(tmp, "client-home"), [])
        port = free_port()

        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/host_key"], check=True)
        ssh_dir = os.path.join(cpw.pw_dir, ".ssh")
        os.mkdir(ssh_dir, 0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{ssh_dir}/id_ed25519"], check=True)
        with open(f"{ssh_dir}/id_ed25519.pub") as f:
            write(f"{tmp}/authorized_keys", f.read(), 0o644)
        with open(f"{tmp}/host_key.pub") as f:
            write(f"{ssh_dir}/known_hosts", f"[127.0.0.1]:{port} {' '.join(f.read().split()[:2])}\n", 0o600)
        # ssh reads ~/.ssh/config from the passwd entry's home, not $HOME: cpw.pw_dir is that home.
        write(f"{ssh_dir}/config",
              "Host 127.0.0.1\n"
              "  IdentityFile ~/.ssh/id_ed25519\n"
              "  UserKnownHostsFile ~/.ssh/known_hosts\n"
              "  StrictHostKeyChecking yes\n"
              "  BatchMode yes\n"
              "  ConnectTimeout 10\n", 0o600)
        for root, dirs, files in os.walk(ssh_dir):
            for n in [root, *(os.path.join(root, x) for x in files)]:
                os.chown(n, cpw.pw_uid, cpw.pw_gid)

        write(f"{tmp}/sshd_config",
              "ListenAddress 127.0.0.1\n"
              f"Port {port}\n"
              f"HostKey {tmp}/host_key\n"
              f"AuthorizedKeysFile {tmp}/authorized_keys\n"
              f"AllowUsers {REMOTE_USER}\n"
              "PasswordAuthentication no\n"
              "KbdInteractiveAuthentication no\n"
              "PubkeyAuthentication yes\n"
              "UsePAM no\n"
              # The key file sits under /tmp, which is world-writable: StrictModes would refuse it.
              "StrictModes no\n"
              "PermitRootLogin no\n"
              "X11Forwarding no\n"
              "PrintMotd no\n"
              "PrintLastLog no\n"
              f"PidFile {tmp}/sshd.pid\n", 0o644)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        log = open(f"{tmp}/sshd.log", "w")
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", f"{tmp}/sshd_config"], stdout=subprocess.DEVNULL,
                                stderr=log)
        deadline = time.monotonic() + 15
        while True:
            assert sshd.poll() is None, f"sshd exited: {open(f'{tmp}/sshd.log').read()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "sshd did not listen"
                time.sleep(0.1)

        # Importing images needs an administrator (org.piemu.manage-images): grant it to the remote
        # user for this module, as test_security.py does for its admin.
        with open(RULES, "w") as f:
            f.write("// Temporary, written by tests/integration/test_remote.py.\n"
                    "polkit.addRule(function(action, subject) {\n"
                    f'    if (subject.user == "{REMOTE_USER}" && action.id == "org.piemu.manage-images")\n'
                    "        return polkit.Result.YES;\n"
                    "});\n")
        r = Remote(tmp, port, cpw)
        for _ in range(100):
            probe = subprocess.run(["setpriv", f"--reuid={rpw.pw_uid}", f"--regid={rpw.pw_gid}", "--init-groups",
                                    "piemuctl", "--no-ask-password", "remove-image", "no-such-image-x"],
                                   capture_output=True, env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL)
            if probe.returncode == 3:  # no such image, rather than access denied
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test polkit rule never took effect: {probe.stderr!r}")
        yield r
    finally:
        if os.path.exists(RULES):
            os.unlink(RULES)
        if sshd:
            sshd.terminate()
            sshd.wait(10)
        if log:
            log.close()
        for user in (REMOTE_USER, CLIENT_USER):
            subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def remote_board(remote):
    """A board created, started and booted entirely through -H: owned by the remote user."""
    name = unique()
    try:
        remote.ok("create", name)
        remote.ok("start", name)
        r = remote.run("wait", name, f"--serial={PROMPT_RE}", f"--timeout={BOOT_TIMEOUT}s", timeout=BOOT_TIMEOUT + 30)
        assert r.returncode == 0, f"board {name} did not boot to its prompt over -H: {r.stderr!r}"
        yield name
    finally:
        subprocess.run(["piemuctl", "delete", name], capture_output=True, stdin=subprocess.DEVNULL)


# ---- no board needed ----


@pytest.mark.parametrize("args, env, message", [
    (["-H", "127.0.0.1", "--user", "list"], {}, "cannot be combined with --user"),
    (["-H", "127.0.0.1", "list"], {"PIEMU_BUS_ADDRESS": "unix:path=/nonexistent"}, r"\$PIEMU_BUS_ADDRESS is set"),
    (["-H", "a b", "list"], {}, "Invalid host"),
    (["-H", "-oProxyCommand=x", "list"], {}, "Invalid host"),
    (["--host=u@h@x", "list"], {}, "Invalid host"),
    (["-H", "h:99999", "list"], {}, "Invalid host"),
    (["-H", "h/container", "list"], {}, "Invalid host"),
    (["-H", "[::1", "list"], {}, "Invalid host"),
    (["-H"], {}, "needs an argument"),
])
def test_usage_errors(piemuctl_bin, args, env, message):
    e = {k: v for k, v in os.environ.items() if k != "PIEMU_BUS_ADDRESS"}
    e.update(env)
    r = subprocess.run([piemuctl_bin, *args], capture_output=True, text=True, env=e, stdin=subprocess.DEVNULL,
                       timeout=30)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert re.search(message, r.stderr), r.stderr


def test_unreachable_host(remote):
    """Nothing listens on the port: one clear line of ours after ssh's own, quickly."""
    port = free_port()
    host = f"{REMOTE_USER}@127.0.0.1:{port}"
    t = time.monotonic()
    r = remote.fails(EXIT_NO_DAEMON, "list", host=host, timeout=60)
    assert time.monotonic() - t < 15
    err = r.stderr.decode()
    assert "Connection refused" in err  # ssh's own message reaches the terminal
    assert f"Cannot reach the system bus of {host} over ssh" in err, err


def test_list(remote):
    r = remote.ok("list", "--no-pager")
    assert re.search(r"(boards? listed\.|No boards\.)$", r.stdout.decode().strip()), r.stdout


def test_refusal_names_the_host(remote):
    """A board of root's: the remote user (group piemu) may look but not touch, and no password is
    asked across the bridge."""
    name = unique()
    subprocess.run(["piemuctl", "create", name], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    try:
        assert name in remote.ok("list").stdout.decode()
        r = remote.fails(EXIT_ACCESS, "start", name, message=rf"Access denied on {re.escape(remote.host)}")
        assert f"On {remote.host} the rights of the user ssh logs in as apply" in r.stderr.decode()
        remote.fails(EXIT_ACCESS, "delete", name, message="Access denied on")
        # Unknown names say where they were looked for.
        remote.fails(3, "status", unique(), message=rf"No board named .* on {re.escape(remote.host)}")
    finally:
        subprocess.run(["piemuctl", "delete", name], capture_output=True, stdin=subprocess.DEVNULL)


def test_import_image(remote):
    """One .img.xz over -H: copied as ssh's stdin, imported by piemuctl on the far side."""
    if not shutil.which("mkfs.vfat") or not shutil.which("mcopy") or not shutil.which("sfdisk"):
        _require("dosfstools, mtools and fdisk are needed to build a test image")
    imgdir = os.path.join(remote.tmp, "img")
    subprocess.run(["bash", os.path.join(os.path.dirname(__file__), "..", "unit", "make-extract-images.sh"), imgdir,
                    "/var/lib/piemu/images/default/dtb"], check=True, capture_output=True)
    image = os.path.join(imgdir, "good.img.xz")
    os.chmod(imgdir, 0o755)
    name = unique("t-rem-img")
    try:
        remote.ok("import-image", name, image, "--description=it's remote")
        images = dict(pb.call(pb.system_bus(), pb.MANAGER_PATH, pb.MANAGER_IFACE, "ListImages")[0])
        assert images.get(name) == "it's remote", images
        assert name in remote.ok("images").stdout.decode()
        # The image exists now: the far side's refusal (and a failure status) comes back.
        r = remote.run("import-image", name, image)
        assert r.returncode != 0 and b"already exists" in r.stderr, r.stderr
    finally:
        subprocess.run(["piemuctl", "remove-image", name], capture_output=True, stdin=subprocess.DEVNULL)
    assert name not in dict(pb.call(pb.system_bus(), pb.MANAGER_PATH, pb.MANAGER_IFACE, "ListImages")[0])

    # The three-file form needs descriptor passing: refused before anything is sent.
    remote.fails(EXIT_USAGE, "import-image", name, f"--kernel={image}", f"--dtb={image}", f"--sd={image}",
                 message="cannot pass descriptors")
    # "-" reads standard input, which must not be a terminal.
    master, slave = os.openpty()
    try:
        remote.fails(EXIT_USAGE, "import-image", name, "-", stdin=slave, message="which is a terminal")
    finally:
        os.close(master)
        os.close(slave)


# ---- one booted board ----


@pytest.mark.boot
def test_board_over_ssh(remote, remote_board):
    status = remote.ok("status", remote_board, "-n", "20").stdout.decode()
    assert re.search(r"^ +State: running$", status, re.M), status
    rpw = pwd.getpwnam(REMOTE_USER)
    # The owner is a uid of the far side: shown as such, not as a local name.
    assert re.search(rf"^ +Owner: uid {rpw.pw_uid} on {re.escape(remote.host)}$", status, re.M), status
    assert re.search(PROMPT_RE, status), status
    assert re.search(rf"^{re.escape(remote_board)} +running +{rpw.pw_uid}$", remote.ok("list").stdout.decode(),
                     re.M)


@pytest.mark.boot
def test_pins(remote, remote_board):
    remote.ok("set-pin", remote_board, "17", "1")
    assert remote.ok("get-pin", remote_board, "17").stdout == b"1\n"
    remote.ok("set-pin", remote_board, "17", "0")
    assert remote.ok("get-pin", remote_board, "17").stdout == b"0\n"


def read_until(fd, buf, pattern, timeout, what):
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while not rx.search(buf):
        left = deadline - time.monotonic()
        assert left > 0, f"{what}: {pattern!r} not seen in {timeout}s; got {buf[-400:]!r}"
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            assert data, f"{what}: output ended; got {buf[-400:]!r}"
            buf += data
    return buf


@pytest.mark.boot
def test_console_piped(remote, remote_board):
    """No descriptor crosses the bridge: output comes as Watch signals, input goes by SendSerial."""
    proc = remote.spawn("console", remote_board, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
    try:
        read_until(proc.stderr.fileno(), b"", rb"Connected to board", 30, "console banner")
        token = uuid.uuid4().hex[:6]
        proc.stdin.write(f"echo {token}-$((6*7))\n".encode())
        proc.stdin.flush()
        # The typed line does not contain 42: only the guest's answer does.
        read_until(proc.stdout.fileno(), b"", rf"\r\n{token}-42\r\n".encode(), 30, "guest's answer")
        proc.stdin.close()  # end of input ends the session, as with a socket
        assert proc.wait(15) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.boot
def test_console_terminal(remote, remote_board):
    """On a terminal: raw mode, keys reach the guest, ^]^]^] leaves, modes come back."""
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    proc = remote.spawn("console", remote_board, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    out = b""
    try:
        out = read_until(master, out, rb"Connected to board", 30, "console banner")
        deadline = time.monotonic() + 10
        while termios.tcgetattr(slave) == before:
            assert time.monotonic() < deadline, "the terminal never went into raw mode"
            time.sleep(0.05)
        mark = len(out)
        os.write(master, b"echo $((6*7))\r")
        out = read_until(master, out, rb"\r\n42\r\n", 30, "guest's answer")
        assert mark < len(out)
        os.write(master, b"\x1d\x1d\x1d")
        assert proc.wait(15) == 0
        assert termios.tcgetattr(slave) == before, "terminal modes not restored after the escape"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


@pytest.mark.boot
def test_console_board_stops(remote, remote_board):
    """Last, as it stops the board: the session ends with status 4, as over a socket."""
    proc = remote.spawn("console", remote_board, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
    try:
        read_until(proc.stderr.fileno(), b"", rb"Connected to board", 30, "console banner")
        remote.ok("stop", remote_board)
        assert proc.wait(30) == EXIT_STATE
        assert b"no longer running" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A stopped board has no console: said at once.
    remote.fails(EXIT_STATE, "console", remote_board, message="is not running")
    remote.ok("delete", remote_board)
    assert remote_board not in remote.ok("list").stdout.decode()
