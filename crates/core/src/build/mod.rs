//! `assemble build` (and the app's Build window): what a folder builds ([`project`], reading
//! project files with a little XML), the Dockerfile we write for a project without one
//! ([`dockerfile`]), the checked plan ([`plan`]), and its run on the backend over BuildKit's
//! session ([`run`]), with `--secret`/`--ssh` ([`session_flags`]) and `-o` ([`outputs`]); standard input as the
//! context or the Dockerfile ([`stdin`]); `--call`/`--check` questions for the frontend ([`call`]); the
//! solve's attributes and caches ([`attrs`], [`cache_options`]) and the files a build leaves
//! ([`metadata`]); the Build window's own entries ([`window`]). Image names are checked by [`crate::reference`].
pub mod attrs;
pub mod cache_options;
pub mod call;
pub mod dockerfile;
pub mod error;
pub mod metadata;
pub mod outputs;
pub mod plan;
pub mod project;
pub mod run;
pub mod session_flags;
pub mod split;
pub mod stdin;
pub mod step_options;
pub mod window;
mod xml;

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
