"""The real app, end to end: panel, settings, logs, live state and the tray. Each test makes the
state it starts from (app.running(), app.stopped()), so they pass in any order and alone."""
import os
import time

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from conftest import DEFAULT_ENGINE, NATIVE_PLATFORM, SCREENSHOTS, container_names, docker

XSS = "<img src=x onerror=alert(1)>"


def test_start_from_the_panel_brings_the_backend_up_with_workers(app):
    app.stopped()
    app.wait(lambda: app.text("#state") == "Stopped", 30, "the panel should first show the backend stopped")
    app.screenshot("01-panel-stopped")
    app.click("#start")
    app.wait(lambda: app.text("#state").startswith("Running"), 90, "the panel never showed Running")
    app.wait(lambda: NATIVE_PLATFORM in app.text("#workers"), 30, "no workers shown")
    assert docker("inspect", "-f", "{{.State.Running}}", app.backend).stdout.strip() == "true"
    assert app.text("#container-id") == docker("inspect", "-f", "{{.Id}}", app.backend).stdout.strip()
    # The ports saved in the settings file, which the user edits; none saved means the default, 5000.
    ports = app.saved_settings().get("ports", [5000])
    rows = app.text("#ports")
    assert all(str(p) in rows for p in ports) and rows.count("running") == len(ports), rows
    assert app.find("#stop").is_enabled() and not app.find("#start").is_enabled()
    # Uptime in whole minutes (the panel wakes for it once a minute).
    assert app.text("#uptime") == "less than a minute", app.text("#uptime")
    # The backend is also the buildx builder "assemble", with the line to copy.
    app.wait(lambda: app.text("#builder") == "docker buildx build --builder assemble .", 10, app.text("#builder"))
    endpoint = app.buildx_builders()["assemble"]["Nodes"][0]["Endpoint"]
    assert endpoint == f"docker-container://{app.backend}?context=default", endpoint
    app.screenshot("02-panel-running")


def test_panel_and_tray_follow_a_switch_of_dockers_current_context(app, second_engine):
    """Docker Desktop makes its context current when it starts; the app follows, and says so."""
    app.running()
    assert app.text("#engine") == f"default · {DEFAULT_ENGINE}", app.text("#engine")
    assert app.tray.item("Engine:")["label"] == f"Engine: default ({DEFAULT_ENGINE})"
    app.docker_context("create", "desktop-linux", "--docker", f"host={second_engine}")
    timings = []
    for context, host, state in [("desktop-linux", second_engine, "Stopped"),
                                 ("default", DEFAULT_ENGINE, "Running")]:
        switched = time.time()
        app.docker_context("use", context)
        app.wait(lambda: app.text("#engine") == f"{context} · {host}" and app.text("#state").startswith(state), 10,
                 f"the panel did not follow to {context}: {app.text('#engine')!r} {app.text('#state')!r}")
        panel = time.time() - switched
        app.wait(lambda: app.tray.item("Engine:")["label"].startswith(f"Engine: {context}")
                 and app.tray.item("Backend:")["label"].startswith(f"Backend: {state}"), 10,
                 f"the tray did not follow to {context}")
        timings.append(f"{context}: panel {panel:.2f}s, tray {time.time() - switched:.2f}s")
        app.screenshot(f"02b-panel-engine-{context}")
    # Our own backend stayed where it was: on the machine's engine, running.
    assert docker("inspect", "-f", "{{.State.Running}}", app.backend).stdout.strip() == "true"

    # The settings can pin a context over docker's current one, and go back to following docker.
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    app.driver.refresh()  # an open settings window lists the contexts it found when it opened
    app.window("Assemble Backend Settings")
    app.wait(lambda: f"now: default · {DEFAULT_ENGINE}" in app.text("#docker-uses"), 10, app.text("#docker-uses"))
    options = [o.get_attribute("value") for o in app.driver.find_elements(By.CSS_SELECTOR, "#context-list option")]
    assert options == ["default", "desktop-linux"], options
    assert app.find("input[name=engine][value=follow]").is_selected()
    app.driver.execute_script("arguments[0].value = 'desktop-linux'; arguments[0].dispatchEvent(new Event('change'));",
                              app.find("#context-list"))
    assert app.find("input[name=engine][value=pinned]").is_selected()
    app.screenshot("02c-settings-engine-pinned")
    for expected_context, expected_host, expected_state in [("desktop-linux", second_engine, "Stopped"),
                                                            ("default", DEFAULT_ENGINE, "Running")]:
        app.click("#save")
        app.wait(lambda: app.text("#saved") == "Saved.", 10, f"not saved: {app.text('#context-error')!r}")
        app.window("Assemble Backend")
        app.wait(lambda: app.text("#engine") == f"{expected_context} · {expected_host}"
                 and app.text("#state").startswith(expected_state), 10,
                 f"the panel does not show {expected_context}: {app.text('#engine')!r}")
        app.window("Assemble Backend Settings")
        app.click("input[name=engine][value=follow]")
    app.click("#save")  # back to following docker, as the other tests expect
    app.wait(lambda: app.text("#saved") == "Saved.", 10)
    with open(os.path.join(SCREENSHOTS, "engine-switch.txt"), "w") as out:
        out.write("\n".join(timings) + "\n")


def test_settings_ports_are_validated_and_apply_live_with_the_same_backend(app):
    app.running()
    running_ports = sorted(int(n.rsplit("-", 1)[1]) for n in container_names(f"{app.backend}-proxy-port-"))
    # Two ports that differ from the running ones, so that there is always something to apply.
    wanted = [6071, 6072] if running_ports != [6071, 6072] else [6073, 6074]
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    app.wait(lambda: app.driver.execute_script("return document.readyState") == "complete", 10)
    app.type_into("#port-input", "70000")
    app.click("#add-port")
    app.wait(lambda: "out of range" in app.text("#ports-error"), 10, "no error next to the ports field")
    app.screenshot("03-settings-invalid-port")
    # A backend image Docker would refuse is told beside the image field, and nothing is saved.
    image_before = app.find("#image").get_attribute("value")
    app.type_into("#image", "Moby/BuildKit:v0.25.1")
    app.click("#save")
    app.wait(lambda: "is not a valid image name" in app.text("#image-error"), 10,
             f"no error next to the image field: {app.text('#saved')!r}")
    assert app.text("#saved") != "Saved.", app.text("#saved")
    app.type_into("#image", image_before)
    app.type_into("#port-input", f"{wanted[0]},{wanted[1]}")
    app.click("#add-port")
    app.wait(lambda: str(wanted[0]) in app.text("#ports") and app.text("#ports-error") == "", 10,
             f"adding {wanted} failed: {app.text('#ports-error')!r}")
    def others():  # the list is drawn again after each removal, so look again each time
        return [b for b in app.driver.find_elements(By.CSS_SELECTOR, "#ports button[aria-label^='Remove ']")
                if b.get_attribute("aria-label") not in (f"Remove {wanted[0]}", f"Remove {wanted[1]}")]
    while others():
        others()[0].click()
    backend_id = docker("inspect", "-f", "{{.Id}}", app.backend).stdout.strip()
    app.click("#save")
    app.wait(lambda: app.text("#saved") == "Saved.", 10,
             "not saved: " + " | ".join(app.text(f"#{f}-error") for f in ("ports", "cache", "image")))
    # Saved ports apply live: the sidecars follow, the backend is the same container, and nothing
    # asks for a restart.
    # With the local-image mirror's front and store (used by default), which a port change leaves be.
    expected = [app.backend, f"{app.backend}-mirror", f"{app.backend}-mirror-store",
                f"{app.backend}-proxy-port-{wanted[0]}", f"{app.backend}-proxy-port-{wanted[1]}"]
    app.wait(lambda: container_names(app.backend) == expected, 30, "the sidecars do not follow the saved ports")
    assert docker("inspect", "-f", "{{.Id}}", app.backend).stdout.strip() == backend_id, "the backend was restarted"
    app.wait(lambda: not app.find("#differences").is_displayed(), 10,
             f"the settings window still asks for a restart: {app.text('#differences')!r}")
    app.window("Assemble Backend")
    app.wait(lambda: all(str(p) in app.text("#ports") for p in wanted), 10, f"the panel shows {app.text('#ports')!r}")
    assert not app.find("#differences").is_displayed(), app.text("#differences")
    app.window("Assemble Backend Settings")
    app.screenshot("04-settings-ports-live")


def test_ports_changed_on_the_command_line_are_applied_live_from_the_panel(app):
    app.running()
    backend_id = docker("inspect", "-f", "{{.Id}}", app.backend).stdout.strip()
    added = app.cli("backend", "ports", "add", "6093")
    assert added.returncode == 0, added.stderr
    try:
        # The settings do not have 6093: the panel offers to apply them, live, without a restart.
        app.wait(lambda: app.find("#differences").is_displayed() and "host ports" in app.text("#differences"), 20,
                 "the panel does not show that the ports differ from the settings")
        assert app.text("#apply") == "Apply now", app.text("#apply")
        app.screenshot("04b-panel-apply-ports-live")
        app.click("#apply")
        app.wait(lambda: f"{app.backend}-proxy-port-6093" not in container_names(app.backend)
                 and not app.find("#differences").is_displayed(), 30, "applying did not bring back the settings' ports")
        assert docker("inspect", "-f", "{{.Id}}", app.backend).stdout.strip() == backend_id, "Apply restarted it"
    finally:
        app.cli("backend", "ports", "rm", "6093")


def test_a_sidecar_that_dies_is_put_back_by_the_app(app):
    app.running()
    app.wait(lambda: container_names(f"{app.backend}-proxy-port-"), 30, "the backend has no sidecar to kill")
    sidecar = container_names(f"{app.backend}-proxy-port-")[0]
    port = sidecar.rsplit("-", 1)[1]
    app.wait(lambda: port in app.text("#ports") and "exited" not in app.text("#ports"), 30)
    killed = docker("inspect", "-f", "{{.Id}}", sidecar).stdout.strip()
    docker("kill", sidecar)

    def replaced():
        found = docker("inspect", "-f", "{{.Id}} {{.State.Running}}", sidecar, check=False).stdout.split()
        return len(found) == 2 and found[0] != killed and found[1] == "true"
    app.wait(replaced, 20, "the killed sidecar was not replaced by a running one")
    app.wait(lambda: "exited" not in app.text("#ports") and "missing" not in app.text("#ports"), 10,
             f"the panel does not show the port proxied again: {app.text('#ports')!r}")
    assert app.text("#state") == "Running", "a dead sidecar does not stop the backend"
    app.screenshot("05-panel-sidecar-put-back")


def test_purge_says_what_it_frees_and_empties_the_cache(app):
    app.running()
    build = ("d=$(mktemp -d); echo cached > $d/f; printf 'FROM scratch\\nCOPY f /\\n' > $d/Dockerfile; "
             "buildctl build --frontend dockerfile.v0 --local context=$d --local dockerfile=$d")
    docker("exec", app.backend, "sh", "-c", build)
    app.click("#refresh-cache")
    app.wait(lambda: not app.text("#legend-total").startswith("Total 0B"), 20, "the build's cache does not show")
    app.click("#purge")
    app.wait(lambda: app.find("#confirm").is_displayed(), 10)
    question = app.text("#confirm-text")
    assert "frees" in question and "B." in question, question
    app.screenshot("06-panel-purge-confirm")
    app.click("#confirm-ok")
    app.wait(lambda: app.text("#purge-result").startswith("Purged "), 20, "no purge result")
    app.wait(lambda: app.text("#legend-total") == "Total 0B in 0 entries", 20, "the cache is not empty after purge")


def test_the_log_viewer_shows_buildkit_lines_and_search_finds_one(app):
    app.running()
    app.click("#open-logs")
    app.window("Assemble Backend Logs")
    # The log may be long (other tests write to it): the search finds the line wherever it is.
    app.wait(lambda: app.driver.find_elements(By.CSS_SELECTOR, "#lines .line"), 30, "no lines are shown")
    app.type_into("#search", "running server on")
    def current():
        found = app.driver.find_elements(By.CSS_SELECTOR, "#lines .line.current")
        return found and "running server on" in found[0].text
    app.wait(current, 10, "the search did not bring its line into view")
    assert app.text("#matches").startswith("1 of "), app.text("#matches")
    marks = app.driver.find_elements(By.CSS_SELECTOR, "#lines mark")
    assert marks and marks[0].text == "running server on"
    current = app.find("#lines .line.current")
    assert "running server on" in current.text
    app.screenshot("07-logs-search")


def test_a_log_line_with_markup_renders_as_text(app):
    app.running()
    app.click("#open-logs")
    app.window("Assemble Backend Logs")
    app.type_into("#search", "")
    app.click("#follow") if app.text("#follow") == "Follow" else None
    # buildkitd is PID 1: what it writes to stdout is the container's log.
    docker("exec", app.backend, "sh", "-c", f"echo '{XSS}' > /proc/1/fd/1")
    app.wait(lambda: XSS in app.text("#lines"), 20, "the markup line never appeared")
    assert app.driver.find_elements(By.CSS_SELECTOR, "#lines img") == []
    try:
        alert = app.driver.switch_to.alert.text
        raise AssertionError(f"the log line ran as HTML: alert {alert!r}")
    except NoAlertPresentException:
        pass
    app.screenshot("08-logs-markup-as-text")


def test_docker_rm_of_the_backend_turns_panel_and_tray_to_stopped(app):
    app.running()
    assert app.tray.item("Backend:")["label"].startswith("Backend: Running")
    removed_at = time.time()
    docker("rm", "-f", app.backend)
    # Docker's events tell the app (no polling); how fast is a figure (scripts/bench-app.sh), not a test.
    app.wait(lambda: app.text("#state") == "Stopped", 30, "the panel did not notice the removal")
    print(f"the panel showed the removal {time.time() - removed_at:.2f}s after docker rm")
    app.wait(lambda: app.tray.item("Backend:")["label"] == "Backend: Stopped", 30, "the tray did not notice")
    assert app.tray.item("Start")["enabled"] and not app.tray.item("Stop")["enabled"]
    app.screenshot("09-panel-after-docker-rm")
    # The sidecars of the removed backend are left for the next start or stop to clear.
    for name in container_names(f"{app.backend}-proxy-port-"):
        docker("rm", "-f", name, check=False)


def test_the_tray_menu_starts_and_stops_the_backend(app):
    app.stopped()
    labels = [entry["label"] for entry in app.tray.menu()]
    for expected in ["Start", "Stop", "Restart", "Open panel", "Settings…", "Logs…", "Quit"]:
        assert expected in labels, f"{expected!r} missing from the tray menu {labels}"
    app.tray.click("Start")
    app.wait(lambda: app.tray.item("Backend:")["label"].startswith("Backend: Running"), 90, "tray Start did not start")
    assert docker("inspect", "-f", "{{.State.Running}}", app.backend).stdout.strip() == "true"
    app.window("Assemble Backend")
    app.wait(lambda: app.text("#state").startswith("Running"), 10)
    app.tray.click("Stop")
    app.wait(lambda: container_names(app.backend) == [], 60, "tray Stop left containers")
    app.wait(lambda: app.text("#state") == "Stopped", 10)
    app.window("Assemble Backend Settings")
    app.screenshot("10-settings")


def test_the_security_mode_is_a_setting_and_the_panel_says_which_mode_runs_and_why(app):
    app.running()
    assert app.text("#security").split(":")[0] in ("privileged", "capabilities"), app.text("#security")
    assert ": " in app.text("#security"), f"the panel names the mode without why: {app.text('#security')!r}"
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    app.wait(lambda: app.driver.execute_script("return document.readyState") == "complete", 10)
    assert app.find("input[name=security][value=auto]").is_selected(), "the default is Automatic"
    app.click("input[name=security][value=rootless]")
    app.click("#save")
    app.wait(lambda: app.text("#saved") == "Saved.", 10, "not saved: " + app.text("#security-error"))
    assert app.saved_settings()["security"] == "rootless"
    # A running backend in another mode: the window offers to apply it with a restart.
    app.wait(lambda: "security mode" in app.text("#difference-list"), 10,
             f"no difference named: {app.text('#difference-list')!r}")
    app.driver.execute_script("document.querySelector('input[name=security]').scrollIntoView()")
    app.screenshot("13-settings-security")
    app.click("input[name=security][value=auto]")
    app.click("#save")
    app.wait(lambda: app.text("#saved") == "Saved.", 10)
    assert app.saved_settings()["security"] == "auto"
