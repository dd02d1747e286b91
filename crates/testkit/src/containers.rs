//! Containers as the tests see them through the Engine API: listing and removing by name, running
//! a command in one, waiting for BuildKit in a backend, a push from inside it.
use std::time::{Duration, Instant};

use bollard::{
    exec::{CreateExecOptions, StartExecResults},
    query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder},
    Docker,
};
use futures_util::StreamExt;

/// Removes every container whose name starts with `prefix` (tests only: ours or planted).
pub async fn remove_containers_named(docker: &Docker, prefix: &str) {
    for (id, _) in containers_named(docker, prefix).await {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        let _ = docker.remove_container(&id, Some(options)).await;
    }
}

/// `(id, name)` of every container, running or not, named `prefix` or `prefix-…` (any name after
/// a `prefix` that ends in `-`).
pub async fn containers_named(docker: &Docker, prefix: &str) -> Vec<(String, String)> {
    let filters = std::collections::HashMap::from([("name".to_string(), vec![prefix.to_string()])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let list = docker.list_containers(Some(options)).await.unwrap_or_else(|e| panic!("listing containers: {e}"));
    let mut found: Vec<(String, String)> = list
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.into_iter().next()?.trim_start_matches('/').to_string();
            // `prefix` or `prefix-…`: never another user's whose name only starts the same (…-1 and …-12).
            let ours = name == prefix
                || name.starts_with(&format!("{prefix}-"))
                || prefix.ends_with('-') && name.starts_with(prefix);
            ours.then(|| (c.id.unwrap_or_default(), name))
        })
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

/// Whether the engine has the volume; any answer but "here it is" or "no such volume" fails the test.
pub async fn volume_exists(docker: &Docker, name: &str) -> bool {
    match docker.inspect_volume(name).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => false,
        Err(err) => panic!("cannot tell whether volume {name} exists: {err}"),
    }
}

/// Runs a command in a container; returns its exit code and combined output.
pub async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> (i64, String) {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("creating an exec of {cmd:?} in {container}: {e}"));
    let mut output = String::new();
    let started =
        docker.start_exec(&exec.id, None).await.unwrap_or_else(|e| panic!("starting {cmd:?} in {container}: {e}"));
    if let StartExecResults::Attached { output: mut stream, .. } = started {
        while let Some(Ok(chunk)) = stream.next().await {
            output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    }
    let inspect =
        docker.inspect_exec(&exec.id).await.unwrap_or_else(|e| panic!("inspecting {cmd:?} in {container}: {e}"));
    (inspect.exit_code.unwrap_or(-1), output)
}

/// Waits until BuildKit answers in `backend` (after a restart, say), or fails the test.
pub async fn wait_for_buildkit(docker: &Docker, backend: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, output) = exec(docker, backend, &["buildctl", "debug", "workers"]).await;
        if code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "BuildKit in {backend} did not answer within 60 s: {output}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds `FROM scratch` + `COPY` inside the backend and pushes it to `reference`.
pub async fn build_and_push(docker: &Docker, backend: &str, reference: &str, content: &str) -> (i64, String) {
    let script = format!(
        "set -e; d=$(mktemp -d); echo '{content}' > $d/hello.txt; printf 'FROM scratch\\nCOPY hello.txt /\\n' > $d/Dockerfile; \
         buildctl build --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d \
         --output type=image,name={reference},push=true"
    );
    exec(docker, backend, &["sh", "-c", &script]).await
}
