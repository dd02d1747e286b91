//! The test kit: what the end-to-end tests (`tests/`), the chaos soak (`crates/soak`) and the
//! benchmarks (`crates/bench`) start and drive, made one way for all three.
//!
//! - [`machine`]: the machine's own engine (docker's default socket), whatever the caller's shell
//!   says, and the environment every spawned command is cleaned of;
//! - [`private_engine`]: a second dockerd of the kit's own (the soak's, the engine tests', a fresh
//!   one), with TLS certificates; the binary `assemble-test-engine` runs one for the UI tests;
//! - [`user`]: a throw-away user (name, settings folder, docker config folder with buildx linked),
//!   the real `assemble` binary run as it, cleanup on drop;
//! - [`cli`]: the binaries of this build and a runner bounded in time ([`Run`]);
//! - [`registry`], [`sshd`]: servers on ports of the kit's own ([`free_port`]);
//! - [`network`], [`containers`], [`port_record`]: what the engine and its containers show, read
//!   from the outside (probes that tell reached from refused from could-not-run; the port record
//!   read without the core's parser);
//! - [`images`], [`folders`]: the test images, temporary folders;
//! - [`authz`]: a real authorization plugin for a private engine; [`flood`]: a connection flood
//!   from a `RUN` step and what to watch on the host while it runs.
//!
//! The items the tests use most are also at the root.
pub mod authz;
pub mod cli;
pub mod containers;
pub mod flood;
pub mod folders;
mod free_port;
pub mod images;
pub mod machine;
pub mod network;
pub mod plain;
pub mod port_record;
pub mod private_engine;
pub mod registry;
pub mod sshd;
pub mod user;

pub use cli::{assemble_binary, buildx_plugin, json, refused, run_bounded, run_bounded_async, Run};
pub use containers::{
    build_and_push, containers_named, exec, remove_containers_named, volume_exists, wait_for_buildkit,
};
pub use folders::{scratch_dir, Folder};
pub use free_port::free_port;
pub use images::{
    broken_backend_image, copy_busybox_into, copy_foreign_busybox_into, native_platform, rootless_test_image,
    test_image, test_image_repository,
};
pub use machine::{clear_engine_environment, docker, docker_cli, engine, MACHINE_ENGINE};
pub use plain::{step_cached, step_said};
pub use registry::Registry;
pub use user::TestUser;
