//! Relay benchmarks: the same client, in the backend's network namespace, against the same sink
//! on the host, through three paths, alternated round by round.
use std::{net::TcpListener, process::Command};

use assemble_core::{Backend, CacheSetting, Names, PortSet, StartRequest};
use bollard::query_parameters::RemoveContainerOptionsBuilder;

use crate::{net, socat, stats};

struct Options {
    gib: f64,
    rounds: usize,
    image: String,
    socat_image: String,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        gib: 2.0,
        rounds: 3,
        image: std::env::var("ASSEMBLE_TEST_IMAGE").unwrap_or_else(|_| "assemble-buildkit:v0.25-debian".into()),
        socat_image: "assemble-socat:debian".into(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--gib" => options.gib = value.parse().map_err(|e| format!("--gib: {e}"))?,
            "--rounds" => options.rounds = value.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--image" => options.image = value.clone(),
            "--socat-image" => options.socat_image = value.clone(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// One path from the backend's namespace to the sink.
struct Path {
    label: &'static str,
    throughput: String,
    echo: String,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let options = options(args)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let discard = TcpListener::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    let echo = TcpListener::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    let (discard_port, echo_port) = (port(&discard)?, port(&echo)?);
    net::discard_sink(discard);
    net::echo_sink(echo);

    let names = Names::for_user(&format!("bench-{}", std::process::id()));
    let (backend, pid, gateway, socat) = runtime.block_on(setup(&names, &options, discard_port, echo_port))?;
    let result = measure(&options, pid, &gateway, discard_port, echo_port);
    if std::env::var_os("ASSEMBLE_BENCH_KEEP").is_some() {
        eprintln!("keeping {} and its sidecars (ASSEMBLE_BENCH_KEEP)", names.backend());
        return result;
    }
    runtime.block_on(async {
        let _ = backend.stop().await;
        for id in socat {
            let remove = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = backend.docker().remove_container(&id, Some(remove)).await;
        }
    });
    result
}

fn port(listener: &TcpListener) -> Result<u16, String> {
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// The socat sidecars listen on these ports inside the namespace (ours use the sink's own ports).
fn socat_port(port: u16) -> u16 {
    if port < 60000 {
        port + 1000
    } else {
        port - 1000
    }
}

async fn setup(
    names: &Names,
    options: &Options,
    discard_port: u16,
    echo_port: u16,
) -> Result<(Backend, i64, String, Vec<String>), String> {
    let engine = assemble_core::engine::Engine::connect(&Default::default()).await.map_err(|e| e.to_string())?;
    let docker = engine.docker().clone();
    let backend = Backend::new(engine, names.clone());
    let request = StartRequest {
        ports: PortSet::from_ports([discard_port, echo_port]),
        cache: CacheSetting::Anonymous,
        image: options.image.clone(),
        ready_timeout: assemble_core::start::DEFAULT_READY_TIMEOUT,
        cache_limit: None,
    };
    backend.start(&request, &assemble_core::progress::silent).await.map_err(|e| e.to_string())?;
    let running = backend.running().await.map_err(|e| e.to_string())?;
    let gateway = socat::gateway(&docker, &running.id).await?;
    let inspect = docker.inspect_container(&running.id, None).await.map_err(|e| e.to_string())?;
    let pid = inspect.state.and_then(|s| s.pid).ok_or("the backend has no PID")?;
    let mut socat = Vec::new();
    for port in [discard_port, echo_port] {
        // The classic alternative: socat in the backend's namespace, forwarding to the gateway.
        let name = format!("{}-bench-socat-{port}", names.backend());
        let listen = format!("TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr", socat_port(port));
        let connect = format!("TCP:{gateway}:{port}");
        socat.push(socat::sidecar(&docker, &name, &running.id, listen, connect, &options.socat_image).await?);
    }
    Ok((backend, pid, gateway, socat))
}

/// Runs this binary's client half inside the backend's network namespace.
fn in_namespace(pid: i64, args: &[String]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .arg("-n")
        .arg(exe)
        .arg("client")
        .args(args)
        .output()
        .map_err(|e| format!("nsenter: {e}"))?;
    if !output.status.success() {
        return Err(format!("client {args:?}: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn measure(options: &Options, pid: i64, gateway: &str, discard: u16, echo: u16) -> Result<(), String> {
    let paths = [
        Path {
            label: "a. our sidecar (localhost)",
            throughput: format!("127.0.0.1:{discard}"),
            echo: format!("127.0.0.1:{echo}"),
        },
        Path {
            label: "b. direct to the gateway",
            throughput: format!("{gateway}:{discard}"),
            echo: format!("{gateway}:{echo}"),
        },
        Path {
            label: "c. socat sidecar",
            throughput: format!("127.0.0.1:{}", socat_port(discard)),
            echo: format!("127.0.0.1:{}", socat_port(echo)),
        },
    ];
    let bytes = (options.gib * (1u64 << 30) as f64) as u64;
    let mut single = vec![Vec::new(); 3];
    let mut parallel = vec![Vec::new(); 3];
    let mut failures = [0usize; 3];
    let mut latencies = vec![Vec::new(); 3];
    for round in 0..options.rounds {
        // Alternate the order so no path always runs on a warm or a cold machine.
        let order: Vec<usize> = if round % 2 == 0 { vec![0, 1, 2] } else { vec![2, 1, 0] };
        for &i in &order {
            for (streams, figures) in [(1usize, &mut single[i]), (100, &mut parallel[i])] {
                let (mb_per_s, failed) = throughput(pid, &paths[i].throughput, bytes, streams)?;
                figures.push(mb_per_s);
                failures[i] += failed;
            }
            let line = in_namespace(pid, &["conns".into(), paths[i].echo.clone(), "1000".into()])?;
            latencies[i].extend(line.split_whitespace().filter_map(|v| v.parse::<f64>().ok()));
        }
        eprintln!("round {} of {} done", round + 1, options.rounds);
    }
    print_report(options, &paths, &single, &parallel, &latencies, &failures);
    Ok(())
}

/// MB/s actually delivered, and the number of streams that failed.
fn throughput(pid: i64, target: &str, bytes: u64, streams: usize) -> Result<(f64, usize), String> {
    let line = in_namespace(pid, &["send".into(), target.to_string(), bytes.to_string(), streams.to_string()])?;
    let fields: Vec<f64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    match fields[..] {
        [seconds, delivered, failed] => Ok((delivered / 1e6 / seconds, failed as usize)),
        _ => Err(format!("unexpected client output {line:?}")),
    }
}

fn print_report(
    options: &Options,
    paths: &[Path],
    single: &[Vec<f64>],
    parallel: &[Vec<f64>],
    latencies: &[Vec<f64>],
    failures: &[usize],
) {
    println!("### Relay throughput ({} GiB per run, {} rounds, paths alternated)\n", options.gib, options.rounds);
    println!("| path | 1 stream MB/s (median) | spread | 100 streams MB/s (median) | spread | failed streams |");
    println!("| --- | ---: | --- | ---: | --- | ---: |");
    for (i, path) in paths.iter().enumerate() {
        println!(
            "| {} | {:.0} | {} | {:.0} | {} | {} |",
            path.label,
            stats::median(&single[i]),
            stats::spread(&single[i], 0),
            stats::median(&parallel[i]),
            stats::spread(&parallel[i], 0),
            failures[i]
        );
    }
    let ratio = |v: &[Vec<f64>], x: usize, y: usize| stats::median(&v[x]) / stats::median(&v[y]);
    println!(
        "\nRatios (medians): 1 stream a/b = {:.2}, a/c = {:.2}; 100 streams a/b = {:.2}, a/c = {:.2}\n",
        ratio(single, 0, 1),
        ratio(single, 0, 2),
        ratio(parallel, 0, 1),
        ratio(parallel, 0, 2)
    );
    println!("### Connection cost (connect, 1-byte echo, close; 1,000 per path per round)\n");
    println!("| path | p50 µs | p99 µs |");
    println!("| --- | ---: | ---: |");
    for (i, path) in paths.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} |",
            path.label,
            stats::percentile(&latencies[i], 50.0),
            stats::percentile(&latencies[i], 99.0)
        );
    }
    println!(
        "\nRatio of p50 a/b = {:.2}, a/c = {:.2}",
        stats::median(&latencies[0]) / stats::median(&latencies[1]),
        stats::median(&latencies[0]) / stats::median(&latencies[2])
    );
}
