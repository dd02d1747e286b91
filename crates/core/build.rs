//! Compiles our two container binaries as static executables and hands them to the core, which
//! embeds them and turns each into a one-file image on first use: the sidecar relay
//! (`crates/proxy`) and the local-image mirror (`crates/mirror`). Neither has dependencies, so
//! rustc alone builds them; static linking keeps their images free of everything but the binary.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The relay aborts on a panic (it has none to survive); the mirror parses what builds send and
    // keeps serving if one connection's thread panics.
    compile(&manifest.join("../proxy/src"), "assemble_proxy", &out_dir.join("assemble-proxy"), "abort");
    compile(&manifest.join("../mirror/src"), "assemble_mirror", &out_dir.join("assemble-mirror"), "unwind");
}

fn compile(source: &std::path::Path, crate_name: &str, out: &std::path::Path, panic: &str) {
    println!("cargo:rerun-if-changed={}", source.display());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args(["--edition=2021", "--crate-type=bin", &format!("--crate-name={crate_name}")])
        .args(["-C", "opt-level=3", "-C", "target-feature=+crt-static", "-C", &format!("panic={panic}")])
        .args(["-C", "strip=symbols", "-C", "codegen-units=1"])
        .arg(source.join("main.rs"))
        .arg("-o")
        .arg(out)
        .status()
        .expect("rustc runs");
    assert!(status.success(), "building the static {crate_name} failed");
}
