"""Build… in the panel: a folder built on the backend from the app, with its `#N` lines in the Build
window and its steps live in the Builds window; the result; a failure with its step's output; and a
bad input as one sentence beside its field."""
import json
import os
import subprocess
import tempfile
import time
import urllib.request

from selenium.webdriver.common.by import By

from conftest import docker, free_port


def make_context(app, run):
    context = tempfile.mkdtemp(prefix="assemble-ui-appbuild-")
    docker("cp", f"{app.backend}:/bin/busybox", context)
    with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
        dockerfile.write(f'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "{run}"]\n')
    return context


class Registry:
    """Debian's docker-registry on a free port of all the host's addresses."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="assemble-ui-registry-")
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as out:
            out.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                      f"http:\n  addr: 0.0.0.0:{self.port}\n")
        self.process = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        while self.catalog() is None:
            assert time.time() < deadline, "the registry did not answer"
            time.sleep(0.1)

    def catalog(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/_catalog", timeout=5) as answer:
                return json.load(answer)["repositories"]
        except OSError:
            return None

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def open_build_window(app):
    app.window("Assemble Backend")
    app.click("#open-build")
    app.window("Assemble Backend Build")


def build_to_cache(app, context):
    """Builds `context` from the Build window with no names, no push and no load."""
    open_build_window(app)
    app.type_into("#folder", context)
    app.type_into("#names", "")
    for box in ("#push", "#load"):
        if app.find(box).is_selected():
            app.click(box)
    app.click("#build")


def detail_steps(app):
    return app.driver.execute_script(
        "return [...document.querySelectorAll('#steps details.step')].map((s) => s.textContent);")


def test_a_build_from_the_panel_is_pushed_and_followed_step_by_step(app):
    app.running()
    registry = Registry()
    try:
        added = app.cli("backend", "ports", "add", str(registry.port))
        assert added.returncode == 0, added.stderr
        context = make_context(app, "echo built-from-the-app")
        name = f"localhost:{registry.port}/ui/app:1"
        open_build_window(app)
        app.type_into("#folder", context)
        app.type_into("#names", name)
        app.click("#push")
        app.click("#build")
        app.wait(lambda: f"Pushed {name}" in app.text("#result"), 180,
                 f"no result: {app.text('#error')!r} {app.text('#progress')[-400:]!r}")
        progress = app.text("#progress")
        assert "#1 [internal] load build definition from Dockerfile" in progress, progress
        assert "built-from-the-app" in progress, progress
        assert "ui/app" in registry.catalog(), registry.catalog()
        assert app.find("#build").is_enabled() and not app.find("#cancel").is_displayed()
        app.screenshot("22-build-window-pushed")

        # The Builds window opened on this build and follows it: its steps, the RUN's output.
        app.window("Assemble Backend Builds")
        title = lambda: app.driver.execute_script("return document.getElementById('detail-title').textContent;")
        app.wait(lambda: app.find("#detail").is_displayed() and "Completed" in title(), 30,
                 f"the build is not followed: {title()!r}")
        selected = app.driver.find_elements(By.CSS_SELECTOR, "#builds tr.build.selected")
        assert len(selected) == 1 and selected[0].text.startswith("Completed"), [r.text for r in selected]
        steps = detail_steps(app)
        assert any("built-from-the-app" in s for s in steps), steps
        app.screenshot("23-build-followed-in-builds")
    finally:
        app.cli("backend", "ports", "rm", str(registry.port))
        registry.stop()


def test_a_failing_build_from_the_app_shows_its_step_and_the_error(app):
    app.running()
    context = make_context(app, "echo failing-from-the-app; exit 3")
    build_to_cache(app, context)
    app.wait(lambda: app.find("#failure-card").is_displayed(), 180, f"no failure shown: {app.text('#error')!r}")
    failure = app.text("#failure")
    assert "RUN" in failure and "failing-from-the-app" in failure, failure
    assert "exit code: 3" in app.text("#error"), app.text("#error")
    assert not app.find("#result-card").is_displayed()
    app.screenshot("24-build-window-failed")
    app.window("Assemble Backend Builds")
    app.wait(lambda: app.driver.find_elements(By.CSS_SELECTOR, "details.step.failed"), 30, "no failed step")
    assert "failing-from-the-app" in app.find("details.step.failed").text


def test_bad_input_in_the_build_window_is_one_sentence_beside_its_field(app):
    open_build_window(app)
    app.type_into("#folder", "/nonexistent/assemble-folder")
    app.type_into("#names", "")
    app.click("#build")
    app.wait(lambda: "is not a folder" in app.text("#folder-error"), 20, app.text("#folder-error"))
    app.x_screenshot("25-build-window-bad-folder")
    context = tempfile.mkdtemp(prefix="assemble-ui-appbuild-")
    with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
        dockerfile.write("FROM scratch\n")
    app.type_into("#folder", context)
    app.type_into("#names", "Not A Name")
    app.click("#build")
    app.wait(lambda: "is not a valid image name" in app.text("#names-error"), 20, app.text("#names-error"))
    assert app.text("#folder-error") == ""
    app.type_into("#names", "")
    if not app.find("#push").is_selected():
        app.click("#push")
    app.click("#build")
    app.wait(lambda: "Push needs an image name" in app.text("#names-error"), 20, app.text("#names-error"))
    app.x_screenshot("26-build-window-push-without-name")


def test_cancel_in_the_build_window_stops_the_build_on_buildkit(app):
    app.running()
    context = make_context(app, "echo waiting-in-the-app; /bin/busybox sleep 120")
    build_to_cache(app, context)
    app.wait(lambda: "waiting-in-the-app" in app.text("#progress"), 120, app.text("#progress")[-300:])
    assert app.find("#cancel").is_displayed() and not app.find("#build").is_enabled()
    app.click("#cancel")
    app.wait(lambda: "the build was canceled" in app.text("#error"), 30, app.text("#error"))
    assert app.find("#build").is_enabled() and not app.find("#cancel").is_displayed()
    app.x_screenshot("27-build-window-canceled")
    # BuildKit stopped the step, and its history says so.
    deadline = time.time() + 30
    while "sleep 120" in docker("exec", app.backend, "ps").stdout:
        assert time.time() < deadline, "the step still runs after Cancel"
        time.sleep(0.2)
    app.window("Assemble Backend Builds")
    app.wait(lambda: app.driver.execute_script(
        "const r = document.querySelector('#builds tr.build'); return r && r.textContent.startsWith('Canceled');"),
        30, "the Builds window does not show the build as Canceled")
