//! What `assemble build` builds from a folder: its Dockerfile, or, as the original
//! `docker assemble build` did, a project that has none (Spring Boot with Maven or Gradle, ASP.NET
//! Core), read for its name, version and port. The Dockerfile we write for such a project is
//! [`super::dockerfile`]'s, and the image name the project gives is made by [`crate::reference`].
use std::path::{Path, PathBuf};

use crate::{
    build::{
        dockerfile::{self, BaseImages},
        error::BuildError,
        xml::{child_text, element, simple_children, without_xml_comments},
        ProjectKind,
    },
    reference::image_name,
    Result,
};

/// What a folder builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its kind.
    pub kind: ProjectKind,
    /// Where the Dockerfile comes from.
    pub dockerfile_source: DockerfileSource,
    /// The Dockerfile's text: the file's, standard input's, or the one we wrote (empty when it lies
    /// in a remote context, which only the backend reads).
    pub dockerfile: String,
    /// The image name the project gives (`artifactId:version`; none for a plain Dockerfile).
    pub image: Option<String>,
    /// The port the service listens on (generated Dockerfiles expose it).
    pub port: Option<u16>,
}

/// Where a build's Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// A file here (`PATH/Dockerfile`, or `-f`).
    File(PathBuf),
    /// Written by us for a project we know.
    Generated,
    /// Read from standard input (`-f -`, or `-` as PATH).
    StandardInput,
    /// At this path inside a remote context (a git or HTTP(S) URL), which the backend fetches.
    InRemoteContext(String),
}

impl DockerfileSource {
    /// The name buildx gives the Dockerfile when it shows its lines (a check's warnings): the path
    /// as typed (cleaned of a leading `./`), or `stdin`; `None` where the frontend's own name stays.
    pub fn shown_name(&self) -> Option<String> {
        match self {
            DockerfileSource::File(path) => Some(path.strip_prefix(".").unwrap_or(path).display().to_string()),
            DockerfileSource::StandardInput => Some("stdin".into()),
            DockerfileSource::Generated | DockerfileSource::InRemoteContext(_) => None,
        }
    }

    /// Where it comes from, in words.
    pub fn describe(&self) -> String {
        match self {
            DockerfileSource::File(path) => path.display().to_string(),
            DockerfileSource::Generated => "generated (below)".into(),
            DockerfileSource::StandardInput => "standard input (below)".into(),
            DockerfileSource::InRemoteContext(path) => format!("{path} in the remote context (the backend reads it)"),
        }
    }
}

/// A Dockerfile given as text (standard input).
pub fn from_text(text: String) -> Project {
    Project {
        kind: ProjectKind::Dockerfile,
        dockerfile_source: DockerfileSource::StandardInput,
        dockerfile: text,
        image: None,
        port: None,
    }
}

/// A Dockerfile at `path` inside a remote context: the backend reads it, so its text is unknown here.
pub fn in_remote_context(path: &str) -> Project {
    Project {
        kind: ProjectKind::Dockerfile,
        dockerfile_source: DockerfileSource::InRemoteContext(path.to_string()),
        dockerfile: String::new(),
        image: None,
        port: None,
    }
}

/// The port a Spring Boot or ASP.NET Core service listens on when nothing says otherwise.
const DEFAULT_PORT: u16 = 8080;

/// Finds what `dir` builds: `dockerfile` when given (relative to where the command runs), else
/// `dir/Dockerfile`, else a project we know how to build without one.
pub fn detect(dir: &Path, dockerfile: Option<&Path>, bases: &BaseImages) -> Result<Project> {
    if !dir.is_dir() {
        return Err(BuildError::ContextNotAFolder { path: dir.display().to_string() }.into());
    }
    if let Some(path) = dockerfile {
        return named_dockerfile(path);
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
    Err(BuildError::NothingToBuild { path: dir.display().to_string() }.into())
}

/// The Dockerfile `-f` names (relative to where the command runs).
pub fn named_dockerfile(path: &Path) -> Result<Project> {
    if !path.is_file() {
        return Err(BuildError::DockerfileMissing { path: path.display().to_string() }.into());
    }
    found_dockerfile(path)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| {
        BuildError::ProjectUnreadable { path: path.display().to_string(), reason: err.to_string() }.into()
    })
}

fn found_dockerfile(path: &Path) -> Result<Project> {
    Ok(Project {
        kind: ProjectKind::Dockerfile,
        dockerfile_source: DockerfileSource::File(path.to_path_buf()),
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
    let dockerfile = dockerfile::maven(bases, port);
    Project {
        kind: ProjectKind::SpringBootMaven,
        dockerfile_source: DockerfileSource::Generated,
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
    let dockerfile = dockerfile::gradle(bases, port);
    Project {
        kind: ProjectKind::SpringBootGradle,
        dockerfile_source: DockerfileSource::Generated,
        dockerfile,
        image: Some(image_name(&name, version.as_deref())),
        port: Some(port),
    }
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
        .map_err(|err| BuildError::ProjectUnreadable { path: dir.display().to_string(), reason: err.to_string() })?;
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
    let dockerfile = dockerfile::aspnet(bases, framework.as_deref(), &file_name, &assembly, DEFAULT_PORT);
    Project {
        kind: ProjectKind::AspNetCore,
        dockerfile_source: DockerfileSource::Generated,
        dockerfile,
        image: Some(image_name(&assembly, version.as_deref())),
        port: Some(DEFAULT_PORT),
    }
}

fn folder_name(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

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
        assert_eq!(project.dockerfile_source, DockerfileSource::Generated);
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
        assert!(matches!(
            detect(dir.path(), None, &BaseImages::default()),
            Err(Error::Build(BuildError::NothingToBuild { .. }))
        ));
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
        assert!(matches!(
            detect(dir.path(), None, &BaseImages::default()),
            Err(Error::Build(BuildError::NothingToBuild { .. }))
        ));
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
        assert!(
            matches!(err, Error::Build(BuildError::DockerfileMissing { .. })) && err.to_string().contains("-f"),
            "{err}"
        );
        let err = detect(&dir.path().join("absent"), None, &BaseImages::default()).unwrap_err();
        assert!(matches!(err, Error::Build(BuildError::ContextNotAFolder { .. })), "{err}");
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
}
