//! `assemble` (and `docker-assemble`, the Docker CLI plugin): parses, calls the core, prints.
mod args;
mod build;
mod build_flags;
mod progress;
mod render;
mod session_args;

use std::{io::Write, process::ExitCode, time::Duration};

use args::{
    BackendCommand, BuildsArgs, BuildsCommand, CacheCommand, Cli, Command, EngineArgs, Format, LogsArgs, NodesCommand,
    PortsArgs, PortsCommand, StartArgs,
};
use assemble_core::{
    backend::sidecars::record::PortEdit,
    buildkit::{progress::plain::recorded_log, prune::CacheFilter},
    engine::{self, Engine, EngineChoice, EngineView, Environment},
    nodes::{self, error::NodeError, NodeReport, Reached},
    plugin, settings, Backend, BuildError, CacheChoice, Error, LogChunk, LogOptions, Names, Place, Remedy, Settings,
    StartFlags, StartOutcome, StartRequest, State, StopOutcome,
};
use clap::Parser;
use futures_util::StreamExt;

fn main() -> ExitCode {
    let args = plugin::strip_plugin_argument(std::env::args().collect());
    if args.get(1).map(String::as_str) == Some(plugin::METADATA_COMMAND) {
        println!("{}", plugin::metadata());
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse_from(args);
    // One operation at a time, so one thread: the HTTP connection tasks and what reads from them
    // never hand work across threads (that cost `logs` two thread wake-ups per log line). A build
    // is the exception: it serves files to BuildKit while it reads the build's progress.
    let runtime = match &cli.command {
        Command::Build(_) => tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("Error: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // As a shell reports a program ended by Ctrl-C.
        Err(err @ Error::Build(BuildError::Canceled)) => {
            eprintln!("Error: {}", err.sentence(Place::CommandLine));
            ExitCode::from(130)
        }
        Err(err) => {
            eprintln!("Error: {}", err.sentence(Place::CommandLine));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::InstallPlugin { force } => {
            let exe =
                std::env::current_exe().map_err(|e| Error::Io { action: "finding this program".into(), source: e })?;
            let link = plugin::install(&exe, &plugin::plugin_dir()?, force)?;
            println!(
                "Installed {} -> {}\n`docker assemble backend …` now runs this program.",
                link.display(),
                exe.display()
            );
            Ok(())
        }
        Command::Backend(command) => backend(&cli.engine, command).await,
        Command::Build(args) => build::run(&cli.engine, &args).await,
    }
}

async fn backend(engine_args: &EngineArgs, command: BackendCommand) -> Result<(), Error> {
    let loaded = settings::load();
    if let Some(warning) = &loaded.warning {
        eprintln!("Warning: {warning}");
    }
    // Validate everything the user typed before touching the engine.
    let start_request = match &command {
        BackendCommand::Start(args) => Some(start_request(args, &loaded.settings)?),
        _ => None,
    };
    let cache_filter = match &command {
        BackendCommand::Cache(CacheCommand::Usage(args)) => Some(CacheFilter::parse(false, None, &args.filter)?),
        BackendCommand::Cache(CacheCommand::Purge(args)) => {
            Some(CacheFilter::parse(args.all, args.keep_storage.as_deref(), &args.filter)?)
        }
        _ => None,
    };
    let port_edit = match &command {
        BackendCommand::Ports(PortsArgs { command: Some(PortsCommand::Add { ports }), .. }) => {
            Some(PortEdit::add(ports)?)
        }
        BackendCommand::Ports(PortsArgs { command: Some(PortsCommand::Rm { ports }), .. }) => {
            Some(PortEdit::remove(ports)?)
        }
        _ => None,
    };
    let log_options = match &command {
        BackendCommand::Logs(args) => Some(log_options(args)?),
        _ => None,
    };
    // `nodes add --context NAME`: the context names the node's engine; this command runs against
    // the engine chosen as without it (DOCKER_CONTEXT, the current context, …).
    let mut local_choice = engine_choice(engine_args, &loaded.settings);
    let node_add = match &command {
        BackendCommand::Nodes(NodesCommand::Add { platform }) => {
            let context = engine_args.context.clone().ok_or(NodeError::NoContext)?;
            let platforms = nodes::parse_platforms(platform)?;
            local_choice.context = None;
            Some((context, platforms, StartRequest::resolve(&StartFlags::default(), &loaded.settings)?))
        }
        _ => None,
    };
    let nodes_file = nodes::store::path();
    let endpoint = engine::resolve(&local_choice, &Environment::from_process())?;
    if let Some(warning) = &endpoint.warning {
        eprintln!("Warning: {warning}");
    }
    let backend = Backend::new(Engine::connect_to(endpoint).await?, Names::for_current_user());
    match command {
        BackendCommand::Start(args) => {
            let request = start_request.expect("parsed above");
            start(&backend, &request).await?;
            register_builder(&backend, args.use_builder || loaded.settings.use_builder).await;
            for report in nodes::start_all(&backend, &request, &nodes_file).await? {
                print_node_report(&report, |outcome| match outcome {
                    StartOutcome::Started { id, name, .. } => {
                        format!("started container {name:?} ({})", &id[..id.len().min(12)])
                    }
                    StartOutcome::AlreadyRunning { id, name, .. } => {
                        format!("container {name:?} ({}) is already running", &id[..id.len().min(12)])
                    }
                });
            }
            Ok(())
        }
        BackendCommand::Stop => {
            stop(&backend).await?;
            for report in nodes::stop_all(&backend, &nodes_file).await? {
                print_node_report(&report, |outcome| match outcome {
                    StopOutcome::Stopped { id, name, .. } => {
                        format!("stopped container {name:?} ({})", &id[..id.len().min(12)])
                    }
                    StopOutcome::NotRunning { .. } => "the backend is not running".to_string(),
                });
            }
            Ok(())
        }
        BackendCommand::Info(format) => info(&backend, format.format, &nodes_file).await,
        BackendCommand::Nodes(NodesCommand::Add { .. }) => {
            let (context, platforms, request) = node_add.expect("parsed above");
            let added = nodes::add(&backend, &context, &platforms, &request, &nodes_file).await?;
            let id = match &added.start {
                StartOutcome::Started { id, .. } | StartOutcome::AlreadyRunning { id, .. } => id.clone(),
            };
            println!(
                "Added node {:?} ({}): container {:?} ({}) runs there, in the buildx builder \"assemble\" as {}",
                added.name,
                added.host,
                backend.names().backend(),
                &id[..id.len().min(12)],
                added.endpoint
            );
            Ok(())
        }
        BackendCommand::Nodes(NodesCommand::Rm { name, keep_state, force }) => {
            let removed = nodes::remove(&backend, &name, keep_state, force, &nodes_file).await?;
            println!("{}", render::node_removed(&removed));
            Ok(())
        }
        BackendCommand::Nodes(NodesCommand::Ls(format)) => {
            let statuses = nodes::list(&backend, &nodes_file).await?;
            match format.format {
                Format::Text => print!("{}", render::nodes(&statuses)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&statuses).unwrap_or_default()),
            }
            Ok(())
        }
        BackendCommand::Logs(_) => logs(&backend, &log_options.expect("parsed above")).await,
        BackendCommand::Cache(CacheCommand::Usage(args)) => {
            cache_usage(&backend, args.format.format, &cache_filter.expect("parsed above")).await
        }
        BackendCommand::Builds(BuildsArgs { command: None, format }) => builds(&backend, format.format).await,
        BackendCommand::Builds(BuildsArgs { command: Some(BuildsCommand::Logs { reference }), .. }) => {
            let (build, progress) = backend.build_with_progress(&reference).await?;
            print!("{}", recorded_log(&progress, build.error.as_deref()));
            Ok(())
        }
        BackendCommand::Ports(PortsArgs { command: None, format }) => {
            let statuses = backend.port_statuses().await?;
            match format.format {
                Format::Text => print!("{}", render::ports(&statuses)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&statuses).unwrap_or_default()),
            }
            Ok(())
        }
        BackendCommand::Ports(PortsArgs { command: Some(_), .. }) => {
            let change = backend.change_ports(&port_edit.expect("parsed above")).await?;
            println!("{}", change.sentence());
            Ok(())
        }
        BackendCommand::Cache(CacheCommand::Purge(_)) => {
            print!("{}", render::purge(&backend.cache_purge(&cache_filter.expect("parsed above")).await?));
            Ok(())
        }
    }
}

/// docker's global options; the settings' pinned context fills in (the core ranks them).
pub(crate) fn engine_choice(args: &EngineArgs, settings: &Settings) -> EngineChoice {
    EngineChoice {
        context: args.context.clone(),
        host: args.host.clone(),
        config_dir: args.config.clone(),
        tls: args.tls,
        tls_verify: args.tlsverify,
        tls_ca: args.tlscacert.clone(),
        tls_cert: args.tlscert.clone(),
        tls_key: args.tlskey.clone(),
        ..settings.engine_choice()
    }
}

fn start_request(args: &StartArgs, settings: &Settings) -> Result<StartRequest, Error> {
    let flags = StartFlags {
        allow_host_port: args.allow_host_port.clone(),
        cache_volume: args.cache_volume.clone(),
        image: args.image.clone(),
        ready_timeout: Some(Duration::from_secs(args.ready_timeout)),
        cache_limit: args.cache_limit.clone(),
        security: args.security.clone(),
        allow_network_host: args.allow_network_host,
        no_local_images: args.no_local_images,
    };
    StartRequest::resolve(&flags, settings)
}

fn log_options(args: &LogsArgs) -> Result<LogOptions, Error> {
    let tail = LogOptions::parse_tail(args.tail.as_deref())?;
    Ok(LogOptions { follow: args.follow, tail, timestamps: args.timestamps })
}

async fn start(backend: &Backend, request: &StartRequest) -> Result<(), Error> {
    let printer = progress::StartPrinter::new();
    let report = |event| printer.event(event);
    let interrupted = async {
        // If the handler cannot be installed, never cancel: the start simply runs to its end.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match backend.start_until(request, &report, interrupted).await? {
        StartOutcome::Started { id, name, cache, security, security_reason, local_images, .. } => {
            println!("Started container {name:?} ({})", &id[..id.len().min(12)]);
            println!("Security: {}", security.described(Some(&security_reason)));
            if request.allow_network_host {
                println!("Host network: {}", assemble_core::backend::info::network_host_text(true));
            }
            println!("Local images: {}", local_images.describe());
            let engine = backend.engine().endpoint().view();
            if !is_local_default(&engine) {
                println!("{}", render::engine_line(&engine));
            }
            if cache == CacheChoice::Anonymous {
                eprintln!(
                    "Note: the build cache is not kept when the backend stops. To keep it, create the volume {} \
                     (docker volume create {}) or pass --cache-volume.",
                    backend.names().default_cache_volume(),
                    backend.names().default_cache_volume()
                );
            }
        }
        StartOutcome::AlreadyRunning {
            id,
            name,
            differences,
            ports_change,
            security,
            security_reason,
            local_images,
            ..
        } => {
            println!("Container {name:?} ({}) is already running", &id[..id.len().min(12)]);
            println!("Security: {}", security.described(security_reason.as_deref()));
            println!("Local images: {}", local_images.describe());
            if let Some(change) = ports_change {
                println!("{}", change.sentence());
            }
            if !differences.is_empty() {
                let list: Vec<String> = differences.iter().map(|d| d.sentence("asked")).collect();
                eprintln!(
                    "Note: it runs with other options than asked, which were not applied: {}. To apply them, stop it and start again.",
                    list.join("; ")
                );
            }
        }
    }
    Ok(())
}

/// The buildx builder for the backend that runs now: one line, on stdout when it builds here.
async fn register_builder(backend: &Backend, make_current: bool) {
    let registration = assemble_core::backend::builder::register(
        &backend.names().backend(),
        backend.engine().endpoint(),
        make_current,
    )
    .await;
    if registration.is_ours() {
        println!("{}", registration.sentence());
    } else {
        eprintln!("Note: {}", registration.sentence());
    }
}

async fn stop(backend: &Backend) -> Result<(), Error> {
    match backend.stop().await? {
        StopOutcome::Stopped { name, id, cache_volume, .. } => {
            println!("Stopped container {name:?} ({})", &id[..id.len().min(12)]);
            if let Some(volume) = cache_volume {
                println!("The build cache stays in volume {volume:?}.");
            }
        }
        StopOutcome::NotRunning { .. } => println!("The backend is not running."),
    }
    Ok(())
}

/// One node's part of `start` or `stop`: what it did on stdout, why not on stderr.
fn print_node_report<T>(report: &NodeReport<T>, done: impl Fn(&T) -> String) {
    let place = format!("Node {:?} ({})", report.name, report.host.as_deref().unwrap_or(report.context.as_str()));
    match &report.reached {
        Reached::Done { result } => println!("{place}: {}", done(result)),
        Reached::Unreachable { reason } => eprintln!("{place}: unreachable: {reason}"),
        Reached::Failed { reason } => eprintln!("{place}: failed: {reason}"),
    }
}

/// `info`: the local backend's, then each node's (asked at the same time as the local one).
async fn info(backend: &Backend, format: Format, nodes_file: &std::path::Path) -> Result<(), Error> {
    let (local, nodes) = futures_util::future::join(backend.info(), nodes::info_all(backend, nodes_file)).await;
    let nodes = nodes?;
    local_info(backend, local, format, &nodes)?;
    if format == Format::Text {
        for report in &nodes {
            let place =
                format!("\nNode {:?} ({})", report.name, report.host.as_deref().unwrap_or(report.context.as_str()));
            match &report.reached {
                Reached::Done { result } => print!("{place}:\n{}", render::info(result)),
                Reached::Unreachable { reason } => println!("{place}: unreachable: {reason}"),
                Reached::Failed { reason } if reason.contains("is not running") => println!("{place}: stopped"),
                Reached::Failed { reason } => println!("{place}: {reason}"),
            }
        }
    }
    Ok(())
}

fn local_info(
    backend: &Backend,
    result: Result<assemble_core::BackendInfo, Error>,
    format: Format,
    nodes: &[NodeReport<assemble_core::BackendInfo>],
) -> Result<(), Error> {
    // The nodes go in the JSON beside the local backend's fields, only when there are some.
    let with_nodes = |mut value: serde_json::Value| {
        if let (false, Some(object)) = (nodes.is_empty(), value.as_object_mut()) {
            object.insert("nodes".into(), serde_json::to_value(nodes).unwrap_or_default());
        }
        value
    };
    match (result, format) {
        (Ok(info), Format::Text) => print!("{}", render::info(&info)),
        (Ok(info), Format::Json) => {
            let value = with_nodes(serde_json::to_value(&info).unwrap_or_default());
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default())
        }
        (Err(err), Format::Text) if err.is_not_running() => {
            println!(
                "The backend {:?} is not running on {}; {}.",
                backend.names().backend(),
                render::engine_text(&backend.engine().endpoint().view()),
                Remedy::StartBackend.words(Place::CommandLine)
            )
        }
        (Err(err), Format::Json) if err.is_not_running() => {
            let engine = backend.engine().endpoint().view();
            println!(
                "{}",
                with_nodes(
                    serde_json::json!({ "name": backend.names().backend(), "state": State::Stopped, "engine": engine })
                )
            )
        }
        (Err(err), _) => return Err(err),
    }
    Ok(())
}

/// The engine docker reaches when nothing chooses another: not worth a line of its own.
fn is_local_default(engine: &EngineView) -> bool {
    engine.context == engine::DEFAULT_CONTEXT && engine.host == engine::DEFAULT_HOST
}

async fn logs(backend: &Backend, options: &LogOptions) -> Result<(), Error> {
    let stream = backend.logs(options).await?;
    // A task, not the main future: the runtime then runs it and the HTTP connection task that
    // feeds it (one chunk per log line) back to back, instead of parking between every line.
    let copy = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
        while let Some(chunk) = stream.next().await {
            let written = match chunk? {
                LogChunk::Stdout(bytes) => stdout.write_all(&bytes).and_then(|_| stdout.flush()),
                LogChunk::Stderr(bytes) => stderr.write_all(&bytes),
            };
            // A closed pipe (`| head`) ends the command quietly, as with docker logs.
            if written.is_err() {
                break;
            }
        }
        Ok(())
    });
    copy.await.map_err(|e| Error::Io { action: "copying the logs".into(), source: std::io::Error::other(e) })?
}

async fn builds(backend: &Backend, format: Format) -> Result<(), Error> {
    let builds = backend.builds().await?;
    match format {
        Format::Text => {
            let now = assemble_core::time::now_seconds();
            print!("{}", render::builds(&builds, now));
        }
        // One object per line, as `docker buildx history ls --format json`.
        Format::Json => {
            for build in &builds {
                println!("{}", serde_json::to_string(build).unwrap_or_default());
            }
        }
    }
    Ok(())
}

async fn cache_usage(backend: &Backend, format: Format, filter: &CacheFilter) -> Result<(), Error> {
    let records = backend.cache_usage(filter).await?;
    match format {
        Format::Text => {
            let now = assemble_core::time::now_seconds();
            print!("{}", render::cache_usage(&records, now));
        }
        Format::Json => {
            let totals = assemble_core::CacheTotals::of(&records);
            let by_type = assemble_core::CacheTotals::by_type(&records);
            let value = serde_json::json!({ "records": records, "totals": totals, "by_type": by_type });
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
    }
    Ok(())
}
