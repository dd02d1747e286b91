"""The Builds window: builds made with buildx on the backend appear live, and a failed build's detail
shows its steps with the failing step open and highlighted."""
import os
import re
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
    assert failing.returncode != 0 and "failing on purpose" in failing.stderr, failing.stderr
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


def test_an_active_build_shows_its_progress_as_it_runs(app):
    app.running()
    app.click("#open-builds")
    app.window("Assemble Backend Builds")
    app.wait(lambda: app.text("#count") != "", 20, "the Builds window never listed anything")
    context = make_context(app, "echo started-running; sleep 10; echo built > /out")
    build = subprocess.Popen(["docker", "--config", app.docker_config, "buildx", "build", "--builder", "assemble",
                              "--progress", "plain", context], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        app.wait(lambda: rows(app) and rows(app)[0].startswith("Running"), 30, f"no Running build: {rows(app)}")
        app.driver.execute_script("document.querySelector('#builds tr.build').click();")
        # The step under way is marked and open, and its output arrives while buildx still builds.
        app.wait(lambda: "started-running" in app.driver.execute_script(
            "const s = document.querySelector('details.step.running'); return s ? s.textContent : '';"), 20,
            "the running step's output never showed")
        assert build.poll() is None, "the progress showed only after the build had ended"
        assert "running" in app.find("details.step.running summary").text
        assert "running" in app.text("#detail-title").lower()
        app.screenshot("15-builds-running")
        assert build.wait(timeout=120) == 0, build.stderr.read()
        # Its end reaches the detail: no step under way, the title says Completed.
        app.wait(lambda: "completed" in app.text("#detail-title").lower()
                 and not app.driver.find_elements(By.CSS_SELECTOR, "details.step.running"), 10,
                 f"the detail did not follow the build to its end: {app.text('#detail-title')}")
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()


def timing_bars(app):
    """The waterfall's bars, read at once: each step's number, label, classes and place."""
    return app.driver.execute_script("""
        return [...document.querySelectorAll('#timing-bars .timing-row')].map((row) => {
            const bar = row.querySelector('.tbar');
            return {number: row.dataset.number, label: row.querySelector('.timing-label').textContent,
                    classes: [...bar.classList], left: bar.style.left, width: bar.getBoundingClientRect().width};
        });""")


def open_build(app, index):
    app.driver.execute_script(f"document.querySelectorAll('#builds tr.build')[{index}].click();")
    app.wait(lambda: app.find("#detail").is_displayed() and "completed" in app.text("#detail-title").lower()
             and app.find("#timing").is_displayed(), 10, "no timing for the chosen build")


def test_a_build_s_timing_shows_its_steps_on_one_axis_and_the_cached_share(app):
    app.running()
    app.click("#open-builds")
    app.window("Assemble Backend Builds")
    app.wait(lambda: app.text("#count") != "", 20, "the Builds window never listed anything")
    before = len(rows(app))
    # A run of its own, so that only the rebuild finds it in the cache.
    context = make_context(app, f"echo timing-{time.time_ns()}; sleep 1; echo built > /out")
    for built in (1, 2):
        result = buildx_build(app, context)
        assert result.returncode == 0, result.stderr
        app.wait(lambda: len(rows(app)) == before + built and rows(app)[0].startswith("Completed"), 10, f"{rows(app)}")

    def run_bar(bars):
        runs = [b for b in bars if "RUN" in b["label"] and "timing-" in b["label"]]
        assert len(runs) == 1, bars
        return runs[0]

    open_build(app, 1)
    first = timing_bars(app)
    steps = app.driver.find_elements(By.CSS_SELECTOR, "#steps details.step")
    assert [b["number"] for b in first] == [s.get_attribute("data-number") for s in steps], "a bar for every step"
    assert "cached" not in run_bar(first)["classes"], "the first build ran its RUN"
    assert any("critical" in b["classes"] for b in first), first
    assert run_bar(first)["width"] > 3, "the one-second RUN has a bar of some length"
    app.driver.execute_script("document.querySelector('#detail').scrollIntoView({block: 'start'});")
    app.screenshot("14a-builds-timing-first")

    open_build(app, 0)
    app.wait(lambda: timing_bars(app) and "cached" in run_bar(timing_bars(app))["classes"], 10,
             f"the rebuild's RUN is not marked cached: {timing_bars(app)}")
    again = timing_bars(app)
    steps = app.driver.find_elements(By.CSS_SELECTOR, "#steps details.step")
    assert [b["number"] for b in again] == [s.get_attribute("data-number") for s in steps], "a bar for every step"
    cached = [b for b in again if "cached" in b["classes"]]
    share = re.fullmatch(r"(\d+) of (\d+) steps cached \((\d+) %\)", app.text("#timing-cached"))
    assert share, app.text("#timing-cached")
    assert (int(share[1]), int(share[2])) == (len(cached), len(again)), (app.text("#timing-cached"), again)
    assert int(share[3]) == round(100 * len(cached) / len(again))
    # The steps marked cached in the list are the ones marked in the picture.
    listed = [s.get_attribute("data-number") for s in steps if "CACHED" in s.text]
    assert listed == [b["number"] for b in cached], (listed, cached)
    assert app.text("#timing-critical").startswith("Critical path: #"), app.text("#timing-critical")
    assert app.find("#timing-axis").text.startswith("0"), app.find("#timing-axis").text
    app.driver.execute_script("document.querySelector('#detail').scrollIntoView({block: 'start'});")
    app.screenshot("14b-builds-timing")


def saved_cache_limit(app):
    try:
        return app.saved_settings().get("cache_limit")
    except FileNotFoundError:
        return None


def test_the_cache_limit_field_refuses_a_bad_size_and_applies_a_good_one(app):
    app.running()
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    app.wait(lambda: app.driver.execute_script("return document.readyState") == "complete", 10)
    before = saved_cache_limit(app)
    app.type_into("#cache-limit", "12 parsecs")
    app.click("#save")
    app.wait(lambda: "12 parsecs" in app.text("#cache_limit-error"), 10, "no error next to the cache limit")
    assert "such as 20GB or 500MiB" in app.text("#cache_limit-error")
    assert "invalid" in app.find("#cache-limit").get_attribute("class")
    assert saved_cache_limit(app) == before, "a refused size is not saved"
    app.driver.execute_script("document.querySelector('#cache-limit').scrollIntoView({block: 'center'});")
    app.screenshot("16-settings-bad-cache-limit")
    try:
        app.type_into("#cache-limit", "3GiB")
        app.click("#save")
        app.wait(lambda: app.text("#saved") == "Saved.", 10, app.text("#cache_limit-error"))
        assert saved_cache_limit(app) == "3GiB" and app.text("#cache_limit-error") == ""
        app.wait(lambda: "cache limit" in app.text("#differences"), 20, "no offer to apply the new cache limit")
        app.click("#apply")
        app.window("Assemble Backend")
        app.wait(lambda: app.text("#cache-limit") == "3GiB", 90, "the panel does not show the new cache limit")
        inspect = subprocess.run(["docker", "--config", app.docker_config, "buildx", "inspect", "assemble"],
                                 capture_output=True, text=True, timeout=60)
        assert "Max Used Space: 3GiB" in inspect.stdout, inspect.stdout + inspect.stderr
    finally:
        app.window("Assemble Backend")
        app.click("#open-settings")
        app.window("Assemble Backend Settings")
        app.type_into("#cache-limit", "")
        app.click("#save")
        app.wait(lambda: app.text("#saved") == "Saved.", 10)
        if app.find("#differences").is_displayed():
            app.click("#apply")
            app.window("Assemble Backend")
            app.wait(lambda: app.text("#cache-limit") == "BuildKit's default", 90, app.text("#cache-limit"))
