"""Local images in the app: the panel says whether builds take the images the engine has, the
settings turn it off and on (applied at the next start, and said so), and a build from the Build
window takes a base image that only the engine has."""
import os
import tempfile
import uuid

from conftest import container_names, docker
from test_build import build_to_cache


def mirror_containers(app):
    return [n for n in container_names(app.backend) if n.startswith(f"{app.backend}-mirror")]


def set_local_images(app, used):
    app.window("Assemble Backend")
    app.click("#open-settings")
    app.window("Assemble Backend Settings")
    if app.find("#local-images").is_selected() != used:
        app.click("#local-images")
    app.click("#save")
    app.wait(lambda: app.text("#saved") == "Saved.", 10,
             f"not saved: {app.text('#local_image_registries-error')!r}")
    assert app.saved_settings().get("local_images", True) is used, app.saved_settings()


def restart(app):
    app.stopped()
    app.running()


def test_the_panel_says_local_images_are_used_and_the_settings_turn_them_off(app):
    app.running()
    app.wait(lambda: app.text("#local-images").startswith("used: a FROM of an image the engine has"), 30,
             f"the panel does not say local images are used: {app.text('#local-images')!r}")
    assert mirror_containers(app) == [f"{app.backend}-mirror", f"{app.backend}-mirror-store"], container_names(app.backend)
    app.screenshot("40-panel-local-images-used")
    try:
        set_local_images(app, False)
        app.screenshot("41-settings-local-images-off")
        restart(app)
        app.wait(lambda: app.text("#local-images").startswith("off"), 30,
                 f"the panel does not say local images are off: {app.text('#local-images')!r}")
        assert "every base image comes from its registry" in app.text("#local-images"), app.text("#local-images")
        assert mirror_containers(app) == [], container_names(app.backend)
        app.screenshot("42-panel-local-images-off")
    finally:
        set_local_images(app, True)
        restart(app)
    app.wait(lambda: app.text("#local-images").startswith("used"), 30, app.text("#local-images"))
    assert mirror_containers(app) == [f"{app.backend}-mirror", f"{app.backend}-mirror-store"], container_names(app.backend)


def test_a_build_from_the_build_window_takes_a_base_only_the_engine_has(app):
    app.running()
    app.wait(lambda: app.text("#local-images").startswith("used"), 30, app.text("#local-images"))
    marker = f"engine-base-{uuid.uuid4().hex[:12]}"
    base = f"ui-local-base-{app.user}:1"
    base_dir = tempfile.mkdtemp(prefix="assemble-ui-localbase-")
    docker("cp", f"{app.backend}:/bin/busybox", base_dir)
    with open(os.path.join(base_dir, "Dockerfile"), "w") as dockerfile:
        dockerfile.write(f'FROM scratch\nCOPY busybox /bin/busybox\n'
                         f'RUN ["/bin/busybox", "sh", "-c", "echo {marker} > /base.txt"]\n')
    try:
        loaded = app.cli("build", "--load", "-t", base, base_dir)
        assert loaded.returncode == 0, loaded.stderr
        app_dir = tempfile.mkdtemp(prefix="assemble-ui-localapp-")
        with open(os.path.join(app_dir, "Dockerfile"), "w") as dockerfile:
            dockerfile.write(f'FROM {base}\nRUN ["/bin/busybox", "sh", "-c", "echo base says $(cat /base.txt)"]\n')
        build_to_cache(app, app_dir)
        app.wait(lambda: app.find("#result-card").is_displayed() or app.find("#failure-card").is_displayed(), 180,
                 f"no result: {app.text('#error')!r}")
        progress = app.text("#progress")
        assert app.find("#result-card").is_displayed(), f"{app.text('#error')!r} {progress[-600:]!r}"
        assert f"base says {marker}" in progress, progress[-1200:]
        assert f"FROM docker.io/library/{base}" in progress, progress[-1200:]
        app.driver.execute_script("document.getElementById('progress').scrollIntoView({block: 'center'});")
        app.screenshot("43-build-window-local-base")
    finally:
        docker("image", "rm", "-f", base, check=False)
