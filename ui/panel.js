// The panel: the backend's state, ports, workers and cache, with Start/Stop/Restart and Purge.
"use strict";

function render(snapshot) {
  const state = $("state");
  state.textContent = snapshot.state_label;
  $("status-line").textContent = snapshot.ports_line ? "· " + snapshot.ports_line : "";
  state.className = "badge " + snapshot.state;
  $("start").disabled = !snapshot.can_start;
  $("stop").disabled = !snapshot.can_stop;
  $("restart").disabled = !snapshot.can_restart;
  $("message").textContent = snapshot.message || "";
  show($("message"), Boolean(snapshot.message));
  show($("differences"), snapshot.differences.length > 0);
  $("apply").textContent = snapshot.apply_label;
  $("difference-list").textContent = snapshot.differences.join("; ");
  if (snapshot.state !== "starting") show($("pull"), false);

  const info = snapshot.info;
  $("engine").textContent = engineText(snapshot.engine);
  $("name").textContent = snapshot.name;
  $("container-id").textContent = info ? info.id : "—";
  $("image").textContent = info ? info.image_digest : "—";
  $("buildkit-version").textContent = info && info.buildkit_version ? info.buildkit_version : "—";
  $("cache-volume").textContent = info ? (info.cache_volume || "none (the cache is lost on stop)") : "—";
  $("cache-limit").textContent = info ? info.cache_limit_text : "—";
  $("security").textContent = snapshot.security_label || "—";
  $("local-images").textContent = snapshot.local_images_label || "—";
  renderBuilder(snapshot.builder);
  renderUptime(snapshot.uptime);
  renderPorts(snapshot);
  renderWorkers(info);
  renderCache(info);
  $("purge").disabled = !info;
}

// The buildx builder: the line to copy when it builds here, else what core says about it.
function renderBuilder(builder) {
  const ours = Boolean(builder && builder.ours);
  $("builder").textContent = ours ? builder.command : (builder ? builder.name : "—");
  show($("copy-builder"), ours);
  $("builder-note").textContent = builder && !ours ? builder.sentence : "";
  show($("builder-note"), Boolean(builder && !ours));
}

async function copyBuilder() {
  const text = $("builder").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API in this web view: select the text and copy it the old way.
    const range = document.createRange();
    range.selectNodeContents($("builder"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  $("copy-builder").textContent = "Copied";
  setTimeout(() => { $("copy-builder").textContent = "Copy"; }, 1500);
}

// "desktop-linux · unix:///home/me/.docker/desktop/docker.sock", as `info` names the engine.
function engineText(engine) {
  if (!engine) return "—";
  return `${engine.context} · ${engine.host}${engine.tls ? " (TLS)" : ""}`;
}

let uptimeTimer = null;

/** The uptime as the app worded it ("3h 12m"), asked for again when the app says the words change. */
function renderUptime(uptime) {
  const text = uptime ? uptime.text : "—";
  // Written only when it changes, so an idle panel does not repaint.
  if ($("uptime").textContent !== text) $("uptime").textContent = text;
  // The words show whole minutes: the panel wakes when the next one begins, not every second.
  clearTimeout(uptimeTimer);
  if (uptime) uptimeTimer = setTimeout(() => invoke("uptime").then(renderUptime), uptime.next_change_ms + 20);
}

function renderPorts(snapshot) {
  const rows = snapshot.ports.map((p) =>
    el("tr", {}, el("td", { text: String(p.port) }), el("td", { text: p.sidecar || "—" }),
      el("td", { class: "state-" + p.state, text: p.state })));
  $("ports").replaceChildren(...rows);
  $("no-ports").textContent = snapshot.info ? "No host ports are proxied." : "The backend is not running.";
  show($("no-ports"), rows.length === 0);
  // Ports only the backend's own record names: the core's sentences, as text.
  const notices = snapshot.info ? snapshot.info.port_notices : [];
  $("port-notices").replaceChildren(...notices.map((n) => el("div", { class: "warning", text: n })));
}

function renderWorkers(info) {
  if (!info) { $("workers").replaceChildren("The backend is not running."); return; }
  const workers = info.workers.map((w) =>
    el("div", { class: "worker" },
      el("div", {}, el("strong", { text: w.id }), w.buildkit_version ? el("span", { class: "muted", text: "  BuildKit " + w.buildkit_version }) : null),
      el("div", { class: "native-platforms" }, el("span", { class: "muted", text: "Platforms: " }), w.platforms.join(", ")),
      // BuildKit lists what the kernel runs; the image's emulators run the rest (core finds them).
      w.emulated_platforms.length ? el("div", { class: "emulated-platforms" },
        el("span", { class: "muted", text: "Emulated: " }), w.emulated_platforms.join(", ")) : null,
      el("details", {}, el("summary", { text: `Labels (${Object.keys(w.labels).length})` }),
        el("dl", { class: "facts" }, Object.entries(w.labels).flatMap(([k, v]) => [el("dt", { text: k.replace("org.mobyproject.buildkit.worker.", "") }), el("dd", { text: v })])))));
  $("workers").replaceChildren(...(workers.length ? workers : ["No workers."]));
}

function renderCache(info) {
  const total = info ? info.cache.total : 0;
  const pct = (n) => (total > 0 ? (100 * n) / total : 0) + "%";
  $("bar-in-use").style.width = info ? pct(info.cache.in_use) : "0%";
  $("bar-reclaimable").style.width = info ? pct(info.cache.reclaimable) : "0%";
  const text = info ? info.cache_text : {};
  $("legend-in-use").textContent = "In use " + (text.in_use || "—");
  $("legend-reclaimable").textContent = "Reclaimable " + (text.reclaimable || "—");
  $("legend-total").textContent = info ? `Total ${text.total} in ${info.cache.entries} entries` : "Total —";
  const types = info ? Object.entries(info.cache_by_type).sort((a, b) => b[1] - a[1]) : [];
  const largest = types.length ? types[0][1] : 0;
  $("types").replaceChildren(...types.map(([kind, size]) => {
    const mini = el("div", { class: "mini" });
    mini.style.width = (largest > 0 ? (100 * size) / largest : 0) + "%";
    return el("div", {}, el("span", { text: kind }), mini, el("span", { class: "muted", text: text["type:" + kind] || "" }));
  }));
}

async function act(command) {
  // A failure also arrives as the `action-error` event, for every window and the tray alike.
  await invoke(command).catch((error) => showActionError(error));
}

function showActionError(error) {
  $("action-error").textContent = error ? sentence(error) : "";
  show($("action-error"), Boolean(error));
}

function showError(text) {
  $("message").textContent = text;
  show($("message"), true);
}

async function askPurge() {
  try {
    const preview = await invoke("purge_preview");
    $("confirm-text").textContent =
      `This removes ${preview.entries} cache entries and frees ${preview.reclaimable_text}. Entries in use by a running build are kept.`;
    show($("confirm"), true);
  } catch (error) {
    showError(sentence(error));
  }
}

// The nodes: each engine's backend in the builder, its state and platforms, as core lists them.
let nodeNames = [];

function renderNodes(view) {
  nodeNames = view.nodes.map((n) => n.context);
  $("nodes").replaceChildren(...view.nodes.map((n) => {
    const platforms = n.platforms.length ? n.platforms.join(", ") : "—";
    const declared = n.declared_platforms.length ? ` (first: ${n.declared_platforms.join(", ")})` : "";
    const state = n.state + (n.reason && n.state === "unreachable" ? `: ${n.reason}` : "");
    const remove = n.local ? el("span", { class: "muted", text: "this engine" })
      : el("button", { class: "link remove-node", "data-node": n.name, text: "Remove", onclick: () => removeNode(n.name) });
    return el("tr", { class: "node", "data-node": n.name },
      el("td", { text: n.name }), el("td", { text: n.host || n.context }),
      el("td", { class: "state-" + n.state, text: state }), el("td", { text: platforms + declared }),
      el("td", { class: "node-cache", text: n.cache_text || "—" }), el("td", {}, remove));
  }));
  const up = view.nodes.filter((n) => n.state === "running").length;
  $("nodes-line").textContent = `· ${up} of ${view.nodes.length} up`;
  $("nodes-problems").replaceChildren(...view.problems.map((p) => el("div", { class: "warning", text: p })));
}

function loadNodes() {
  invoke("list_nodes").then(renderNodes).catch((e) => { $("node-result").textContent = sentence(e); });
}

async function openAddNode() {
  $("node-error").textContent = "";
  const picker = await invoke("list_contexts");
  // Docker's contexts that are not a node yet.
  const free = picker.contexts.filter((c) => !nodeNames.includes(c.name));
  $("node-context").replaceChildren(...free.map((c) => el("option", { value: c.name, text: `${c.name} (${c.host})` })));
  show($("add-node-form"), true);
}

async function addNode() {
  $("node-error").textContent = "";
  $("add-node-ok").disabled = true;
  $("node-result").textContent = "Adding the node…";
  try {
    $("node-result").textContent = await invoke("add_node", { context: $("node-context").value, platforms: $("node-platforms").value });
    show($("add-node-form"), false);
  } catch (error) {
    $("node-result").textContent = "";
    $("node-error").textContent = sentence(error);
  } finally {
    $("add-node-ok").disabled = false;
  }
}

async function removeNode(name) {
  $("node-result").textContent = `Removing ${name}…`;
  try {
    $("node-result").textContent = await invoke("remove_node", { name });
  } catch (error) {
    $("node-result").textContent = sentence(error);
  }
}

async function purge() {
  show($("confirm"), false);
  try {
    const result = await invoke("purge_cache");
    $("purge-result").textContent = `Purged ${result.entries} entries, freed ${result.freed_text}.`;
  } catch (error) {
    showError(sentence(error));
  }
}

function pullProgress(event) {
  if (event.event === "pull-progress") {
    show($("pull"), true);
    const pct = event.total > 0 ? Math.floor((100 * event.downloaded) / event.total) : 0;
    $("pull-bar").style.width = pct + "%";
    $("pull-text").textContent = `${event.image}: ${pct}% (${event.layers_done}/${event.layers} layers)`;
  } else if (event.event === "pull-done") {
    $("pull-bar").style.width = "100%";
    $("pull-text").textContent = `${event.image}: pulled`;
  }
}

window.addEventListener("DOMContentLoaded", async () => {
  $("start").addEventListener("click", () => act("start_backend"));
  $("stop").addEventListener("click", () => act("stop_backend"));
  $("restart").addEventListener("click", () => act("restart_backend"));
  $("apply").addEventListener("click", () => act("apply_settings"));
  $("purge").addEventListener("click", askPurge);
  $("refresh-cache").addEventListener("click", () => invoke("refresh").catch((e) => showError(sentence(e))));
  // Builds change the cache without a Docker event: read it again when the panel comes forward.
  window.addEventListener("focus", () => invoke("refresh").catch(() => {}));
  $("confirm-cancel").addEventListener("click", () => show($("confirm"), false));
  $("confirm-ok").addEventListener("click", purge);
  $("open-settings").addEventListener("click", () => openWindow("settings"));
  $("open-logs").addEventListener("click", () => openWindow("logs"));
  $("open-builds").addEventListener("click", () => openWindow("builds"));
  $("open-build").addEventListener("click", () => openWindow("build"));
  $("docs").addEventListener("click", openDocs);
  $("copy-builder").addEventListener("click", copyBuilder);
  await listen("snapshot", (event) => render(event.payload));
  // A failed start, stop or restart, from here or from the tray; null when a new one begins.
  await listen("action-error", (event) => showActionError(event.payload));
  showActionError(await invoke("action_error"));
  await listen("start-progress", (event) => pullProgress(event.payload));
  $("add-node").addEventListener("click", openAddNode);
  $("add-node-cancel").addEventListener("click", () => show($("add-node-form"), false));
  $("add-node-ok").addEventListener("click", addNode);
  await listen("nodes", (event) => renderNodes(event.payload));
  render(await invoke("snapshot"));
  loadNodes();
});
