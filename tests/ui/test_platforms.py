"""The Build window's platforms: the backend's native and emulated ones as checkboxes; several
with Load refused beside them in one sentence, before anything runs; several built, and the Builds
window showing each platform's steps."""
import os
import shutil
import tempfile

from conftest import docker
from test_build import open_build_window

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Debian's static busybox for arm64 (scripts/fetch-foreign-busybox.sh; setup.sh --test-images).
FOREIGN_BUSYBOX = os.path.join(ROOT, "target", "foreign", "busybox-arm64")


def two_platform_context(app):
    """Each platform's own busybox; the arm64 step runs through the backend's emulator."""
    assert os.path.exists(FOREIGN_BUSYBOX), f"{FOREIGN_BUSYBOX} is missing: run scripts/fetch-foreign-busybox.sh"
    context = tempfile.mkdtemp(prefix="assemble-ui-platforms-")
    docker("cp", f"{app.backend}:/bin/busybox", os.path.join(context, "busybox-amd64"))
    shutil.copy(FOREIGN_BUSYBOX, os.path.join(context, "busybox-arm64"))
    with open(os.path.join(context, "Dockerfile"), "w") as dockerfile:
        dockerfile.write('FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\n'
                         'RUN ["/bin/busybox", "sh", "-c", "echo built-for-$(uname -m)"]\n')
    return context


def platform_boxes(app):
    return app.driver.execute_script(
        "return [...document.querySelectorAll('#platforms label.platform')].map((l) => ({"
        " value: l.querySelector('input').value, checked: l.querySelector('input').checked,"
        " label: l.textContent.trim(), emulated: l.classList.contains('emulated') }));")


def tick_only(app, platforms):
    for box in platform_boxes(app):
        if box["checked"] != (box["value"] in platforms):
            app.click(f'#platforms input[value="{box["value"]}"]')


def set_box(app, css, on):
    if app.find(css).is_selected() != on:
        app.click(css)


def test_the_platforms_are_checkboxes_and_a_build_for_two_shows_each_platform_s_steps(app):
    app.running()
    open_build_window(app)
    app.wait(lambda: platform_boxes(app), 30, "the Build window offers no platforms")
    boxes = {box["value"]: box for box in platform_boxes(app)}
    assert boxes["linux/amd64"]["label"] == "linux/amd64" and not boxes["linux/amd64"]["emulated"], boxes
    for emulated in ("linux/arm64", "linux/arm/v7", "linux/riscv64", "linux/ppc64le", "linux/s390x"):
        assert boxes[emulated]["label"] == f"{emulated} (emulated)" and boxes[emulated]["emulated"], boxes
    assert list(boxes)[0] == "linux/amd64", "native first"

    context = two_platform_context(app)
    app.type_into("#folder", context)
    app.type_into("#names", "")
    tick_only(app, {"linux/amd64", "linux/arm64"})
    set_box(app, "#push", False)
    set_box(app, "#load", True)
    app.click("#build")
    app.wait(lambda: "docker exporter does not currently support exporting manifest lists" in app.text("#platforms-error"),
             20, f"{app.text('#platforms-error')!r} {app.text('#error')!r}")
    assert "choose Push instead" in app.text("#platforms-error"), app.text("#platforms-error")
    assert not app.find("#progress-card").is_displayed(), "refused before anything ran"
    app.x_screenshot("28-build-window-platforms-load-refused")

    set_box(app, "#load", False)
    app.click("#build")
    app.wait(lambda: app.find("#result-card").is_displayed(), 240,
             f"no result: {app.text('#error')!r} {app.text('#progress')[-400:]!r}")
    assert app.text("#platforms-error") == ""
    assert "Platforms: linux/amd64, linux/arm64 (emulated)" in app.text("#result"), app.text("#result")
    progress = app.text("#progress")
    assert "built-for-x86_64" in progress and "built-for-aarch64" in progress, progress
    app.screenshot("29-build-window-two-platforms")

    app.window("Assemble Backend Builds")
    title = lambda: app.driver.execute_script("return document.getElementById('detail-title').textContent;")
    app.wait(lambda: app.find("#detail").is_displayed() and "Completed" in title(), 30, f"not followed: {title()!r}")
    groups = app.driver.execute_script(
        "return [...document.querySelectorAll('#steps h3.platform-group')].map((h) => h.textContent);")
    assert any(g.startswith("linux/amd64 · ") for g in groups), groups
    assert any(g.startswith("linux/arm64 · ") for g in groups), groups
    assert any(g.startswith("Every platform · ") for g in groups), groups
    app.screenshot("30-builds-window-steps-by-platform")
