// Shared helpers for the three windows. Everything the user sees is set as text, never as HTML.
"use strict";

const tauri = window.__TAURI__;
const invoke = tauri.core.invoke;
const listen = tauri.event.listen;

/** Builds an element; strings become text nodes, so nothing is ever parsed as HTML. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function show(node, visible) { node.classList.toggle("hidden", !visible); }

/** A command's error as a sentence: commands answer with strings or {message}. */
function sentence(error) {
  if (typeof error === "string") return error;
  if (error && typeof error.message === "string") return error.message;
  return "Something went wrong: " + String(error);
}

function openWindow(kind) { invoke("open_window", { kind }); }

/** Opens our documentation in the user's browser (the shell plugin allows only docs.docker.com). */
function openDocs() {
  tauri.shell.open("https://docs.docker.com/assemble/advanced/");
}
