// The Build window: a folder, names, push or load, and one build at a time. The core plans and
// runs it; this page sends the form and shows the `#N` lines and the result as text.
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

function setRunning(running) {
  $("build").disabled = running;
  show($("cancel"), running);
  for (const id of ["folder", "names", "push", "load", "choose"]) $(id).disabled = running;
  document.querySelectorAll("#platforms input").forEach((box) => { box.disabled = running; });
}

function fieldError(field, text) {
  for (const name of ["folder", "names", "platforms"]) {
    $(name + "-error").textContent = name === field ? text : "";
    $(name).classList.toggle("invalid", name === field);
  }
}

function addLines(more) {
  lines = lines.concat(more).slice(-KEPT_LINES);
  const pre = $("progress");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = lines.join("\n");
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

async function build() {
  fieldError(null, "");
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
    platforms: chosenPlatforms() };
  try {
    const result = await invoke("run_build", { form, channel });
    $("result").replaceChildren(...result.sentences.map((s) => el("div", { text: s })));
    show($("result-card"), true);
    $("progress-state").textContent = "· done";
  } catch (error) {
    // A field's error shows under its field (a platform the backend lacks: under the platforms).
    if (error && error.field) fieldError(error.field, sentence(error));
    else { $("error").textContent = sentence(error); show($("error"), true); }
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
    const folder = await invoke("choose_folder");
    if (folder) $("folder").value = folder;
  });
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
