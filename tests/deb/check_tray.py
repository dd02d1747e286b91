"""The installed app starts to the tray: runs /usr/bin/assemble-backend --hidden, waits for its tray
item on our StatusNotifierWatcher, checks the menu, clicks Quit and expects exit status 0.
Run by scripts/test-deb.sh under xvfb-run and dbus-run-session, with the UI tests' venv (dbus-next)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ui"))
from sni import Tray  # noqa: E402

APP = os.environ.get("ASSEMBLE_DEB_APP", "/usr/bin/assemble-backend")
EXPECTED = ["Start", "Open panel", "Quit"]


def say(text):
    print(f"check_tray: {text}", flush=True)


def main():
    assert os.environ.get("DISPLAY"), "run under Xvfb (xvfb-run)"
    assert os.environ.get("DBUS_SESSION_BUS_ADDRESS"), "run under dbus-run-session"
    assert os.access(APP, os.X_OK), f"{APP} is not installed"
    tray = Tray()  # owns org.kde.StatusNotifierWatcher on this private session bus
    tmp = tempfile.mkdtemp(prefix="assemble-deb-test-")
    env = dict(os.environ, ASSEMBLE_BACKEND_USER=f"deb-test-{os.getpid()}", ASSEMBLE_CONFIG_DIR=tmp, HOME=tmp)
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    log_path = os.path.join(tmp, "app.log")
    log = open(log_path, "w")
    started = time.time()
    process = subprocess.Popen([APP, "--hidden"], env=env, stdout=log, stderr=subprocess.STDOUT)
    ok = False
    try:
        deadline = started + 30
        while not tray.items:
            assert process.poll() is None, f"the app exited with {process.returncode} before its tray item came"
            assert time.time() < deadline, "no tray item (StatusNotifierItem) registered within 30 s"
            time.sleep(0.1)
        say(f"tray item registered after {time.time() - started:.1f} s: {tray.items[-1][0]} {tray.items[-1][1]}")
        labels = [entry["label"] for entry in tray.menu()]
        say(f"tray menu: {labels}")
        for label in EXPECTED:
            assert any(text == label or text.startswith(label) for text in labels), \
                f"no {label!r} in the tray menu {labels}"
        quit_at = time.time()
        tray.click("Quit")
        try:
            status = process.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the app still runs 60 s after Quit")
        assert status == 0, f"the app exited with {status} after Quit"
        say(f"Quit: the app exited with 0 after {time.time() - quit_at:.2f} s")
        ok = True
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
        if not ok:
            with open(log_path) as out:
                say("the app's output:\n" + out.read())
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        say(f"FAILED: {error}")
        sys.exit(1)
