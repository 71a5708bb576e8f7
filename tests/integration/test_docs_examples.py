# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every shell example in README.md and docs/*.md, run as written against the installed piemud on
the system bus (as root), the way test_quickstart.py checks the quick start.

The convention (docs/tests.md says it too):
- A shell example is a fenced block tagged `sh`. Fences tagged `bash`, `shell`, `console`, `zsh` or
  not tagged at all are refused here, so that no shell example escapes this test by its tag.
- Each `sh` block either has a case in CASES below (keyed by its file and its first line), or the
  line right before its fence is `<!-- not run by tests/integration/test_docs_examples.py: REASON -->`
  where REASON names the file that checks it instead (and that file exists).
- A block runs one command at a time (a line, with its `\\` continuations and here-documents), in a
  fresh directory, with Debian's PATH (the examples use Debian's python3 and its python3-gi), stdin
  from /dev/null, and the block's earlier `VAR=value` lines before it. Every command must exit 0.
- A comment `# → TEXT` after a command shows its output: the output must contain TEXT (up to the
  first ", "). Comment-only lines (such as what to type in the guest) are not run.
- Commands that run until ^C (`gdbus monitor`, `piemuctl watch`, `cockpit-ws`) run in the
  background while the rest of the block runs (they must still run 1.5 s after they started), and
  are interrupted at its end (`piemuctl watch` ends by itself when its board is deleted); their
  `# →` text, or the case's expected output, is checked in what they printed.
- Board and image names of an example are replaced by unique ones (a whole word, also inside
  object paths and wire ids), and whatever the example leaves behind is deleted afterwards.

Only three examples boot a board (the README's tour, the D-Bus board example and the I2C sensor),
the default image, a few seconds each."""

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

import pytest

import piemu_bus as pb

REPO = pb.REPO
MARKER = re.compile(r"^<!-- not run by tests/integration/test_docs_examples\.py: (?P<reason>.+) -->$")
SHELL_TAGS = {"bash", "shell", "console", "zsh", "shell-session", ""}
LONG_RUNNING = ("gdbus monitor", "piemuctl watch", "/usr/lib/cockpit/cockpit-ws")
DEFAULT_IMAGE = "/var/lib/piemu/images/default"
# The files the import examples name, made from the default image (a real kernel, dtb and SD card).
IMPORT_FILES = {"kernel8.img": "kernel", "bcm2710-rpi-3-b.dtb": "dtb", "rpios.img": "sd.img"}


def doc_files():
    docs = os.path.join(REPO, "docs")
    return ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(docs) if f.endswith(".md"))


@dataclass
class Block:
    path: str
    line: int  # of the opening fence, 1-based
    tag: str
    text: str
    marker: str = None  # the reason it is not run here, if marked

    @property
    def key(self):
        return (self.path, self.text.split("\n", 1)[0])


def blocks():
    out = []
    for rel in doc_files():
        with open(os.path.join(REPO, rel)) as f:
            lines = f.read().split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^```(\S*)\s*$", lines[i])
            if not m:
                i += 1
                continue
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            assert j < len(lines), f"{rel}:{i + 1}: fence never closed"
            prev = lines[i - 1] if i else ""
            mk = MARKER.match(prev)
            out.append(Block(rel, i + 1, m.group(1), "\n".join(lines[i + 1:j]), mk.group("reason") if mk else None))
            i = j + 1
    return out


def split_comment(line):
    """(command, comment) for one line: a `#` that starts a word outside quotes starts the comment."""
    quote = None
    for k, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                pass
        elif c in "'\"":
            quote = c
        elif c == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k].rstrip(), line[k + 1:].strip()
    return line.rstrip(), ""


def commands(text):
    """The block's commands in order: (command text, expected output or None)."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        cmd, comment = split_comment(lines[i])
        i += 1
        if not cmd.strip():
            continue
        parts = [cmd]
        while parts[-1].endswith("\\") and i < len(lines):
            c, more = split_comment(lines[i])
            parts.append(c)
            comment = comment or more
            i += 1
        m = re.search(r"<<-?'?(\w+)'?", cmd)
        if m:  # a here-document: its lines up to the delimiter belong to the command
            while i < len(lines) and lines[i] != m.group(1):
                parts.append(lines[i])
                i += 1
            parts.append(lines[i])
            i += 1
        expect = None
        if "→" in comment:
            expect = comment.split("→", 1)[1].strip().split(", ")[0].strip()
        out.append(("\n".join(parts), expect))
    return out


@dataclass
class Case:
    names: tuple = ()  # board and image names the example uses, made unique
    boot: bool = False
    files: dict = field(default_factory=dict)  # file in the example's directory -> one of the default image's
    expect: dict = field(default_factory=dict)  # command prefix (before renaming) -> regex its output matches
    check: object = None  # callable(outputs of the background commands so far), run before they stop


def fetch_page(url, must_contain, timeout=15):
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read().decode(errors="replace")
            assert r.status == 200 and must_contain in body, body[:500]
            return
        except OSError as e:
            assert time.monotonic() < end, f"{url}: {e}"
            time.sleep(0.3)


def cockpit_check(block_text):
    url = re.search(r"# then (http://\S+)", block_text).group(1)
    fetch_page(url, "<title>Raspberry Pi boards</title>")


CASES = {
    ("README.md", "piemuctl models                                   # the Pi models, their default images"): Case(
        names=("b1", "rpios"), boot=True, files=IMPORT_FILES,
        expect={"piemuctl models": r"raspi3b", "piemuctl images": r"default",
                "piemuctl get-pin b1 23": r"\b[01]\b", "piemuctl pins": r"17", "piemuctl status": r"running",
                "piemuctl list --json": r'"name"', "piemuctl watch": r"Watching board"}),
    ("docs/dbus-api.md", "gdbus monitor --system --dest org.piemu --object-path /org/piemu   # → BoardAdded"): Case(
        names=("b1", "b2"),
        expect={"gdbus monitor": r"BoardRemoved", "busctl call org.piemu /org/piemu org.piemu.Manager ListBoards":
                r'"b1".*"b2"|"b2".*"b1"', "busctl get-property org.piemu /org/piemu org.piemu.Manager Models": r"raspi0",
                "busctl call org.piemu /org/piemu org.piemu.Manager ListWires": r'"b1:23:b2:17"'}),
    ("docs/dbus-api.md", "busctl call org.piemu /org/piemu org.piemu.Manager CreateBoard 'ssa{sv}' s1 \"\" 1 i2c as 1 tmp105@0x48"): Case(
        names=("s1",), boot=True,
        expect={"busctl call org.piemu $B org.piemu.Board GetPin u 23": r"^b (true|false)$",
                "busctl call org.piemu $B org.piemu.Board OpenSerial": r"^h \d+$",
                "busctl introspect": r"\.SetSensor", "gdbus call": r"^\((true|false),\)$"}),
    ("docs/dbus-api.md", "piemuctl import-image rpios --kernel kernel8.img --dtb bcm2710-rpi-3-b.dtb --sd rpios.img \\"): Case(
        names=("rpios",), files=IMPORT_FILES),
    ("docs/dbus-api.md", "python3 - rpios kernel8.img bcm2710-rpi-3-b.dtb rpios.img <<'EOF'"): Case(
        names=("rpios",), files=IMPORT_FILES),
    ("docs/wires-sensors-traces.md", "piemuctl create a && piemuctl create b"): Case(
        names=("a", "b"), expect={"piemuctl wires": r"a:23:b:17"}),
    ("docs/wires-sensors-traces.md", "piemuctl create s1 --i2c=tmp105@0x48 && piemuctl start s1"): Case(
        names=("s1",), boot=True),
    ("docs/cockpit.md", "/usr/lib/cockpit/cockpit-ws --no-tls --address=127.0.0.1 --port=9091 --local-session=cockpit-bridge"): Case(
        check=cockpit_check),
}


def rename(text, mapping):
    for old, new in mapping.items():
        text = re.sub(rf"(?<![\w.@-]){re.escape(old)}(?![\w.-])", new, text)
    return text


def example_env():
    path = "/usr/sbin:/usr/bin:/sbin:/bin"
    ctl = os.environ.get("PIEMUCTL", "")
    if os.sep in ctl:
        path = os.path.dirname(os.path.abspath(ctl)) + ":" + path
    return {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "TERM": "dumb"}


def clean_up(mapping):
    for new in mapping.values():
        for argv in (["piemuctl", "delete", new], ["piemuctl", "remove-image", new]):
            subprocess.run(argv, capture_output=True, env=example_env(), timeout=120)


def run_block(block, case, tmp_path):
    mapping = {n: f"doc{uuid.uuid4().hex[:8]}" for n in case.names}
    pb.CREATED.update(mapping.values())
    for name, src in case.files.items():
        shutil.copyfile(os.path.join(DEFAULT_IMAGE, src), tmp_path / name)
    env = example_env()
    prelude = []
    background = []
    try:
        for raw, expect in commands(block.text):
            cmd = rename(raw, mapping)
            expect = rename(expect, mapping) if expect else None
            where = f"{block.path}:{block.line}: {cmd!r}"
            script = "\n".join(prelude + [cmd])
            if raw.startswith(LONG_RUNNING):
                p = subprocess.Popen(["bash", "-c", "\n".join(prelude + ["exec " + cmd])], cwd=tmp_path, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
                background.append((raw, cmd, expect, p))
                time.sleep(1.5)  # its subscription or listener is in place before the next command
                assert p.poll() is None, f"{where} ended at once: {p.stdout.read()}"
                continue
            t = time.monotonic()
            r = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
            out = r.stdout + r.stderr
            assert r.returncode == 0, f"{where} exited {r.returncode}:\n{out}"
            if expect:
                assert expect in out, f"{where}: {expect!r} not in its output:\n{out}"
            for prefix, rx in case.expect.items():
                if raw.startswith(prefix):
                    rx = rename(rx, mapping)
                    assert re.search(rx, r.stdout, re.M), f"{where}: no {rx!r} in:\n{r.stdout}"
            print(f"{time.monotonic() - t:5.2f} s  {cmd.splitlines()[0]}")
            if re.match(r"^[A-Za-z_]\w*=\S*$", cmd):
                prelude.append(cmd)
        if case.check:
            case.check(rename(block.text, mapping))
    finally:
        outputs = []
        for raw, cmd, expect, p in background:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
            try:
                out, _ = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                out, _ = p.communicate()
            outputs.append((raw, cmd, expect, out))
        clean_up(mapping)
    for raw, cmd, expect, out in outputs:
        if expect:
            assert expect in out, f"{block.path}: {expect!r} not in what {cmd!r} printed:\n{out}"
        for prefix, rx in case.expect.items():
            if raw.startswith(prefix):
                rx = rename(rx, mapping)
                assert re.search(rx, out, re.M), f"{block.path}: no {rx!r} in what {cmd!r} printed:\n{out}"
    for new in mapping.values():
        assert not pb.domain_exists(new) and not pb.volume_exists(new), f"{new} left behind"


ALL = blocks()
RUN = [b for b in ALL if b.tag == "sh" and b.marker is None]


def test_every_shell_example_is_run_here_or_says_what_checks_it():
    for b in ALL:
        assert b.tag not in SHELL_TAGS, f"{b.path}:{b.line}: a shell example is tagged `sh` (found {b.tag!r})"
        if b.marker is not None:
            assert b.tag == "sh", f"{b.path}:{b.line}: the marker is for sh blocks"
            assert b.key not in CASES, f"{b.path}:{b.line}: marked as not run but has a case here"
            named = re.findall(r"(?:\.ci|tests|tools)/[\w./-]*\w", b.marker)
            assert named, f"{b.path}:{b.line}: the reason names no file that checks it: {b.marker}"
            for path in named:
                assert os.path.exists(os.path.join(REPO, path)), f"{b.path}:{b.line}: {path} does not exist"
    missing = [f"{b.path}:{b.line}: {b.key[1]!r}" for b in RUN if b.key not in CASES]
    assert not missing, "shell examples with no case here and no not-run marker:\n" + "\n".join(missing)
    stale = set(CASES) - {b.key for b in RUN}
    assert not stale, f"cases for examples that no longer exist: {stale}"
    marked = [b for b in ALL if b.marker is not None]
    assert len(marked) <= 4, "keep the examples this test does not run few: " + ", ".join(
        f"{b.path}:{b.line}" for b in marked)


def test_readme_is_a_front_door_and_lists_every_folder_and_tool():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    assert len(readme.split("\n")) <= 200
    for doc in os.listdir(os.path.join(REPO, "docs")):
        if doc.endswith(".md"):
            assert f"(docs/{doc})" in readme, f"README links no docs/{doc}"
    where = readme[readme.index("## What is where"):]
    for top in ("src", "tools", "images"):
        for entry in sorted(os.listdir(os.path.join(REPO, top))):
            if entry == "meson.build":
                continue
            is_dir = os.path.isdir(os.path.join(REPO, top, entry))
            shown = f"`{top}/{entry}/`" if top == "src" else f"`{entry}/`" if is_dir else f"`{entry}`"
            assert shown in where or top == "images" and f"`{entry}" in where, f"What is where leaves out {top}/{entry}"
    # ... and names no tool that is gone.
    tools = where[where.index("In `tools/`"):]
    for row in tools.split("\n")[4:]:
        for name in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            assert os.path.exists(os.path.join(REPO, "tools", name)), f"What is where names tools/{name}, which is gone"
    # Relative links between the documents point at files that exist.
    for rel in doc_files():
        with open(os.path.join(REPO, rel)) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert os.path.exists(os.path.join(REPO, os.path.dirname(rel), target)), f"{rel}: broken link {target}"


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=f"{b.path}:{b.line}", marks=[pytest.mark.boot] if CASES.get(b.key, Case()).boot else [])
     for b in RUN if b.key in CASES])
def test_example_runs_as_written(bus, block, tmp_path):
    os.chmod(tmp_path, 0o755)
    if any(c[0].startswith("/usr/lib/cockpit/") for c in commands(block.text)) and not os.path.exists(
            "/usr/lib/cockpit/cockpit-ws"):
        pytest.skip("cockpit-ws is not installed (tools/run-tests.sh installs it)")
    t = time.monotonic()
    run_block(block, CASES[block.key], tmp_path)
    print(f"{block.path}:{block.line}: {time.monotonic() - t:.1f} s")
