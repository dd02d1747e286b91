"""Fixtures for end-to-end tests of the real app: the app binary driven by tauri-driver with
WebKitWebDriver, under Xvfb, on a private D-Bus session with our tray watcher, against the real
Docker Engine and the BuildKit test image. Run it with scripts/test.sh (or see README)."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.file_detector import UselessFileDetector
from selenium.webdriver.support.ui import WebDriverWait

from sni import Tray

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = os.path.join(ROOT, "target", "debug", "assemble-backend")
TEST_ENGINE = os.path.join(ROOT, "target", "debug", "assemble-test-engine")
SCREENSHOTS = os.path.join(ROOT, "target", "ui-screenshots")
BUILDX = os.path.join(ROOT, "target", "buildx", "docker-buildx")
TEST_IMAGE = os.environ.get("ASSEMBLE_TEST_IMAGE", "assemble-buildkit:v0.25-debian-qemu")
# The engine the tests run on: docker's default socket, the machine's own engine. The caller's
# DOCKER_HOST, DOCKER_CONTEXT and TLS settings would send the app, the CLI or a plain `docker` call
# somewhere else; nothing started from here inherits them.
DEFAULT_ENGINE = "unix:///var/run/docker.sock"
for _name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS",
              "ASSEMBLE_BACKEND_SECURITY"):
    os.environ.pop(_name, None)


# The platform this machine runs natively, as BuildKit names it first among a worker's platforms.
NATIVE_PLATFORM = {"x86_64": "linux/amd64", "aarch64": "linux/arm64", "armv7l": "linux/arm/v7", "riscv64": "linux/riscv64",
                   "ppc64le": "linux/ppc64le", "s390x": "linux/s390x"}[os.uname().machine]


def docker(*args, check=True):
    """The docker CLI on the machine's engine."""
    return subprocess.run(["docker", "-H", DEFAULT_ENGINE, *args], check=check, capture_output=True, text=True,
                          timeout=120)


def require_engine():
    """Fails at once, with the reason, when the machine's engine does not answer."""
    answer = subprocess.run(["docker", "-H", DEFAULT_ENGINE, "version", "--format", "{{.Server.Version}}"],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, (f"the UI tests run on docker's default engine, {DEFAULT_ENGINE}, which does not "
                                    f"answer ({answer.stderr.strip()}); scripts/setup.sh starts dockerd")


def container_names(prefix):
    """Containers named `prefix`, or `prefix-…`; a prefix that ends in "-" takes any name after it.
    Never another user's whose name only starts the same (ui-15 is not ui-150)."""
    out = docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}").stdout
    if prefix.endswith("-"):
        return sorted(n for n in out.split() if n.startswith(prefix))
    return sorted(n for n in out.split() if n == prefix or n.startswith(prefix + "-"))


_HELD_PORTS = []


def free_port():
    """A port for a server of the tests (tauri-driver, a registry), held until this process ends: from
    below the kernel's ephemeral range, where it never hands out ports on its own, and reserved with a
    lock file in the folder the Rust tests use (crates/testkit/src/free_port.rs), so no two test processes take
    the same. A port found by binding port 0 is free only until the kernel gives it to a connection."""
    import fcntl
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            top = int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        top = 32768
    bottom = min(20000, top - 2000)
    folder = os.path.join(tempfile.gettempdir(), "assemble-test-ports")
    os.makedirs(folder, exist_ok=True)
    span = top - bottom
    for step in range(span):
        port = bottom + (os.getpid() * 31 + step * 7919) % span
        if port == 5000 or not _bindable(port):
            continue
        lock = open(os.path.join(folder, f"{port}.lock"), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _HELD_PORTS.append(lock)
        return port
    raise AssertionError(f"no free port between {bottom} and {top}")


def _bindable(port):
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1")):
        with socket.socket(family) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def start_tauri_driver(env, log):
    """tauri-driver on a free port, with this environment (the app it launches inherits it)."""
    port, native_port = free_port(), free_port()
    process = subprocess.Popen(["tauri-driver", "--port", str(port), "--native-port", str(native_port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, port


def connect(port, application, timeout=30):
    """A WebDriver session through the tauri-driver on this port: it launches the app binary."""
    options = ArgOptions()
    options.set_capability("browserName", "wry")
    options.set_capability("tauri:options", {"application": application})
    deadline = time.time() + timeout
    while True:
        try:
            return webdriver.Remote(command_executor=f"http://127.0.0.1:{port}", options=options)
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


class App:
    """The running app, its windows, and the names of its backend."""

    def __init__(self, driver, user, tray, docker_config, home, config):
        self.driver = driver
        self.config = config
        self.home = home
        self.user = user
        self.tray = tray
        self.backend = f"docker-assemble-backend-{user}"
        self.docker_config = docker_config

    def buildx_builders(self):
        """`docker buildx ls` on the app's docker config folder, by name."""
        out = subprocess.run(["docker", "--config", self.docker_config, "buildx", "ls", "--format", "json"],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        return {b["Name"]: b for b in (json.loads(line) for line in out.splitlines() if line.startswith("{"))}

    def cli(self, *args):
        """`assemble ARGS` as this app's user would run it (same settings, engine and docker config)."""
        env = dict(os.environ, ASSEMBLE_BACKEND_USER=self.user, ASSEMBLE_CONFIG_DIR=self.config,
                   DOCKER_CONFIG=self.docker_config, HOME=self.home)
        for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "ASSEMBLE_BACKEND_IMAGE"):
            env.pop(name, None)
        return subprocess.run([os.path.join(ROOT, "target", "debug", "assemble"), *args], env=env,
                              capture_output=True, text=True, timeout=120)

    def docker_context(self, *args):
        """`docker context …` on the app's own docker config folder (its contexts, its current one)."""
        return subprocess.run(["docker", "--config", self.docker_config, "context", *args],
                              check=True, capture_output=True, text=True, timeout=60)

    def window(self, title, timeout=20):
        """Switches to the window with this title (each window is a WebDriver handle)."""
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            seen = []
            for handle in self.driver.window_handles:
                self.driver.switch_to.window(handle)
                seen.append(self.driver.title)
                if seen[-1] == title:
                    WebDriverWait(self.driver, timeout).until(
                        lambda d: d.execute_script("return document.readyState") == "complete")
                    return
            time.sleep(0.2)
        raise AssertionError(f"no window titled {title!r}; the windows are {seen!r}")

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def type_into(self, css, text):
        """Replaces a field's text (WebKitWebDriver's clear() does not always empty a field)."""
        field = self.find(css)
        self.driver.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input'));", field)
        if text:
            field.send_keys(text)

    def click(self, css):
        """Clicks an element where the user sees it: scrolled to the middle, clear of the sticky header."""
        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def text(self, css):
        return self.find(css).text

    def wait(self, condition, timeout=60, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: condition(), message)

    def saved_settings(self):
        """The settings file as the app saved it."""
        with open(os.path.join(self.config, "settings.json")) as settings:
            return json.load(settings)

    def running(self):
        """Makes sure the backend runs (the panel's Start when it does not), on the panel."""
        self.window("Assemble Backend")
        self.wait(lambda: not self.text("#state").startswith(("Starting", "Stopping", "…")), 90,
                  "an operation never ended")
        if not self.text("#state").startswith("Running"):
            self.wait(lambda: self.find("#start").is_enabled(), 30, f"Start is not offered: {self.text('#state')!r}")
            self.click("#start")
        self.wait(lambda: self.text("#state").startswith("Running"), 90, f"not running: {self.text('#state')!r}")

    def stopped(self):
        """Makes sure the backend and its sidecars are gone (the panel's Stop), on the panel."""
        self.window("Assemble Backend")
        self.wait(lambda: not self.text("#state").startswith(("Starting", "Stopping", "…")), 90,
                  "an operation never ended")
        if self.find("#stop").is_enabled():
            self.click("#stop")
        for name in container_names(self.backend):  # left by a test that removed the backend by hand
            docker("rm", "-f", "-v", name, check=False)
        self.wait(lambda: self.text("#state") == "Stopped" and container_names(self.backend) == [], 60,
                  f"not stopped: {self.text('#state')!r}, {container_names(self.backend)}")

    def settings_saved(self, **fields):
        """Opens the settings window, sets the image field if given, saves, and stays there."""
        self.window("Assemble Backend")
        self.click("#open-settings")
        self.window("Assemble Backend Settings")
        if "image" in fields:
            self.type_into("#image", fields["image"])
        self.click("#save")
        self.wait(lambda: self.text("#saved") == "Saved.", 10, f"not saved: {self.text('#image-error')!r}")

    def invoke(self, command, args=None):
        """Calls a command from the current window as its page would; returns (ok, value or error)."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.__TAURI__.core.invoke(arguments[0], arguments[1] || {})"
            ".then((value) => done([true, value]), (error) => done([false, error]));",
            command, args)

    def x_screenshot(self, name):
        """The current window as X shows it (see x_screenshot)."""
        os.makedirs(SCREENSHOTS, exist_ok=True)
        return x_screenshot(self.driver.title, os.path.join(SCREENSHOTS, f"{name}.png"))

    def screenshot(self, name):
        os.makedirs(SCREENSHOTS, exist_ok=True)
        path = os.path.join(SCREENSHOTS, f"{name}.png")
        raise_window(self.driver.title)
        # Let the window paint what the test just saw: a snapshot can show an older frame.
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(done));")
        # WebKit takes the snapshot after the page's next paint; a page that has nothing left to
        # paint would keep it (and every later WebDriver command) waiting for ever. So the page
        # repaints a sliver (an outline nobody can see) every 50 ms until the snapshot is taken.
        self.driver.execute_script(
            "const root = document.documentElement; window.__assembleShotTicker = setInterval(() => {"
            " root.style.outline = root.style.outline ? '' : '1px solid rgba(0, 0, 0, 0.004)'; }, 50);")
        try:
            assert self.driver.save_screenshot(path), f"no screenshot for {name}"
        finally:
            self.driver.execute_script(
                "clearInterval(window.__assembleShotTicker); document.documentElement.style.outline = '';")
        return path


def x_screenshot(title, path):
    """The window with this title as X shows it, saved as a PNG: for a window whose WebDriver
    screenshot never returns (seen with the Build window after a failed command, though X shows it
    painted)."""
    import struct
    import zlib
    from Xlib import X, display
    screen = display.Display()
    try:
        root = screen.screen().root
        window = next(w for w in root.query_tree().children if w.get_wm_name() == title)
        window.raise_window()
        screen.sync()
        # A window just raised paints what was under others when X asks it to: give it a moment.
        time.sleep(0.5)
        geometry = window.get_geometry()
        width, height = geometry.width, geometry.height
        data = window.get_image(0, 0, width, height, X.ZPixmap, 0xffffffff).data
    finally:
        screen.close()
    rows = b"".join(b"\0" + bytes(b for i in range(y * width * 4, (y + 1) * width * 4, 4)
                                    for b in (data[i + 2], data[i + 1], data[i]))
                    for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
    return path


def raise_window(title):
    """Puts the X window with this title on top. Our windows render without WebKit's compositing,
    so a window paints when X shows it, and WebDriver's screenshot waits for a paint: one that sits
    behind others (no window manager here raises it) would make the screenshot wait forever."""
    from Xlib import display
    screen = display.Display()
    try:
        for window in screen.screen().root.query_tree().children:
            try:
                name = window.get_wm_name()
            except Exception:  # a window that went away meanwhile
                continue
            if name == title:
                window.raise_window()
        screen.sync()
    finally:
        screen.close()


@pytest.fixture(scope="session")
def app():
    assert os.path.exists(APP), f"{APP} is missing: run `cargo build --workspace --bins` first"
    assert os.environ.get("DISPLAY"), "run under Xvfb (xvfb-run)"
    assert os.environ.get("DBUS_SESSION_BUS_ADDRESS"), "run under dbus-run-session"
    require_engine()
    user = f"ui-{os.getpid()}"
    config = tempfile.mkdtemp(prefix="assemble-ui-config-")
    tray = Tray()
    # A docker config folder of the test's own, so the test can switch docker's current context.
    docker_config = os.path.join(config, "docker")
    os.makedirs(os.path.join(docker_config, "cli-plugins"))
    # The tests' real buildx (scripts/fetch-buildx.sh), so the app registers its builder there.
    assert os.path.exists(BUILDX), f"{BUILDX} is missing: run scripts/fetch-buildx.sh"
    os.symlink(BUILDX, os.path.join(docker_config, "cli-plugins", "docker-buildx"))
    # HOME too: the start-at-login entry goes to $HOME/.config/autostart.
    home = os.path.join(config, "home")
    os.makedirs(home)
    # The test image comes from the settings (not $ASSEMBLE_BACKEND_IMAGE, which would win over
    # them), so that a test can choose another image in the settings window.
    with open(os.path.join(config, "settings.json"), "w") as settings:
        json.dump({"image": TEST_IMAGE}, settings)
    # The app's ssh agent is one a test starts at this socket (until then, none answers there).
    ssh_socket = os.path.join(config, "ssh-agent.sock")
    env = dict(os.environ, ASSEMBLE_BACKEND_USER=user, ASSEMBLE_CONFIG_DIR=config, XDG_DOWNLOAD_DIR=config,
               DOCKER_CONFIG=docker_config, HOME=home, SSH_AUTH_SOCK=ssh_socket)
    env.pop("ASSEMBLE_BACKEND_IMAGE", None)
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        env.pop(name, None)
    driver_log = open(os.path.join(config, "tauri-driver.log"), "w")
    tauri_driver, port = start_tauri_driver(env, driver_log)
    driver = None
    try:
        driver = connect(port, APP)
        # Typed text is typed, even a path to a file (not uploaded, as Selenium would by default).
        driver.file_detector = UselessFileDetector()
        app = App(driver, user, tray, docker_config, home, config)
        app.ssh_socket = ssh_socket
        yield app
    finally:
        if driver is not None:
            driver.quit()
        tauri_driver.terminate()
        try:
            tauri_driver.wait(10)
        except subprocess.TimeoutExpired:
            tauri_driver.kill()
        for name in container_names(f"docker-assemble-backend-{user}"):
            docker("rm", "-f", "-v", name, check=False)
        # The volumes the product made for this user (its owner label), such as the caches.
        labelled = docker("volume", "ls", "-q", "--filter", f"label=com.docker.assemble.backend.owner={user}",
                          check=False).stdout.split()
        for volume in labelled:
            docker("volume", "rm", volume, check=False)
        driver_log.close()
        log = os.path.join(config, "tauri-driver.log")
        os.makedirs(SCREENSHOTS, exist_ok=True)
        shutil.copy(log, os.path.join(SCREENSHOTS, "tauri-driver.log"))  # the app's own output, for failures
        shutil.rmtree(config, ignore_errors=True)


@pytest.fixture(scope="session")
def second_engine():
    """A second Docker Engine (the tests' private dockerd), as Docker Desktop's would be: yields its
    address, stops it at the end."""
    assert os.path.exists(TEST_ENGINE), f"{TEST_ENGINE} is missing: run `cargo build --workspace --bins` first"
    process = subprocess.Popen([TEST_ENGINE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("ready "), f"the second engine did not start ({line!r}); see its output above"
        yield line.split(" ", 1)[1]
    finally:
        process.stdin.close()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, keep a screenshot of the window the test was looking at."""
    outcome = yield
    report = outcome.get_result()
    app = item.funcargs.get("app")
    if report.when == "call" and report.failed and app is not None:
        try:
            app.screenshot(f"FAILED-{item.name}")
        except Exception:  # the app may be gone; the failure itself is what matters
            pass
