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
      el("td", { text: b.created_at ? since(b.created_at) + " ago" : "—" }),
      el("td", { text: b.duration }),
      el("td", { text: b.steps }),
      el("td", { text: b.cached }));
    return row;
  }));
  // The build shown in detail changed (it finished): read its steps again.
  if (selected && builds.some((b) => b.ref === selected)) select(selected, false);
}

async function select(ref, scroll = true) {
  selected = ref;
  document.querySelectorAll("tr.build").forEach((r) => r.classList.toggle("selected", r.dataset.ref === ref));
  try {
    const detail = await invoke("build_detail", { reference: ref });
    renderDetail(detail);
    if (scroll) $("detail").scrollIntoView({ block: "start" });
  } catch (error) {
    showMessage(sentence(error));
  }
}

function renderDetail(detail) {
  show($("detail"), true);
  $("detail-title").textContent = `${detail.build.name} · ${detail.build.status} · ${detail.build.duration}`;
  $("detail-error").textContent = detail.build.error || "";
  show($("detail-error"), Boolean(detail.build.error));
  $("steps").replaceChildren(...detail.steps.map((s) => {
    const head = el("summary", {},
      el("span", { class: "step-number", text: "#" + s.number }), " ",
      el("span", { text: s.name }), " ",
      el("span", { class: s.cached ? "cached" : "muted", text: s.duration }));
    const output = el("pre", { class: "step-output", text: s.lines.join("\n") });
    const step = el("details", { class: "step" + (s.error ? " failed" : "") }, head, s.lines.length ? output : null,
      s.error ? el("div", { class: "step-error", text: s.error }) : null);
    // The failing step is open, so its output shows at once.
    if (s.error) step.open = true;
    return step;
  }));
}

function showMessage(text) {
  $("message").textContent = text;
  show($("message"), Boolean(text));
}

function follow() {
  const channel = new tauri.core.Channel();
  channel.onmessage = (builds) => { showMessage(""); renderList(builds); };
  invoke("follow_builds", { channel }).catch((error) => showMessage(sentence(error)));
}

window.addEventListener("DOMContentLoaded", async () => {
  let running = false;
  const onSnapshot = (snapshot) => {
    $("builder-line").textContent = snapshot.builder && snapshot.builder.command ? snapshot.builder.command : "";
    const now = snapshot.state === "running";
    // Follow again whenever the backend (re)starts: a new BuildKit, a new history stream.
    if (now && !running) follow();
    if (!now) showMessage("The backend is not running; its builds show when it runs.");
    running = now;
  };
  await listen("snapshot", (event) => onSnapshot(event.payload));
  onSnapshot(await invoke("snapshot"));
});
