//! `assemble build --dry-run`: the plan the real CLI prints for a folder, and one sentence for
//! each bad input, checked before any engine is reached (the builds themselves: build.rs).
use std::path::{Path, PathBuf};

use assemble_testkit::TestUser;

fn context(user: &TestUser, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = user.scratch("context");
    for (path, bytes) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("a folder");
        std::fs::write(full, bytes).expect("a file");
    }
    dir
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn the_plan_of_a_dockerfile_folder_with_a_dockerignore() {
    let user = TestUser::new("build-plan");
    let big = vec![7u8; 3 * 1024 * 1024];
    let dir = context(
        &user,
        &[
            ("Dockerfile", b"FROM busybox AS base\nCOPY . /ctx\nFROM base AS test\nRUN test ! -e /ctx/secret.txt\n"),
            (".dockerignore", b"# not sent\nsecret.txt\n"),
            ("secret.txt", b"s"),
            ("sub/big.bin", &big),
            ("sub/deeper/small.txt", b"hi"),
        ],
    );
    let run = user
        .run(&[
            "build",
            "--dry-run",
            "-t",
            "localhost:5000/team/app:1",
            "--push",
            "--build-arg",
            "MODE=fast",
            "--target",
            "test",
            arg(&dir),
        ])
        .expect_ok();
    let out = &run.stdout;
    assert!(out.starts_with("Kind:       Dockerfile\n"), "{out}");
    // big.bin, small.txt, the Dockerfile and the .dockerignore: 3 MiB and about 100 bytes.
    assert!(out.contains("(4 files, 3MiB; 1 left out by "), "{out}");
    assert!(out.contains("Image:      localhost:5000/team/app:1\n"), "{out}");
    assert!(out.contains("Output:     pushed to its registry\n"), "{out}");
    assert!(out.contains("Target:     test\nBuild arg:  MODE=fast\n"), "{out}");
    assert!(out.ends_with("RUN test ! -e /ctx/secret.txt\n"), "{out}");
}

#[test]
fn a_spring_boot_project_gets_a_dockerfile_and_its_own_name() {
    let user = TestUser::new("build-boot");
    let pom = b"<project><parent><artifactId>spring-boot-starter-parent</artifactId><version>3.3.5</version></parent>\
                <artifactId>hello-boot</artifactId><version>1</version></project>";
    let dir = context(&user, &[("pom.xml", pom), ("src/main/java/App.java", b"class App {}")]);
    let run = user.run(&["build", "--dry-run", "--runtime-image", "localhost:5000/jre:21", arg(&dir)]).expect_ok();
    assert!(run.stdout.contains("Kind:       Spring Boot (Maven)\n"), "{run:?}");
    assert!(run.stdout.contains("Image:      hello-boot:1\n"), "{run:?}");
    assert!(run.stdout.contains("Dockerfile: generated (below)\n"), "{run:?}");
    assert!(run.stdout.contains("\nFROM localhost:5000/jre:21\n"), "{run:?}");
    assert!(run.stdout.contains("the build cache only"), "{run:?}");
}

#[test]
fn each_bad_input_gets_one_sentence_and_nothing_is_built() {
    let user = TestUser::new("build-bad");
    let dir = context(&user, &[("Dockerfile", b"FROM busybox\n")]);
    let missing = dir.join("absent");
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["build", "--dry-run", arg(&missing)], "is not a folder"),
        (
            vec!["build", "--dry-run", "-f", "/nonexistent/Dockerfile", arg(&dir)],
            "there is no Dockerfile at /nonexistent/Dockerfile",
        ),
        (vec!["build", "--dry-run", "-t", "Team/App", arg(&dir)], "is not a valid image name"),
        (vec!["build", "--dry-run", "--push", arg(&dir)], "--push needs an image name"),
        // Without --dry-run too: checked before the engine is reached.
        (vec!["build", "-t", "Team/App", arg(&dir)], "is not a valid image name"),
    ];
    for (args, words) in cases {
        let run = user.run(&args);
        assert_eq!(run.code, Some(1), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        let stderr = run.stderr.trim_end();
        assert!(stderr.starts_with("Error: ") && !stderr.contains('\n') && stderr.contains(words), "{args:?}: {run:?}");
    }
    let docker = tokio::runtime::Runtime::new().expect("a runtime").block_on(assemble_testkit::docker());
    let started = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(assemble_testkit::containers_named(&docker, &user.names.backend()));
    assert!(started.is_empty(), "a bad input started a backend: {started:?}");
}
