//! The same build in the backend's default mode and in the rootless mode (issue 26), alternated
//! round by round: a `RUN` step that does CPU and file work, then a `COPY` of a few MiB, with no
//! cache, run with buildctl inside each backend (the same client, the same context).
use std::time::Instant;

use assemble_core::{Backend, CacheSetting, Names, PortSet, SecurityChoice, StartRequest};

use crate::{
    common::{self, Flags},
    stats,
};

/// The build: busybox from the image, a RUN step that writes and sums 2,000 files, a COPY.
const SCRIPT: &str = "set -e; d=/tmp/bench-security; rm -rf $d; mkdir -p $d; cp /bin/busybox $d/; \
    head -c 8388608 /dev/urandom > $d/blob; \
    printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"i=0; while [ $i -lt 2000 ]; do echo $i > /f$i; i=$((i+1)); done; /bin/busybox cat /f* | /bin/busybox md5sum\"]\\nCOPY blob /blob\\n' > $d/Dockerfile; \
    buildctl build --no-cache --progress=plain --frontend dockerfile.v0 --local context=$d --local dockerfile=$d >/dev/null 2>&1";

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds", "--image", "--rootless-image"])?;
    let rounds: usize = flags.number("--rounds", 5)?;
    let image = flags.image();
    let rootless_image = flags.text("--rootless-image", "assemble-buildkit:v0.25-debian-rootless");
    common::require_image(&image)?;
    common::require_image(&rootless_image)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let engine =
        runtime.block_on(assemble_core::engine::Engine::connect(&Default::default())).map_err(|e| e.to_string())?;
    let modes = [
        ("default mode (auto)", SecurityChoice::Auto, image.clone()),
        ("rootless", SecurityChoice::Rootless, rootless_image),
    ];
    let mut backends = Vec::new();
    for (i, (label, security, image)) in modes.iter().enumerate() {
        let backend =
            Backend::new(engine.clone(), Names::for_user(&format!("bench-security-{i}-{}", std::process::id())));
        let request = StartRequest {
            ports: PortSet::none(),
            cache: CacheSetting::Anonymous,
            image: image.clone(),
            ready_timeout: assemble_core::backend::start::DEFAULT_READY_TIMEOUT,
            cache_limit: None,
            security: *security,
            allow_network_host: false,
            local_images: Default::default(),
        };
        let started = runtime.block_on(backend.start(&request, &assemble_core::backend::progress::silent));
        match started {
            Ok(assemble_core::StartOutcome::Started { security, security_reason, .. }) => {
                eprintln!("{label}: runs {}", security.described(Some(&security_reason)))
            }
            Ok(_) => {}
            Err(err) => {
                stop_all(&runtime, &backends);
                return Err(format!("starting the {label} backend: {err}"));
            }
        }
        backends.push(backend);
    }
    let mut seconds = vec![Vec::new(); modes.len()];
    let result = (|| {
        for round in 0..rounds + 1 {
            for i in common::order(round, modes.len()) {
                let began = Instant::now();
                common::docker(&["exec", &backends[i].names().backend(), "sh", "-c", SCRIPT])
                    .map_err(|e| format!("the build in the {} backend: {e}", modes[i].0))?;
                // Round 0 warms both (the frontend, the image's files in the page cache).
                if round > 0 {
                    seconds[i].push(began.elapsed().as_secs_f64());
                }
            }
            eprintln!("round {round} of {rounds} done");
        }
        Ok::<(), String>(())
    })();
    stop_all(&runtime, &backends);
    result?;
    println!("### The same build, default mode against rootless ({rounds} rounds, alternated, no cache)\n");
    let rows: Vec<(&str, &[f64])> = modes.iter().zip(&seconds).map(|((label, ..), s)| (*label, s.as_slice())).collect();
    common::table("s", 1.0, 2, &rows);
    println!("\nRatio rootless/default = {:.2}", stats::median(&seconds[1]) / stats::median(&seconds[0]));
    Ok(())
}

fn stop_all(runtime: &tokio::runtime::Runtime, backends: &[Backend]) {
    for backend in backends {
        if let Err(err) = runtime.block_on(backend.stop()) {
            eprintln!("warning: stopping {}: {err}", backend.names().backend());
        }
    }
}
