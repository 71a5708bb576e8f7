# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 11: the Cockpit page ("Raspberry Pi boards", cockpit/ in the repository, installed to
/usr/share/cockpit/piemu), driven in headless Chromium through selenium, against a real cockpit-ws
run as an ordinary user in group piemu, the real piemud and a real guest.

The page talks to piemud as the logged-in user (cockpit.dbus on the system bus), so this is the
same polkit path as piemuctl run by that user: the test user may manage its own boards and not
root's, nor the image catalog.

Screenshots (PNG) land in $PIEMU_ARTIFACTS_DIR, or /var/tmp/piemu-test-artifacts/ when that is
not set: cockpit-board-list.png (the list with another user's board shown as not manageable),
cockpit-console-header.png (a booted board's console and its 40-pin header), and
cockpit-failure-<test>.png when a test fails.
"""

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

import piemu_bus as pb
from conftest import _require
from piemu_bus import MANAGER_IFACE, MANAGER_PATH

COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
COCKPIT_BRIDGE = "/usr/bin/cockpit-bridge"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE = "/usr/share/cockpit/piemu/index.html"
USER = "piemu-t-web"
LABEL = "Raspberry Pi boards"
ARTIFACTS = os.environ.get("PIEMU_ARTIFACTS_DIR") or "/var/tmp/piemu-test-artifacts"


def artifact(name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    return os.path.join(ARTIFACTS, name)


def user_pids(uid):
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.add(int(entry))
            except FileNotFoundError:
                pass
    return pids


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def web_user(bus):
    for path, what in ((COCKPIT_WS, "cockpit-ws"), (COCKPIT_BRIDGE, "cockpit-bridge"),
                       (CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            _require(f"{what} is not installed ({path}; tools/install-deps.sh installs it)")
    if not os.path.exists(PAGE):
        _require(f"the piemu Cockpit page is not installed ({PAGE}; meson install does it)")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True)
    # In group piemu: may create and manage its own boards without a password (50-piemu.rules),
    # and nothing more.
    subprocess.run(["usermod", "-G", "piemu", USER], check=True)
    return pwd.getpwnam(USER)


@pytest.fixture
def cockpit(web_user):
    """cockpit-ws without TLS on 127.0.0.1, its session (cockpit-bridge) running as the test user.
    Started after the page is installed: the bridge lists the packages when it starts.

    One per test: --local-session gives a cockpit-ws one session, and cockpit-ws ends it once no
    browser has used it for its idle timeout (15 s); a later login then goes to cockpit-session,
    which only root's cockpit-ws may run ("Internal error in login process"). A test that prepares
    for longer than that before it opens the page (an image built on a busy machine) would find
    the module's session gone."""
    home = tempfile.mkdtemp(prefix="piemu-cockpit-")
    os.chown(home, web_user.pw_uid, web_user.pw_gid)
    os.chmod(home, 0o700)
    port = free_port()
    before = user_pids(web_user.pw_uid)
    log = open(os.path.join(home, "cockpit-ws.log"), "w")
    os.chown(log.name, web_user.pw_uid, web_user.pw_gid)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={web_user.pw_uid}", f"--regid={web_user.pw_gid}", "--init-groups",
         COCKPIT_WS, "--no-tls", "--address=127.0.0.1", f"--port={port}", "--local-session=cockpit-bridge"],
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "USER": USER, "LOGNAME": USER,
             "XDG_RUNTIME_DIR": home, "LANG": "C.UTF-8"},
        stdout=log, stderr=subprocess.STDOUT, cwd=home)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "cockpit-ws exited:\n" + open(log.name).read()
            try:
                with urllib.request.urlopen(base + "/cockpit/@localhost/manifests.json", timeout=5) as r:
                    manifests = json.load(r)
                break
            except OSError:
                assert time.monotonic() < end, "cockpit-ws did not answer:\n" + open(log.name).read()
                time.sleep(0.2)
        yield {"base": base, "manifests": manifests, "log": log.name}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # The session's bridge starts a session dbus-daemon and an ssh-agent that outlive it;
        # everything the test user runs that was not there before is ours to end.
        for pid in user_pids(web_user.pw_uid) - before:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def browser(request, cockpit):
    # selenium is imported here, so a machine without it fails or skips through _require.
    try:
        from selenium import webdriver as wd
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        _require(f"python3-selenium is not installed: {e}")
    opts = wd.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300",
              "--disable-gpu", "--no-first-run"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = wd.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    failed_before = request.session.testsfailed
    yield driver
    try:
        # The call phase's report is counted before fixtures are torn down.
        if request.session.testsfailed > failed_before:
            driver.save_screenshot(artifact(f"cockpit-failure-{request.node.name}.png"))
            print("cockpit-ws log:\n" + open(cockpit["log"]).read()[-4000:])
    finally:
        driver.quit()


def wait(driver, predicate, timeout, what):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate(d))
    except Exception as e:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from e


def css(driver, selector):
    return driver.find_elements("css selector", selector)


def open_page(driver, cockpit):
    driver.get(cockpit["base"] + "/cockpit/@localhost/piemu/index.html")
    wait(driver, lambda d: d.execute_script("return document.getElementById('piemu').dataset.ready") == "true",
         30, "the page to load its boards")


def js_errors(driver):
    """Uncaught exceptions and console.error()s of the page: a refusal must never surface as one."""
    return [e for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def row(driver, name):
    rows = css(driver, f'tr[data-board="{name}"]')
    return rows[0] if rows else None


def terminal_text(driver):
    """What the page's terminal holds (scrollback included), as text: read from xterm.js's buffer,
    since its DOM renderer keeps only the visible rows in the document."""
    return driver.execute_script("""
        const t = document.getElementById('console').terminal;
        if (!t) return '';
        const b = t.buffer.active;
        const out = [];
        for (let i = 0; i < b.length; i++) {
            const line = b.getLine(i);
            const text = line.translateToString(true);
            if (line.isWrapped && out.length) out[out.length - 1] += text; else out.push(text);
        }
        return out.join('\\n');
    """)


def wait_terminal(driver, pattern, timeout, start=0, what=None):
    rx = re.compile(pattern)
    try:
        wait(driver, lambda d: rx.search(terminal_text(d), start), timeout, what or f"{pattern!r} on the console")
    except AssertionError as e:
        raise AssertionError(f"{e}; the terminal shows:\n{terminal_text(driver)[-3000:]}") from None
    return rx.search(terminal_text(driver), start)


def type_in_terminal(driver, text):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    css(driver, "#console .xterm-screen")[0].click()
    ActionChains(driver).send_keys(text.replace("\n", Keys.ENTER)).perform()


def remove_if_there(bus, method, name, missing):
    """Clean-up after a test that may have removed the thing itself (its success path does)."""
    try:
        pb.call(bus, MANAGER_PATH, MANAGER_IFACE, method, "(s)", (name,))
    except pb.GLib.Error as e:
        if pb.dbus_error_name(e) != missing:
            raise


def pin_level(driver, bcm):
    return css(driver, f'#gpio-header [data-pin="{bcm}"]')[0].get_attribute("data-level")


@pytest.fixture
def roots_board(bus):
    """A board of another user (root), stopped: the page must show it as not manageable."""
    b = pb.Board.create(bus, name=pb.unique_name("webroot"))
    try:
        yield b
    finally:
        b.delete()


def test_menu_label_and_foreign_board(bus, cockpit, browser, roots_board):
    assert cockpit["manifests"]["piemu"]["menu"]["index"]["label"] == LABEL
    # The shell's navigation lists the page under that label.
    browser.get(cockpit["base"] + "/")
    wait(browser, lambda d: LABEL in d.find_element("tag name", "body").text, 30, f"{LABEL!r} in Cockpit's menu")

    open_page(browser, cockpit)
    wait(browser, lambda d: row(d, roots_board.name) is not None and
         row(d, roots_board.name).get_attribute("data-state") == "stopped", 15, "root's board in the list")
    r = row(browser, roots_board.name)
    assert r.get_attribute("data-manageable") == "false"
    wait(browser, lambda d: row(d, roots_board.name).find_element("css selector", '[data-field="owner"]').text == "root",
         15, "the owner's name")
    note = r.find_element("css selector", '[data-note="not-manageable"]')
    assert note.is_displayed() and note.text == "You may not manage root's boards"
    buttons = r.find_elements("css selector", ".actions button")
    assert {b.get_attribute("data-action") for b in buttons} == {"open", "start", "stop", "delete"}
    assert all(not b.is_enabled() for b in buttons)
    # This user may create boards but not touch the image catalog: both shown up front.
    assert css(browser, "#create-button")[0].is_enabled()
    assert css(browser, "#images-note")[0].text == "You may not manage images on this host"
    assert not css(browser, "#import-button")[0].is_enabled()
    assert css(browser, 'tr[data-image="default"]'), "the default image in the catalog list"
    # The image choice starts with the model's own default (""), then the catalog; all six models.
    images = [o.get_attribute("value") for o in css(browser, "#create-image option")]
    assert images[0] == "" and "default" in images, images
    assert [o.get_attribute("value") for o in css(browser, "#create-model option")] == [
        "raspi3b", "raspi3ap", "raspi4b", "raspi2b", "raspi1ap", "raspi0"]

    # A refusal from piemud itself reads as a sentence: a name piemud does not accept.
    css(browser, "#create-name")[0].send_keys("bad/name")
    css(browser, "#create-button")[0].click()
    wait(browser, lambda d: css(d, "#alert")[0].is_displayed(), 15, "the refusal message")
    assert css(browser, "#alert")[0].get_attribute("data-error") == "org.piemu.Error.InvalidName"
    assert css(browser, "#alert-text")[0].text.startswith("That name is not allowed")
    browser.save_screenshot(artifact("cockpit-board-list.png"))
    assert js_errors(browser) == []


def test_create_for_another_model(bus, cockpit, browser):
    """The model choice: an image that does not boot on the model is refused with a sentence and
    the models it boots on; "the model's default" picks the model's own image."""
    from selenium.webdriver.support.ui import Select

    name = pb.unique_name("zero")
    pb.CREATED.add(name)
    try:
        open_page(browser, cockpit)
        Select(css(browser, "#create-model")[0]).select_by_value("raspi0")
        Select(css(browser, "#create-image")[0]).select_by_value("default")
        css(browser, "#create-name")[0].send_keys(name)
        css(browser, "#create-button")[0].click()
        wait(browser, lambda d: css(d, "#alert")[0].is_displayed(), 15, "the refusal message")
        assert css(browser, "#alert")[0].get_attribute("data-error") == "org.piemu.Error.ImageModelMismatch"
        text = css(browser, "#alert-text")[0].text
        assert text.startswith("That image does not boot on this model.") and "raspi3b raspi3ap raspi4b" in text, text
        assert row(browser, name) is None
        assert name not in [b[0] for b in pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "ListBoards")[0]]

        Select(css(browser, "#create-image")[0]).select_by_value("")
        css(browser, "#create-button")[0].click()
        wait(browser, lambda d: row(d, name) is not None and row(d, name).get_attribute("data-state") == "stopped",
             30, "the new board in the list")
        assert row(browser, name).find_element("css selector", '[data-field="model"]').text == "raspi0"
        path = pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "GetBoard", "(s)", (name,))[0]
        board = pb.Board(bus, name, path)
        assert board.prop("Model") == "raspi0" and board.prop("Image") == "default-armel"
        assert js_errors(browser) == []
    finally:
        try:
            pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "DeleteBoard", "(s)", (name,))
        except pb.GLib.Error:
            pass


@pytest.mark.boot
def test_board_lifecycle_console_and_header(bus, cockpit, browser, roots_board):
    name = pb.unique_name("web")
    pb.CREATED.add(name)
    try:
        open_page(browser, cockpit)
        # Create from the page, on the first image offered (the default one), not persistent.
        css(browser, "#create-name")[0].send_keys(name)
        css(browser, "#create-button")[0].click()
        wait(browser, lambda d: row(d, name) is not None and row(d, name).get_attribute("data-state") == "stopped",
             30, "the new board in the list")
        r = row(browser, name)
        assert r.get_attribute("data-manageable") == "true"
        assert r.find_element("css selector", '[data-field="owner"]').text == USER
        path = pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "GetBoard", "(s)", (name,))[0]
        board = pb.Board(bus, name, path)
        assert board.prop("Owner") == pwd.getpwnam(USER).pw_uid
        assert board.prop("Image") == "default"

        # Open the console before starting, so the kernel's first lines arrive live.
        r.find_element("css selector", '[data-action="open"]').click()
        wait(browser, lambda d: css(d, '#console[data-live="true"]'), 15, "the console to be open")
        row(browser, name).find_element("css selector", '[data-action="start"]').click()
        wait(browser, lambda d: row(d, name).get_attribute("data-state") == "running", 60, "state running")
        wait_terminal(browser, r"Booting Linux|Linux version", pb.BOOT_TIMEOUT, what="the kernel's first lines")
        wait_terminal(browser, r"piemu: ready", pb.BOOT_TIMEOUT, what="the guest's init")
        ready = wait_terminal(browser, r"piemu: ready[\s\S]*piemu:[^\n]*#", 60, what="the shell prompt")
        wait(browser, lambda d: row(d, name).get_attribute("data-guest-ready") == "true", 60, "GuestReady in the list")

        # Typing goes to the guest's shell and its answer comes back.
        mark = len(terminal_text(browser))
        type_in_terminal(browser, "echo $((6*7))\n")
        wait_terminal(browser, r"\n42\n", 30, start=mark, what="the shell's answer 42")

        # Click pin 17: the host drives it high, and the guest reads 1.
        assert pin_level(browser, 17) == "0"
        css(browser, '#gpio-header [data-pin="17"]')[0].click()
        wait(browser, lambda d: pin_level(d, 17) == "1", 15, "pin 17 shown high")
        board.wait_for(lambda: board.call("GetPin", "(u)", (17,))[0] is True, 15, "GetPin(17) true")
        mark = len(terminal_text(browser))
        type_in_terminal(browser, "echo level=$(piemu-gpio-shim get 17)\n")
        wait_terminal(browser, r"\nlevel=1\n", 30, start=mark, what="the guest reading pin 17 high")
        # A second click drives it low again.
        css(browser, '#gpio-header [data-pin="17"]')[0].click()
        wait(browser, lambda d: pin_level(d, 17) == "0", 15, "pin 17 shown low")
        board.wait_for(lambda: board.call("GetPin", "(u)", (17,))[0] is False, 15, "GetPin(17) false")

        # The guest drives pin 23: the header shows it high (GpioChanged).
        assert pin_level(browser, 23) == "0"
        type_in_terminal(browser, "piemu-gpio-shim set 23 1\n")
        wait(browser, lambda d: pin_level(d, 23) == "1", 30, "pin 23 shown high")
        assert board.call("GetPin", "(u)", (23,))[0] is True
        time.sleep(0.5)  # let the terminal draw the last lines before the picture
        browser.save_screenshot(artifact("cockpit-console-header.png"))
        assert ready  # (the prompt was seen before typing)

        # Root's board is still not manageable on the same page.
        assert row(browser, roots_board.name).get_attribute("data-manageable") == "false"

        # Stop and delete from the page.
        row(browser, name).find_element("css selector", '[data-action="stop"]').click()
        wait(browser, lambda d: row(d, name).get_attribute("data-state") == "stopped", 60, "state stopped")
        wait(browser, lambda d: all(pin_level(d, p) == "unknown" for p in (17, 23)), 15, "the header without levels")
        row(browser, name).find_element("css selector", '[data-action="delete"]').click()
        row(browser, name).find_element("css selector", '[data-action="confirm-delete"]').click()
        wait(browser, lambda d: row(d, name) is None, 60, "the board to leave the list")
        assert css(browser, "#board-detail")[0].get_attribute("hidden") is not None, "console closed with the board"
        err = pb.call_error(bus, MANAGER_PATH, MANAGER_IFACE, "GetBoard", "(s)", (name,))[0]
        assert err == "org.piemu.Error.NoSuchBoard"
        assert not pb.domain_exists(name) and not pb.volume_exists(name)
        assert js_errors(browser) == []
    finally:
        remove_if_there(bus, "DeleteBoard", name, "org.piemu.Error.NoSuchBoard")


IMAGE_RULES = "/etc/polkit-1/rules.d/10-piemu-test-cockpit.rules"


@pytest.fixture
def image_rights(web_user):
    """The test user may manage the image catalog (org.piemu.manage-images) while the test runs,
    as an administrator's polkit rule would allow it."""
    with open(IMAGE_RULES, "w") as f:
        f.write("// Temporary, written by tests/integration/test_cockpit.py.\n"
                "polkit.addRule(function(action, subject) {\n"
                f'    if (subject.user == "{USER}" && action.id == "org.piemu.manage-images")\n'
                "        return polkit.Result.YES;\n"
                "});\n")
    try:
        # polkitd reads rules files when they change: wait until it answers yes.
        for _ in range(100):
            r = subprocess.run(["setpriv", f"--reuid={web_user.pw_uid}", f"--regid={web_user.pw_gid}", "--init-groups",
                                "sh", "-c", "exec pkcheck --action-id org.piemu.manage-images --process $$"],
                               capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test polkit rule never took effect: {r.stderr!r}")
        yield
    finally:
        os.unlink(IMAGE_RULES)


def test_import_and_remove_an_image(bus, cockpit, browser, image_rights, tmp_path):
    """A user allowed to manage images imports a Raspberry Pi OS-style .img.xz from the page (the
    browser streams it to `piemuctl import-image NAME -` through the bridge) and removes it again."""
    for tool in ("mkfs.vfat", "mcopy", "sfdisk"):
        if not shutil.which(tool):
            _require(f"{tool} is needed to build a test image (tools/install-deps.sh installs it)")
    subprocess.run(["bash", os.path.join(os.path.dirname(__file__), "..", "unit", "make-extract-images.sh"),
                    str(tmp_path), "/var/lib/piemu/images/default/dtb"], check=True, capture_output=True)
    image = str(tmp_path / "good.img.xz")
    name = pb.unique_name("webimg")

    def catalog():
        return dict(pb.call(bus, MANAGER_PATH, MANAGER_IFACE, "ListImages")[0])

    try:
        open_page(browser, cockpit)
        assert css(browser, "#images-note")[0].is_displayed() is False
        assert css(browser, "#import-button")[0].is_enabled()
        css(browser, "#import-name")[0].send_keys(name)
        css(browser, "#import-file")[0].send_keys(image)  # what choosing the file does
        css(browser, "#import-button")[0].click()
        wait(browser, lambda d: css(d, f'tr[data-image="{name}"]'), 120, "the imported image in the list")
        assert css(browser, "#import-progress")[0].text == f"Imported {name}."
        assert name in catalog()
        # The create form offers it at once.
        assert f'value="{name}"' in css(browser, "#create-image")[0].get_attribute("innerHTML")

        css(browser, f'tr[data-image="{name}"] [data-action="remove-image"]')[0].click()
        wait(browser, lambda d: not css(d, f'tr[data-image="{name}"]'), 30, "the image to leave the list")
        assert name not in catalog()
        assert css(browser, "#alert")[0].is_displayed() is False
        assert js_errors(browser) == []
    finally:
        remove_if_there(bus, "RemoveImage", name, "org.piemu.Error.NoSuchImage")
