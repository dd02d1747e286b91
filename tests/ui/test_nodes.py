"""Nodes in the app: the panel's Nodes section lists the backend on each engine of the builder,
"Add node…" offers docker's contexts and starts the backend on the one chosen, the tray counts the
nodes up, Stop acts on every node, and Remove takes the node away with nothing of ours left."""
import json
import re
import subprocess

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import TEST_IMAGE, docker
from test_build import Registry, open_build_window
from test_platforms import platform_boxes, set_box, tick_only, two_platform_context


def node_rows(app):
    return {row.get_attribute("data-node"): row.text for row in app.driver.find_elements(By.CSS_SELECTOR, "#nodes tr.node")}


def ours_on(engine, backend):
    out = subprocess.run(["docker", "-H", engine, "ps", "-a", "--filter", f"name={backend}", "--format", "{{.Names}}"],
                         check=True, capture_output=True, text=True, timeout=60).stdout.split()
    return sorted(n for n in out if n == backend or n.startswith(backend + "-"))


def load_image_into(engine, image):
    """The backend image in the second engine, as a user's other machine would have it."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    loaded = subprocess.run(["docker", "-H", engine, "load"], stdin=save.stdout, capture_output=True, text=True,
                            timeout=300)
    save.stdout.close()
    assert save.wait(300) == 0 and loaded.returncode == 0, loaded.stderr


def test_a_node_added_from_the_panel_joins_the_builder_and_is_removed_with_nothing_left(app, second_engine):
    app.running()
    load_image_into(second_engine, TEST_IMAGE)
    app.docker_context("create", "other-box", "--docker", f"host={second_engine}")
    registry = Registry()
    try:
        app.window("Assemble Backend")
        app.wait(lambda: "default" in node_rows(app), 30, f"the local node is not listed: {node_rows(app)}")
        assert "running" in node_rows(app)["default"], node_rows(app)
        assert app.text("#nodes-line") == "· 1 of 1 up", app.text("#nodes-line")
        app.wait(lambda: app.tray.item("Nodes:")["label"] == "Nodes: 1 of 1 up", 10, app.tray.menu())

        # A bad platform is said beside the form, and nothing is started.
        app.click("#add-node")
        app.wait(lambda: app.find("#add-node-form").is_displayed(), 10, "the form did not open")
        options = [o.get_attribute("value") for o in app.driver.find_elements(By.CSS_SELECTOR, "#node-context option")]
        # Docker's contexts that are not a node yet (other tests may have left theirs), never this engine's.
        assert "other-box" in options and "default" not in options, f"the contexts offered: {options}"
        Select(app.find("#node-context")).select_by_value("other-box")
        app.type_into("#node-platforms", "linux/")
        app.click("#add-node-ok")
        app.wait(lambda: app.text("#node-error") != "", 10, "no sentence for a bad platform")
        assert "linux/" in app.text("#node-error"), app.text("#node-error")
        assert ours_on(second_engine, app.backend) == []

        app.type_into("#node-platforms", "linux/arm64")
        app.click("#add-node-ok")
        app.wait(lambda: app.text("#node-result").startswith("Added node other-box"), 240,
                 f"the node was not added: {app.text('#node-error')!r} {app.text('#node-result')!r}")
        app.wait(lambda: "other-box" in node_rows(app) and "running" in node_rows(app)["other-box"], 30, node_rows(app))
        assert "(first: linux/arm64)" in node_rows(app)["other-box"], node_rows(app)
        # Each node's cache use, as `nodes ls` says it (one rule in core; the panel shows it).
        listing = app.cli("backend", "nodes", "ls", "--format", "json")
        assert listing.returncode == 0, listing.stderr
        listed = {n["name"]: n for n in json.loads(listing.stdout)}
        for name in ("default", "other-box"):
            cell = app.find(f"#nodes tr.node[data-node='{name}'] td.node-cache").text
            assert re.fullmatch(r"[0-9.]+[kMG]?B", cell), (name, cell)
            assert cell == listed[name]["cache_text"], (name, cell, listed[name])
        assert app.backend in ours_on(second_engine, app.backend)
        assert app.text("#nodes-line") == "· 2 of 2 up", app.text("#nodes-line")
        app.wait(lambda: app.tray.item("Nodes:")["label"] == "Nodes: 2 of 2 up", 10, app.tray.menu())
        nodes = app.buildx_builders()["assemble"]["Nodes"]
        assert len(nodes) == 2, nodes
        app.screenshot("44-panel-nodes")

        # The Build window splits a pushed two-platform build across the nodes, as `assemble build`
        # does: linux/arm64 (declared on other-box) is built there, each line says whose it is.
        # The registry's port reaches both nodes through a start, as on the command line.
        allowed = app.cli("backend", "start", "--allow-host-port", str(registry.port))
        assert allowed.returncode == 0 and 'Node "other-box"' in allowed.stdout, (allowed.stdout, allowed.stderr)
        name = f"localhost:{registry.port}/ui/split:1"
        open_build_window(app)
        app.wait(lambda: platform_boxes(app), 30, "the Build window offers no platforms")
        app.type_into("#folder", two_platform_context(app))
        app.type_into("#names", name)
        tick_only(app, {"linux/amd64", "linux/arm64"})
        set_box(app, "#load", False)
        set_box(app, "#push", True)
        app.click("#build")
        try:
            app.wait(lambda: f"Pushed {name}" in app.text("#result"), 300)
        except TimeoutException:
            said = app.driver.execute_script(
                "return [...document.querySelectorAll('#error, .field-error, #failure, #progress')]"
                ".map((e) => e.id + ': ' + e.textContent.slice(-600)).join(' | ');")
            raise AssertionError(f"no result: {said}")
        result = app.text("#result")
        assert "Node default built linux/amd64" in result and "Node other-box built linux/arm64" in result, result
        progress = app.text("#progress").splitlines()
        assert any(l.startswith("[linux/arm64 @ other-box] ") and "built-for-aarch64" in l for l in progress), progress
        assert any(l.startswith("[linux/amd64 @ default] ") and "built-for-x86_64" in l for l in progress), progress
        assert not any(l.startswith("#") for l in progress), "every step line says whose it is"
        assert "ui/split" in registry.catalog(), registry.catalog()
        app.driver.execute_script("document.querySelector('#progress-card').scrollIntoView({block: 'start'});")
        app.screenshot("45-build-window-split-across-nodes")
        app.window("Assemble Backend")

        # Stop acts on every node; the nodes stay in the builder, stopped.
        app.click("#stop")
        app.wait(lambda: app.text("#state") == "Stopped", 90, app.text("#state"))
        app.wait(lambda: "stopped" in node_rows(app).get("other-box", ""), 60, node_rows(app))
        assert ours_on(second_engine, app.backend) == [], ours_on(second_engine, app.backend)
        app.wait(lambda: app.tray.item("Nodes:")["label"] == "Nodes: 0 of 2 up", 10, app.tray.menu())
        app.running()
        app.wait(lambda: "running" in node_rows(app).get("other-box", ""), 120, node_rows(app))

        app.find(f"#nodes button.remove-node[data-node='other-box']").click()
        app.wait(lambda: app.text("#node-result").startswith("Removed node other-box"), 120, app.text("#node-result"))
        app.wait(lambda: "other-box" not in node_rows(app), 30, node_rows(app))
        assert ours_on(second_engine, app.backend) == [], ours_on(second_engine, app.backend)
        assert len(app.buildx_builders()["assemble"]["Nodes"]) == 1
        app.wait(lambda: app.tray.item("Nodes:")["label"] == "Nodes: 1 of 1 up", 10, app.tray.menu())
    finally:
        app.cli("backend", "nodes", "rm", "other-box", "--force")
        app.docker_context("rm", "-f", "other-box")
        registry.stop()
