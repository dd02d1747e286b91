// The log viewer: follows the backend's logs live and stays smooth with a million lines by
// fetching and rendering only the lines in view.
"use strict";

// The lines live in the app (a compact store in Rust); this window keeps only their count, asks
// for the rows in view, and lets the app search, copy and save. Lines are numbered from the first
// line of the stream; the store keeps the newest million, so the first kept number can rise.
const LINE_HEIGHT = 18;
// WebKit stops painting content placed beyond 2^24 px (a million lines are 18,000,000 px), so
// the scrolled height is capped and, past the cap, the scroll position maps to a line in
// proportion instead of one pixel row per pixel.
const MAX_SCROLL_HEIGHT = 8000000;
// Rows fetched beyond the screen, above and below, so a small scroll paints at once.
const MARGIN = 20;

let first = 0;     // the number of the first kept line
let end = 0;       // the number the next line will get
let follow = true;
let streaming = false;
let failure = ""; // why the last follow ended, as a sentence (empty: it did not fail)
let unseen = 0;
let query = "";
let matchCount = 0;
let matchIndex = -1;
let currentLine = -1;
let renderQueued = false;
let programmaticScroll = false;
let renderToken = 0;
let cached = { from: 0, rows: [] }; // the rows last fetched
let drawn = ""; // what the rows on screen show (see draw)

const viewport = () => $("viewport");
const total = () => end - first;

/** Forgets the rows fetched, and any fetch still under way (its rows may be from before a Clear
 * or from an earlier follow, whose numbers the new one uses again). */
function forgetRows() {
  cached = { from: 0, rows: [] };
  renderToken++;
}

function status(text) { if ($("status").textContent !== text) $("status").textContent = text; }

// What Copy or Save said, shown for a while before the line count takes the status line back
// (lines that keep coming would otherwise replace it at once).
const NOTICE_MS = 8000;
let notice = null;
function tell(text) { notice = { text, until: Date.now() + NOTICE_MS }; status(text); }

/** The app's count: the lines kept and the search's matches, never the lines themselves. */
function onCount(count) {
  if (!follow) unseen += Math.max(0, count.end - end);
  first = count.first; end = count.end; matchCount = count.matches;
  if (query) updateMatchCount();
  scheduleRender();
}

const scaled = () => total() * LINE_HEIGHT > MAX_SCROLL_HEIGHT;
const visibleLines = (view) => Math.floor(view.clientHeight / LINE_HEIGHT);

/** The index (from the first kept line) of the first line shown at the view's scroll position. */
function firstIndexAt(view) {
  if (!scaled()) return Math.floor(view.scrollTop / LINE_HEIGHT);
  const range = Math.max(1, MAX_SCROLL_HEIGHT - view.clientHeight);
  return Math.round((view.scrollTop / range) * Math.max(0, total() - visibleLines(view)));
}

/** The scroll position that shows the line at `index` first. */
function scrollTopFor(index) {
  if (!scaled()) return index * LINE_HEIGHT;
  const view = viewport();
  const lines = Math.max(1, total() - visibleLines(view));
  return (Math.min(index, lines) / lines) * (MAX_SCROLL_HEIGHT - view.clientHeight);
}

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

/** Places the view, then draws the rows in it: from the last fetch when it holds them, and
 * fetches them (with a margin) when it does not. */
async function render() {
  const view = viewport();
  $("spacer").style.height = Math.min(total() * LINE_HEIGHT, MAX_SCROLL_HEIGHT) + "px";
  if (follow) setScroll(view.scrollHeight);
  const index = Math.max(0, Math.min(firstIndexAt(view), total() - 1));
  const count = Math.ceil(view.clientHeight / LINE_HEIGHT) + 2;
  const from = first + index;
  // The rows it needs: a screenful, or fewer at the end of the log.
  const needed = Math.min(count, end - from);
  const have = cached.rows.length > 0 && from >= cached.from && from + needed <= cached.from + cached.rows.length;
  if (!have && total() > 0) {
    const token = ++renderToken;
    const fetchFrom = Math.max(first, from - MARGIN);
    const rows = await invoke("log_rows", { from: fetchFrom, count: count + 2 * MARGIN });
    if (token !== renderToken) return; // a newer render asked since
    cached = { from: fetchFrom, rows, id: token };
  }
  draw(view, index, from, count);
}

function draw(view, index, from, count) {
  const showStamps = $("timestamps").checked;
  const top = (scaled() ? view.scrollTop : index * LINE_HEIGHT) + "px";
  // Nothing to paint when the same rows would be drawn the same way (a count that changed only
  // lines off screen, a scroll within the same row): each paint of the window costs the web
  // process and the app's compositor.
  const shape = [top, from, count, cached.id, cached.rows.length, showStamps, query, currentLine].join(" ");
  const where = follow ? "Following" : unseen ? `Paused: ${unseen} new line(s)` : "Paused";
  if (notice && Date.now() < notice.until) status(notice.text);
  else status(`${total().toLocaleString()} lines · ${where}` + (streaming ? "" : " · " + (failure || "not connected")));
  if (shape === drawn) return;
  drawn = shape;
  const rows = [];
  const offset = from - cached.from;
  for (const row of cached.rows.slice(Math.max(0, offset), Math.max(0, offset) + count)) {
    const line = el("div", { class: "line" + (row.err ? " err" : "") + (row.n === currentLine ? " current" : ""), "data-line": String(row.n) });
    if (showStamps && row.ts) line.append(el("span", { class: "ts", text: row.ts }));
    for (const segment of row.segments) line.append(segmentNode(segment));
    rows.push(line);
  }
  const lines = $("lines");
  lines.style.top = top;
  lines.replaceChildren(...rows);
}

/** A run of a row as the app styled it: a span with its classes, a search match in a <mark>;
 * its text is a text node, never parsed as HTML. */
function segmentNode(segment) {
  const text = segment.mark ? el("mark", { text: segment.text }) : segment.text;
  return el("span", segment.classes ? { class: segment.classes } : {}, text);
}

function setFollow(on) {
  follow = on;
  if (on) unseen = 0;
  $("follow").textContent = on ? "Pause" : "Follow";
  $("follow").setAttribute("aria-pressed", String(on));
  scheduleRender();
}

/** The app searches the whole store, and marks the matches in the rows it gives. */
async function search() {
  query = $("search").value;
  const count = await invoke("log_search", { query });
  // The rows fetched carry the marks of the search before.
  forgetRows();
  matchCount = count.matches; matchIndex = -1; currentLine = -1;
  if (matchCount) await jump(1); else { updateMatchCount(); scheduleRender(); }
}

async function jump(step) {
  if (!matchCount) return;
  const found = await invoke("log_match", { index: (matchIndex + step + matchCount) % matchCount, from: null });
  if (!found) return;
  matchIndex = found.index; currentLine = found.line;
  setFollow(false);
  const view = viewport();
  setScroll(scrollTopFor(Math.max(0, currentLine - first - Math.floor(visibleLines(view) / 2))));
  updateMatchCount();
  scheduleRender();
}

function updateMatchCount() {
  $("matches").textContent = query ? (matchCount ? `${Math.max(matchIndex, 0) + 1} of ${matchCount}` : "no matches") : "";
}

async function copyAll() {
  const text = await invoke("log_text", { timestamps: $("timestamps").checked });
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = el("textarea", {}, text);
    document.body.append(area); area.select(); document.execCommand("copy"); area.remove();
  }
  tell(`Copied ${total().toLocaleString()} lines.`);
}

async function saveAll() {
  try { tell("Saved to " + (await invoke("save_logs", { timestamps: $("timestamps").checked }))); }
  catch (error) { tell(sentence(error)); }
}

async function clearAll() {
  onCount(await invoke("clear_logs"));
  matchIndex = -1; currentLine = -1; unseen = 0; forgetRows();
  updateMatchCount();
}

// The latest snapshot, and the engine whose backend the lines come from: when docker's engine
// changes, the app ends the old stream and the viewer starts again on the new engine.
let latest = null;
let followedEngine = null;
const engineKey = (snapshot) => (snapshot && snapshot.engine ? snapshot.engine.context + " " + snapshot.engine.host : "");

function startFollowing() {
  if (streaming) return;
  // The app starts its store afresh for a new follow.
  first = 0; end = 0; matchCount = 0; matchIndex = -1; currentLine = -1; unseen = 0; forgetRows();
  streaming = true;
  failure = "";
  followedEngine = engineKey(latest);
  const channel = new tauri.core.Channel();
  channel.onmessage = onCount;
  invoke("follow_logs", { channel })
    .catch((error) => { failure = sentence(error); })
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
  $("search").addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(debounce); if (query !== $("search").value) search(); else jump(e.shiftKey ? -1 : 1); } });
  $("next").addEventListener("click", () => jump(1));
  $("prev").addEventListener("click", () => jump(-1));
  $("timestamps").addEventListener("change", () => { forgetRows(); scheduleRender(); });
  $("wrap").addEventListener("change", () => { document.body.classList.toggle("wrap", $("wrap").checked); scheduleRender(); });
  $("copy").addEventListener("click", copyAll);
  $("save").addEventListener("click", saveAll);
  $("clear").addEventListener("click", clearAll);
  viewport().addEventListener("scroll", () => {
    // Our own scroll was placed by the render that made it.
    if (programmaticScroll) { programmaticScroll = false; return; }
    const view = viewport();
    const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - LINE_HEIGHT;
    if (follow !== atBottom) setFollow(atBottom);
    // Scroll events come once per frame: drawing now (not at the next frame) paints the rows
    // in this one, and starts a fetch of rows not yet here a frame sooner.
    render();
  });
  window.addEventListener("resize", scheduleRender);
  window.addEventListener("beforeunload", () => invoke("stop_logs"));
  await listen("snapshot", (event) => { latest = event.payload; if (latest.state === "running") startFollowing(); });
  latest = await invoke("snapshot");
  startFollowing();
});
