// Settings: the engine, ports, cache volume and image, validated by the core (the same rules as the CLI).
"use strict";

let ports = [];
let view = null;

function renderPorts() {
  $("ports").replaceChildren(...ports.map((port) =>
    el("span", { class: "chip" }, String(port),
      el("button", { title: `Remove ${port}`, "aria-label": `Remove ${port}`, onclick: () => { ports = ports.filter((p) => p !== port); renderPorts(); } }, "×"))));
  if (ports.length === 0) $("ports").append(el("span", { class: "muted", text: "No ports: builds cannot reach the host." }));
}

function fieldError(field, text) {
  $(field + "-error").textContent = text || "";
  if (field === "ports") $("port-input").classList.toggle("invalid", Boolean(text));
  if (field === "image") $("image").classList.toggle("invalid", Boolean(text));
  if (field === "cache_limit") $("cache-limit").classList.toggle("invalid", Boolean(text));
}

// The engine picker: docker's contexts, and what "follow" means right now.
async function loadContexts(pinned) {
  let picker = { contexts: [], docker_uses: null, docker_uses_error: null };
  try { picker = await invoke("list_contexts"); } catch (error) { fieldError("context", sentence(error)); }
  const names = picker.contexts.map((c) => c.name);
  if (pinned && !names.includes(pinned)) names.push(pinned); // pinned, then removed from docker: keep it visible
  $("context-list").replaceChildren(...names.map((name) => {
    const entry = picker.contexts.find((c) => c.name === name);
    return el("option", { value: name, text: entry ? `${name} (${entry.host})` : `${name} (not found)` });
  }));
  const uses = picker.docker_uses;
  $("docker-uses").textContent = uses
    ? `(now: ${uses.context} · ${uses.host}${picker.docker_uses_by ? ", chosen by " + picker.docker_uses_by : ""})`
    : `(now: ${picker.docker_uses_error || "unknown"})`;
  if (pinned) $("context-list").value = pinned;
  document.querySelector(`input[name=engine][value=${pinned ? "pinned" : "follow"}]`).checked = true;
}

function chosenContext() {
  return document.querySelector("input[name=engine]:checked").value === "pinned" ? $("context-list").value || null : null;
}

async function addPort() {
  fieldError("ports", "");
  try {
    ports = await invoke("add_port", { ports, typed: $("port-input").value });
    $("port-input").value = "";
    renderPorts();
  } catch (error) {
    fieldError("ports", sentence(error));
  }
}

function chosenCache() {
  const choice = document.querySelector("input[name=cache]:checked").value;
  switch (choice) {
    case "auto": return { kind: "auto" };
    case "default": return { kind: "named", name: view.default_volume };
    case "existing": return { kind: "named", name: $("volume-list").value };
    case "new": return { kind: "named", name: $("new-volume").value.trim() };
    default: return { kind: "anonymous" };
  }
}

function selectCache(cache, volumes) {
  let choice = "auto";
  if (cache.kind === "anonymous") choice = "none";
  else if (cache.kind === "named" && cache.name === view.default_volume) choice = "default";
  else if (cache.kind === "named" && volumes.includes(cache.name)) { choice = "existing"; $("volume-list").value = cache.name; }
  else if (cache.kind === "named") { choice = "new"; $("new-volume").value = cache.name; }
  document.querySelector(`input[name=cache][value=${choice}]`).checked = true;
  updateNoneWarning();
}

function updateNoneWarning() {
  show($("none-warning"), document.querySelector("input[name=cache]:checked").value === "none");
}

async function save() {
  ["context", "ports", "cache", "cache_limit", "image", "security", "local_image_registries"].forEach((f) => fieldError(f, ""));
  $("saved").textContent = "";
  const image = $("image").value.trim();
  // Fields this form does not show (the file's base_images) are kept as they are.
  const settings = { ...(view ? view.settings : {}), ports, cache: chosenCache(), image: image === "" ? null : image, context: chosenContext(),
    use_builder: $("use-builder").checked, cache_limit: $("cache-limit").value.trim() || null,
    security: document.querySelector("input[name=security]:checked").value,
    local_images: $("local-images").checked,
    // Split only; core checks each host and says which one is wrong.
    local_image_registries: $("local-image-registries").value.split(/[\s,]+/).filter((r) => r !== "") };
  try {
    await invoke("save_settings", { settings });
    $("saved").textContent = "Saved.";
  } catch (error) {
    // A field's error stands beside it; any other beside the Save button.
    if (error && error.field) fieldError(error.field, sentence(error));
    else $("saved").textContent = sentence(error);
  }
}

function renderDifferences(snapshot) {
  show($("differences"), snapshot.differences.length > 0);
  $("apply").textContent = snapshot.apply_label;
  $("difference-list").textContent = snapshot.differences.join("; ");
}

window.addEventListener("DOMContentLoaded", async () => {
  view = await invoke("get_settings");
  $("path").textContent = view.path;
  $("default-volume").textContent = view.default_volume;
  $("default-volume-auto").textContent = view.default_volume;
  $("default-image").textContent = view.default_image;
  $("image").placeholder = view.default_image;
  $("image").value = view.settings.image || "";
  $("use-builder").checked = view.settings.use_builder;
  $("cache-limit").value = view.settings.cache_limit || "";
  document.querySelector(`input[name=security][value=${view.settings.security || "auto"}]`).checked = true;
  $("local-images").checked = view.settings.local_images !== false;
  $("local-image-registries").value = (view.settings.local_image_registries || []).join(", ");
  if (view.warning) { $("load-warning-text").textContent = view.warning; show($("load-warning"), true); }
  await loadContexts(view.settings.context);
  $("context-list").addEventListener("change", () => { document.querySelector("input[name=engine][value=pinned]").checked = true; });
  ports = view.settings.ports.slice();
  renderPorts();
  let volumes = [];
  try { volumes = await invoke("list_volumes"); } catch (error) { fieldError("cache", sentence(error)); }
  $("volume-list").replaceChildren(...volumes.map((v) => el("option", { value: v, text: v })));
  selectCache(view.settings.cache, volumes);
  document.querySelectorAll("input[name=cache]").forEach((r) => r.addEventListener("change", updateNoneWarning));
  $("add-port").addEventListener("click", addPort);
  $("port-input").addEventListener("keydown", (e) => { if (e.key === "Enter") addPort(); });
  $("save").addEventListener("click", save);
  $("apply").addEventListener("click", async () => {
    try { await invoke("apply_settings"); } catch (error) { $("saved").textContent = sentence(error); }
  });
  await listen("snapshot", (event) => renderDifferences(event.payload));
  renderDifferences(await invoke("snapshot"));
  await loadAutostart();
});

async function loadAutostart() {
  const box = $("autostart");
  try { box.checked = await invoke("autostart"); } catch (error) { fieldError("autostart", sentence(error)); }
  box.addEventListener("change", async () => {
    fieldError("autostart", "");
    try { box.checked = await invoke("set_autostart", { enabled: box.checked }); }
    catch (error) { box.checked = !box.checked; fieldError("autostart", sentence(error)); }
  });
}
