// ANSI SGR colour codes to styled segments. Segments carry text and class names only; they are
// rendered with textContent, so a log line can never inject markup.
"use strict";

const ANSI_PATTERN = /\x1b\[([0-9;]*)m/g;
const ANSI_OTHER = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Splits a line into [{text, classes}] following SGR codes; other escape codes are dropped. */
function ansiSegments(line) {
  const segments = [];
  let style = { fg: null, bold: false, dim: false, italic: false, underline: false };
  let last = 0;
  const push = (text) => {
    text = text.replace(ANSI_OTHER, "");
    if (!text) return;
    const classes = [];
    if (style.fg) classes.push("fg-" + style.fg);
    for (const flag of ["bold", "dim", "italic", "underline"]) if (style[flag]) classes.push(flag);
    segments.push({ text, classes: classes.join(" ") });
  };
  for (const match of line.matchAll(ANSI_PATTERN)) {
    push(line.slice(last, match.index));
    last = match.index + match[0].length;
    const codes = match[1] === "" ? [0] : match[1].split(";").map(Number);
    for (const code of codes) {
      if (code === 0) style = { fg: null, bold: false, dim: false, italic: false, underline: false };
      else if (code === 1) style.bold = true;
      else if (code === 2) style.dim = true;
      else if (code === 3) style.italic = true;
      else if (code === 4) style.underline = true;
      else if (code === 22) { style.bold = false; style.dim = false; }
      else if (code === 23) style.italic = false;
      else if (code === 24) style.underline = false;
      else if (code === 39) style.fg = null;
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) style.fg = code;
    }
  }
  push(line.slice(last));
  return segments;
}

/** The text of a line without escape codes, for search and copy. */
function ansiStrip(line) {
  return line.replace(ANSI_PATTERN, "").replace(ANSI_OTHER, "");
}
