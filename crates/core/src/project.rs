//! What `assemble build` builds from a folder: its Dockerfile, or, as the original
//! `docker assemble build` did, a Dockerfile we write for a project that has none (Spring Boot with
//! Maven or Gradle, ASP.NET Core), with the image name the project gives.
use std::{
    path::{Path, PathBuf},
    sync::LazyLock,
};

use regex::Regex;

use crate::error::{Error, Result};

/// The kinds of folder we build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectKind {
    /// A folder with a Dockerfile (or one named with `-f`).
    Dockerfile,
    /// Spring Boot, built with Maven (`pom.xml`).
    SpringBootMaven,
    /// Spring Boot, built with Gradle (`build.gradle` or `build.gradle.kts`).
    SpringBootGradle,
    /// ASP.NET Core (a `.csproj` or `.fsproj` on the Web SDK).
    AspNetCore,
}

impl ProjectKind {
    /// How the kind reads in a sentence.
    pub fn label(self) -> &'static str {
        match self {
            ProjectKind::Dockerfile => "Dockerfile",
            ProjectKind::SpringBootMaven => "Spring Boot (Maven)",
            ProjectKind::SpringBootGradle => "Spring Boot (Gradle)",
            ProjectKind::AspNetCore => "ASP.NET Core",
        }
    }
}

/// The images a generated Dockerfile builds with and runs on. Registries differ (ours may not
/// reach Docker Hub), so each can be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImages {
    /// Maven with a JDK: builds a Maven project.
    pub maven: String,
    /// Gradle with a JDK: builds a Gradle project.
    pub gradle: String,
    /// A Java runtime: runs a Spring Boot jar.
    pub java_runtime: String,
    /// The .NET SDK: builds an ASP.NET Core project.
    pub dotnet_sdk: String,
    /// The ASP.NET Core runtime: runs it.
    pub aspnet_runtime: String,
}

impl Default for BaseImages {
    fn default() -> Self {
        Self {
            maven: "maven:3.9-eclipse-temurin-21".into(),
            gradle: "gradle:8.10-jdk21".into(),
            java_runtime: "eclipse-temurin:21-jre".into(),
            dotnet_sdk: "mcr.microsoft.com/dotnet/sdk:8.0".into(),
            aspnet_runtime: "mcr.microsoft.com/dotnet/aspnet:8.0".into(),
        }
    }
}

/// The base images a user chose in the settings file (`base_images`), each in place of ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseImageChoices {
    /// Maven with a JDK.
    pub maven: Option<String>,
    /// Gradle with a JDK.
    pub gradle: Option<String>,
    /// A Java runtime.
    pub java_runtime: Option<String>,
    /// The .NET SDK.
    pub dotnet_sdk: Option<String>,
    /// The ASP.NET Core runtime.
    pub aspnet_runtime: Option<String>,
}

impl BaseImageChoices {
    /// Checks each chosen image name as Docker would.
    pub fn validate(&self) -> Result<()> {
        [&self.maven, &self.gradle, &self.java_runtime, &self.dotnet_sdk, &self.aspnet_runtime]
            .into_iter()
            .flatten()
            .try_for_each(|image| check_image_name(image))
    }
}

impl BaseImages {
    /// Ours, with the user's choices (the settings file's `base_images`) in place.
    pub fn chosen(choices: &BaseImageChoices) -> Self {
        let ours = Self::default();
        let pick = |choice: &Option<String>, default: String| choice.clone().unwrap_or(default);
        Self {
            maven: pick(&choices.maven, ours.maven),
            gradle: pick(&choices.gradle, ours.gradle),
            java_runtime: pick(&choices.java_runtime, ours.java_runtime),
            dotnet_sdk: pick(&choices.dotnet_sdk, ours.dotnet_sdk),
            aspnet_runtime: pick(&choices.aspnet_runtime, ours.aspnet_runtime),
        }
    }

    /// Replaces the build stage's image (`--build-image`) and the runtime's (`--runtime-image`)
    /// of whichever kind is built.
    pub fn with_overrides(mut self, kind: ProjectKind, build: Option<&str>, runtime: Option<&str>) -> Self {
        let (build_slot, runtime_slot) = match kind {
            ProjectKind::Dockerfile => return self,
            ProjectKind::SpringBootMaven => (&mut self.maven, &mut self.java_runtime),
            ProjectKind::SpringBootGradle => (&mut self.gradle, &mut self.java_runtime),
            ProjectKind::AspNetCore => (&mut self.dotnet_sdk, &mut self.aspnet_runtime),
        };
        if let Some(build) = build {
            *build_slot = build.to_string();
        }
        if let Some(runtime) = runtime {
            *runtime_slot = runtime.to_string();
        }
        self
    }
}

/// What a folder builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its kind.
    pub kind: ProjectKind,
    /// The Dockerfile found (`None`: generated).
    pub dockerfile_path: Option<PathBuf>,
    /// The Dockerfile's text: the file's, or the one we wrote.
    pub dockerfile: String,
    /// The image name the project gives (`artifactId:version`; none for a plain Dockerfile).
    pub image: Option<String>,
    /// The port the service listens on (generated Dockerfiles expose it).
    pub port: Option<u16>,
}

/// The port a Spring Boot or ASP.NET Core service listens on when nothing says otherwise.
const DEFAULT_PORT: u16 = 8080;

/// Finds what `dir` builds: `dockerfile` when given (relative to where the command runs), else
/// `dir/Dockerfile`, else a project we know how to build without one.
pub fn detect(dir: &Path, dockerfile: Option<&Path>, bases: &BaseImages) -> Result<Project> {
    if !dir.is_dir() {
        return Err(Error::ContextNotAFolder { path: dir.display().to_string() });
    }
    if let Some(path) = dockerfile {
        if !path.is_file() {
            return Err(Error::DockerfileMissing { path: path.display().to_string() });
        }
        return found_dockerfile(path);
    }
    let default = dir.join("Dockerfile");
    if default.is_file() {
        return found_dockerfile(&default);
    }
    let pom = dir.join("pom.xml");
    if pom.is_file() {
        let text = read(&pom)?;
        if mentions_spring_boot_maven(&text) {
            return Ok(maven(&text, dir, bases));
        }
    }
    for name in ["build.gradle.kts", "build.gradle"] {
        let build = dir.join(name);
        if build.is_file() {
            let text = read(&build)?;
            if text.contains("org.springframework.boot") {
                let settings = ["settings.gradle.kts", "settings.gradle"]
                    .iter()
                    .map(|s| dir.join(s))
                    .find(|p| p.is_file())
                    .map(|p| read(&p))
                    .transpose()?;
                return Ok(gradle(&text, settings.as_deref(), dir, bases));
            }
        }
    }
    if let Some((file, text)) = web_project(dir)? {
        return Ok(aspnet(&file, &text, bases));
    }
    Err(Error::NothingToBuild { path: dir.display().to_string() })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|err| Error::ProjectUnreadable { path: path.display().to_string(), reason: err.to_string() })
}

fn found_dockerfile(path: &Path) -> Result<Project> {
    Ok(Project {
        kind: ProjectKind::Dockerfile,
        dockerfile_path: Some(path.to_path_buf()),
        dockerfile: read(path)?,
        image: None,
        port: None,
    })
}

// ---- Maven ----

fn mentions_spring_boot_maven(pom: &str) -> bool {
    let pom = without_xml_comments(pom);
    pom.contains("<artifactId>spring-boot-starter-parent</artifactId>")
        || pom.contains("<artifactId>spring-boot-maven-plugin</artifactId>")
}

fn maven(pom: &str, dir: &Path, bases: &BaseImages) -> Project {
    let pom = without_xml_comments(pom);
    // The project's own artifactId and version are children of <project>, not of <parent>,
    // <dependencies>, <build> or any other section.
    let own = simple_children(&pom, "project");
    let artifact = child_text(&own, "artifactId").unwrap_or_else(|| folder_name(dir));
    let version = child_text(&own, "version").or_else(|| child_text(&simple_children(&pom, "parent"), "version"));
    let port = spring_port(dir);
    let dockerfile = format!(
        "# Generated by assemble build for a Spring Boot project (Maven).\n\
         FROM {build} AS build\n\
         WORKDIR /src\n\
         COPY pom.xml ./\n\
         # Dependencies first, in a cache that outlives the build: a change to the sources downloads nothing.\n\
         RUN --mount=type=cache,target=/cache/maven mvn -B -q -Dmaven.repo.local=/cache/maven dependency:go-offline\n\
         COPY src ./src\n\
         RUN --mount=type=cache,target=/cache/maven mvn -B -q -Dmaven.repo.local=/cache/maven -DskipTests package \\\n    \
         && cp \"$(ls target/*.jar | grep -v -e '-sources.jar$' -e '-javadoc.jar$' | head -n 1)\" /app.jar\n\
         {runtime_stage}",
        build = bases.maven,
        runtime_stage = java_runtime_stage(&bases.java_runtime, port),
    );
    Project {
        kind: ProjectKind::SpringBootMaven,
        dockerfile_path: None,
        dockerfile,
        image: Some(image_name(&artifact, version.as_deref())),
        port: Some(port),
    }
}

// ---- Gradle ----

fn gradle(build: &str, settings: Option<&str>, dir: &Path, bases: &BaseImages) -> Project {
    let name = settings.and_then(|s| assigned(s, "rootProject.name")).unwrap_or_else(|| folder_name(dir));
    let version = assigned(build, "version");
    let port = spring_port(dir);
    let dockerfile = format!(
        "# Generated by assemble build for a Spring Boot project (Gradle).\n\
         FROM {build} AS build\n\
         WORKDIR /src\n\
         COPY . .\n\
         # Gradle's caches outlive the build: a change to the sources downloads nothing. A build folder\n\
         # copied from the host goes first, so the jar taken is this build's.\n\
         RUN --mount=type=cache,target=/cache/gradle rm -rf build \\\n    \
         && gradle --no-daemon -q -g /cache/gradle bootJar -x test \\\n    \
         && cp \"$(ls build/libs/*.jar | grep -v -e '-plain.jar$' | head -n 1)\" /app.jar\n\
         {runtime_stage}",
        build = bases.gradle,
        runtime_stage = java_runtime_stage(&bases.java_runtime, port),
    );
    Project {
        kind: ProjectKind::SpringBootGradle,
        dockerfile_path: None,
        dockerfile,
        image: Some(image_name(&name, version.as_deref())),
        port: Some(port),
    }
}

/// A Spring Boot jar's runtime stage (after a build stage that left it at `/app.jar`).
fn java_runtime_stage(runtime: &str, port: u16) -> String {
    format!(
        "\n\
         FROM {runtime}\n\
         WORKDIR /app\n\
         COPY --from=build /app.jar /app/app.jar\n\
         EXPOSE {port}\n\
         USER 10001:10001\n\
         ENTRYPOINT [\"java\", \"-jar\", \"/app/app.jar\"]\n"
    )
}

/// The value of `key = 'value'` (or `"value"`, or Kotlin's `key = "value"`) at a line's start.
fn assigned(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix(key)?.trim_start();
        let value = rest.strip_prefix('=')?.trim();
        let quote = value.chars().next().filter(|q| *q == '\'' || *q == '"')?;
        let inner = &value[1..];
        inner.find(quote).map(|end| inner[..end].to_string())
    })
}

/// `server.port` from `src/main/resources/application.properties` (or `.yml`), else 8080.
fn spring_port(dir: &Path) -> u16 {
    let resources = dir.join("src/main/resources");
    if let Ok(text) = std::fs::read_to_string(resources.join("application.properties")) {
        if let Some(port) = text.lines().find_map(|line| {
            let (key, value) = line.split_once(['=', ':'])?;
            (key.trim() == "server.port").then(|| value.trim().parse().ok()).flatten()
        }) {
            return port;
        }
    }
    for name in ["application.yml", "application.yaml"] {
        if let Ok(text) = std::fs::read_to_string(resources.join(name)) {
            // `server:` then an indented `port: N` before the next top-level key.
            let mut in_server = false;
            for line in text.lines() {
                if !line.starts_with(' ') && !line.trim().is_empty() {
                    in_server = line.trim_end() == "server:";
                    continue;
                }
                if let Some(port) = line.trim().strip_prefix("port:").filter(|_| in_server) {
                    if let Ok(port) = port.trim().parse() {
                        return port;
                    }
                }
            }
        }
    }
    DEFAULT_PORT
}

// ---- ASP.NET Core ----

/// The first `.csproj` or `.fsproj` (in name order) on the Web SDK, with its text.
fn web_project(dir: &Path) -> Result<Option<(PathBuf, String)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Error::ProjectUnreadable { path: dir.display().to_string(), reason: err.to_string() })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("csproj" | "fsproj")))
        .collect();
    files.sort();
    for file in files {
        let text = read(&file)?;
        if without_xml_comments(&text).contains("Microsoft.NET.Sdk.Web") {
            return Ok(Some((file, text)));
        }
    }
    Ok(None)
}

fn aspnet(file: &Path, text: &str, bases: &BaseImages) -> Project {
    let text = without_xml_comments(text);
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("app").to_string();
    let file_name = file.file_name().and_then(|s| s.to_str()).unwrap_or("app.csproj").to_string();
    let assembly = element(&text, "AssemblyName").unwrap_or(stem);
    let version = element(&text, "Version");
    // The SDK and runtime of the project's own .NET (`net9.0` → `:9.0`) when the defaults are used.
    let framework = element(&text, "TargetFramework")
        .and_then(|tf| tf.strip_prefix("net").map(str::to_string))
        .filter(|v| v.contains('.') && v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    let defaults = BaseImages::default();
    let for_framework = |chosen: &str, default: &str| match (&framework, chosen == default) {
        (Some(version), true) => format!("{}:{version}", default.rsplit_once(':').map_or(default, |(name, _)| name)),
        _ => chosen.to_string(),
    };
    let (build_image, runtime_image) = (
        for_framework(&bases.dotnet_sdk, &defaults.dotnet_sdk),
        for_framework(&bases.aspnet_runtime, &defaults.aspnet_runtime),
    );
    let dockerfile = format!(
        "# Generated by assemble build for an ASP.NET Core project.\n\
         FROM {build} AS build\n\
         WORKDIR /src\n\
         ENV NUGET_PACKAGES=/cache/nuget\n\
         COPY . .\n\
         # Packages in a cache that outlives the build: a change to the sources downloads nothing. The\n\
         # host's bin and obj folders go first (their restore is not this one's).\n\
         RUN --mount=type=cache,target=/cache/nuget rm -rf bin obj \\\n    \
         && dotnet restore \"{file_name}\" \\\n    \
         && dotnet publish \"{file_name}\" -c Release -o /app --no-restore\n\
         \n\
         FROM {runtime}\n\
         WORKDIR /app\n\
         COPY --from=build /app ./\n\
         ENV ASPNETCORE_HTTP_PORTS={DEFAULT_PORT}\n\
         EXPOSE {DEFAULT_PORT}\n\
         USER 10001:10001\n\
         ENTRYPOINT [\"dotnet\", \"{assembly}.dll\"]\n",
        build = build_image,
        runtime = runtime_image,
    );
    Project {
        kind: ProjectKind::AspNetCore,
        dockerfile_path: None,
        dockerfile,
        image: Some(image_name(&assembly, version.as_deref())),
        port: Some(DEFAULT_PORT),
    }
}

// ---- names ----

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

/// Checks an image reference as Docker's reference grammar does (`[host[:port]/]path[:tag][@digest]`,
/// lower-case path components), so that a bad `-t` is refused before anything is built.
pub fn check_image_name(reference: &str) -> Result<()> {
    let invalid =
        |reason: &str| Error::InvalidImageName { reference: reference.to_string(), reason: reason.to_string() };
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

fn folder_name(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into())
}

// ---- a little XML, enough for project files ----

fn without_xml_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find("-->") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The inside of the first `<name>…</name>`.
fn section(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    Some(text[start..end].to_string())
}

/// The text of the first `<name>…</name>`, trimmed.
fn element(text: &str, name: &str) -> Option<String> {
    section(text, name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The direct children of the first `<root …>` element that hold only text, as (name, text):
/// a pom's own artifactId and version, not those inside `<parent>` or `<dependencies>`.
fn simple_children(text: &str, root: &str) -> Vec<(String, String)> {
    let open = format!("<{root}");
    let Some(start) = text.find(&open) else { return Vec::new() };
    let Some(body) = text[start..].find('>').map(|i| &text[start + i + 1..]) else { return Vec::new() };
    let mut children = Vec::new();
    let mut depth = 0usize;
    // The child being read: its name, where its text starts, and whether it has children.
    let mut child: Option<(String, usize, bool)> = None;
    let mut at = 0;
    while let Some(lt) = body[at..].find('<').map(|i| at + i) {
        let Some(gt) = body[lt..].find('>').map(|i| lt + i) else { break };
        let tag = &body[lt + 1..gt];
        at = gt + 1;
        if tag.starts_with(['?', '!']) {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if depth == 0 {
                break; // the root's end
            }
            depth -= 1;
            if depth == 0 {
                if let Some((open_name, text_start, false)) = child.take() {
                    if open_name == name.trim() {
                        children.push((open_name, body[text_start..lt].trim().to_string()));
                    }
                }
            }
            continue;
        }
        if depth >= 1 {
            if let Some(child) = child.as_mut() {
                child.2 = true;
            }
        }
        if tag.ends_with('/') {
            continue;
        }
        if depth == 0 {
            let name = tag.split_whitespace().next().unwrap_or_default().to_string();
            child = Some((name, gt + 1, false));
        }
        depth += 1;
    }
    children
}

/// The text of `root`'s direct child `name`, if it has one.
fn child_text(children: &[(String, String)], name: &str) -> Option<String> {
    children.iter().find(|(n, _)| n == name).map(|(_, text)| text.clone()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile_lite::Dir {
        let dir = tempfile_lite::Dir::new();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        dir
    }

    /// A folder under the system's temporary folder, removed when dropped.
    mod tempfile_lite {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "assemble-project-test-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const POM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>org.springframework.boot</groupId>
    <artifactId>spring-boot-starter-parent</artifactId>
    <version>3.3.5</version>
  </parent>
  <!-- <artifactId>not-this</artifactId> -->
  <groupId>com.example</groupId>
  <artifactId>Hello-Boot</artifactId>
  <version>1.0.2</version>
  <dependencies>
    <dependency>
      <groupId>org.springframework.boot</groupId>
      <artifactId>spring-boot-starter-web</artifactId>
    </dependency>
  </dependencies>
</project>
"#;

    #[test]
    fn spring_boot_with_maven_is_named_from_its_own_artifact_and_version() {
        let dir = folder(&[("pom.xml", POM), ("src/main/resources/application.properties", "server.port=9090\n")]);
        let project = detect(dir.path(), None, &BaseImages::default()).unwrap();
        assert_eq!(project.kind, ProjectKind::SpringBootMaven);
        assert_eq!(project.image.as_deref(), Some("hello-boot:1.0.2"));
        assert_eq!(project.port, Some(9090));
        assert!(project.dockerfile_path.is_none());
        let d = &project.dockerfile;
        assert!(d.contains("FROM maven:3.9-eclipse-temurin-21 AS build"), "{d}");
        assert!(d.contains("RUN --mount=type=cache,target=/cache/maven mvn"), "{d}");
        assert!(d.contains("FROM eclipse-temurin:21-jre\n"), "{d}");
        assert!(d.contains("EXPOSE 9090\n") && d.contains("USER 10001:10001\n"), "{d}");
    }

    #[test]
    fn a_maven_version_from_the_parent_or_a_property() {
        let inherited = POM.replace("  <version>1.0.2</version>\n", "");
        let dir = folder(&[("pom.xml", &inherited)]);
        let project = detect(dir.path(), None, &BaseImages::default()).unwrap();
        assert_eq!(project.image.as_deref(), Some("hello-boot:3.3.5"));
        assert_eq!(project.port, Some(8080));
        let property = POM.replace("<version>1.0.2</version>", "<version>${revision}</version>");
        let dir = folder(&[("pom.xml", &property)]);
        assert_eq!(
            detect(dir.path(), None, &BaseImages::default()).unwrap().image.as_deref(),
            Some("hello-boot:latest")
        );
    }

    #[test]
    fn a_pom_without_spring_boot_is_not_ours_to_guess() {
        let plain = POM.replace("spring-boot-starter-parent", "some-parent");
        let dir = folder(&[("pom.xml", &plain)]);
        assert!(matches!(detect(dir.path(), None, &BaseImages::default()), Err(Error::NothingToBuild { .. })));
    }

    #[test]
    fn spring_boot_with_gradle_kotlin_and_groovy() {
        let kts = "plugins {\n  id(\"org.springframework.boot\") version \"3.3.5\"\n  java\n}\nversion = \"0.4.0\"\n";
        let dir = folder(&[
            ("build.gradle.kts", kts),
            ("settings.gradle.kts", "rootProject.name = \"orders\"\n"),
            ("src/main/resources/application.yml", "spring:\n  application:\n    name: x\nserver:\n  port: 7070\n"),
        ]);
        let project = detect(dir.path(), None, &BaseImages::default()).unwrap();
        assert_eq!(project.kind, ProjectKind::SpringBootGradle);
        assert_eq!(project.image.as_deref(), Some("orders:0.4.0"));
        assert_eq!(project.port, Some(7070));
        assert!(
            project.dockerfile.contains("gradle --no-daemon -q -g /cache/gradle bootJar"),
            "{}",
            project.dockerfile
        );

        let groovy = "plugins {\n  id 'org.springframework.boot' version '3.3.5'\n}\nversion = '2.0'\n";
        let dir = folder(&[("build.gradle", groovy), ("settings.gradle", "rootProject.name = 'Billing_API'\n")]);
        assert_eq!(detect(dir.path(), None, &BaseImages::default()).unwrap().image.as_deref(), Some("billing_api:2.0"));
    }

    #[test]
    fn aspnet_core_is_named_from_its_assembly() {
        let csproj = "<Project Sdk=\"Microsoft.NET.Sdk.Web\">\n  <PropertyGroup>\n    <TargetFramework>net8.0</TargetFramework>\n    <AssemblyName>Shop.Web</AssemblyName>\n    <Version>1.3.0</Version>\n  </PropertyGroup>\n</Project>\n";
        let dir = folder(&[("Shop.csproj", csproj), ("Program.cs", "var app = WebApplication.Create();\n")]);
        let project = detect(dir.path(), None, &BaseImages::default()).unwrap();
        assert_eq!(project.kind, ProjectKind::AspNetCore);
        assert_eq!(project.image.as_deref(), Some("shop.web:1.3.0"));
        assert!(project.dockerfile.contains("ENTRYPOINT [\"dotnet\", \"Shop.Web.dll\"]"), "{}", project.dockerfile);
        assert!(project.dockerfile.contains("&& dotnet restore \"Shop.csproj\""), "{}", project.dockerfile);
        assert!(
            project.dockerfile.contains("FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build\n"),
            "{}",
            project.dockerfile
        );
        let net9 = csproj.replace("net8.0", "net9.0");
        let dir = folder(&[("Shop.csproj", &net9)]);
        let project = detect(dir.path(), None, &BaseImages::default()).unwrap();
        assert!(
            project.dockerfile.contains("FROM mcr.microsoft.com/dotnet/sdk:9.0 AS build\n"),
            "{}",
            project.dockerfile
        );
        assert!(project.dockerfile.contains("FROM mcr.microsoft.com/dotnet/aspnet:9.0\n"), "{}", project.dockerfile);
        let library = csproj.replace("Microsoft.NET.Sdk.Web", "Microsoft.NET.Sdk");
        let dir = folder(&[("Lib.fsproj", &library)]);
        assert!(matches!(detect(dir.path(), None, &BaseImages::default()), Err(Error::NothingToBuild { .. })));
    }

    #[test]
    fn a_dockerfile_wins_and_a_missing_one_is_named() {
        let dir = folder(&[("Dockerfile", "FROM scratch\n"), ("pom.xml", POM)]);
        let project = detect(dir.path(), None, &BaseImages::default()).unwrap();
        assert_eq!(
            (project.kind, project.dockerfile.as_str(), project.image),
            (ProjectKind::Dockerfile, "FROM scratch\n", None)
        );
        let missing = dir.path().join("nope/Dockerfile");
        let err = detect(dir.path(), Some(&missing), &BaseImages::default()).unwrap_err();
        assert!(matches!(err, Error::DockerfileMissing { .. }) && err.to_string().contains("-f"), "{err}");
        let err = detect(&dir.path().join("absent"), None, &BaseImages::default()).unwrap_err();
        assert!(matches!(err, Error::ContextNotAFolder { .. }), "{err}");
    }

    #[test]
    fn base_images_can_be_replaced() {
        let dir = folder(&[("pom.xml", POM)]);
        let bases = BaseImages::default().with_overrides(
            ProjectKind::SpringBootMaven,
            Some("localhost:5000/maven:3"),
            Some("localhost:5000/jre:21"),
        );
        let project = detect(dir.path(), None, &bases).unwrap();
        assert!(project.dockerfile.contains("FROM localhost:5000/maven:3 AS build\n"));
        assert!(project.dockerfile.contains("FROM localhost:5000/jre:21\n"));
    }

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
            assert!(matches!(check_image_name(bad), Err(Error::InvalidImageName { .. })), "{bad}");
        }
        assert_eq!(image_name("My App!", Some("1.0 beta")), "my-app:1.0-beta");
        assert_eq!(image_name("My..App", None), "my-app:latest");
        assert!(check_image_name(&image_name("--Weird__.Name--", Some("1"))).is_ok());
    }
}
