// The Build window: a folder, names, push or load, platforms, secrets, ssh forwarding, registry
// caches, an output folder, and one build at a time. The core checks and plans it, and runs it;
// this page sends the form, shows each bad entry's sentence beside its field, and shows the `#N`
// lines and the result as text. A secret travels as its id and its file's path: this page never
// reads the file.
"use strict";

// Lines kept on screen: the Builds window has every step's whole output.
const KEPT_LINES = 400;
let lines = [];
// This page started the build under way (a page opened during one did not).
let ownBuild = false;

function outputNote() {
  const push = $("push").checked, load = $("load").checked;
  $("output-note").textContent = push || load ? ""
    : "Neither: the result stays in the backend's build cache (no image is pushed or loaded).";
}

// The backend's platforms as checkboxes (core's choices: native first, the emulated ones marked),
// kept ticked across redraws; none ticked builds the backend's own platform.
let platformChoices = null;
function renderPlatforms(choices) {
  const key = JSON.stringify(choices || null);
  if (key === platformChoices) return;
  platformChoices = key;
  const ticked = new Set(chosenPlatforms());
  $("platforms").replaceChildren(...(choices || []).map((c) => {
    const box = el("input", { type: "checkbox", value: c.platform });
    box.checked = ticked.has(c.platform);
    box.disabled = $("build").disabled;
    return el("label", { class: "choice platform" + (c.emulated ? " emulated" : "") }, box, " " + c.label);
  }));
  $("platforms-note").textContent = choices
    ? "None ticked: the backend's own platform. Several: one image index (push it; Load takes one platform)."
    : "The backend's platforms show here once it runs; without a choice, a build is for its own platform.";
}

function chosenPlatforms() {
  return [...document.querySelectorAll("#platforms input:checked")].map((box) => box.value);
}

// The secret rows: an id typed, a file chosen with the system's chooser (its path shown, never
// its contents).
let secretCount = 0;
function addSecret() {
  const n = secretCount++;
  const id = el("input", { type: "text", class: "secret-id", placeholder: "id", spellcheck: "false" });
  const file = el("span", { class: "secret-file muted", text: "no file chosen" });
  const choose = el("button", { class: "secret-choose", text: "Choose file…", onclick: async () => {
    const path = await invoke("choose_path", { pick: "secret-file" });
    if (path) { file.textContent = path; file.dataset.path = path; file.classList.remove("muted"); }
  } });
  const row = el("div", { id: "secret-" + n, class: "secret" },
    el("div", { class: "row secret-row" }, id, choose, file,
      el("button", { class: "secret-remove", title: "Remove this secret", text: "Remove", onclick: () => row.remove() })),
    el("div", { id: "secret-" + n + "-error", class: "field-error" }));
  $("secrets").append(row);
  id.focus();
}

// Each row as the core reads it; its number is its place in the list sent (errors name it).
function secretRows() {
  return [...document.querySelectorAll("#secrets .secret")].map((row) => ({
    id: row.querySelector(".secret-id").value,
    file: row.querySelector(".secret-file").dataset.path || "",
  }));
}

const CONTROLS = ["folder", "names", "push", "load", "choose", "ssh", "cache_to", "cache_from", "output",
  "choose-output", "add-secret"];
function setRunning(running) {
  $("build").disabled = running;
  show($("cancel"), running);
  for (const id of CONTROLS) $(id).disabled = running;
  document.querySelectorAll("#platforms input, #secrets input, #secrets button").forEach((c) => { c.disabled = running; });
}

// The field of the Nth row sent is that row's element (rows may have been removed in between).
function fieldNode(field) {
  const row = /^secret-(\d+)$/.exec(field || "");
  if (row) return document.querySelectorAll("#secrets .secret")[Number(row[1])] || null;
  return field ? $(field) : null;
}

// Shows each {field, message} beside its field; a sentence without a field goes to the global box.
function fieldErrors(errors) {
  document.querySelectorAll(".field-error").forEach((node) => { node.textContent = ""; });
  document.querySelectorAll(".invalid").forEach((node) => node.classList.remove("invalid"));
  const loose = [];
  for (const { field, message } of errors) {
    const node = fieldNode(field);
    const box = node && (node.classList.contains("secret") ? node.querySelector(".field-error") : $(field + "-error"));
    if (!box) { loose.push(message); continue; }
    box.textContent = box.textContent ? box.textContent + " " + message : message;
    const input = node.classList.contains("secret") ? node.querySelector(".secret-id") : node;
    input.classList.add("invalid");
  }
  return loose;
}

function addLines(more) {
  lines = lines.concat(more).slice(-KEPT_LINES);
  const pre = $("progress");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = lines.join("\n");
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

async function build() {
  fieldErrors([]);
  show($("error"), false);
  show($("result-card"), false);
  show($("failure-card"), false);
  show($("progress-card"), false);
  lines = [];
  $("progress").textContent = "";
  $("progress-state").textContent = "";
  setRunning(true);
  ownBuild = true;
  const channel = new tauri.core.Channel();
  channel.onmessage = (news) => {
    if (news.kind === "backend-started") $("progress-state").textContent = "· the backend was not running: started it";
    else if (news.kind === "started") { show($("progress-card"), true); $("progress-state").textContent += " · building"; }
    else if (news.kind === "lines") addLines(news.lines);
    else if (news.kind === "failed") { $("failure").textContent = news.report; show($("failure-card"), true); }
  };
  const form = { folder: $("folder").value, names: $("names").value, push: $("push").checked, load: $("load").checked,
    platforms: chosenPlatforms(),
    entries: { secrets: secretRows(), ssh: $("ssh").checked, cache_to: $("cache_to").value,
      cache_from: $("cache_from").value, output_folder: $("output").value } };
  try {
    const result = await invoke("run_build", { form, channel });
    $("result").replaceChildren(...result.sentences.map((s) => el("div", { text: s })));
    show($("result-card"), true);
    $("progress-state").textContent = "· done";
  } catch (error) {
    // Each field's error shows under its field (a platform the backend lacks: under the platforms).
    const errors = error && error.fields ? error.fields
      : [{ field: error && error.field, message: sentence(error) }];
    const loose = fieldErrors(errors);
    if (loose.length) { $("error").textContent = loose.join(" "); show($("error"), true); }
    // Refused before anything ran: no progress to show.
    if (!lines.length) show($("progress-card"), false);
    $("progress-state").textContent = lines.length ? "· failed" : "";
  } finally {
    ownBuild = false;
    setRunning(false);
  }
}

window.addEventListener("DOMContentLoaded", async () => {
  $("push").addEventListener("change", outputNote);
  $("load").addEventListener("change", outputNote);
  $("build").addEventListener("click", build);
  $("cancel").addEventListener("click", () => invoke("cancel_build"));
  $("choose").addEventListener("click", async () => {
    const folder = await invoke("choose_path", { pick: "context" });
    if (folder) $("folder").value = folder;
  });
  $("choose-output").addEventListener("click", async () => {
    const folder = await invoke("choose_path", { pick: "output" });
    if (folder) $("output").value = folder;
  });
  $("add-secret").addEventListener("click", addSecret);
  outputNote();
  // Opened again while a build of the app runs: it can be canceled from here, and ends here too.
  await listen("build-ended", () => { if (!ownBuild) { setRunning(false); $("progress-state").textContent = ""; } });
  if (await invoke("build_under_way")) {
    setRunning(true);
    show($("progress-card"), true);
    $("progress-state").textContent = "· a build started earlier is under way (its steps: the Builds window)";
  }
  const onSnapshot = (snapshot) => {
    $("backend-state").textContent = snapshot.state === "running" ? "on the running backend"
      : "the backend is not running: a build starts it first";
    renderPlatforms(snapshot.info ? snapshot.info.platform_choices : null);
  };
  await listen("snapshot", (event) => onSnapshot(event.payload));
  onSnapshot(await invoke("snapshot"));
});
