"""The app as a desktop citizen: a failure from the tray reaches the user as a notification and in
the panel; each window holds only the commands it needs; start at login; and Quit during a start
leaves no half-made backend. Each test makes the state it starts from."""
import os
import subprocess
import tempfile
import time

import pytest

from conftest import APP, SCREENSHOTS, TEST_IMAGE, container_names, docker
from sni import Tray

MISSING_IMAGE = "assemble-ui-missing:never"


def test_a_failed_start_from_the_tray_is_a_notification_and_shows_in_the_panel(app):
    app.stopped()
    app.settings_saved(image=MISSING_IMAGE)
    try:
        app.wait(lambda: app.tray.item("Start")["enabled"], 10, "the tray does not offer Start")
        already = len(app.tray.notifications)
        app.tray.click("Start")
        app.wait(lambda: len(app.tray.notifications) > already, 60, "no desktop notification for the failed start")
        notice = app.tray.notifications[-1]
        assert notice["summary"] == "Could not start the backend", notice
        assert MISSING_IMAGE in notice["body"] and "choose another image in Settings" in notice["body"], notice
        assert "--image" not in notice["body"], "the app has no flags to offer"
        app.window("Assemble Backend")
        app.wait(lambda: app.find("#action-error").is_displayed(), 10, "the panel does not show the failure")
        assert app.text("#action-error") == notice["body"]
        app.screenshot("11-panel-tray-start-failed")
        assert container_names(app.backend) == [], "a failed start leaves nothing behind"
    finally:
        app.settings_saved(image=TEST_IMAGE)
    # The next attempt clears the failure.
    app.window("Assemble Backend")
    app.click("#start")
    app.wait(lambda: not app.find("#action-error").is_displayed(), 10, "the old failure stays after a new start")
    app.wait(lambda: app.text("#state").startswith("Running"), 90)


# Commands that change the backend or the settings, and which windows must not hold them.
REFUSED = {
    "Assemble Backend Logs": [("start_backend", None), ("stop_backend", None), ("apply_settings", None), ("purge_cache", None),
                              ("save_settings", {"settings": {"ports": [5000]}}), ("set_autostart", {"enabled": True}),
                              ("run_build", None)],
    "Assemble Backend Settings": [("start_backend", None), ("stop_backend", None), ("restart_backend", None),
                                  ("purge_cache", None), ("follow_logs", None), ("run_build", None)],
    "Assemble Backend": [("save_settings", {"settings": {"ports": [5000]}}), ("set_autostart", {"enabled": True}),
                         ("save_logs", {"timestamps": False}), ("cancel_build", None), ("choose_folder", None)],
    "Assemble Backend Build": [("stop_backend", None), ("restart_backend", None), ("purge_cache", None),
                               ("save_settings", {"settings": {"ports": [5000]}}), ("follow_logs", None)],
}
ALLOWED = {"Assemble Backend Logs": "snapshot", "Assemble Backend Settings": "get_settings",
           "Assemble Backend": "snapshot", "Assemble Backend Build": "snapshot"}


def test_each_window_may_call_only_its_own_commands(app):
    app.window("Assemble Backend")
    for kind in ("logs", "settings", "build"):
        app.click(f"#open-{kind}")
        app.window("Assemble Backend")
    before = container_names(app.backend)
    for title, commands in REFUSED.items():
        app.window(title)
        ok, _ = app.invoke(ALLOWED[title])
        assert ok, f"{title} may call {ALLOWED[title]}"
        for command, args in commands:
            ok, error = app.invoke(command, args)
            assert not ok, f"{title} could call {command}"
            assert "not allowed" in str(error), f"{title} → {command}: {error!r}"
    assert container_names(app.backend) == before, "a refused command changed something"
    assert not os.path.exists(os.path.join(app.home, ".config", "autostart", "assemble-backend.desktop"))


def test_start_at_login_is_off_by_default_and_a_switch_in_settings(app):
    entry = os.path.join(app.home, ".config", "autostart", "assemble-backend.desktop")
    app.window("Assemble Backend")
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    app.wait(lambda: not app.find("#autostart").is_selected() or os.path.exists(entry), 10)
    assert not os.path.exists(entry) and not app.find("#autostart").is_selected(), "off until the user turns it on"
    toggle(app)
    app.wait(lambda: os.path.exists(entry), 10, f"no login entry: {app.text('#autostart-error')!r}")
    with open(entry) as desktop:
        text = desktop.read()
    assert f"Exec={APP} --hidden" in text, text
    app.screenshot("12-settings-start-at-login")
    toggle(app)
    app.wait(lambda: not os.path.exists(entry), 10, "the login entry stays after turning it off")
    assert not app.find("#autostart").is_selected()


def toggle(app):
    """Clicks the switch where the user sees it (below the sticky header)."""
    switch = app.find("#autostart")
    app.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", switch)
    switch.click()


@pytest.fixture
def own_app(request):
    """A second app instance of its own, on a D-Bus session of its own (so the single-instance
    rule does not send it to the first), with the tray only: yields (process, tray, user)."""
    bus = subprocess.Popen(["dbus-daemon", "--session", "--print-address", "--nofork"],
                           stdout=subprocess.PIPE, text=True)
    address = bus.stdout.readline().strip()
    os.makedirs(SCREENSHOTS, exist_ok=True)
    config = tempfile.mkdtemp(prefix="assemble-ui-own-")
    user = f"ui-quit-{os.getpid()}"
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address, ASSEMBLE_BACKEND_USER=user,
               ASSEMBLE_BACKEND_IMAGE=TEST_IMAGE, ASSEMBLE_CONFIG_DIR=config, HOME=config)
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        env.pop(name, None)
    tray = Tray(address)
    log = open(os.path.join(config, "app.log"), "w")
    process = subprocess.Popen([APP, "--hidden"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, tray, user
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
        with open(os.path.join(config, "app.log")) as out, \
                open(os.path.join(SCREENSHOTS, f"{request.node.name}-app.log"), "w") as kept:
            kept.write(out.read())
        for name in container_names(f"docker-assemble-backend-{user}"):
            docker("rm", "-f", "-v", name, check=False)
        bus.kill()
        bus.wait(10)


def start_from_the_tray(tray):
    """Clicks Start once the tray offers it."""
    deadline = time.time() + 30
    while not tray.item("Start")["enabled"]:
        assert time.time() < deadline, f"the tray never offered Start: {tray.menu()}"
        time.sleep(0.2)
    tray.click("Start")


def test_quit_during_a_start_rolls_it_back_before_the_app_exits(own_app):
    process, tray, user = own_app
    backend = f"docker-assemble-backend-{user}"
    start_from_the_tray(tray)
    # Quit once the backend container exists: the start is now waiting for BuildKit.
    deadline = time.time() + 30
    while backend not in container_names(backend):
        assert time.time() < deadline, "the start never created the backend"
        time.sleep(0.02)
    quit_at = time.time()
    tray.click("Quit")
    assert process.wait(60) == 0, "the app did not exit cleanly after Quit"
    left = container_names(backend)
    # BuildKit takes a second or more to answer, so Quit came during the start: it was rolled back.
    assert left == [], f"Quit left a half-made backend: {left}"
    with open(os.path.join(SCREENSHOTS, "quit-during-start.txt"), "w") as out:
        out.write(f"quit during start: exited after {time.time() - quit_at:.2f}s, left {left or 'nothing'}\n")


def test_a_backend_that_stops_while_no_window_is_open_is_a_notification(own_app):
    process, tray, user = own_app
    backend = f"docker-assemble-backend-{user}"
    start_from_the_tray(tray)
    deadline = time.time() + 90
    while not tray.item("Backend:")["label"].startswith("Backend: Running"):
        assert time.time() < deadline, f"the tray never showed Running: {tray.menu()}"
        time.sleep(0.2)
    assert tray.notifications == [], f"nothing to tell yet: {tray.notifications}"
    docker("stop", backend)
    deadline = time.time() + 20
    while not tray.notifications:
        assert time.time() < deadline, "no notification for a backend that stopped with no window open"
        time.sleep(0.1)
    notice = tray.notifications[0]
    assert notice["summary"] == "The backend stopped", notice
    assert notice["body"].startswith("The backend stopped on its own.") and "Start it again from the tray" in notice["body"]
    tray.click("Quit")
    assert process.wait(60) == 0


def test_the_settings_can_make_assemble_dockers_current_builder_at_each_start(app):
    app.stopped()
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    assert not app.find("#use-builder").is_selected(), "off by default"
    app.click("#use-builder")
    app.click("#save")
    app.wait(lambda: app.text("#saved") == "Saved.", 10)
    try:
        assert app.saved_settings()["use_builder"] is True
        app.running()
        app.wait(lambda: app.text("#builder") == "docker buildx build --builder assemble .", 20, app.text("#builder"))
        assert app.buildx_builders()["assemble"]["Current"] is True, "the start made it docker's current builder"
    finally:
        app.window("Assemble Backend")
        app.click("#open-settings")
        app.window("Assemble Backend Settings")
        if app.find("#use-builder").is_selected():
            app.click("#use-builder")
        app.click("#save")
        app.wait(lambda: app.text("#saved") == "Saved.", 10)
        # Back to buildx's own default builder, as other tests expect nothing current.
        subprocess.run(["docker", "--config", app.docker_config, "buildx", "use", "default"],
                       check=True, capture_output=True, timeout=60)
