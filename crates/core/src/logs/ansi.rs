//! The one reading of ANSI escape codes in log lines: [`plain`] gives a line's text without them
//! (what search, Copy and Save see) and [`segments`] the same text in styled runs (what the log
//! viewer shows), so the two can never disagree about which characters a line has.
//!
//! The grammar is ECMA-48's, as terminals read it: `ESC [` parameters, intermediates and one final
//! byte (CSI; only `m`, SGR, changes the style, every other CSI is dropped), `ESC ]`, `ESC P`,
//! `ESC X`, `ESC ^` and `ESC _` strings up to ST (`ESC \`) or BEL (OSC hyperlinks and titles:
//! dropped), `ESC` with intermediates and a final byte (charset and keypad switches: dropped), and a
//! lone `ESC` (dropped). A sequence cut off by the end of the line is dropped to the end; one broken
//! by a byte its grammar has no place for ends before that byte, which is text again.
//!
//! SGR: reset (0), bold (1), dim (2), italic (3), underline (4), their ends (22, 23, 24), the 16
//! foreground colours (30–37, 90–97) and the default (39), and 256-colour foregrounds of the first
//! sixteen (`38;5;N`); other colours (backgrounds, true colour) are read past and not shown.
use std::{borrow::Cow, ops::Range};

use serde::Serialize;

const ESC: u8 = 0x1b;

/// A run of a line's text in one style, as the log viewer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The text, without escape codes (set as text, never parsed as markup).
    pub text: String,
    /// The viewer's classes for its style (`fg-31 bold`); empty for the plain style.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub classes: String,
    /// A search match: the viewer marks it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mark: bool,
}

/// The style SGR codes set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    /// The foreground as its SGR code (30–37, 90–97); `None`: the default.
    fg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Style {
    /// The viewer's classes (ui/logs.css): `fg-<code>`, then `bold`, `dim`, `italic`, `underline`.
    fn classes(self) -> String {
        let mut classes: Vec<String> = self.fg.map(|code| format!("fg-{code}")).into_iter().collect();
        let flags = [(self.bold, "bold"), (self.dim, "dim"), (self.italic, "italic"), (self.underline, "underline")];
        classes.extend(flags.iter().filter(|(on, _)| *on).map(|(_, name)| (*name).to_string()));
        classes.join(" ")
    }

    /// Applies one SGR sequence's parameters (`1;31`, `38;5;9`, `4:3`; empty is a reset).
    fn apply(&mut self, parameters: &str) {
        let mut params = parameters.split(';');
        while let Some(param) = params.next() {
            // `:` separates a parameter's own sub-parameters (`38:5:9`, `4:3`).
            let mut parts = param.split(':').map(|p| p.parse::<u16>().unwrap_or(0));
            let code = parts.next().unwrap_or(0);
            let subs: Vec<u16> = parts.collect();
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = subs.first() != Some(&0),
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 | 90..=97 => self.fg = u8::try_from(code).ok(),
                39 => self.fg = None,
                38 | 48 => {
                    // An extended colour takes its arguments from the sub-parameters, or else from
                    // the parameters that follow: `5;N` or `2;R;G;B`.
                    let args: Vec<u16> = if param.contains(':') {
                        subs
                    } else {
                        let kind = params.next().map_or(0, |p| p.parse::<u16>().unwrap_or(0));
                        let count = if kind == 5 {
                            1
                        } else if kind == 2 {
                            3
                        } else {
                            0
                        };
                        std::iter::once(kind)
                            .chain(params.by_ref().take(count).map(|p| p.parse::<u16>().unwrap_or(0)))
                            .collect()
                    };
                    if code == 38 {
                        self.fg = match args.as_slice() {
                            [5, n @ 0..=7] => Some(30 + *n as u8),
                            [5, n @ 8..=15] => Some(90 + (*n - 8) as u8),
                            // A colour the viewer has no class for shows in the default one.
                            _ => None,
                        };
                    }
                }
                _ => {}
            }
        }
    }
}

/// One piece of a line: text, or an SGR sequence's parameters.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Sgr(&'a str),
}

/// The pieces of `line`, escape codes other than SGR left out.
fn pieces(line: &str) -> impl Iterator<Item = Piece<'_>> {
    let bytes = line.as_bytes();
    let mut at = 0;
    let mut pending_sgr: Option<&str> = None;
    std::iter::from_fn(move || {
        if let Some(sgr) = pending_sgr.take() {
            return Some(Piece::Sgr(sgr));
        }
        while at < bytes.len() {
            let Some(esc) = bytes[at..].iter().position(|&b| b == ESC).map(|i| at + i) else {
                let text = &line[at..];
                at = bytes.len();
                return Some(Piece::Text(text));
            };
            let text = &line[at..esc];
            let (end, sgr) = sequence(bytes, esc);
            // Every end is an ASCII byte's position or the line's end, so a char boundary.
            at = end;
            let sgr = sgr.map(|range| &line[range]);
            match (text.is_empty(), sgr) {
                (true, Some(sgr)) => return Some(Piece::Sgr(sgr)),
                (true, None) => continue,
                (false, sgr) => {
                    pending_sgr = sgr;
                    return Some(Piece::Text(text));
                }
            }
        }
        None
    })
}

/// The escape sequence at `bytes[esc]` (an ESC): where it ends, and an SGR's parameters.
fn sequence(bytes: &[u8], esc: usize) -> (usize, Option<Range<usize>>) {
    let Some(&kind) = bytes.get(esc + 1) else { return (bytes.len(), None) };
    match kind {
        b'[' => {
            let start = esc + 2;
            let mut at = start;
            while at < bytes.len() && (0x30..=0x3f).contains(&bytes[at]) {
                at += 1;
            }
            let parameters_end = at;
            while at < bytes.len() && (0x20..=0x2f).contains(&bytes[at]) {
                at += 1;
            }
            match bytes.get(at) {
                None => (bytes.len(), None),
                Some(b'm')
                    if at == parameters_end
                        && bytes[start..at].iter().all(|b| b.is_ascii_digit() || *b == b';' || *b == b':') =>
                {
                    (at + 1, Some(start..at))
                }
                Some(0x40..=0x7e) => (at + 1, None),
                // Broken off: the byte that broke it is text again.
                Some(_) => (at, None),
            }
        }
        b']' | b'P' | b'X' | b'^' | b'_' => {
            let mut at = esc + 2;
            while at < bytes.len() {
                match bytes[at] {
                    0x07 => return (at + 1, None),
                    ESC if bytes.get(at + 1) == Some(&b'\\') => return (at + 2, None),
                    _ => at += 1,
                }
            }
            (bytes.len(), None)
        }
        0x20..=0x2f => {
            let mut at = esc + 1;
            while at < bytes.len() && (0x20..=0x2f).contains(&bytes[at]) {
                at += 1;
            }
            match bytes.get(at) {
                None => (bytes.len(), None),
                Some(0x30..=0x7e) => (at + 1, None),
                Some(_) => (at, None),
            }
        }
        0x30..=0x7e => (esc + 2, None),
        // A lone ESC: only it goes.
        _ => (esc + 1, None),
    }
}

/// Appends `line`'s text without its escape codes to `out`.
pub fn plain_into(line: &str, out: &mut String) {
    if !line.as_bytes().contains(&ESC) {
        out.push_str(line);
        return;
    }
    for piece in pieces(line) {
        if let Piece::Text(text) = piece {
            out.push_str(text);
        }
    }
}

/// `line`'s text without its escape codes.
pub fn plain(line: &str) -> Cow<'_, str> {
    if !line.as_bytes().contains(&ESC) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    plain_into(line, &mut out);
    Cow::Owned(out)
}

/// `line` as styled runs of its [`plain`] text; `marks` (byte ranges of the plain text, in order,
/// not overlapping) become runs of their own with `mark` set.
pub fn segments(line: &str, marks: &[Range<usize>]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut style = Style::default();
    let mut classes = String::new();
    // Where in the plain text the next piece of text starts.
    let mut offset = 0;
    let mut marks = marks.iter().peekable();
    for piece in pieces(line) {
        let text = match piece {
            Piece::Sgr(parameters) => {
                style.apply(parameters);
                classes = style.classes();
                continue;
            }
            Piece::Text(text) => text,
        };
        let end = offset + text.len();
        let mut at = offset;
        while at < end {
            while marks.next_if(|mark| mark.end <= at).is_some() {}
            let (next, mark) = match marks.peek() {
                Some(mark) if mark.start <= at => (mark.end.min(end), true),
                Some(mark) => (mark.start.min(end), false),
                None => (end, false),
            };
            // Marks come from the plain text's own char boundaries; a range that is not on one
            // is left unmarked rather than cutting a character.
            let Some(part) = text.get(at - offset..next - offset) else {
                push(&mut out, &text[at - offset..], &classes, false);
                break;
            };
            push(&mut out, part, &classes, mark);
            at = next;
        }
        offset = end;
    }
    out
}

/// Adds `text` to the runs, joining the last one when it has the same style and mark.
fn push(out: &mut Vec<Segment>, text: &str, classes: &str, mark: bool) {
    if text.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.classes == classes && last.mark == mark => last.text.push_str(text),
        _ => out.push(Segment { text: text.to_string(), classes: classes.to_string(), mark }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(line: &str) -> Vec<(String, String)> {
        segments(line, &[]).into_iter().map(|s| (s.text, s.classes)).collect()
    }

    fn run(text: &str, classes: &str) -> (String, String) {
        (text.to_string(), classes.to_string())
    }

    #[test]
    fn sgr_colours_and_flags_become_classes() {
        assert_eq!(
            runs("\u{1b}[31mERROR\u{1b}[0m plain \u{1b}[1mbold\u{1b}[0m end"),
            [run("ERROR", "fg-31"), run(" plain ", ""), run("bold", "bold"), run(" end", "")]
        );
        assert_eq!(
            runs("\u{1b}[1;92mok\u{1b}[22m still green\u{1b}[39m\u{1b}[2;3;4m dim\u{1b}[23;24m"),
            [run("ok", "fg-92 bold"), run(" still green", "fg-92"), run(" dim", "dim italic underline")]
        );
        assert_eq!(runs("\u{1b}[mreset\u{1b}[4:3mcurly\u{1b}[4:0m"), [run("reset", ""), run("curly", "underline")]);
        // Extended colours: their arguments are not read as codes of their own (`38;5;1` is not
        // bold; `48;5;31` is no red foreground).
        assert_eq!(
            runs("\u{1b}[38;5;1mred\u{1b}[38;5;9mbright\u{1b}[38;5;196mdeep\u{1b}[48;5;31;38;2;1;2;3mtrue"),
            [run("red", "fg-31"), run("bright", "fg-91"), run("deeptrue", "")]
        );
        assert_eq!(runs("\u{1b}[38:5:2mgreen"), [run("green", "fg-32")]);
    }

    #[test]
    fn other_sequences_are_dropped_whole_and_only_they() {
        let cases = [
            ("\u{1b}[2K\u{1b}[1Gprogress", "progress"),
            ("\u{1b}[?25lhidden\u{1b}[?25h", "hidden"),
            ("\u{1b}]8;;https://example.com\u{7}link\u{1b}]8;;\u{1b}\\ text", "link text"),
            ("\u{1b}]0;title\u{1b}\\after", "after"),
            ("\u{1b}(Bcharset \u{1b}=keypad \u{1b}7saved", "charset keypad saved"),
            ("lone \u{1b}", "lone "),
            ("cut \u{1b}[31", "cut "),
            ("cut \u{1b}]8;;never ends", "cut "),
            ("broken \u{1b}[31\nnext", "broken \nnext"),
            ("\u{1b}[31mé\u{1b}[0mtoile ✓", "étoile ✓"),
            ("no codes at all", "no codes at all"),
        ];
        for (line, text) in cases {
            assert_eq!(plain(line), text, "{line:?}");
            let shown: String = segments(line, &[]).into_iter().map(|s| s.text).collect();
            assert_eq!(shown, text, "the rows show what search sees: {line:?}");
        }
    }

    #[test]
    fn marks_split_runs_across_styles() {
        // "ERROR plain": a mark over "OR pl" spans the red run and the plain one.
        let line = "\u{1b}[31mERROR\u{1b}[0m plain";
        let got: Vec<(String, String, bool)> =
            segments(line, &[Range { start: 3, end: 8 }]).into_iter().map(|s| (s.text, s.classes, s.mark)).collect();
        let want = [("ERR", "fg-31", false), ("OR", "fg-31", true), (" pl", "", true), ("ain", "", false)];
        assert_eq!(got, want.map(|(t, c, m)| (t.to_string(), c.to_string(), m)));
        // Two marks, one at the very start and one at the end.
        let got: Vec<bool> = segments("abcabc", &[0..3, 3..6]).into_iter().map(|s| s.mark).collect();
        assert_eq!(got, [true], "adjacent marks join");
        let got: Vec<(String, bool)> = segments("a b a", &[0..1, 4..5]).into_iter().map(|s| (s.text, s.mark)).collect();
        assert_eq!(got, [("a".into(), true), (" b ".into(), false), ("a".into(), true)]);
    }

    #[test]
    fn segments_serialize_small_and_as_text() {
        let json = serde_json::to_value(segments("<b>x</b>", &[])).ok();
        assert_eq!(json, Some(serde_json::json!([{"text": "<b>x</b>"}])));
        let json = serde_json::to_value(segments("\u{1b}[31mx", &[Range { start: 0, end: 1 }])).ok();
        assert_eq!(json, Some(serde_json::json!([{"text": "x", "classes": "fg-31", "mark": true}])));
    }
}
