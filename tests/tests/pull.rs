//! A missing image is pulled, with progress, from a real registry on the host.
use assemble_testkit::{docker, test_image, Registry, TestUser};
use bollard::query_parameters::{PushImageOptions, RemoveImageOptions, TagImageOptions};
use futures_util::TryStreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn start_pulls_a_missing_image_and_info_shows_its_registry_digest() {
    let docker = docker().await;
    let registry = Registry::start();
    let user = TestUser::new("pull");
    let repository = format!("localhost:{}/e2e/buildkit", registry.port);
    let reference = format!("{repository}:1");

    // Publish the test image to the registry, then forget the local tag so start has to pull.
    let tag = TagImageOptions { repo: Some(repository.clone()), tag: Some("1".into()) };
    docker.tag_image(&test_image(), Some(tag)).await.expect("tag");
    let push = PushImageOptions { tag: Some("1".into()), ..Default::default() };
    docker.push_image(&repository, Some(push), None).try_collect::<Vec<_>>().await.expect("push to the test registry");
    docker.remove_image(&reference, None::<RemoveImageOptions>, None).await.expect("untag");

    let started = user.run(&["backend", "start", "--allow-host-port", "0", "--image", &reference]);
    let _untag = Untag(reference.clone());
    let started = started.expect_ok();
    let lines: Vec<&str> = started.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("Pulling image {reference}: ")) && l.ends_with(" layers")),
        "no progress lines: {started:?}"
    );
    let started_at = lines
        .iter()
        .position(|l| l.starts_with(&format!("Started container \"{}\" (", user.names.backend())))
        .unwrap_or_else(|| panic!("no start line: {started:?}"));
    assert!(started_at > 0, "{started:?}");
    assert_eq!(
        lines[started_at - 1],
        format!("Pulling image {reference}: Success"),
        "the pull ends before the start: {started:?}"
    );

    let info = user.run(&["backend", "info"]).expect_ok().stdout;
    let image_line = info.lines().nth(1).unwrap_or_default();
    assert!(image_line.starts_with(&format!("Image: {repository}@sha256:")), "{info}");
    user.run(&["backend", "stop"]).expect_ok();
}

/// Removes the pulled tag at the end, pass or fail (the image itself is shared with other tests).
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let reference = self.0.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let docker = docker().await;
                let _ = docker.remove_image(&reference, None::<RemoveImageOptions>, None).await;
            })
        })
        .join();
    }
}
