// The log viewer: follows the backend's logs live and stays smooth with a million lines by
// rendering only the lines in view. Memory is bounded: at most MAX_LINES lines are kept, the
// oldest are dropped first.
"use strict";

const MAX_LINES = 1000000;
const LINE_HEIGHT = 18;
// WebKit stops painting content placed beyond 2^24 px (a million lines are 18,000,000 px), so
// the scrolled height is capped and, past the cap, the scroll position maps to a line in
// proportion instead of one pixel row per pixel.
const MAX_SCROLL_HEIGHT = 8000000;

let texts = [];    // the lines, as received (may hold ANSI codes)
let stamps = [];   // RFC 3339 timestamps, or null
let errs = [];     // true for stderr lines
let follow = true;
let streaming = false;
let unseen = 0;
let query = "";
let matches = [];
let matchIndex = -1;
let renderQueued = false;
let programmaticScroll = false;

const viewport = () => $("viewport");

function status(text) { $("status").textContent = text; }

/** A batch comes column by column: texts `s`, timestamps `t`, stderr flags `e`. */
function onBatch(batch) {
  const start = texts.length;
  for (let i = 0; i < batch.s.length; i++) { texts.push(batch.s[i]); stamps.push(batch.t[i]); errs.push(batch.e[i]); }
  if (!follow) unseen += batch.s.length;
  if (query) {
    for (let i = start; i < texts.length; i++) if (matchesQuery(i)) matches.push(i);
  }
  trim();
  scheduleRender();
}

/** Keeps at most MAX_LINES, dropping the oldest first. */
function trim() {
  const excess = texts.length - MAX_LINES;
  if (excess <= 0) return;
  texts.splice(0, excess); stamps.splice(0, excess); errs.splice(0, excess);
  matches = matches.map((i) => i - excess).filter((i) => i >= 0);
  if (matchIndex >= matches.length) matchIndex = matches.length - 1;
  if (!follow) setScroll(scrollTopFor(Math.max(0, firstLineAt(viewport()) - excess)));
}

const scaled = () => texts.length * LINE_HEIGHT > MAX_SCROLL_HEIGHT;
const visibleLines = (view) => Math.floor(view.clientHeight / LINE_HEIGHT);

/** The first line shown at the view's scroll position. */
function firstLineAt(view) {
  if (!scaled()) return Math.floor(view.scrollTop / LINE_HEIGHT);
  const range = Math.max(1, MAX_SCROLL_HEIGHT - view.clientHeight);
  return Math.round((view.scrollTop / range) * Math.max(0, texts.length - visibleLines(view)));
}

/** The scroll position that shows `line` first. */
function scrollTopFor(line) {
  if (!scaled()) return line * LINE_HEIGHT;
  const view = viewport();
  const lines = Math.max(1, texts.length - visibleLines(view));
  return (Math.min(line, lines) / lines) * (MAX_SCROLL_HEIGHT - view.clientHeight);
}

function matchesQuery(i) { return ansiStrip(texts[i]).toLowerCase().includes(query); }

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function setScroll(top) {
  const view = viewport();
  const before = view.scrollTop;
  view.scrollTop = top;
  // Only a scroll that moved fires an event; a flag left set would swallow the user's next one.
  if (view.scrollTop !== before) programmaticScroll = true;
}

function render() {
  const view = viewport();
  $("spacer").style.height = Math.min(texts.length * LINE_HEIGHT, MAX_SCROLL_HEIGHT) + "px";
  if (follow) setScroll(view.scrollHeight);
  const first = Math.max(0, Math.min(firstLineAt(view), texts.length - 1));
  const count = Math.ceil(view.clientHeight / LINE_HEIGHT) + 2;
  const showStamps = $("timestamps").checked;
  const current = matchIndex >= 0 ? matches[matchIndex] : -1;
  const rows = [];
  for (let i = first; i < Math.min(texts.length, first + count); i++) {
    const row = el("div", { class: "line" + (errs[i] ? " err" : "") + (i === current ? " current" : ""), "data-line": String(i) });
    if (showStamps && stamps[i]) row.append(el("span", { class: "ts", text: stamps[i] }));
    for (const segment of ansiSegments(texts[i])) row.append(highlighted(segment));
    rows.push(row);
  }
  const lines = $("lines");
  lines.style.top = (scaled() ? view.scrollTop : first * LINE_HEIGHT) + "px";
  lines.replaceChildren(...rows);
  const where = follow ? "Following" : unseen ? `Paused: ${unseen} new line(s)` : "Paused";
  status(`${texts.length.toLocaleString()} lines · ${where}` + (streaming ? "" : " · not connected"));
}

/** A styled segment, with search matches wrapped in <mark> (as text nodes, never HTML). */
function highlighted(segment) {
  const span = el("span", segment.classes ? { class: segment.classes } : {});
  if (!query) { span.textContent = segment.text; return span; }
  const lower = segment.text.toLowerCase();
  let at = 0;
  for (let hit = lower.indexOf(query); hit !== -1; hit = lower.indexOf(query, at)) {
    span.append(segment.text.slice(at, hit), el("mark", { text: segment.text.slice(hit, hit + query.length) }));
    at = hit + query.length;
  }
  span.append(segment.text.slice(at));
  return span;
}

function setFollow(on) {
  follow = on;
  if (on) unseen = 0;
  $("follow").textContent = on ? "Pause" : "Follow";
  $("follow").setAttribute("aria-pressed", String(on));
  scheduleRender();
}

function search() {
  query = $("search").value.toLowerCase();
  matches = [];
  if (query) for (let i = 0; i < texts.length; i++) if (matchesQuery(i)) matches.push(i);
  matchIndex = -1;
  if (matches.length) jump(1); else { updateMatchCount(); scheduleRender(); }
}

function jump(step) {
  if (!matches.length) return;
  matchIndex = (matchIndex + step + matches.length) % matches.length;
  setFollow(false);
  const view = viewport();
  setScroll(scrollTopFor(Math.max(0, matches[matchIndex] - Math.floor(visibleLines(view) / 2))));
  updateMatchCount();
  scheduleRender();
}

function updateMatchCount() {
  $("matches").textContent = query ? (matches.length ? `${matchIndex + 1} of ${matches.length}` : "no matches") : "";
}

function plainText() {
  const withStamps = $("timestamps").checked;
  return texts.map((t, i) => (withStamps && stamps[i] ? stamps[i] + " " : "") + ansiStrip(t)).join("\n") + "\n";
}

async function copyAll() {
  const text = plainText();
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = el("textarea", {}, text);
    document.body.append(area); area.select(); document.execCommand("copy"); area.remove();
  }
  status(`Copied ${texts.length.toLocaleString()} lines.`);
}

async function saveAll() {
  const name = "assemble-backend-" + new Date().toISOString().replace(/[:.]/g, "-") + ".log";
  try { status("Saved to " + (await invoke("save_text", { name, text: plainText() }))); }
  catch (error) { status(sentence(error)); }
}

function clearAll() {
  texts = []; stamps = []; errs = []; matches = []; matchIndex = -1; unseen = 0;
  updateMatchCount();
  scheduleRender();
}

// The latest snapshot, and the engine whose backend the lines come from: when docker's engine
// changes, the app ends the old stream and the viewer starts again on the new engine.
let latest = null;
let followedEngine = null;
const engineKey = (snapshot) => (snapshot && snapshot.engine ? snapshot.engine.context + " " + snapshot.engine.host : "");

function startFollowing() {
  if (streaming) return;
  clearAll();
  streaming = true;
  followedEngine = engineKey(latest);
  const channel = new tauri.core.Channel();
  channel.onmessage = onBatch;
  invoke("follow_logs", { channel })
    .catch((error) => status(sentence(error)))
    .finally(() => {
      streaming = false;
      scheduleRender();
      if (latest && latest.state === "running" && engineKey(latest) !== followedEngine) startFollowing();
    });
}

window.addEventListener("DOMContentLoaded", async () => {
  $("follow").addEventListener("click", () => setFollow(!follow));
  let debounce = null;
  $("search").addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(search, 150); });
  $("search").addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(debounce); if (query !== $("search").value.toLowerCase()) search(); else jump(e.shiftKey ? -1 : 1); } });
  $("next").addEventListener("click", () => jump(1));
  $("prev").addEventListener("click", () => jump(-1));
  $("timestamps").addEventListener("change", scheduleRender);
  $("wrap").addEventListener("change", () => { document.body.classList.toggle("wrap", $("wrap").checked); scheduleRender(); });
  $("copy").addEventListener("click", copyAll);
  $("save").addEventListener("click", saveAll);
  $("clear").addEventListener("click", clearAll);
  viewport().addEventListener("scroll", () => {
    if (programmaticScroll) { programmaticScroll = false; }
    else {
      const view = viewport();
      const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - LINE_HEIGHT;
      if (follow !== atBottom) setFollow(atBottom);
    }
    scheduleRender();
  });
  window.addEventListener("resize", scheduleRender);
  window.addEventListener("beforeunload", () => invoke("stop_logs"));
  await listen("snapshot", (event) => { latest = event.payload; if (latest.state === "running") startFollowing(); });
  latest = await invoke("snapshot");
  startFollowing();
});
