//! `assemble-test-engine`: runs the engine tests' private dockerd for a test written in another
//! language (the UI tests). Prints `ready HOST` once it answers, and stops it when stdin closes.
use std::io::{BufRead, Write};

use assemble_testkit::private_engine::{EngineSpec, PrivateEngine};

fn main() {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return eprintln!("assemble-test-engine: no runtime: {err}"),
    };
    let engine = match runtime.block_on(PrivateEngine::start(EngineSpec::engine_tests())) {
        Ok(engine) => engine,
        Err(err) => {
            eprintln!("assemble-test-engine: {err}");
            std::process::exit(1);
        }
    };
    println!("ready {}", engine.host);
    let _ = std::io::stdout().flush();
    // Runs until whoever started us closes our stdin (or goes away); then the engine stops.
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
    drop(engine);
}
