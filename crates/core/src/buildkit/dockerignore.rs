//! `.dockerignore` as Docker reads it (moby/patternmatcher and its `ignorefile`), not as git reads
//! `.gitignore`: one pattern per line, `#` comments, `!` exceptions where the last matching line
//! wins, paths cleaned and taken from the context's root (a leading `/` changes nothing), `*` and
//! `?` within one path element, `**` across any number of them, and a pattern that matches a
//! folder also matches everything in it. The same rules select what a build's context sends.
use regex::Regex;

use crate::buildkit::error::BuildkitError;
use crate::Result;

/// The patterns of a `.dockerignore`, in order.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!`, as the user wrote it.
    text: String,
    /// An exception (`!`): a path it matches is sent after all.
    exception: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: the path itself.
    Exact(String),
    /// `prefix/**`: anything under the prefix (and the prefix's own longer names, as Docker does).
    Prefix(String),
    /// `**/suffix` with no other wildcard: any path that ends so.
    Suffix(String),
    Regex(Regex),
}

impl IgnoreRules {
    /// Reads a `.dockerignore` (as `ignorefile.ReadAll` does, then `patternmatcher.New`).
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_file(".dockerignore", text)
    }

    /// Reads an ignore file; `file` names it in errors (`Dockerfile.dockerignore`, say).
    pub fn parse_file(file: &str, text: &str) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = text.lines().enumerate().filter(|(_, raw)| !raw.starts_with('#'));
        Self::from_lines(file, lines.map(|(number, raw)| (number + 1, raw)))
    }

    /// Rules made of patterns as BuildKit sends them (`exclude-patterns`): already read from an
    /// ignore file, one per entry, `!` for exceptions (a `#` here is part of a pattern).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        Self::from_lines("the build's exclude patterns", patterns.iter().enumerate().map(|(i, p)| (i + 1, p.as_ref())))
    }

    fn from_lines<'a>(file: &str, lines: impl Iterator<Item = (usize, &'a str)>) -> Result<Self> {
        let mut patterns = Vec::new();
        for (number, raw) in lines {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, rest) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let invalid = |reason: &str| BuildkitError::InvalidIgnorePattern {
                file: file.to_string(),
                line: number,
                pattern: line.to_string(),
                reason: reason.to_string(),
            };
            if rest.is_empty() {
                return Err(invalid("a `!` must be followed by the pattern it makes an exception of").into());
            }
            let mut cleaned = clean(rest);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let matcher = Matcher::compile(&cleaned).map_err(|reason| invalid(&reason))?;
            patterns.push(Pattern { text: cleaned, exception, matcher });
        }
        Ok(Self { patterns })
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns, `!` before exceptions: what a build passes on.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns.iter().map(|p| if p.exception { format!("!{}", p.text) } else { p.text.clone() }).collect()
    }

    /// Some pattern is an exception (`!`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether a pattern (an exception when `exceptions`, a plain one otherwise) could match
    /// something inside the folder `dir`, so that a walk must go into it. As fsutil decides: a
    /// pattern with a wildcard before its trailing `/**` or `/*` might match anywhere; a plain path
    /// matches inside `dir` when it lies under it.
    pub fn may_match_inside(&self, dir: &str, exceptions: bool) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns.iter().filter(|p| p.exception == exceptions).any(|pattern| {
            let text =
                pattern.text.strip_suffix("/**").or_else(|| pattern.text.strip_suffix("/*")).unwrap_or(&pattern.text);
            text.contains(['*', '[', ']', '?', '^', '\\']) || format!("{text}/").starts_with(&dir_slash)
        })
    }

    /// Whether the rules leave out `path` (relative to the context, `/`-separated): the last
    /// pattern that matches it or one of its parent folders decides.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(end) => path[..end].split('/').collect(),
            None => Vec::new(),
        };
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that could change the answer is tried.
            if pattern.exception != excluded {
                continue;
            }
            let matched = pattern.matcher.matches(&path)
                || (1..=parents.len()).any(|depth| pattern.matcher.matches(&parents[..depth].join("/")));
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }
}

impl Matcher {
    /// Docker's translation of a pattern (`Pattern.compile`), with `/` as the separator.
    fn compile(pattern: &str) -> std::result::Result<Self, String> {
        let mut regex = String::from("^");
        let mut kind = Kind::Exact;
        let mut chars = pattern.chars().peekable();
        let mut first = true;
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_none() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            regex.push_str(".*");
                            kind = Kind::Regex;
                        }
                    } else {
                        regex.push_str("(.*/)?");
                        kind = Kind::Regex;
                    }
                    if first {
                        kind = Kind::Suffix;
                    }
                }
                '*' => {
                    regex.push_str("[^/]*");
                    kind = Kind::Regex;
                }
                '?' => {
                    regex.push_str("[^/]");
                    kind = Kind::Regex;
                }
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                    regex.push('\\');
                    regex.push(c);
                }
                '\\' => match chars.next() {
                    Some(next) => {
                        regex.push('\\');
                        regex.push(next);
                        kind = Kind::Regex;
                    }
                    // Go's path matching refuses a pattern that ends in an escape.
                    None => return Err("it ends with a `\\` that escapes nothing".to_string()),
                },
                '[' | ']' => {
                    regex.push(c);
                    kind = Kind::Regex;
                }
                other => regex.push(other),
            }
            first = false;
        }
        Ok(match kind {
            Kind::Exact => Matcher::Exact(pattern.to_string()),
            // `prefix/**` and `prefix**`: what comes before the two stars.
            Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
            Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
            Kind::Regex => {
                regex.push('$');
                Matcher::Regex(Regex::new(&regex).map_err(|err| match err {
                    regex::Error::Syntax(_) => "it is not a valid pattern (check its [ ] and \\ escapes)".to_string(),
                    other => other.to_string(),
                })?)
            }
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(exact) => path == exact,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(regex) => regex.is_match(path),
        }
    }
}

#[derive(PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Go's `path.Clean`: the shortest path naming the same place, by lexical rules alone.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).expect("valid rules")
    }

    fn left_out(rules: &IgnoreRules, paths: &[&str]) -> Vec<String> {
        paths.iter().filter(|p| rules.excludes(p)).map(|p| p.to_string()).collect()
    }

    // The examples of Docker's documentation ("Dockerignore files", docs.docker.com/build/concepts/context/).
    #[test]
    fn the_documented_examples() {
        let r = rules("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert_eq!(
            left_out(
                &r,
                &[
                    "somedir/temporary.txt",
                    "somedir/temp",
                    "somedir/subdir/temporary.txt",
                    "tempa",
                    "tempb",
                    "temp.txt",
                    "temporary",
                    "a/b/c/temp"
                ]
            ),
            ["somedir/temporary.txt", "somedir/temp", "somedir/subdir/temporary.txt", "tempa", "tempb"]
        );
        assert!(!r.excludes("# comment"), "a comment is not a pattern");

        let r = rules("**/*.go\n");
        assert_eq!(
            left_out(&r, &["main.go", "cmd/tool/main.go", "go.mod", "docs/go"]),
            ["main.go", "cmd/tool/main.go"]
        );

        let r = rules("*.md\n!README.md\n");
        assert_eq!(left_out(&r, &["CHANGES.md", "README.md", "docs/x.md"]), ["CHANGES.md"]);

        // The last line that matches decides.
        let r = rules("*.md\n!README*.md\nREADME-secret.md\n");
        assert_eq!(
            left_out(&r, &["README-secret.md", "README-public.md", "NOTES.md"]),
            ["README-secret.md", "NOTES.md"]
        );
        let r = rules("*.md\nREADME-secret.md\n!README*.md\n");
        assert_eq!(left_out(&r, &["README-secret.md", "NOTES.md"]), ["NOTES.md"]);
    }

    #[test]
    fn a_leading_slash_spaces_and_dots_change_nothing() {
        let r = rules("/secret.txt\n  build/  \n./a/../b\n");
        assert_eq!(
            left_out(&r, &["secret.txt", "build/out.o", "build", "b", "a", "x/secret.txt"]),
            ["secret.txt", "build/out.o", "build", "b"]
        );
        assert_eq!(r.patterns(), ["secret.txt", "build", "b"]);
    }

    #[test]
    fn a_folder_pattern_takes_what_is_inside_and_an_exception_can_bring_one_back() {
        let r = rules("node_modules\ndata\n!data/keep.txt\n");
        assert_eq!(
            left_out(&r, &["node_modules/x/index.js", "data/a.bin", "data/keep.txt", "src/data"]),
            ["node_modules/x/index.js", "data/a.bin"]
        );
    }

    #[test]
    fn double_stars_anywhere() {
        let r = rules("**/cache/**\nlogs/**\n**\n!src\n!src/**\n");
        assert_eq!(
            left_out(&r, &["a/cache/b", "logs/x/y", "top.txt", "src/main.rs", "src"]),
            ["a/cache/b", "logs/x/y", "top.txt"]
        );
        let r = rules("a/**/z\n");
        assert_eq!(left_out(&r, &["a/z", "a/b/z", "a/b/c/z", "b/a/z", "a/zz"]), ["a/z", "a/b/z", "a/b/c/z"]);
    }

    #[test]
    fn classes_escapes_and_regex_characters_are_literal_where_docker_keeps_them() {
        let r = rules("file[0-9].txt\nv1.0+(beta)\n\\*literal\n");
        assert_eq!(
            left_out(&r, &["file1.txt", "fileA.txt", "v1.0+(beta)", "v1x0+(beta)", "*literal", "xliteral"]),
            ["file1.txt", "v1.0+(beta)", "*literal"]
        );
    }

    #[test]
    fn a_byte_order_mark_and_crlf_lines_are_read() {
        let r = rules("\u{feff}secret\r\n!secret/ok\r\n");
        assert_eq!(left_out(&r, &["secret/key", "secret/ok"]), ["secret/key"]);
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let err = IgnoreRules::parse("ok\n!\n").unwrap_err();
        assert!(matches!(err, Error::Buildkit(BuildkitError::InvalidIgnorePattern { line: 2, .. })), "{err:?}");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = IgnoreRules::parse("file[0-9.txt\n").unwrap_err();
        assert!(matches!(err, Error::Buildkit(BuildkitError::InvalidIgnorePattern { line: 1, .. })), "{err:?}");
        let err = IgnoreRules::parse_file("Dockerfile.dockerignore", "\n\ntrailing\\\n").unwrap_err();
        assert!(err.to_string().starts_with("line 3 of Dockerfile.dockerignore"), "{err}");
    }

    #[test]
    fn clean_is_go_s() {
        for (path, cleaned) in
            [("a//b/./c/..", "a/b"), ("./", "."), ("../x", "../x"), ("/../x", "/x"), ("a/..", "."), ("", ".")]
        {
            assert_eq!(clean(path), cleaned, "{path}");
        }
    }

    #[test]
    fn patterns_as_buildkit_sends_them() {
        let r = IgnoreRules::from_patterns(&["*.log", "!keep.log", "#notes"]).unwrap();
        assert_eq!(left_out(&r, &["a.log", "keep.log", "#notes"]), ["a.log", "#notes"]);
        assert!(IgnoreRules::from_patterns::<&str>(&[]).unwrap().is_empty());
    }
}
