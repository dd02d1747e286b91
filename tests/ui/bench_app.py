"""App benchmark of the release build (not a test): memory and idle CPU of every app process with
the windows closed and with the panel open, cold start to a working tray (and to the panel), the
log viewer loading 1,000,000 lines, and the time from a build's end until the Builds window shows
it. Run it with scripts/bench-app.sh, which builds the release
binaries and runs this under Xvfb and a private D-Bus session (our tray watcher, sni.py).

Figures are printed as a table and written to target/bench-app.json. Nothing here is asserted."""
import argparse
from datetime import datetime, timezone
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import (App, BUILDX, ROOT, SCREENSHOTS, TEST_IMAGE, connect, container_names, docker,  # noqa: E402
                      start_tauri_driver)
from sni import Tray  # noqa: E402

APP = os.path.join(ROOT, "target", "release", "assemble-backend")
CLI = os.path.join(ROOT, "target", "release", "assemble")
RESULTS = os.path.join(ROOT, "target", "bench-app.json")
PANEL_TITLE = "Assemble Backend"
LOGS_TITLE = "Assemble Backend Logs"
BUILDS_TITLE = "Assemble Backend Builds"
TICK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[bench-app {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- /proc: the app's process tree, its memory and CPU time ----

def stat(pid):
    """ppid, CPU ticks (own and reaped children's), start time and state of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()  # fields[0] is field 3 of proc(5)
    return {"ppid": int(fields[1]), "ticks": sum(int(x) for x in fields[11:15]),
            "start": int(fields[19]), "state": fields[0]}


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def descendants(root, include_root=True):
    """PIDs of root and every process below it (walks all of /proc once)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            s = stat(entry)
            if s:
                children.setdefault(s["ppid"], []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found if include_root else found[1:]


def memory(pid):
    """(RSS, PSS) of one process in KiB from smaps_rollup, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
            values[parts[0]] = int(parts[1])
    if "Rss:" not in values:
        return None  # a zombie
    return values["Rss:"], values.get("Pss:", 0)


def tree_memory(pids):
    """Sums of RSS and PSS in MiB over these processes, and the per-process figures."""
    rss = pss = 0
    per = []
    for pid in pids:
        m = memory(pid)
        if m:
            rss += m[0]
            pss += m[1]
            per.append({"pid": pid, "name": comm(pid), "rss_mib": m[0] / 1024, "pss_mib": m[1] / 1024})
    return rss / 1024, pss / 1024, per


def peak_rss_sum(pids):
    """Sum over these processes of each one's own peak RSS (VmHWM) in MiB: the kernel's exact
    per-process peaks, a cross-check of the sampled peak (an upper bound of the peak of the sum)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
        except OSError:
            pass
    return total / 1024


def tree_ticks(root):
    return {(pid, s["start"]): s["ticks"] for pid in descendants(root) if (s := stat(pid))}


def measure_idle(root, seconds, slices):
    """CPU (% of one core) and memory of root's tree over `seconds`, in `slices` equal parts."""
    step = seconds / slices
    cpu, rss, pss = [], [], []
    total_ticks = 0
    before, t_before = tree_ticks(root), time.monotonic()
    first, t_first = before, t_before
    for _ in range(slices):
        time.sleep(max(0.0, t_before + step - time.monotonic()))
        after, t_after = tree_ticks(root), time.monotonic()
        delta = sum(ticks - before.get(key, 0) for key, ticks in after.items())
        total_ticks += delta
        cpu.append(100.0 * delta / TICK / (t_after - t_before))
        r, p, per = tree_memory(descendants(root))
        rss.append(r)
        pss.append(p)
        before, t_before = after, t_after
    cpu_cores = {m["pid"]: m for m in per}
    for (pid, start), ticks in after.items():  # each process's share over the whole window
        if pid in cpu_cores:
            cpu_cores[pid]["cpu_pct"] = 100.0 * (ticks - first.get((pid, start), 0)) / TICK / (t_after - t_first)
    return {"cpu_pct": cpu, "cpu_pct_total": 100.0 * total_ticks / TICK / (t_after - t_first), "rss_mib": rss,
            "pss_mib": pss, "processes": per}


def describe(p):
    cpu = f"  CPU {p['cpu_pct']:5.2f}%" if "cpu_pct" in p else ""
    return f"pid {p['pid']:>7} {p['name']:<16} RSS {p['rss_mib']:7.1f} MiB  PSS {p['pss_mib']:7.1f} MiB{cpu}"


class PeakSampler(threading.Thread):
    """Samples the summed RSS and PSS of root's tree every `interval` seconds; keeps the peaks."""

    def __init__(self, root, interval=0.1):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_rss = self.peak_pss = 0.0
        self.peak_processes = []
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        pids, walked = descendants(self.root), time.monotonic()
        while not self._halt.is_set():
            if time.monotonic() - walked > 1.0:  # the tree rarely changes: walk /proc once a second
                pids, walked = descendants(self.root), time.monotonic()
            rss, pss, per = tree_memory(pids)
            self.samples += 1
            if rss > self.peak_rss:
                self.peak_rss, self.peak_processes = rss, per
            self.peak_pss = max(self.peak_pss, pss)
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()


def identities(pids):
    """{pid: start time}: a PID with its start time names one process even after the PID is reused."""
    return {pid: s["start"] for pid in pids if (s := stat(pid))}


def end_tree(pids, proc=None, timeout=10):
    """Ends these processes (SIGTERM, SIGKILL after `timeout`) and waits for them to be gone.
    Only PIDs this script started or that descend from one; they are identified with their start
    times (pass identities() taken earlier) so a reused PID is never signalled. Returns True when
    SIGKILL was needed."""
    alive = dict(pids) if isinstance(pids, dict) else identities(pids)

    def still(pid):
        s = stat(pid)
        return s is not None and s["start"] == alive[pid] and s["state"] != "Z"

    def signal_all(sig):
        for pid in alive:
            if still(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    signal_all(signal.SIGTERM)
    killed = False
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.poll()  # reaps our own child
        if not any(still(pid) for pid in alive):
            break
        if time.monotonic() > deadline:
            if killed:
                break
            signal_all(signal.SIGKILL)
            killed, deadline = True, time.monotonic() + timeout
        time.sleep(0.02)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    return killed


# ---- the app launched directly (no WebDriver) ----

class DirectApp:
    """The release binary spawned by us under the Xvfb display and the private D-Bus session."""

    def __init__(self, env, tray, hidden, log_path):
        tray.items.clear()  # only this launch's registration counts
        self.tray = tray
        self.log = open(log_path, "a")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([APP] + (["--hidden"] if hidden else []), env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def _alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"the app exited with {self.proc.returncode}; see {self.log.name}")

    def wait_tray(self, timeout=60):
        """Seconds from spawn until the tray item is registered and its menu answers GetLayout."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self._alive()
            if self.tray.items:
                try:
                    if any(item["label"] == "Quit" for item in self.tray.menu()):
                        return time.perf_counter() - self.started
                except Exception:  # registered but the menu is not exported yet
                    pass
            time.sleep(0.005)
        raise RuntimeError("the tray item never came up")

    def wait_panel(self, timeout=60):
        """Seconds from spawn until the panel's X window is mapped (viewable)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self._alive()
            if panel_window_viewable():
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise RuntimeError("the panel window never showed")

    def stop(self):
        killed = end_tree(descendants(self.pid), self.proc)
        self.log.close()
        return killed


def panel_window_viewable():
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    for line in tree.splitlines():
        if f'"{PANEL_TITLE}":' in line:
            info = subprocess.run(["xwininfo", "-id", line.split()[0]], capture_output=True, text=True).stdout
            if "Map State: IsViewable" in info:
                return True
    return False


def footprint(env, tray, hidden, idle, settle, log_path):
    case = "hidden" if hidden else "panel"
    app = DirectApp(env, tray, hidden, log_path)
    try:
        up = app.wait_tray()
        if not hidden:
            up = max(up, app.wait_panel())
        log(f"footprint ({case}): up after {up:.2f}s; settling {settle}s, then measuring {idle}s")
        time.sleep(settle)
        result = measure_idle(app.pid, idle, max(1, int(idle // 10)))
    finally:
        app.stop()
    for p in sorted(result["processes"], key=lambda p: -p["rss_mib"]):
        log(f"  {case}: {describe(p)}")
    log(f"  {case}: CPU {result['cpu_pct_total']:.2f}% of a core over {idle}s "
        f"(10 s slices: {', '.join(f'{c:.2f}' for c in result['cpu_pct'])})")
    return result


def cold_starts(env, tray, runs, log_path, with_panel=True):
    """Alternates launches with --hidden (until the tray works) and without (until the panel is
    mapped); one discarded warm-up of each first."""
    tray_times, panel_times, sigkills = [], [], 0
    for i in range(runs + 1):
        modes = [True, False] if with_panel else [True]
        for hidden in modes:
            app = DirectApp(env, tray, hidden, log_path)
            try:
                seconds = app.wait_tray() if hidden else app.wait_panel()
            finally:
                sigkills += app.stop()
            if i == 0:
                log(f"cold start warm-up ({'tray' if hidden else 'panel'}): {seconds:.3f}s (discarded)")
                continue
            (tray_times if hidden else panel_times).append(seconds)
            log(f"cold start {i}/{runs} to {'tray' if hidden else 'panel'}: {seconds:.3f}s")
    if sigkills:
        log(f"note: {sigkills} app stop(s) needed SIGKILL after SIGTERM")
    return tray_times, panel_times


# ---- the log viewer, through tauri-driver ----

def app_pid_under(root, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in descendants(root, include_root=False):
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(APP):
                    return pid
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError("tauri-driver never launched the app")


LAST_LINE_JS = """
const rows = document.querySelectorAll('#lines .line');
return [rows.length, rows.length ? rows[rows.length - 1].textContent : '',
        document.getElementById('status').textContent];
"""


# Click to count: the query typed, Enter pressed, until the count shows; in the page's own clock.
SEARCH_JS = """
const done = arguments[arguments.length - 1];
const query = arguments[0];
const box = document.getElementById('search');
const shown = () => document.getElementById('matches').textContent;
box.value = query;
const began = performance.now();
box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
const poll = () => {
  const text = shown();
  if (query === '' ? text === '' : /^(\\d+ of \\d+|no matches)$/.test(text)) done([performance.now() - began, text]);
  else requestAnimationFrame(poll);
};
requestAnimationFrame(poll);
"""

# A jump: the scroll set to a fraction of the way down, until the rows for it are painted.
JUMP_JS = """
const done = arguments[arguments.length - 1];
const fraction = arguments[0];
const view = document.getElementById('viewport');
const began = performance.now();
view.scrollTop = fraction * (view.scrollHeight - view.clientHeight);
const wanted = first + Math.max(0, Math.min(firstIndexAt(view), total() - 1));
const poll = () => {
  const row = document.querySelector('#lines .line');
  if (row && Number(row.dataset.line) === wanted) {
    requestAnimationFrame(() => done([performance.now() - began, wanted, row.textContent]));
  } else requestAnimationFrame(poll);
};
requestAnimationFrame(poll);
"""


def viewport_colours(driver, png):
    """How many colours the log viewport has in the screenshot (1: nothing painted), or None."""
    x, y, w, h = driver.execute_script(
        "const r = document.getElementById('viewport').getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height].map((v) => Math.floor(v * devicePixelRatio));")
    result = subprocess.run(["convert", png, "-crop", f"{w - 20}x{h}+{x}+{y}", "+repage", "-format", "%k", "info:"],
                            capture_output=True, text=True)  # the scrollbar's 20 px left out
    return int(result.stdout) if result.returncode == 0 and result.stdout.strip().isdigit() else None


def end_session(driver, tauri_driver, driver_log):
    """Ends a WebDriver session and every process under its tauri-driver (WebKitWebDriver, the app,
    WebKit's)."""
    everything = identities(descendants(tauri_driver.pid))
    if driver is not None:
        try:
            driver.quit()
        except Exception:
            pass
    end_tree(everything, tauri_driver)
    driver_log.close()


def log_viewer_run(env, tray, user, last, config, screenshot=False, timeout=900, interact=True):
    """Opens the log viewer from the panel, times it until line `last` shows, and measures memory and
    CPU; with `interact`, also a search and jumps."""
    driver_log = open(os.path.join(config, "tauri-driver.log"), "a")
    tauri_driver, port = start_tauri_driver(env, driver_log)
    driver = sampler = None
    app_pid = None
    try:
        driver = connect(port, APP)
        app_pid = app_pid_under(tauri_driver.pid)
        app = App(driver, user, tray, env.get("DOCKER_CONFIG"), env.get("HOME"), config)
        app.window(PANEL_TITLE)
        app.wait(lambda: app.text("#state").startswith("Running"), 60, "the panel never showed Running")
        time.sleep(3)
        before_rss, before_pss, _ = tree_memory(descendants(app_pid))
        sampler = PeakSampler(app_pid)
        sampler.start()
        ticks_before = tree_ticks(app_pid)
        clicked = time.perf_counter()
        app.find("#open-logs").click()
        app.window(LOGS_TITLE, timeout=120)
        window_s = time.perf_counter() - clicked
        first_s = None
        polls = 0
        while True:
            count, text, status = driver.execute_script(LAST_LINE_JS)
            polls += 1
            now = time.perf_counter() - clicked
            if count and first_s is None:
                first_s = now
            if text.endswith(last):
                last_s = now
                break
            if now > timeout:
                raise RuntimeError(f"the viewer did not show line {last} in {timeout}s: last {text!r}, {status!r}")
            time.sleep(0.05)
        ticks_after = tree_ticks(app_pid)
        hwm = peak_rss_sum(descendants(app_pid))
        sampler.stop()
        log(f"logs: window after {window_s:.2f}s, first line {first_s:.2f}s, line {last} after {last_s:.2f}s "
            f"({polls} polls); status {status!r}; peak RSS {sampler.peak_rss:.0f} MiB, PSS {sampler.peak_pss:.0f} MiB "
            f"({sampler.samples} samples, one per {1000 * last_s / max(1, sampler.samples):.0f} ms); "
            f"sum of per-process VmHWM {hwm:.0f} MiB")
        load_cpu = {}  # CPU seconds of each process from the click to the last line
        for (pid, start), ticks in ticks_after.items():
            load_cpu[f"{pid} {comm(pid)}"] = (ticks - ticks_before.get((pid, start), 0)) / TICK
        log("  CPU seconds during the load: " + ", ".join(f"{k} {v:.1f}" for k, v in load_cpu.items())
            + f" (wall {last_s:.1f}s)")
        for p in sorted(sampler.peak_processes, key=lambda p: -p["rss_mib"]):
            log(f"  at peak: {describe(p)}")
        time.sleep(5)
        steady = measure_idle(app_pid, 10, 1)
        log(f"logs steady (5 s after, 10 s): RSS {steady['rss_mib'][0]:.0f} MiB, PSS {steady['pss_mib'][0]:.0f} MiB, "
            f"CPU {steady['cpu_pct_total']:.2f}% of a core")
        for p in sorted(steady["processes"], key=lambda p: -p["rss_mib"]):
            log(f"  steady: {describe(p)}")
        # WebKit's allocator and collector go on settling for some seconds after a load: the next
        # ten seconds show where the idle ends up.
        later = measure_idle(app_pid, 10, 1)
        log(f"logs steady (15 s after, 10 s): PSS {later['pss_mib'][0]:.0f} MiB, CPU {later['cpu_pct_total']:.2f}% of a core")
        for p in sorted(later["processes"], key=lambda p: -p["rss_mib"]):
            log(f"  later: {describe(p)}")
        _, _, status = driver.execute_script(LAST_LINE_JS)
        measured = {"window_s": window_s, "first_line_s": first_s, "last_line_s": last_s, "status": status,
                    "load_cpu_s": load_cpu,
                    "before_rss_mib": before_rss, "before_pss_mib": before_pss,
                    "peak_rss_mib": sampler.peak_rss, "peak_pss_mib": sampler.peak_pss, "vmhwm_sum_mib": hwm,
                    "sample_interval_ms": 1000 * last_s / max(1, sampler.samples),
                    "peak_processes": sampler.peak_processes,
                    "steady_rss_mib": steady["rss_mib"][0], "steady_pss_mib": steady["pss_mib"][0],
                    "steady_cpu_pct": steady["cpu_pct_total"], "steady_processes": steady["processes"],
                    "later_cpu_pct": later["cpu_pct_total"], "later_processes": later["processes"]}
        if not interact:
            return measured
        driver.set_script_timeout(60)
        search_ms, search_text = driver.execute_async_script(SEARCH_JS, "12345")
        driver.execute_async_script(SEARCH_JS, "")
        log(f"search '12345': {search_text} after {search_ms:.0f} ms")
        jumps = {}
        for fraction in (0.1, 0.5, 0.9, 0.0, 0.5):
            ms, line, text = driver.execute_async_script(JUMP_JS, fraction)
            jumps.setdefault(fraction, []).append(ms)
            log(f"jump to {fraction:.0%}: line {line} ({text!r}) painted after {ms:.1f} ms")
            if screenshot and fraction in (0.0, 0.5) and len(jumps[fraction]) == 1:
                app.screenshot(f"bench-logs-1M-{'start' if fraction == 0 else 'middle'}")
        driver.execute_async_script(JUMP_JS, 1.0)
        shot = colours = None
        if screenshot:
            shot = app.screenshot("bench-logs-1M")
            colours = viewport_colours(driver, shot)
            if colours == 1:
                log(f"WARNING: the rows are in the DOM but the viewport of the screenshot is one flat colour: "
                    f"nothing painted ({shot})")
        return {**measured, "screenshot": shot, "viewport_colours": colours,
                "search_ms": search_ms, "search_text": search_text,
                "jump_ms": [ms for values in jumps.values() for ms in values]}
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        end_session(driver, tauri_driver, driver_log)


# ---- the Builds window ----

# Notes, in the page, when each build's row first shows as finished (Date.now(), the machine's
# clock, as BuildKit's completed_at and Python's time.time() are).
WATCH_ROWS_JS = """
window.__shown = window.__shown || {};
const note = () => document.querySelectorAll('#builds tr.build').forEach((row) => {
  const status = row.cells[0].textContent;
  if (status !== 'Running' && !(row.dataset.ref in window.__shown)) window.__shown[row.dataset.ref] = Date.now();
});
note();
new MutationObserver(note).observe(document.querySelector('#builds'), { childList: true, subtree: true });
"""


def rfc3339_seconds(text):
    """Seconds since the epoch of BuildKit's RFC 3339 time (nanoseconds cut to microseconds)."""
    stamp, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return whole.timestamp() + (float("0." + fraction) if fraction else 0.0)


def builds_window_run(env, tray, user, config, backend, runs):
    """`runs` uncached buildx builds; for each, when the Builds window showed it finished, against
    BuildKit's record of its end and against buildx's return, and beside it how long
    `docker buildx history ls` (the alternative a buildx user has) takes to list it at that moment."""
    context = os.path.join(config, "build-context")
    os.makedirs(context, exist_ok=True)
    docker("cp", f"{backend}:/bin/busybox", context)
    driver_log = open(os.path.join(config, "tauri-driver.log"), "a")
    tauri_driver, port = start_tauri_driver(env, driver_log)
    driver = None
    results = []
    try:
        driver = connect(port, APP)
        app = App(driver, user, tray, env["DOCKER_CONFIG"], env.get("HOME"), config)
        app.window(PANEL_TITLE)
        app.wait(lambda: app.text("#state").startswith("Running"), 60, "the panel never showed Running")
        app.find("#open-builds").click()
        app.window(BUILDS_TITLE, timeout=60)
        app.wait(lambda: app.text("#count") != "", 30, "the Builds window never listed anything")
        driver.execute_script(WATCH_ROWS_JS)
        for i in range(runs):
            with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
                dockerfile.write('FROM scratch AS tools\nCOPY busybox /bin/busybox\n'
                                 f'RUN ["/bin/busybox", "sh", "-c", "echo bench {time.time_ns()} > /out"]\n'
                                 'FROM scratch\nCOPY --from=tools /out /out\n')
            known = set(driver.execute_script("return Object.keys(window.__shown);"))
            build = subprocess.run(["docker", "buildx", "build", "--builder", "assemble", "--progress", "plain", context],
                                   env=env, capture_output=True, text=True, timeout=300)
            returned = time.time()
            if build.returncode != 0:
                raise RuntimeError(f"buildx build failed: {build.stderr[-2000:]}")
            began = time.perf_counter()
            history = subprocess.run(["docker", "buildx", "history", "ls", "--builder", "assemble"],
                                     env=env, capture_output=True, text=True, timeout=120)
            history_s = time.perf_counter() - began
            deadline = time.time() + 30
            while True:
                shown = driver.execute_script("return window.__shown;")
                new = [ref for ref in shown if ref not in known]
                if new:
                    break
                if time.time() > deadline:
                    raise RuntimeError("the Builds window did not show the build within 30 s")
                time.sleep(0.02)
            ref = new[0]
            listed = [json.loads(line) for line in cli(env, "backend", "builds", "--format", "json").splitlines()]
            record = next(b for b in listed if b["ref"] == ref)
            ended = rfc3339_seconds(record["completed_at"])
            shown_at = shown[ref] / 1000
            results.append({"ref": ref, "after_record_end_s": shown_at - ended, "after_buildx_returned_s": shown_at - returned,
                            "buildx_history_ls_s": history_s, "history_ls_lists_it": ref in history.stdout})
            log(f"build {i + 1}/{runs} {ref}: shown {shown_at - ended:+.3f}s after BuildKit recorded its end, "
                f"{shown_at - returned:+.3f}s after buildx returned; docker buildx history ls took {history_s:.3f}s")
        return results
    finally:
        end_session(driver, tauri_driver, driver_log)


# ---- the backend ----

def cli(env, *args, timeout=300):
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"assemble {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def count_bytes(command):
    """Bytes a command writes to stdout and stderr together (docker logs splits its streams)."""
    result = subprocess.run(["sh", "-c", f"{command} 2>&1 | wc -c"], capture_output=True, text=True, timeout=600)
    return int(result.stdout.strip())


def fill_logs(backend, lines):
    log(f"writing {lines:,} lines to buildkitd's stdout")
    docker("exec", backend, "sh", "-c", f"seq 1 {lines} > /proc/1/fd/1")
    deadline = time.time() + 300
    while str(lines) not in docker("logs", "--tail", "50", backend).stdout.split():
        if time.time() > deadline:
            raise RuntimeError("docker logs never showed the last line")
        time.sleep(0.5)
    plain = count_bytes(f"docker logs {backend}")
    stamped = count_bytes(f"docker logs -t {backend}")
    line_count = int(subprocess.run(["sh", "-c", f"docker logs {backend} 2>&1 | wc -l"], capture_output=True,
                                    text=True, timeout=600).stdout.strip())
    path = docker("inspect", "-f", "{{.LogPath}}", backend).stdout.strip()
    on_disk = os.path.getsize(path) if path and os.path.exists(path) else None
    log(f"docker logs: {line_count:,} lines, {plain / 2**20:.1f} MiB plain, {stamped / 2**20:.1f} MiB with -t "
        f"(the app asks for timestamps), json-file on disk {on_disk / 2**20 if on_disk else float('nan'):.1f} MiB")
    return {"lines": line_count, "bytes": plain, "bytes_timestamps": stamped, "json_file_bytes": on_disk}


def time_docker_logs(backend):
    """Seconds for `docker logs -t` to read the whole log to /dev/null: what the engine and its
    client take for the stream the app reads (the baseline for the viewer's load time)."""
    started = time.perf_counter()
    subprocess.run(["docker", "logs", "-t", backend], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=600)
    return time.perf_counter() - started


# ---- figures ----

def figure(name, values, unit, note=""):
    values = [v for v in values if v is not None]
    return {"name": name, "median": statistics.median(values) if values else None,
            "min": min(values) if values else None, "max": max(values) if values else None,
            "n": len(values), "unit": unit, "values": values, "note": note}


def print_table(figures):
    def fmt(v, unit):
        if v is None:
            return "-"
        return f"{v:.3f}" if unit == "s" else f"{v:.2f}" if unit == "%" else f"{v:.1f}"
    width = max(len(f["name"]) for f in figures)
    print()
    print(f"{'figure':<{width}}  {'median':>9}  {'spread (min–max)':>19}  {'unit':<5} n")
    print("-" * (width + 44))
    for f in figures:
        spread = "-" if f["n"] < 2 else f"{fmt(f['min'], f['unit'])}–{fmt(f['max'], f['unit'])}"
        print(f"{f['name']:<{width}}  {fmt(f['median'], f['unit']):>9}  {spread:>19}  {f['unit']:<5} {f['n']}")
    print()


def interrupted(*_):
    raise KeyboardInterrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=60, help="seconds of idle measurement per footprint case")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts per kind (after one warm-up)")
    parser.add_argument("--log-runs", type=int, default=3, help="log viewer runs, a fresh app each")
    parser.add_argument("--lines", type=int, default=1000000, help="lines written to the backend's log")
    parser.add_argument("--build-runs", type=int, default=10, help="builds timed into the Builds window")
    parser.add_argument("--parts", default="footprint,logs,builds",
                        help="which parts to run, of footprint, logs and builds (comma-separated)")
    parser.add_argument("--user", default="benchapp", help="ASSEMBLE_BACKEND_USER of the bench backend")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= {"footprint", "logs", "builds"}:
        sys.exit(f"--parts: {args.parts!r}; choose among footprint, logs and builds")
    for path in (APP, CLI):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run scripts/bench-app.sh (it builds the release binaries)")
    if not os.environ.get("DISPLAY") or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        sys.exit("run under Xvfb and a private D-Bus session: scripts/bench-app.sh")
    signal.signal(signal.SIGTERM, interrupted)  # so that the backend is stopped on the way out

    config = tempfile.mkdtemp(prefix="assemble-bench-app-")
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    # A docker config folder of its own, with the tests' buildx: the builder is registered there.
    docker_config = os.path.join(config, "docker")
    os.makedirs(os.path.join(docker_config, "cli-plugins"))
    if os.path.exists(BUILDX):
        os.symlink(BUILDX, os.path.join(docker_config, "cli-plugins", "docker-buildx"))
    elif "builds" in parts:
        sys.exit(f"{BUILDX} is missing: run scripts/fetch-buildx.sh")
    env.update(ASSEMBLE_BACKEND_USER=args.user, ASSEMBLE_BACKEND_IMAGE=TEST_IMAGE, ASSEMBLE_CONFIG_DIR=config,
               XDG_DOWNLOAD_DIR=config, DOCKER_CONFIG=docker_config)
    os.environ.pop("DOCKER_HOST", None)  # conftest's docker() calls use the local socket too
    backend = f"docker-assemble-backend-{args.user}"
    app_log = os.path.join(config, "app.log")
    tray = Tray()
    figures, details = [], {}
    try:
        cli(env, "backend", "stop")  # a leftover of an interrupted run of ours
        log(f"starting the backend {backend} ({TEST_IMAGE})")
        log(cli(env, "backend", "start", "--image", TEST_IMAGE, "--allow-host-port", "0"))

        # 1. Footprint and cold start.
        for hidden, label in ((True, "windows closed (--hidden)"), (False, "panel open")) if "footprint" in parts else ():
            r = footprint(env, tray, hidden, args.idle, 5 if hidden else 10, app_log)
            details["footprint_hidden" if hidden else "footprint_panel"] = r
            key = "tray only" if hidden else "panel open"
            figures.append(figure(f"{key}: RSS sum, all processes", r["rss_mib"], "MiB"))
            figures.append(figure(f"{key}: PSS sum, all processes", r["pss_mib"], "MiB"))
            figures.append(figure(f"{key}: idle CPU, {args.idle} s", r["cpu_pct"], "%",
                                  f"mean over {args.idle} s {r['cpu_pct_total']:.3f}%; spread over 10 s slices"))
            details[f"{key}: processes"] = len(r["processes"])
        if "footprint" in parts:
            tray_times, panel_times = cold_starts(env, tray, args.cold_runs, app_log)
            figures.append(figure("cold start to working tray (--hidden)", tray_times, "s"))
            figures.append(figure("cold start to panel window mapped", panel_times, "s"))
            details["cold_start"] = {"tray_s": tray_times, "panel_s": panel_times}

        # 2. The Builds window: a build's end until it shows.
        if "builds" in parts:
            runs = builds_window_run(env, tray, args.user, config, backend, args.build_runs)
            details["builds_window"] = runs
            figures.append(figure("build shown in the Builds window, after BuildKit recorded its end",
                                  [r["after_record_end_s"] for r in runs], "s"))
            figures.append(figure("build shown in the Builds window, after buildx returned",
                                  [r["after_buildx_returned_s"] for r in runs], "s", "negative: before"))
            figures.append(figure("alternative: docker buildx history ls, run then",
                                  [r["buildx_history_ls_s"] for r in runs], "s",
                                  f"listed the build {sum(r['history_ls_lists_it'] for r in runs)}/{len(runs)} times"))

        # 3. The log viewer with a million lines.
        if "logs" in parts:
            # The same window on a short log first: what opening the viewer costs without the lines.
            marker = "assemble-bench-short-log"
            docker("exec", backend, "sh", "-c", f"echo {marker} > /proc/1/fd/1")
            log("log viewer on the short log (a dozen lines)")
            short = log_viewer_run(env, tray, args.user, marker, config, interact=False)
            details["log_viewer_short_log"] = short
            # Its page goes on loading after the first rows show: the later of the peak and the
            # steady reading counts.
            short_growth = max(short["peak_pss_mib"], short["steady_pss_mib"]) - short["before_pss_mib"]
            raw = fill_logs(backend, args.lines)
            details["raw_logs"] = raw
            runs, baseline = [], []
            for i in range(args.log_runs):  # alternates the baseline and the viewer
                baseline.append(time_docker_logs(backend))
                log(f"docker logs -t > /dev/null: {baseline[-1]:.2f}s")
                log(f"log viewer run {i + 1}/{args.log_runs}")
                runs.append(log_viewer_run(env, tray, args.user, str(args.lines), config,
                                           screenshot=(i == args.log_runs - 1)))
            details["log_viewer"] = runs
            details["docker_logs_t_s"] = baseline
            figures.append(figure(f"logs {args.lines:,}: click to last line shown", [r["last_line_s"] for r in runs], "s"))
            figures.append(figure("baseline: docker logs -t > /dev/null", baseline, "s"))
            figures.append(figure(f"logs {args.lines:,}: click to first line shown", [r["first_line_s"] for r in runs], "s"))
            figures.append(figure("logs: panel before click, RSS sum", [r["before_rss_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: peak RSS sum (sampled)", [r["peak_rss_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: peak PSS sum (sampled)", [r["peak_pss_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: sum of per-process VmHWM", [r["vmhwm_sum_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: steady RSS sum (viewer done)", [r["steady_rss_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: steady PSS sum (viewer done)", [r["steady_pss_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: idle CPU, 5-15 s after the load", [r["steady_cpu_pct"] for r in runs], "%"))
            figures.append(figure("logs: idle CPU, 15-25 s after the load", [r["later_cpu_pct"] for r in runs], "%"))
            figures.append(figure("logs: search '12345', Enter to count shown", [r["search_ms"] for r in runs], "ms"))
            figures.append(figure("logs: jump to a position, until its rows are painted",
                                  [ms for r in runs for ms in r["jump_ms"]], "ms"))
            figures.append(figure("logs: PSS growth for the log (peak PSS - panel before click)",
                                  [r["peak_pss_mib"] - r["before_pss_mib"] for r in runs], "MiB"))
            figures.append(figure("logs: PSS growth of the viewer on a short log (max(peak, steady) - before click)",
                                  [short_growth], "MiB"))
            figures.append(figure(f"logs: PSS growth for the {args.lines:,} lines (growth - short log's growth)",
                                  [max(r["peak_pss_mib"], r["steady_pss_mib"]) - r["before_pss_mib"] - short_growth
                                   for r in runs], "MiB"))
            figures.append(figure("raw docker logs (plain)", [raw["bytes"] / 2**20], "MiB"))
            figures.append(figure("raw docker logs -t (what the app reads)", [raw["bytes_timestamps"] / 2**20], "MiB"))
    finally:
        try:
            log(f"stopping the backend {backend}")
            cli(env, "backend", "stop")
        except Exception as err:  # report, then fall back to removing our own containers
            log(f"backend stop failed: {err}")
            for name in container_names(backend):
                docker("rm", "-f", "-v", name, check=False)
        try:
            with open(app_log) as f:
                output = f.read().strip()
            if output:
                log("the app's own output (direct launches), last lines:\n" + "\n".join(output.splitlines()[-15:]))
        except OSError:
            pass
        subprocess.run(["rm", "-rf", config])

    print_table(figures)
    print("spread: min–max over the runs; for idle CPU and memory, over the 10 s slices of the window.")
    print("peaks sampled every 100 ms at most (reading smaps_rollup of a busy process takes longer; see the log).")
    print("app processes measured: the spawned PID and all its descendants (WebKit children included).")
    machine = {"cores": os.cpu_count(), "kernel": platform.release(),
               "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine, "image": TEST_IMAGE,
                   "figures": figures, "details": details}, f, indent=2)
    print(f"figures: {RESULTS}; screenshot: {os.path.join(SCREENSHOTS, 'bench-logs-1M.png')}")


if __name__ == "__main__":
    main()
