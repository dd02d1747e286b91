"""The Builds window: builds made with buildx on the backend appear live, and a failed build's detail
shows its steps with the failing step open and highlighted."""
import os
import subprocess
import tempfile
import time

from selenium.webdriver.common.by import By

from conftest import docker


def buildx_build(app, context, *extra):
    return subprocess.run(["docker", "--config", app.docker_config, "buildx", "build", "--builder", "assemble",
                           "--progress", "plain", *extra, context], capture_output=True, text=True, timeout=240)


def make_context(app, run):
    context = tempfile.mkdtemp(prefix="assemble-ui-build-")
    docker("cp", f"{app.backend}:/bin/busybox", context)
    with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
        dockerfile.write(f'FROM scratch AS tools\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "{run}"]\n'
                         "FROM scratch\nCOPY --from=tools /out /out\n")
    return context


def rows(app):
    """The rows' texts, read at once (the list is drawn again whenever BuildKit announces a change)."""
    return app.driver.execute_script(
        "return [...document.querySelectorAll('#builds tr.build')].map((r) => r.textContent);")


def test_builds_appear_live_and_a_failure_shows_its_step(app):
    app.running()
    app.wait(lambda: app.text("#builder") == "docker buildx build --builder assemble .", 20, "no builder")
    app.click("#open-builds")
    app.window("Assemble Backend Builds")
    app.wait(lambda: app.text("#count") != "", 20, "the Builds window never listed anything")
    before = len(rows(app))

    good = buildx_build(app, make_context(app, "echo built > /out"))
    assert good.returncode == 0, good.stderr
    finished = time.time()
    app.wait(lambda: len(rows(app)) == before + 1 and rows(app)[0].startswith("Completed"), 10,
             f"the finished build did not appear: {rows(app)}")
    appeared = time.time() - finished

    failing = buildx_build(app, make_context(app, "echo failing on purpose; exit 3"))
    assert failing.returncode != 0
    app.wait(lambda: len(rows(app)) == before + 2 and rows(app)[0].startswith("Error"), 10, f"{rows(app)}")
    app.screenshot("13-builds-list")

    app.driver.execute_script("document.querySelector('#builds tr.build').click();")
    app.wait(lambda: app.find("#detail").is_displayed() and app.driver.find_elements(By.CSS_SELECTOR, "details.step.failed"),
             10, "no detail with a failing step")
    failed_step = app.find("details.step.failed")
    assert failed_step.get_attribute("open") is not None, "the failing step is open"
    assert "failing on purpose" in failed_step.text and "exit code: 3" in failed_step.text, failed_step.text
    assert "exit code: 3" in app.text("#detail-error")
    steps = app.driver.find_elements(By.CSS_SELECTOR, "#steps details.step")
    assert len(steps) >= 4 and any("CACHED" in s.text for s in steps), [s.text for s in steps]
    app.screenshot("14-builds-failed-detail")
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "target", "ui-screenshots", "builds-window.txt"),
              "w") as out:
        out.write(f"a finished build appeared in the Builds window {appeared:.2f}s after buildx returned\n")


def test_the_builds_window_may_not_change_anything(app):
    app.running()
    app.click("#open-builds")
    app.window("Assemble Backend Builds")
    for command in ("start_backend", "stop_backend", "purge_cache", "follow_logs"):
        ok, error = app.invoke(command)
        assert not ok and "not allowed" in str(error), f"{command}: {error!r}"
