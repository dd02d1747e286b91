//! The app's store of the backend's log lines: compact (one text buffer and one offset per line,
//! not a `String` per line), capped at [`MAX_LINES`] (the oldest go first), with each line's
//! stream and timestamp. The log viewer asks it for the rows in view and for search results, so
//! the lines never travel to the web view, which only ever shows a screenful.
//!
//! Lines are numbered from the first line ever received (`0`); after the cap drops old lines, the
//! first kept line has a number above `0`, so a number the viewer holds keeps meaning the same
//! line.
use std::borrow::Cow;

use serde::Serialize;

use crate::{
    logs::{
        ansi::{self, Segment},
        stream::split_timestamp,
    },
    time,
};

/// No timestamp in [`LogStore::stamps`].
const NO_STAMP: i64 = i64::MIN;

/// The most lines kept.
pub const MAX_LINES: usize = 1_000_000;

/// How many lines past the cap may wait before the oldest are dropped, so that dropping (which
/// moves the kept text) happens once per this many lines, not once per line.
const DROP_SLACK: usize = MAX_LINES / 20;

/// One line as the viewer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Its number (see the module doc).
    pub n: u64,
    /// Its text in styled runs, read by the one ANSI grammar ([`ansi`]), the search's matches
    /// marked: the viewer sets each as text, with the classes given.
    pub segments: Vec<Segment>,
    /// Docker's timestamp, when it had one (as `docker logs -t` prints it).
    pub ts: Option<String>,
    /// It came from stderr.
    pub err: bool,
}

impl Row {
    /// Its text as shown: what search sees, and Copy and Save write.
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect()
    }
}

/// The lines, compactly.
#[derive(Debug)]
pub struct LogStore {
    /// Every kept line's timestamp and text, one after the other, without separators.
    text: String,
    /// Where each kept line starts in `text`, and one more entry for the end of the last.
    starts: Vec<usize>,
    /// How many bytes at each line's start are its timestamp kept as text (0: none, or kept in
    /// `stamps`).
    stamp_lengths: Vec<u8>,
    /// Each line's timestamp as nanoseconds since 1970 ([`NO_STAMP`]: none, or kept as text).
    /// Docker's stamps are 30 bytes of text and nearly all come back the same from 8 bytes.
    stamps: Vec<i64>,
    /// Stderr flags, one bit per kept line.
    stderr: Vec<u64>,
    /// The number of the first kept line.
    first: u64,
    /// The cap, [`MAX_LINES`] but for tests.
    cap: usize,
    /// The search: its query, lower-cased by [`lower`] (empty: none), and the numbers of the lines
    /// that match, in order, kept up to date as lines come and go.
    query: String,
    matches: Vec<u64>,
}

impl Default for LogStore {
    fn default() -> Self {
        Self::with_cap(MAX_LINES)
    }
}

impl LogStore {
    /// An empty store that keeps at most `cap` lines.
    pub fn with_cap(cap: usize) -> Self {
        Self {
            text: String::new(),
            starts: vec![0],
            stamp_lengths: Vec::new(),
            stamps: Vec::new(),
            stderr: Vec::new(),
            first: 0,
            cap,
            query: String::new(),
            matches: Vec::new(),
        }
    }

    /// Lines kept now.
    pub fn len(&self) -> usize {
        self.stamp_lengths.len()
    }

    /// No lines.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of the first kept line.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The number the next line will get.
    pub fn end(&self) -> u64 {
        self.first + self.len() as u64
    }

    /// Adds a line as `docker logs --timestamps` gives it (the timestamp, a space, the text).
    pub fn push(&mut self, is_err: bool, line: &str) {
        let (stamp, rest) = split_timestamp(line);
        let stamp = stamp.filter(|s| s.len() <= usize::from(u8::MAX)).unwrap_or("");
        let compact = time::parse_rfc3339_nano_fixed(stamp);
        let text_stamp = if compact.is_some() { "" } else { stamp };
        let index = self.len();
        self.text.push_str(text_stamp);
        self.text.push_str(if stamp.is_empty() { line } else { rest });
        self.starts.push(self.text.len());
        self.stamp_lengths.push(text_stamp.len() as u8);
        self.stamps.push(compact.unwrap_or(NO_STAMP));
        if index / 64 >= self.stderr.len() {
            self.stderr.push(0);
        }
        if is_err {
            self.stderr[index / 64] |= 1 << (index % 64);
        }
        if !self.query.is_empty() && self.matches_query(index) {
            self.matches.push(self.first + index as u64);
        }
        if self.len() > self.cap + self.slack() {
            self.drop_oldest(self.len() - self.cap);
        }
    }

    fn slack(&self) -> usize {
        DROP_SLACK.min(self.cap / 20)
    }

    /// Drops the `count` oldest lines (whole stderr words at a time stay aligned by rebuilding).
    fn drop_oldest(&mut self, count: usize) {
        let cut = self.starts[count];
        self.text.drain(..cut);
        self.starts.drain(..count);
        for start in &mut self.starts {
            *start -= cut;
        }
        self.stamp_lengths.drain(..count);
        self.stamps.drain(..count);
        let flags: Vec<bool> = (count..count + self.len()).map(|i| self.stderr_at(i)).collect();
        self.stderr = vec![0; flags.len().div_ceil(64)];
        for (i, flag) in flags.into_iter().enumerate() {
            if flag {
                self.stderr[i / 64] |= 1 << (i % 64);
            }
        }
        self.first += count as u64;
        let first = self.first;
        let gone = self.matches.partition_point(|&n| n < first);
        self.matches.drain(..gone);
    }

    fn stderr_at(&self, index: usize) -> bool {
        self.stderr.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Forgets every line (the viewer's Clear); numbers go on from where they were.
    pub fn clear(&mut self) {
        self.first = self.end();
        self.text.clear();
        self.starts = vec![0];
        self.stamp_lengths.clear();
        self.stamps.clear();
        self.stderr.clear();
        self.matches.clear();
    }

    /// The kept line at `index` (0 = the first kept): its timestamp and its text.
    fn parts(&self, index: usize) -> (Cow<'_, str>, &str) {
        let (start, end) = (self.starts[index], self.starts[index + 1]);
        let stamp_end = start + usize::from(self.stamp_lengths[index]);
        let stamp = match self.stamps[index] {
            NO_STAMP => Cow::Borrowed(&self.text[start..stamp_end]),
            nanos => Cow::Owned(time::rfc3339_nano_fixed(nanos)),
        };
        (stamp, &self.text[stamp_end..end])
    }

    /// The kept line at `index`'s text, without its timestamp.
    fn text_at(&self, index: usize) -> &str {
        &self.text[self.starts[index] + usize::from(self.stamp_lengths[index])..self.starts[index + 1]]
    }

    /// Up to `count` rows from line number `from` on (clamped to what is kept).
    pub fn rows(&self, from: u64, count: usize) -> Vec<Row> {
        let start = from.saturating_sub(self.first).min(self.len() as u64) as usize;
        (start..self.len().min(start.saturating_add(count)))
            .map(|index| {
                let (stamp, text) = self.parts(index);
                let marks = if self.query.is_empty() { Vec::new() } else { find(&ansi::plain(text), &self.query) };
                Row {
                    n: self.first + index as u64,
                    segments: ansi::segments(text, &marks),
                    ts: (!stamp.is_empty()).then(|| stamp.into_owned()),
                    err: self.stderr_at(index),
                }
            })
            .collect()
    }

    /// Every kept line as plain text (ANSI codes removed), with timestamps when asked, one per
    /// line: what Save writes and Copy copies.
    pub fn plain_text(&self, timestamps: bool) -> String {
        let mut out = String::with_capacity(self.text.len() + self.len() * 2);
        for index in 0..self.len() {
            let (stamp, text) = self.parts(index);
            if timestamps && !stamp.is_empty() {
                out.push_str(&stamp);
                out.push(' ');
            }
            ansi::plain_into(text, &mut out);
            out.push('\n');
        }
        out
    }

    /// Searches for `query` (ignoring case and ANSI codes; empty: no search) and keeps its
    /// matches up to date as lines come and go; returns how many lines match.
    pub fn set_query(&mut self, query: &str) -> usize {
        self.query = lower(query);
        self.matches = if self.query.is_empty() {
            Vec::new()
        } else {
            (0..self.len()).filter(|&index| self.matches_query(index)).map(|index| self.first + index as u64).collect()
        };
        self.matches.len()
    }

    /// How many kept lines match the search.
    pub fn match_count(&self) -> usize {
        self.matches.len()
    }

    /// The number of the `index`th matching line (0 = the first).
    pub fn match_line(&self, index: usize) -> Option<u64> {
        self.matches.get(index).copied()
    }

    /// The index of the first match at line `line` or after it, if any.
    pub fn match_from(&self, line: u64) -> Option<usize> {
        let index = self.matches.partition_point(|&n| n < line);
        (index < self.matches.len()).then_some(index)
    }

    fn matches_query(&self, index: usize) -> bool {
        let text = self.text_at(index);
        let query = self.query.as_str();
        let plain = ansi::plain(text);
        // The common case, without lower-casing a copy: the same answer as `find`, for ASCII
        // (whose lower case is ASCII's).
        if plain.is_ascii() && query.is_ascii() {
            return contains_ascii_ignoring_case(plain.as_bytes(), query.as_bytes());
        }
        // `find` finds something exactly when the folded text contains the query.
        lower(&plain).contains(query)
    }
}

fn contains_ascii_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle))
}

/// `text` lower-cased character by character (not as `str::to_lowercase`, whose final sigma would
/// make the folded text depend on what follows a match).
fn lower(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// [`lower`], with, for each byte of the result, where the
/// character it came from starts in `text` (a character may lower-case to several).
fn fold(text: &str) -> (String, Vec<usize>) {
    let mut lower = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        for l in c.to_lowercase() {
            lower.push(l);
            origin.resize(lower.len(), at);
        }
    }
    (lower, origin)
}

/// Where `query` (already [`lower`]ed) occurs in `plain`, ignoring case: byte ranges of
/// `plain`, in order, not overlapping. What the search counts and the viewer marks.
fn find(plain: &str, query: &str) -> Vec<std::ops::Range<usize>> {
    if query.is_empty() {
        return Vec::new();
    }
    let (lower, origin) = fold(plain);
    let char_end = |at: usize| at + plain[at..].chars().next().map_or(0, char::len_utf8);
    lower.match_indices(query).map(|(start, hit)| origin[start]..char_end(origin[start + hit.len() - 1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(lines: &[(bool, &str)]) -> LogStore {
        let mut store = LogStore::default();
        for (is_err, line) in lines {
            store.push(*is_err, line);
        }
        store
    }

    #[test]
    fn rows_come_back_with_their_stamp_stream_and_number() {
        let store = store(&[
            (false, "2026-11-29T17:00:00.123456789Z first"),
            (true, "2026-11-29T17:00:01Z \u{1b}[31msecond\u{1b}[0m"),
            (false, "no stamp here"),
        ]);
        assert_eq!(store.len(), 3);
        let run = |text: &str, classes: &str| Segment { text: text.into(), classes: classes.into(), mark: false };
        assert_eq!(
            store.rows(1, 5),
            vec![
                Row {
                    n: 1,
                    segments: vec![run("second", "fg-31")],
                    ts: Some("2026-11-29T17:00:01Z".into()),
                    err: true
                },
                Row { n: 2, segments: vec![run("no stamp here", "")], ts: None, err: false },
            ]
        );
        assert_eq!(store.rows(0, 1)[0].ts.as_deref(), Some("2026-11-29T17:00:00.123456789Z"));
        assert!(store.rows(7, 5).is_empty());
    }

    #[test]
    fn the_cap_drops_the_oldest_and_numbers_keep_their_lines() {
        let mut store = LogStore::with_cap(100);
        for i in 0..1000 {
            store.push(i % 3 == 0, &format!("2026-11-29T17:00:00Z line {i}"));
        }
        assert!(store.len() >= 100 && store.len() <= 105, "{}", store.len());
        assert_eq!(store.end(), 1000);
        let last = store.rows(999, 1);
        assert_eq!(last[0].text(), "line 999");
        assert!(last[0].err, "999 is a multiple of 3");
        let first = store.rows(0, 1);
        assert_eq!(first[0].n, store.first(), "a number before the first kept line gives the first");
        assert_eq!(first[0].text(), format!("line {}", store.first()));
        assert_eq!(first[0].err, store.first().is_multiple_of(3));
    }

    #[test]
    fn search_ignores_case_and_colour_and_save_writes_plain_text() {
        let store = store(&[
            (false, "2026-11-29T17:00:00Z Starting \u{1b}[1mBuildKit\u{1b}[0m"),
            (false, "2026-11-29T17:00:01Z ready"),
            (true, "2026-11-29T17:00:02Z buildkit: ÉTÉ"),
        ]);
        let mut store = store;
        assert_eq!(store.set_query("buildkit"), 2);
        assert_eq!((store.match_line(0), store.match_line(1), store.match_line(2)), (Some(0), Some(2), None));
        assert_eq!(store.match_from(1), Some(1));
        assert_eq!(store.match_from(3), None);
        assert_eq!(store.set_query("été"), 1);
        assert_eq!(store.set_query(""), 0);
        assert_eq!(store.plain_text(false), "Starting BuildKit\nready\nbuildkit: ÉTÉ\n");
        assert!(store.plain_text(true).starts_with("2026-11-29T17:00:00Z Starting BuildKit\n"));
    }

    #[test]
    fn the_rows_mark_exactly_what_the_search_counts() {
        let lines = [
            "\u{1b}[31mERR\u{1b}[0mOR split by a colour",
            "no match here",
            "error \u{1b}]8;;https://x\u{7}ErRoR\u{1b}]8;;\u{7} twice, one in a link",
            "\u{1b}[1mİstanbul ΣΊΣΥΦΟΣ\u{1b}[0m: ascii-less",
            "errorerror",
            "\u{1b}[31",
            "err\u{1b}[2Kor: a code inside the word",
        ];
        let mut store = store(&lines.map(|line| (false, line)));
        for query in ["error", "ERROR", "σ", "i̇st", "ror", "r: a", "erro"] {
            let count = store.set_query(query);
            let rows = store.rows(0, lines.len());
            let marked: Vec<u64> = rows.iter().filter(|r| r.segments.iter().any(|s| s.mark)).map(|r| r.n).collect();
            let matched: Vec<u64> = (0..count).filter_map(|i| store.match_line(i)).collect();
            assert_eq!(marked, matched, "{query}");
            // Each mark is the query, as the row shows its text.
            let folded = lower(query);
            for segment in rows.iter().flat_map(|r| &r.segments).filter(|s| s.mark) {
                let marked = lower(&segment.text);
                assert!(marked.contains(&folded) || folded.contains(&marked), "{query}: {segment:?}");
            }
        }
        store.set_query("error");
        let first: Vec<(String, bool)> =
            store.rows(0, 1)[0].segments.iter().map(|s| (s.text.clone(), s.mark)).collect();
        assert_eq!(first, [("ERR".into(), true), ("OR".into(), true), (" split by a colour".into(), false)]);
        assert_eq!(store.rows(2, 1)[0].segments.iter().filter(|s| s.mark).count(), 2);
        assert_eq!(
            store.rows(4, 1)[0].segments,
            [Segment { text: "errorerror".into(), classes: String::new(), mark: true }]
        );
    }

    #[test]
    fn matches_follow_new_lines_and_the_cap() {
        let mut store = LogStore::with_cap(100);
        store.set_query("7");
        for i in 0..1000 {
            store.push(false, &format!("line {i}"));
        }
        let expected: Vec<u64> = (store.first()..1000).filter(|n| n.to_string().contains('7')).collect();
        assert_eq!(store.match_count(), expected.len());
        assert_eq!(store.match_line(0), expected.first().copied());
        assert_eq!(store.match_line(expected.len() - 1), Some(997));
    }

    #[test]
    fn stamps_kept_as_numbers_come_back_as_docker_wrote_them() {
        // The forms themselves: time.rs's tests. Here: what the store keeps as a number or as text.
        let store = store(&[(false, "2026-11-29T17:00:00.5Z short"), (false, "2026-11-29T17:00:00.500000000Z fixed")]);
        let stamps: Vec<_> = store.rows(0, 2).iter().map(|row| (row.ts.clone().unwrap(), row.text())).collect();
        assert_eq!(
            stamps,
            [
                ("2026-11-29T17:00:00.5Z".into(), "short".into()),
                ("2026-11-29T17:00:00.500000000Z".into(), "fixed".into())
            ]
        );
        assert_eq!(store.text, "2026-11-29T17:00:00.5Zshortfixed", "only a stamp not in the engine's form is text");
    }

    #[test]
    fn markup_stays_text() {
        let store = store(&[(false, "<img src=x onerror=alert(1)>")]);
        assert_eq!(store.rows(0, 1)[0].text(), "<img src=x onerror=alert(1)>");
    }

    #[test]
    fn clear_forgets_and_numbers_go_on() {
        let mut store = store(&[(false, "a"), (false, "b")]);
        store.clear();
        assert!(store.is_empty());
        store.push(false, "c");
        let c = Segment { text: "c".into(), classes: String::new(), mark: false };
        assert_eq!(store.rows(0, 5), vec![Row { n: 2, segments: vec![c], ts: None, err: false }]);
    }
}
