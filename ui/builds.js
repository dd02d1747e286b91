// The Builds window: the backend's builds, live (BuildKit announces every change), and one build's
// steps with their output. Everything is set as text; the rows and their texts come from core.
"use strict";

let selected = null;

function renderList(builds) {
  $("count").textContent = builds.length === 1 ? "1 build" : `${builds.length} builds`;
  show($("empty"), builds.length === 0);
  $("builds").replaceChildren(...builds.map((b) => {
    const row = el("tr", { class: "build" + (b.ref === selected ? " selected" : ""), "data-ref": b.ref, onclick: () => select(b.ref) },
      el("td", { class: "status-" + b.status.toLowerCase(), text: b.status }),
      el("td", {}, el("div", { text: b.name }), b.error ? el("div", { class: "muted error-line", text: b.error }) : null),
      el("td", { text: b.when || "—" }),
      el("td", { text: b.duration }),
      el("td", { text: b.steps }),
      el("td", { text: b.cached }));
    return row;
  }));
}

// The detail follows the chosen build: a running build's steps arrive as they progress, then its
// end. Choosing another build ends the follow before (the app keeps one).
function select(ref, scroll = true) {
  if (selected !== ref) {
    // Nothing of the build chosen before stays on show under this one while its detail comes.
    $("steps").replaceChildren();
    $("detail-title").textContent = "";
    show($("timing"), false);
  }
  selected = ref;
  document.querySelectorAll("tr.build").forEach((r) => r.classList.toggle("selected", r.dataset.ref === ref));
  const channel = new tauri.core.Channel();
  let first = true;
  channel.onmessage = (detail) => {
    if (selected !== ref) return;
    renderDetail(detail);
    if (first && scroll) $("detail").scrollIntoView({ block: "start" });
    first = false;
  };
  invoke("follow_build", { reference: ref, channel }).catch((error) => showMessage(sentence(error)));
}

function renderDetail(detail) {
  show($("detail"), true);
  $("detail-title").textContent = [detail.build.name, detail.build.status, detail.build.duration].filter(Boolean).join(" · ");
  $("detail-error").textContent = detail.build.error || "";
  show($("detail-error"), Boolean(detail.build.error));
  renderTiming(detail.timing);
  const open = new Set([...document.querySelectorAll("details.step[open]")].map((d) => d.dataset.number));
  // A build for several platforms comes in groups, one per platform (core groups and titles
  // them); a build for one is one untitled group.
  $("steps").replaceChildren(...detail.groups.flatMap((group) => [
    group.title ? el("h3", { class: "platform-group", "data-platform": group.platform || "", text: group.title }) : null,
    ...group.steps.map((s) => stepElement(s, open)),
  ]).filter(Boolean));
}

// The waterfall: core places every bar (percent of the axis) and words every text; this only draws.
// Positions are set through the style object: the window's CSP forbids style attributes.
function placed(node, left, width) {
  node.style.left = `${left}%`;
  if (width !== undefined) node.style.width = `${width}%`;
  return node;
}

function renderTiming(timing) {
  show($("timing"), timing.bars.length > 0);
  $("timing-cached").textContent = timing.cached;
  $("timing-critical").textContent = timing.critical;
  $("timing-axis").replaceChildren(...timing.ticks.map((t) => placed(el("span", { class: "tick", text: t.text }), t.left)));
  $("timing-bars").replaceChildren(...timing.bars.map((b) => {
    const kind = ["tbar", b.cached ? "cached" : "", b.critical ? "critical" : "", b.running ? "running" : "", b.failed ? "failed" : ""];
    return el("div", { class: "timing-row" + (b.critical ? " critical" : ""), "data-number": String(b.number), title: b.title },
      el("span", { class: "timing-label" }, el("span", { class: "step-number", text: "#" + b.number }), " ", b.name),
      el("div", { class: "timing-track" },
        placed(el("div", { class: kind.filter(Boolean).join(" ") }), b.left, b.width),
        b.text_before
          ? placed(el("span", { class: "tbar-text before", text: b.text }), b.left)
          : placed(el("span", { class: "tbar-text", text: b.text }), b.left + b.width)));
  }));
}

function stepElement(s, open) {
  const head = el("summary", {},
    el("span", { class: "step-number", text: "#" + s.number }), " ",
    el("span", { text: s.name }), " ",
    el("span", { class: s.cached ? "cached" : "muted", text: s.duration }));
  const output = el("pre", { class: "step-output", text: s.lines.join("\n") });
  const step = el("details", { class: "step" + (s.error ? " failed" : "") + (s.running ? " running" : ""), "data-number": String(s.number) },
    head, s.lines.length ? output : null, s.error ? el("div", { class: "step-error", text: s.error }) : null);
  // The failing step is open, so its output shows at once; so is the step under way, and any
  // step the user opened stays open while a running build redraws.
  if (s.error || s.running || open.has(String(s.number))) step.open = true;
  return step;
}

function showMessage(text) {
  $("message").textContent = text;
  show($("message"), Boolean(text));
}

function followList() {
  const channel = new tauri.core.Channel();
  channel.onmessage = (builds) => { showMessage(""); renderList(builds); };
  invoke("follow_builds", { channel }).catch((error) => showMessage(sentence(error)));
}

window.addEventListener("DOMContentLoaded", async () => {
  let followed = null;
  const onSnapshot = (snapshot) => {
    $("builder-line").textContent = snapshot.builder && snapshot.builder.command ? snapshot.builder.command : "";
    const running = snapshot.state === "running";
    // Follow again whenever the backend (re)starts or another engine's backend is shown: a new
    // BuildKit, a new history stream. The app ends the follow before.
    const backend = running ? `${snapshot.engine_line}|${snapshot.info ? snapshot.info.id : ""}` : null;
    if (backend && backend !== followed) {
      selected = null;
      show($("detail"), false);
      followList();
    }
    if (!running) showMessage("The backend is not running; its builds show when it runs.");
    followed = backend;
  };
  await listen("snapshot", (event) => onSnapshot(event.payload));
  // A build started in the Build window: follow it here, step by step.
  await listen("select-build", (event) => select(event.payload));
  onSnapshot(await invoke("snapshot"));
  // Opened by the Build window on its build (builds.html#REF).
  const asked = decodeURIComponent(location.hash.slice(1));
  if (asked) select(asked);
});
