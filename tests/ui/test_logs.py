"""The log viewer at scale: the lines live in the app, and the window fetches only what it shows.
200,000 lines here (the benchmark keeps the 1,000,000-line run)."""
import subprocess
import time

from selenium.webdriver.common.by import By

from conftest import docker

LINES = 200000

VISIBLE_ROWS_JS = """
return [...document.querySelectorAll('#lines .line')].map((r) => [Number(r.dataset.line), r.textContent]);
"""


def rows(app):
    return app.driver.execute_script(VISIBLE_ROWS_JS)


def open_following(app):
    """The log viewer of a running backend, following its end."""
    app.running()
    app.click("#open-logs")
    app.window("Assemble Backend Logs")
    if app.text("#follow") == "Follow":
        app.click("#follow")


def test_a_large_log_shows_its_end_searches_and_jumps_to_the_middle(app):
    app.running()
    docker("exec", app.backend, "sh", "-c", f"seq 1 {LINES} > /proc/1/fd/1")
    app.click("#open-logs")
    app.window("Assemble Backend Logs")
    app.wait(lambda: rows(app) and rows(app)[-1][1] == str(LINES), 120, "the last line never showed")
    # The numbers are lines of the stream: the line "1" sits after buildkitd's own lines.
    last_number, _ = rows(app)[-1]
    offset = last_number - (LINES - 1)
    app.screenshot("17-logs-200k-end")

    # A search over all of them, in the app: a line near the start, and the right count (as the
    # engine's own log has it, read now that the last line is there).
    log = subprocess.run(["docker", "logs", app.backend], capture_output=True, text=True, timeout=120)
    lines = (log.stdout + log.stderr).splitlines()
    query = "12345"
    expected = sum(1 for line in lines if query in line.lower())
    app.type_into("#search", query)
    app.wait(lambda: app.text("#matches").startswith("1 of "), 20, "the search found nothing")
    assert app.text("#matches") == f"1 of {expected}", app.text("#matches")
    current = app.wait(lambda: (app.driver.find_elements(By.CSS_SELECTOR, "#lines .line.current") or [None])[0], 10,
                       "the first match is not in view")
    assert int(current.get_attribute("data-line")) == offset + 12344, current.get_attribute("data-line")
    assert current.text.endswith("12345")
    app.screenshot("18-logs-200k-search")
    app.type_into("#search", "")
    app.wait(lambda: app.text("#matches") == "", 10)

    # Half way down: the rows there are the middle lines, numbered as the stream numbers them.
    app.driver.execute_script(
        "const v = document.getElementById('viewport'); v.scrollTop = (v.scrollHeight - v.clientHeight) / 2;")
    def middle():
        shown = rows(app)
        return shown and abs(int(shown[0][1]) - LINES // 2) < LINES // 50 and shown
    shown = app.wait(middle, 10, "the middle lines never showed")
    for number, text in shown:
        assert number == offset + int(text) - 1, (number, text)
    app.screenshot("19-logs-200k-middle")

    # Timestamps and wrap toggle on the rows in view.
    app.click("#timestamps")
    app.wait(lambda: app.driver.find_elements(By.CSS_SELECTOR, "#lines .line .ts"), 10, "no timestamps shown")
    app.click("#timestamps")
    app.wait(lambda: not app.driver.find_elements(By.CSS_SELECTOR, "#lines .line .ts"), 10, "timestamps stay")
    app.click("#wrap")
    assert "wrap" in app.find("body").get_attribute("class")
    app.click("#wrap")
    assert "wrap" not in (app.find("body").get_attribute("class") or "")



def test_the_viewer_follows_the_backend_again_after_a_stop_and_a_start(app):
    app.running()
    app.click("#open-logs")
    app.window("Assemble Backend Logs")
    app.stopped()
    app.window("Assemble Backend Logs")
    app.wait(lambda: "not connected" in app.text("#status"), 20, "the viewer did not notice the backend went away")
    app.screenshot("20-logs-backend-stopped")
    app.running()
    app.window("Assemble Backend Logs")
    # A new container, a new log: the viewer reads it from its start (buildkitd's own first lines).
    app.wait(lambda: "running server on" in app.text("#lines"), 60, "the viewer never followed the started backend")
    assert "not connected" not in app.text("#status"), app.text("#status")


def test_an_ansi_coloured_line_shows_in_colour_and_its_codes_do_not(app):
    open_following(app)
    # Red "ERROR", then bold, then reset: as BuildKit and many tools colour their lines.
    docker("exec", app.backend, "sh", "-c", r"printf '\033[31mERROR\033[0m plain \033[1mbold\033[0m end\n' > /proc/1/fd/1")
    red = app.wait(lambda: (app.driver.find_elements(By.CSS_SELECTOR, "#lines span.fg-31") or [None])[-1], 20,
                   "the coloured line never showed")
    assert red.text == "ERROR"
    colour = app.driver.execute_script("return getComputedStyle(arguments[0]).color", red)
    plain = app.driver.execute_script("return getComputedStyle(document.querySelector('#lines .line')).color")
    assert colour != plain, (colour, plain)
    line = app.driver.execute_script("return arguments[0].closest('.line')", red)
    assert line.text == "ERROR plain bold end", repr(line.text)
    assert "\x1b" not in line.text and "[31m" not in line.text
    bold = line.find_element(By.CSS_SELECTOR, "span.bold")
    assert bold.text == "bold"
    app.screenshot("21-logs-ansi")


def test_save_writes_the_kept_lines_and_says_where_while_lines_keep_coming(app):
    open_following(app)
    marker = f"saved-line-{time.time_ns()}"
    docker("exec", app.backend, "sh", "-c", f"echo {marker} > /proc/1/fd/1")
    app.wait(lambda: marker in app.text("#lines"), 20, "the marker line never showed")
    # Lines keep coming while the notice shows (one every 100 ms for 3 s).
    docker("exec", "-d", app.backend, "sh", "-c", "i=0; while [ $i -lt 30 ]; do echo tick-$i > /proc/1/fd/1; i=$((i+1)); sleep 0.1; done")
    app.click("#save")
    app.wait(lambda: app.text("#status").startswith("Saved to "), 10, "Save said nothing")
    path = app.text("#status")[len("Saved to "):]
    assert path.startswith(app.config) and path.endswith(".log"), path
    with open(path) as f:
        saved = f.read()
    assert f"{marker}\n" in saved and "\x1b" not in saved
    # A dozen new lines later, the notice is still there.
    app.wait(lambda: "tick-12" in app.text("#lines"), 20, "the ticking lines never reached tick-12")
    assert app.text("#status").startswith("Saved to "), app.text("#status")
