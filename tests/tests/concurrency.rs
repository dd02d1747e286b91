//! Several starts at once give one backend and one set of sidecars.
use assemble_testkit::{containers_named, docker, run_bounded, TestUser};

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_starts_give_one_backend_and_one_set_of_sidecars() {
    let docker = docker().await;
    let user = TestUser::new("race");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let command = user.command(&["backend", "start", "--allow-host-port", "6031,6032"]);
            std::thread::spawn(move || run_bounded(command))
        })
        .collect();
    let runs: Vec<_> = runs.into_iter().map(|r| r.join().expect("start thread")).collect();
    for run in &runs {
        assert!(run.ok(), "{run:#?}");
    }
    let started = runs.iter().filter(|r| r.stdout.contains("Started container")).count();
    let already = runs.iter().filter(|r| r.stdout.contains("is already running")).count();
    assert_eq!((started, already), (1, 3), "{runs:#?}");

    let names: Vec<String> =
        containers_named(&docker, &user.names.backend()).await.into_iter().map(|(_, n)| n).collect();
    let (backend, mirror, store) = (user.names.backend(), user.names.mirror(), user.names.mirror_store());
    assert_eq!(names, vec![backend, mirror, store, user.names.proxy(6031), user.names.proxy(6032)], "one of each");

    let stops: Vec<_> = (0..3)
        .map(|_| {
            let command = user.command(&["backend", "stop"]);
            std::thread::spawn(move || run_bounded(command))
        })
        .collect();
    for stop in stops {
        let run = stop.join().expect("stop thread");
        assert!(run.ok(), "{run:#?}");
    }
    assert!(containers_named(&docker, &user.names.backend()).await.is_empty());
}
