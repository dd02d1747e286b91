//! What may be asked, checked twice: the front parses HTTP into an [`Ask`] and sends only its
//! canonical line to the back, which parses and checks that line again before it asks the engine
//! anything. Names, tags and digests follow the distribution spec's grammar; anything else is not a
//! question the mirror answers.
use std::fmt;

/// The longest repository name the distribution spec allows.
const MAX_NAME: usize = 255;

/// A repository name: lower-case components joined by `/` (`library/alpine`).
pub fn is_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(is_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    if bytes.is_empty() || !is_lower_alnum(bytes[0]) || !is_lower_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_lower_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_lower_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A digest we can check: `sha256:` and 64 lower-case hex digits.
pub fn is_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A registry host as a reference names it: DNS labels joined by dots, and an optional port
/// (`docker.io`, `localhost:5000`, `registry.example.com:443`).
pub fn is_registry_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    port_ok
        && !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// How an image is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn parse(text: &str) -> Option<Self> {
        if is_digest(text) {
            Some(Reference::Digest(text.to_string()))
        } else if is_tag(text) {
            Some(Reference::Tag(text.to_string()))
        } else {
            None
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) | Reference::Digest(t) => t,
        }
    }
}

/// Bytes `start` to `end` (inclusive; open-ended when `None`), as an HTTP `Range` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: Option<u64>,
}

impl Range {
    /// `bytes=START-` or `bytes=START-END`; suffix ranges and lists are not asked by registries'
    /// clients and are refused.
    pub fn parse_header(value: &str) -> Option<Self> {
        Self::parse_span(value.trim().strip_prefix("bytes=")?)
    }

    fn parse_span(span: &str) -> Option<Self> {
        let (start, end) = span.split_once('-')?;
        let start: u64 = parse_decimal(start)?;
        let end = if end.is_empty() { None } else { Some(parse_decimal(end)?) };
        if end.is_some_and(|end| end < start) {
            return None;
        }
        Some(Range { start, end })
    }
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// One question the front may put to the back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `GET /v2/`: is this a registry.
    Ping,
    /// An image manifest, by tag or digest, in `registry` (the `ns` containerd adds for a mirror).
    Manifest { registry: String, name: String, reference: Reference },
    /// A blob (config or layer) by digest, or a part of it.
    Blob { registry: String, name: String, digest: String, range: Option<Range> },
}

/// An [`Ask`], and whether only the headers are wanted (`HEAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub head: bool,
    pub ask: Ask,
}

/// The version word that starts every request line.
const WIRE: &str = "mirror/1";

impl Request {
    /// The one line the front sends: words of the grammar above, separated by spaces.
    pub fn line(&self) -> String {
        let method = if self.head { "HEAD" } else { "GET" };
        match &self.ask {
            Ask::Ping => format!("{WIRE} {method} ping - - - -\n"),
            Ask::Manifest { registry, name, reference } => {
                format!("{WIRE} {method} manifest {registry} {name} {} -\n", reference.as_str())
            }
            Ask::Blob { registry, name, digest, range } => {
                let range = match range {
                    None => "-".to_string(),
                    Some(Range { start, end: None }) => format!("{start}-"),
                    Some(Range { start, end: Some(end) }) => format!("{start}-{end}"),
                };
                format!("{WIRE} {method} blob {registry} {name} {digest} {range}\n")
            }
        }
    }

    /// Reads a line made by [`Request::line`], checking every word again; `None` for anything else.
    pub fn parse_line(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.strip_suffix('\n').unwrap_or(line).split(' ').collect();
        let [wire, method, kind, registry, name, reference, range] = words.as_slice() else {
            return None;
        };
        if *wire != WIRE {
            return None;
        }
        let head = match *method {
            "GET" => false,
            "HEAD" => true,
            _ => return None,
        };
        let ask = match *kind {
            "ping" if [*registry, *name, *reference, *range] == ["-"; 4] => Ask::Ping,
            "manifest" if is_registry_host(registry) && is_repository_name(name) && *range == "-" => Ask::Manifest {
                registry: registry.to_string(),
                name: name.to_string(),
                reference: Reference::parse(reference)?,
            },
            "blob" if is_registry_host(registry) && is_repository_name(name) && is_digest(reference) => Ask::Blob {
                registry: registry.to_string(),
                name: name.to_string(),
                digest: reference.to_string(),
                range: if *range == "-" { None } else { Some(Range::parse_span(range)?) },
            },
            _ => return None,
        };
        Some(Request { head, ask })
    }
}

/// An image reference as the engine names its tags (`base:dev`, `x/y:1`, `localhost:5000/app:1`),
/// split as the distribution library normalizes it: registry (`docker.io` when none is named),
/// repository (`library/` added for official docker.io images) and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub registry: String,
    pub name: String,
    pub tag: Option<String>,
}

impl Named {
    pub fn parse(reference: &str) -> Option<Self> {
        let reference = reference.split('@').next()?;
        let (registry, rest) = match reference.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first.to_string(), rest),
            _ => ("docker.io".to_string(), reference),
        };
        let registry = if registry == "index.docker.io" { "docker.io".to_string() } else { registry };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name.to_string(), Some(tag.to_string())),
            _ => (rest.to_string(), None),
        };
        let name = if registry == "docker.io" && !name.contains('/') { format!("library/{name}") } else { name };
        (is_registry_host(&registry) && is_repository_name(&name) && tag.as_deref().is_none_or(is_tag))
            .then_some(Named { registry, name, tag })
    }

    /// The short name people type: `base:dev` for `docker.io/library/base:dev`.
    pub fn familiar(registry: &str, name: &str, tag: Option<&str>) -> String {
        let short = if registry == "docker.io" {
            name.strip_prefix("library/").filter(|n| !n.contains('/')).unwrap_or(name).to_string()
        } else {
            format!("{registry}/{name}")
        };
        match tag {
            Some(tag) => format!("{short}:{tag}"),
            None => short,
        }
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Named::familiar(&self.registry, &self.name, self.tag.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn names_follow_the_distribution_grammar() {
        for good in ["library/alpine", "a", "x/y/z", "a.b", "a_b", "a__b", "a--b", "e2e/base-1.0"] {
            assert!(is_repository_name(good), "{good}");
        }
        for bad in ["", "A", "a/", "/a", "a//b", "-a", "a-", "a..b", "a___b", "a/../b", "..", "a b", "a%2fb"] {
            assert!(!is_repository_name(bad), "{bad}");
        }
        assert!(!is_repository_name(&"a".repeat(256)));
        for good in ["latest", "v1.0", "_x", "A-b_c.d"] {
            assert!(is_tag(good), "{good}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(129)] {
            assert!(!is_tag(bad), "{bad}");
        }
        assert!(is_digest(DIGEST));
        assert!(!is_digest(&DIGEST.to_uppercase()));
        assert!(!is_digest("sha512:00"));
        for good in ["docker.io", "localhost:5000", "registry.example.com:443", "10.0.0.1:5000"] {
            assert!(is_registry_host(good), "{good}");
        }
        for bad in ["", "a..b", "-a.com", "a.com:", "a.com:0", "a.com:65536", "a.com:x", "a/b", "[::1]:5000", "a b"] {
            assert!(!is_registry_host(bad), "{bad}");
        }
    }

    #[test]
    fn a_request_line_reads_back_and_nothing_else_does() {
        let requests = [
            Request { head: false, ask: Ask::Ping },
            Request {
                head: true,
                ask: Ask::Manifest {
                    registry: "docker.io".into(),
                    name: "library/base".into(),
                    reference: Reference::Tag("dev".into()),
                },
            },
            Request {
                head: false,
                ask: Ask::Manifest {
                    registry: "localhost:5000".into(),
                    name: "app".into(),
                    reference: Reference::Digest(DIGEST.into()),
                },
            },
            Request {
                head: false,
                ask: Ask::Blob {
                    registry: "docker.io".into(),
                    name: "x/y".into(),
                    digest: DIGEST.into(),
                    range: Some(Range { start: 5, end: None }),
                },
            },
            Request {
                head: false,
                ask: Ask::Blob {
                    registry: "docker.io".into(),
                    name: "x/y".into(),
                    digest: DIGEST.into(),
                    range: Some(Range { start: 5, end: Some(9) }),
                },
            },
        ];
        for request in requests {
            assert_eq!(Request::parse_line(&request.line()), Some(request.clone()), "{}", request.line());
        }
        for bad in [
            "mirror/1 GET manifest docker.io library/base ../x -\n",
            "mirror/1 PUT manifest docker.io library/base dev -\n",
            "mirror/1 GET blob docker.io library/base dev -\n",
            "mirror/1 GET manifest docker.io Library/base dev -\n",
            "mirror/1 GET manifest docker.io library/base dev - extra\n",
            "mirror/2 GET ping - - - -\n",
            "mirror/1 GET catalog - - - -\n",
            &format!("mirror/1 GET blob docker.io a {DIGEST} 9-5\n"),
        ] {
            assert_eq!(Request::parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_are_the_simple_ones() {
        assert_eq!(Range::parse_header("bytes=0-"), Some(Range { start: 0, end: None }));
        assert_eq!(Range::parse_header("bytes=10-19"), Some(Range { start: 10, end: Some(19) }));
        for bad in ["bytes=-5", "bytes=5-1", "items=0-", "bytes=0-1,3-4", "bytes=x-"] {
            assert_eq!(Range::parse_header(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_engines_tags_normalize_as_docker_does() {
        let named = |r: &str| Named::parse(r).map(|n| (n.registry, n.name, n.tag));
        let some = |r: &str, n: &str, t: Option<&str>| Some((r.to_string(), n.to_string(), t.map(String::from)));
        assert_eq!(named("base:dev"), some("docker.io", "library/base", Some("dev")));
        assert_eq!(named("x/y:1"), some("docker.io", "x/y", Some("1")));
        assert_eq!(named("docker.io/library/base:dev"), some("docker.io", "library/base", Some("dev")));
        assert_eq!(named("index.docker.io/x/y"), some("docker.io", "x/y", None));
        assert_eq!(named("localhost:5000/app:1"), some("localhost:5000", "app", Some("1")));
        assert_eq!(named("localhost/app"), some("localhost", "app", None));
        assert_eq!(named("reg.example.com/team/app:2@sha256:00"), some("reg.example.com", "team/app", Some("2")));
        assert_eq!(named("<none>:<none>"), None);
        assert_eq!(Named::familiar("docker.io", "library/base", Some("dev")), "base:dev");
        assert_eq!(Named::familiar("docker.io", "x/y", None), "x/y");
        assert_eq!(Named::familiar("localhost:5000", "app", Some("1")), "localhost:5000/app:1");
    }
}
