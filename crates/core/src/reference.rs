//! Docker's image references (distribution/reference): the grammar that checks one
//! (`[host[:port]/]path[:tag][@digest]`, lower-case path components), and a valid one made from a
//! project's name and version. Used wherever a user gives an image name (tags to build, base
//! images in the settings) and by the project detection that names an image.
use std::sync::LazyLock;

use regex::Regex;

/// `name:tag` from a project's name and version, made valid for Docker: lower case, other
/// characters as `-`; a version with a property (`${revision}`) or none gives `latest`.
pub fn image_name(name: &str, version: Option<&str>) -> String {
    let mapped: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_') { c } else { '-' })
        .collect();
    // Separators only one at a time, and only between letters and digits.
    let repository = SEPARATOR_RUN.replace_all(&mapped, "-");
    let repository = repository.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let repository = if repository.is_empty() { "app" } else { repository };
    let tag = version
        .filter(|v| !v.contains("${"))
        .map(|v| {
            v.chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
                .collect::<String>()
        })
        .map(|v| v.trim_start_matches(['.', '-']).chars().take(128).collect::<String>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "latest".into());
    format!("{repository}:{tag}")
}

static SEPARATOR_RUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[._-]{2,}").expect("a valid expression"));

// Docker's reference grammar (distribution/reference): a path component, a registry host, a tag.
static PATH_COMPONENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$").expect("a valid expression"));
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$",
    )
    .expect("a valid expression")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w][\w.-]{0,127}$").expect("a valid expression"));
static DIGEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$").expect("a valid expression"));

/// The longest name Docker takes (without its tag and digest).
const NAME_MAX: usize = 255;

/// An image reference Docker would refuse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference:?} is not a valid image name: {reason}; use a name like `localhost:5000/team/app:1.0`")]
pub struct ReferenceError {
    /// The name as given.
    pub reference: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks an image reference as Docker's reference grammar does (`[host[:port]/]path[:tag][@digest]`,
/// lower-case path components), so that a bad name is refused before anything is built or run.
pub fn check_image_name(reference: &str) -> Result<(), ReferenceError> {
    let invalid = |reason: &str| ReferenceError { reference: reference.to_string(), reason: reason.to_string() };
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if digest.is_some_and(|d| !DIGEST.is_match(d)) {
        return Err(invalid("the digest after @ must look like sha256:<64 hex digits>"));
    }
    // A tag follows the last colon after the last slash.
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    };
    if tag.is_some_and(|t| !TAG.is_match(t)) {
        return Err(invalid("a tag is 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'"));
    }
    if path.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if path.len() > NAME_MAX {
        return Err(invalid("a name is at most 255 characters"));
    }
    let mut components: Vec<&str> = path.split('/').collect();
    // As Docker reads it: the first of several parts is a registry host when it has a '.' or a
    // ':', is localhost, or has capitals.
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) {
            if !DOMAIN.is_match(first) {
                return Err(invalid("the registry host is not a host name with an optional :port"));
            }
            components.remove(0);
        }
    }
    if !components.iter().all(|c| PATH_COMPONENT.is_match(c)) {
        return Err(invalid(
            "each part of the path is lower-case letters and digits, with one '.', one or two '_', or '-'s only between them",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_checked_as_docker_does() {
        for good in [
            "app",
            "app:1.0",
            "localhost:5000/team/app:v1",
            "registry.example.com/a/b",
            "a_b.c-d:latest",
            "MyReg/app",
            "a__b--c",
        ] {
            assert!(check_image_name(good).is_ok(), "{good}");
        }
        for bad in [
            "App",
            "app:",
            "app:-x",
            "/app",
            "app//x",
            "app:has space",
            "-app",
            "",
            "a..b",
            "a.-b",
            "a___b",
            "host:abc/app",
            "app@sha256:12",
        ] {
            assert!(matches!(check_image_name(bad), Err(ReferenceError { .. })), "{bad}");
        }
        assert_eq!(image_name("My App!", Some("1.0 beta")), "my-app:1.0-beta");
        assert_eq!(image_name("My..App", None), "my-app:latest");
        assert!(check_image_name(&image_name("--Weird__.Name--", Some("1"))).is_ok());
    }
}
