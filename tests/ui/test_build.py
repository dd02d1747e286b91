"""Build… in the panel: a folder built on the backend from the app, with its `#N` lines in the Build
window and its steps live in the Builds window; the result; a failure with its step's output; and a
bad input as one sentence beside its field."""
import hashlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request

from selenium.webdriver.common.by import By

from conftest import SCREENSHOTS, docker, free_port, x_screenshot


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


def choose_in_dialog(title, path, timeout=20):
    """Answers the system's file chooser (GTK's, opened by the app) as a user would: its location
    field (ctrl+L), the path typed, Enter. Driven through X with xdotool; WebDriver cannot reach it."""
    deadline = time.time() + timeout
    window = ""
    while not window:
        assert time.time() < deadline, f"no file chooser titled {title!r}"
        window = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{title}$"], capture_output=True,
                                text=True).stdout.split()
        window = window[0] if window else ""
        time.sleep(0.2)
    subprocess.run(["xdotool", "windowraise", window], check=True)
    subprocess.run(["xdotool", "windowfocus", "--sync", window], check=True)
    time.sleep(0.5)  # GTK maps the chooser's widgets after the window
    subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+l"], check=True)
    time.sleep(0.3)
    subprocess.run(["xdotool", "type", "--delay", "10", path], check=True)
    time.sleep(0.3)
    subprocess.run(["xdotool", "key", "Return"], check=True)
    # GTK's location field may show its completion list over the path typed; the first Enter then
    # only takes the completion (the path itself), and a second one answers the chooser.
    again = time.time() + 2
    open_ = lambda: subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{title}$"],
                                   capture_output=True).returncode == 0
    while open_():
        if again and time.time() > again:
            subprocess.run(["xdotool", "key", "Return"], check=True)
            again = None
        if time.time() > deadline:
            x_screenshot(title, os.path.join(SCREENSHOTS, "FAILED-file-chooser.png"))
            raise AssertionError(f"the file chooser {title!r} stayed open")
        time.sleep(0.2)


SECRET_TITLE = "Choose the secret's file"


def add_secret(app, secret_id, path=None):
    """A new secret row with this id and, when given, its file chosen in the system's chooser."""
    app.click("#add-secret")
    row = app.driver.find_elements(By.CSS_SELECTOR, "#secrets .secret")[-1]
    row_id = row.get_attribute("id")
    app.type_into(f"#{row_id} .secret-id", secret_id)
    if path is not None:
        app.click(f"#{row_id} .secret-choose")
        choose_in_dialog(SECRET_TITLE, path)
        shown = lambda: app.find(f"#{row_id} .secret-file").get_attribute("textContent")
        app.wait(lambda: shown() == path, 10, f"the row shows {shown()!r}, not the file chosen")
    return row_id


def clear_build_form(app):
    """The Build window with no secret rows and no ssh, caches or output."""
    app.driver.execute_script("document.getElementById('secrets').replaceChildren();")
    if app.find("#ssh").is_selected():
        app.click("#ssh")
    for field in ("#cache_to", "#cache_from", "#output", "#names"):
        app.type_into(field, "")
    for box in ("#push", "#load"):
        if app.find(box).is_selected():
            app.click(box)


def test_a_build_with_a_secret_ssh_a_registry_cache_and_an_output_folder(app):
    app.running()
    registry = Registry()
    agent = None
    try:
        added = app.cli("backend", "ports", "add", str(registry.port))
        assert added.returncode == 0, added.stderr
        # A real ssh-agent, with a key, at the socket the app was told of (SSH_AUTH_SOCK).
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", app.ssh_socket], stdout=subprocess.DEVNULL)
        work = tempfile.mkdtemp(prefix="assemble-ui-secret-")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(work, "key")], check=True)
        deadline = time.time() + 10
        while not os.path.exists(app.ssh_socket):
            assert time.time() < deadline, "ssh-agent did not start"
            time.sleep(0.1)
        subprocess.run(["ssh-add", os.path.join(work, "key")], check=True, capture_output=True,
                       env=dict(os.environ, SSH_AUTH_SOCK=app.ssh_socket))
        value = "ui-secret-value-7f3a"
        digest = hashlib.sha256(value.encode()).hexdigest()
        token = os.path.join(work, "token")
        with open(token, "w") as out:
            out.write(value)
        context = tempfile.mkdtemp(prefix="assemble-ui-appbuild-")
        docker("cp", f"{app.backend}:/bin/busybox", context)
        bb = "/bin/busybox"
        with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
            dockerfile.write(
                "FROM scratch\nCOPY busybox /bin/busybox\n"
                # The value's digest, so the value itself is in no Dockerfile line the progress shows.
                f'RUN --mount=type=secret,id=tok ["{bb}", "sh", "-c", '
                f'"{bb} sha256sum /run/secrets/tok | {bb} grep -q ^{digest} && echo secret-ok > /secret-ok"]\n'
                f'RUN --mount=type=ssh ["{bb}", "sh", "-c", "test -S \\"$SSH_AUTH_SOCK\\" && echo ssh-ok > /ssh-ok"]\n')
        out = os.path.join(work, "out")
        cache = f"localhost:{registry.port}/ui/cache:1"

        open_build_window(app)
        clear_build_form(app)
        app.type_into("#folder", context)
        add_secret(app, "tok", token)
        app.click("#ssh")
        app.type_into("#cache_to", cache)
        app.click("#choose-output")
        choose_in_dialog("Choose the folder for the result's files", work)
        chosen = lambda: app.find("#output").get_attribute("value")
        app.wait(lambda: chosen() == work, 10, f"the output folder chosen is {chosen()!r}, not {work!r}")
        # A folder not there yet is made by the build; typed beside the chooser.
        app.type_into("#output", out)
        # After entry the page holds the file's path, never its value.
        assert value not in app.driver.page_source
        app.x_screenshot("28-build-window-options")
        app.click("#build")
        app.wait(lambda: "Wrote the result to the folder" in app.text("#result"), 180,
                 f"no result: {app.text('#error')!r} {app.text('#progress')[-600:]!r}")
        with open(os.path.join(out, "secret-ok")) as ok:
            assert ok.read().strip() == "secret-ok"
        with open(os.path.join(out, "ssh-ok")) as ok:
            assert ok.read().strip() == "ssh-ok"
        assert os.path.exists(os.path.join(out, "bin", "busybox"))
        assert not os.path.exists(os.path.join(out, "run", "secrets", "tok")), "the secret reached the output"
        assert "ui/cache" in registry.catalog(), registry.catalog()
        assert value not in app.text("#progress") and value not in app.driver.page_source
        for folder, _, files in os.walk(out):
            for name in files:
                with open(os.path.join(folder, name), "rb") as written:
                    assert value.encode() not in written.read(), f"the secret's value is in {name}"
        app.driver.execute_script("document.getElementById('result-card').scrollIntoView({block: 'end'});")
        app.x_screenshot("29-build-window-options-built")

        # Cache from the same ref: BuildKit reads the cache's manifest from the registry.
        app.type_into("#cache_to", "")
        app.type_into("#cache_from", cache)
        app.click("#build")
        app.wait(lambda: "Wrote the result to the folder" in app.text("#result"), 180,
                 f"no result: {app.text('#error')!r} {app.text('#progress')[-600:]!r}")
        assert f"importing cache manifest from {cache}" in app.text("#progress"), app.text("#progress")
    finally:
        app.cli("backend", "ports", "rm", str(registry.port))
        registry.stop()
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        if os.path.exists(app.ssh_socket):
            os.remove(app.ssh_socket)


def test_each_bad_option_is_a_sentence_beside_its_own_field(app):
    context = tempfile.mkdtemp(prefix="assemble-ui-appbuild-")
    with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
        dockerfile.write("FROM scratch\n")
    token = os.path.join(context, "token")
    with open(token, "w") as out:
        out.write("x")
    gone = os.path.join(context, "gone-token")
    with open(gone, "w") as out:
        out.write("x")
    assert not os.path.exists(app.ssh_socket), "an ssh agent was left running"
    open_build_window(app)
    clear_build_form(app)
    app.type_into("#folder", context)
    no_id = add_secret(app, "", token)
    first = add_secret(app, "dup", token)
    twice = add_secret(app, "dup", token)
    no_file = add_secret(app, "nofile")
    missing = add_secret(app, "gone", gone)
    os.remove(gone)
    app.click("#ssh")
    app.type_into("#cache_to", "Bad Ref")
    app.type_into("#cache_from", "localhost:5000/fine:cache")
    app.type_into("#output", token)
    app.click("#build")
    app.wait(lambda: app.text("#output-error"), 20, "no sentence beside the output folder")
    error = lambda field: app.text(f"#{field}-error")
    assert error(no_id).startswith("This secret has no id"), error(no_id)
    assert error(first) == "", error(first)
    assert error(twice) == "The id dup is given twice; give each secret its own id", error(twice)
    assert error(no_file).startswith("Secret nofile has no file; choose its file"), error(no_file)
    assert error(missing).startswith(f"Cannot read {gone} (No such file or directory)"), error(missing)
    assert error("ssh").startswith(f"SSH forwarding uses the ssh-agent at {app.ssh_socket}"), error("ssh")
    assert "is not a valid image name" in error("cache_to"), error("cache_to")
    assert error("cache_from") == "", error("cache_from")
    assert "is a file" in error("output"), error("output")
    for field in ("folder", "names", "platforms", "secrets"):
        assert error(field) == "", (field, error(field))
    assert not app.find("#error").is_displayed(), app.text("#error")
    assert not app.find("#progress-card").is_displayed(), "nothing was sent to BuildKit"
    app.x_screenshot("30-build-window-option-errors")
    app.driver.execute_script("document.getElementById('output-error').scrollIntoView({block: 'end'});")
    app.x_screenshot("31-build-window-option-errors-output")
    # Fixed, the sentences go: the next refusal shows only what is still wrong.
    app.click(f"#{no_id} .secret-remove")
    app.click(f"#{twice} .secret-remove")
    app.click(f"#{no_file} .secret-remove")
    app.click(f"#{missing} .secret-remove")
    app.click("#ssh")
    app.type_into("#cache_to", "")
    app.type_into("#output", os.path.join(token, "out"))
    app.click("#build")
    app.wait(lambda: f"{token} is a file" in error("output"), 20, error("output"))
    assert error(first) == "" and error("ssh") == "" and error("cache_to") == ""
    clear_build_form(app)
