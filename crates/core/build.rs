//! Compiles the sidecar relay (`crates/proxy`) as a static binary and hands it to the core, which
//! embeds it and turns it into a one-file image on first use. The relay has no dependencies, so
//! rustc alone builds it; static linking keeps the image free of everything but the binary.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let proxy_src = manifest.join("../proxy/src");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("assemble-proxy");
    println!("cargo:rerun-if-changed={}", proxy_src.display());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args(["--edition=2021", "--crate-type=bin", "--crate-name=assemble_proxy"])
        .args(["-C", "opt-level=3", "-C", "target-feature=+crt-static", "-C", "panic=abort"])
        .args(["-C", "strip=symbols", "-C", "codegen-units=1"])
        .arg(proxy_src.join("main.rs"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("rustc runs");
    assert!(status.success(), "building the static sidecar relay failed");
}
