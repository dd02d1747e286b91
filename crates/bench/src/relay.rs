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
        image: std::env::var("ASSEMBLE_TEST_IMAGE").unwrap_or_else(|_| "assemble-buildkit:v0.25-debian-qemu".into()),
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

/// One path to the sink: from the backend's network namespace, or (the floor) from the host's.
struct Path {
    label: &'static str,
    throughput: String,
    echo: String,
    in_backend: bool,
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
    let relay_pid = runtime.block_on(async {
        let inspect = backend.docker().inspect_container(&names.proxy(discard_port), None).await;
        inspect.ok().and_then(|i| i.state).and_then(|s| s.pid).unwrap_or(0)
    });
    let result = measure(&options, pid, relay_pid, &gateway, discard_port, echo_port);
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
        for port in [discard_port, echo_port] {
            let _ = backend
                .docker()
                .remove_volume(&pair_volume(&names, port), None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await;
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
        ready_timeout: assemble_core::backend::start::DEFAULT_READY_TIMEOUT,
        cache_limit: None,
        security: Default::default(),
        allow_network_host: false,
        local_images: Default::default(),
    };
    backend.start(&request, &assemble_core::backend::progress::silent).await.map_err(|e| e.to_string())?;
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
        // The review's design: two relays with no capability at all, one in the backend's
        // namespace and one on the host's network, joined by a unix socket on a shared volume.
        socat.extend(pair(&docker, names, &running.id, port).await?);
    }
    Ok((backend, pid, gateway, socat))
}

/// The two-container design's ports in the backend's namespace.
fn pair_port(port: u16) -> u16 {
    if port < 60000 {
        port + 2000
    } else {
        port - 2000
    }
}

fn pair_volume(names: &Names, port: u16) -> String {
    format!("{}-bench-pair-{port}", names.backend())
}

/// The two containers of the design the review proposed, for `port`: our relay binary in both, no
/// capability (cap_drop ALL, no-new-privileges), the host side on `network_mode: host` listening on
/// a unix socket in a shared volume and connecting to the host's 127.0.0.1:port, the backend side
/// in the backend's namespace on 127.0.0.1:pair_port(port) connecting to that socket.
async fn pair(docker: &bollard::Docker, names: &Names, backend_id: &str, port: u16) -> Result<Vec<String>, String> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    let image = assemble_core::backend::sidecars::relay_image::reference();
    let volume = pair_volume(names, port);
    let labels = std::collections::HashMap::from([(socat::BENCH_LABEL.to_string(), "pair".to_string())]);
    let mut ids = Vec::new();
    for (side, network, args) in [
        (
            "host",
            "host".to_string(),
            vec!["--listen".into(), "unix:/relay/relay.sock".into(), "--target".into(), format!("127.0.0.1:{port}")],
        ),
        (
            "backend",
            format!("container:{backend_id}"),
            vec!["--port".into(), pair_port(port).to_string(), "--target".into(), "unix:/relay/relay.sock".into()],
        ),
    ] {
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(args),
            labels: Some(labels.clone()),
            host_config: Some(HostConfig {
                network_mode: Some(network),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                binds: Some(vec![format!("{volume}:/relay")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!("{}-bench-pair-{side}-{port}", names.backend());
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::default().name(&name).build();
        let id = docker.create_container(Some(options), body).await.map_err(|e| format!("{name}: {e}"))?.id;
        docker.start_container(&id, None).await.map_err(|e| format!("{name}: {e}"))?;
        // The host side must listen before the backend side's first connection.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        ids.push(id);
    }
    Ok(ids)
}

/// Runs this binary's client half inside the backend's network namespace, or on the host.
fn client(pid: i64, in_backend: bool, args: &[String]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = if in_backend {
        let mut nsenter = Command::new("nsenter");
        nsenter.arg("-t").arg(pid.to_string()).arg("-n").arg(exe);
        nsenter
    } else {
        Command::new(exe)
    };
    let output = command.arg("client").args(args).output().map_err(|e| format!("client: {e}"))?;
    if !output.status.success() {
        return Err(format!("client {args:?}: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// CPU time, in seconds: the whole machine's busy time, and one process's user and system time.
#[derive(Clone, Copy, Default)]
struct Cpu {
    machine: f64,
    relay_user: f64,
    relay_system: f64,
}

impl Cpu {
    fn now(relay_pid: i64) -> Self {
        let ticks = 100.0; // USER_HZ, which /proc reports in on Linux
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                let fields: Vec<f64> =
                    stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal: all but idle and iowait.
                Some(fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum::<f64>())
            })
            .unwrap_or(0.0);
        let (user, system) = std::fs::read_to_string(format!("/proc/{relay_pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect::<Vec<_>>();
                // Fields 14 and 15 of proc(5), counted from the state (field 3) here.
                Some((rest.get(11)?.parse::<f64>().ok()?, rest.get(12)?.parse::<f64>().ok()?))
            })
            .unwrap_or((0.0, 0.0));
        Self { machine: machine / ticks, relay_user: user / ticks, relay_system: system / ticks }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            machine: self.machine - before.machine,
            relay_user: self.relay_user - before.relay_user,
            relay_system: self.relay_system - before.relay_system,
        }
    }
}

fn measure(options: &Options, pid: i64, relay_pid: i64, gateway: &str, discard: u16, echo: u16) -> Result<(), String> {
    let paths = [
        Path {
            label: "a. our sidecar (localhost → host loopback)",
            throughput: format!("127.0.0.1:{discard}"),
            echo: format!("127.0.0.1:{echo}"),
            in_backend: true,
        },
        Path {
            label: "b. direct to the gateway",
            throughput: format!("{gateway}:{discard}"),
            echo: format!("{gateway}:{echo}"),
            in_backend: true,
        },
        Path {
            label: "c. socat sidecar (to the gateway)",
            throughput: format!("127.0.0.1:{}", socat_port(discard)),
            echo: format!("127.0.0.1:{}", socat_port(echo)),
            in_backend: true,
        },
        Path {
            label: "e. two containers, no capability (TCP → unix socket → TCP)",
            throughput: format!("127.0.0.1:{}", pair_port(discard)),
            echo: format!("127.0.0.1:{}", pair_port(echo)),
            in_backend: true,
        },
        Path {
            label: "d. the host's loopback, no namespace, no relay",
            throughput: format!("127.0.0.1:{discard}"),
            echo: format!("127.0.0.1:{echo}"),
            in_backend: false,
        },
    ];
    let bytes = (options.gib * (1u64 << 30) as f64) as u64;
    let count = paths.len();
    let mut single = vec![Vec::new(); count];
    let mut parallel = vec![Vec::new(); count];
    let mut failures = vec![0usize; count];
    let mut latencies = vec![Vec::new(); count];
    // CPU seconds per GiB delivered, per path, for 1 and for 100 streams.
    let mut cpu: Vec<[Vec<Cpu>; 2]> = vec![[Vec::new(), Vec::new()]; count];
    for round in 0..options.rounds {
        // Alternate the order so no path always runs on a warm or a cold machine.
        let mut order: Vec<usize> = (0..count).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for &i in &order {
            for (k, (streams, figures)) in [(1usize, &mut single[i]), (100, &mut parallel[i])].into_iter().enumerate() {
                let before = Cpu::now(relay_pid);
                let (mb_per_s, failed) = throughput(pid, &paths[i], bytes, streams)?;
                let used = Cpu::now(relay_pid).since(before);
                let gib = bytes as f64 / (1u64 << 30) as f64;
                cpu[i][k].push(Cpu {
                    machine: used.machine / gib,
                    relay_user: used.relay_user / gib,
                    relay_system: used.relay_system / gib,
                });
                figures.push(mb_per_s);
                failures[i] += failed;
            }
            let line = client(pid, paths[i].in_backend, &["conns".into(), paths[i].echo.clone(), "1000".into()])?;
            latencies[i].extend(line.split_whitespace().filter_map(|v| v.parse::<f64>().ok()));
        }
        eprintln!("round {} of {} done", round + 1, options.rounds);
    }
    print_report(options, &paths, &single, &parallel, &latencies, &failures);
    print_cpu(&paths, &cpu);
    Ok(())
}

/// MB/s actually delivered, and the number of streams that failed.
fn throughput(pid: i64, path: &Path, bytes: u64, streams: usize) -> Result<(f64, usize), String> {
    let args = ["send".into(), path.throughput.clone(), bytes.to_string(), streams.to_string()];
    let line = client(pid, path.in_backend, &args)?;
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
        "\nRatios (medians): 1 stream a/b = {:.2}, a/c = {:.2}, a/e = {:.2}, a/d = {:.2}; 100 streams a/b = {:.2}, \
         a/c = {:.2}, a/e = {:.2}, a/d = {:.2}\n",
        ratio(single, 0, 1),
        ratio(single, 0, 2),
        ratio(single, 0, 3),
        ratio(single, 0, 4),
        ratio(parallel, 0, 1),
        ratio(parallel, 0, 2),
        ratio(parallel, 0, 3),
        ratio(parallel, 0, 4)
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
    let p50 = |i: usize| stats::median(&latencies[i]);
    println!(
        "\nRatio of p50 a/b = {:.2}, a/c = {:.2}, a/e = {:.2}, a/d = {:.2}",
        p50(0) / p50(1),
        p50(0) / p50(2),
        p50(0) / p50(3),
        p50(0) / p50(4)
    );
}

/// Where the time goes: the machine's CPU seconds per GiB delivered on each path (the client, the
/// kernel's TCP work, the relay and the sink together), and the relay's own, user and system. On a
/// machine whose cores are all busy moving bytes, throughput goes as the inverse of the first.
fn print_cpu(paths: &[Path], cpu: &[[Vec<Cpu>; 2]]) {
    let median = |values: Vec<f64>| stats::median(&values);
    println!("\n### CPU per GiB delivered (medians over the rounds; the whole machine, and our relay alone)\n");
    println!(
        "| path | machine CPU-s/GiB, 1 stream | 100 streams | relay user / system CPU-s/GiB, 1 stream | 100 streams |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (i, path) in paths.iter().enumerate() {
        let machine = |k: usize| median(cpu[i][k].iter().map(|c| c.machine).collect());
        let relay = |k: usize| {
            if i != 0 {
                return "—".to_string();
            }
            let user = median(cpu[i][k].iter().map(|c| c.relay_user).collect());
            let system = median(cpu[i][k].iter().map(|c| c.relay_system).collect());
            format!("{user:.2} / {system:.2}")
        };
        println!("| {} | {:.2} | {:.2} | {} | {} |", path.label, machine(0), machine(1), relay(0), relay(1));
    }
}
