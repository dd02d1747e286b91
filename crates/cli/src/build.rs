//! `assemble build`: the plan (the core checks it), printed with `--dry-run`, else run on the
//! backend with progress as buildx shows it.
use std::{
    io::{IsTerminal, Write},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use assemble_core::{
    backend::OurContainer,
    build::{
        call,
        error::BuildError,
        metadata,
        plan::{self as build_plan, BuildInput, BuildPlan, Output},
        run::{self as build_run, BuildOutcome},
        split,
    },
    buildkit::progress::{plain, rawjson, PlainPrinter, StatusResponse, Step},
    engine::{self, Engine, Environment},
    nodes::{self, choice::Share},
    settings, units, Backend, Error, Names, StartFlags, StartRequest,
};

use crate::args::{BuildArgs, EngineArgs, Progress};

/// How often the live view redraws.
const TTY_FRAME: Duration = Duration::from_millis(150);
/// Output lines the live view shows under a running step.
const TTY_OUTPUT_LINES: usize = 6;

pub async fn run(engine_args: &EngineArgs, args: &BuildArgs) -> Result<(), Error> {
    let loaded = settings::load();
    if let Some(warning) = &loaded.warning {
        eprintln!("Warning: {warning}");
    }
    let mut input = BuildInput {
        context: args.path.clone(),
        dockerfile: args.file.clone(),
        stdin: None,
        tags: args.tags.clone(),
        name: args.name.clone(),
        push: args.push,
        load: args.load,
        build_args: args.build_args.clone(),
        target: args.target.clone(),
        platform: args.platform.clone(),
        no_cache: args.no_cache,
        build_image: args.build_image.clone(),
        runtime_image: args.runtime_image.clone(),
        base_images: loaded.settings.base_images.clone(),
        secrets: args.session.secrets.clone(),
        ssh: args.session.ssh.clone(),
        outputs: args.session.outputs.clone(),
        stdout_is_terminal: std::io::stdout().is_terminal(),
        solve: args.solve.input(),
        call: args.solve.call(),
    };
    if input.reads_stdin() && !std::io::stdin().is_terminal() {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|err| Error::Io { action: "reading standard input".into(), source: err })?;
        input.stdin = Some(bytes);
    }
    let plan = build_plan::plan(&input, |key| std::env::var(key).ok())?;
    for warning in &plan.solve.cache.warnings {
        eprintln!("Warning: {warning}.");
    }
    if args.dry_run {
        let summary = build_plan::summarize(&plan)?;
        print!("{}", describe(&plan, &summary));
        return Ok(());
    }
    let start_request = StartRequest::resolve(&StartFlags::default(), &loaded.settings)?;
    let environment = Environment::from_process();
    let endpoint = engine::resolve(&crate::engine_choice(engine_args, &loaded.settings), &environment)?;
    if let Some(warning) = &endpoint.warning {
        eprintln!("Warning: {warning}");
    }
    let backend = Backend::new(Engine::connect_to(endpoint).await?, Names::for_current_user());
    let quiet = args.solve.quiet || matches!(args.progress, Progress::Quiet | Progress::None);
    let printer = crate::progress::StartPrinter::new();
    let report = |event| {
        if !quiet {
            printer.event(event)
        }
    };
    let (container, started) = build_run::running_or_started(&backend, &start_request, &report, interrupted()).await?;
    if started && !quiet {
        eprintln!("The backend was not running: started container {:?} with your settings.", backend.names().backend());
    }
    if let Some(note) = build_run::pull_note(&plan, &container.config.local_images) {
        eprintln!("Note: {note}.");
    }
    if plan.output == Output::CacheOnly && plan.outputs.is_empty() && plan.call.is_none() && !quiet {
        eprintln!("Note: no --push or --load: the result stays in the build cache only.");
    }
    if let Some(path) = &args.solve.iidfile {
        metadata::clear_iidfile(path)?;
    }

    let config_dir = environment.config_dir(engine_args.config.as_deref()).path().to_path_buf();
    let mode = match args.progress {
        _ if quiet => Progress::Quiet,
        Progress::Auto if std::io::stderr().is_terminal() => Progress::Tty,
        Progress::Auto => Progress::Plain,
        other => other,
    };
    if let Some(split) = split::shares_for(&backend, &plan, &nodes::store::path()).await? {
        return run_split(&backend, container, &plan, split, &config_dir, mode, args).await;
    }
    let view = Arc::new(Mutex::new(View::new(mode)));
    let ticker = (mode == Progress::Tty).then(|| {
        let view = view.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TTY_FRAME).await;
                if let Ok(mut view) = view.lock() {
                    view.draw();
                }
            }
        })
    });
    let on_status = |status: &_| {
        if let Ok(mut view) = view.lock() {
            view.take(status);
        }
    };
    let reference = build_run::new_reference();
    let result = build_run::run(&backend, &container, &plan, &config_dir, &reference, on_status, interrupted()).await;
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    // As buildx: the provenance BuildKit recorded goes into the metadata file too
    // (BUILDX_METADATA_PROVENANCE), read before the progress view is taken.
    let with_provenance = match (&result, &args.solve.metadata_file) {
        (Ok(outcome), Some(_)) => Some(
            metadata::exporter_response_with_provenance(
                &backend,
                &outcome.exporter_response,
                &outcome.reference,
                metadata::MetadataProvenance::from_env(),
            )
            .await,
        ),
        _ => None,
    };
    let Ok(mut view) = view.lock() else { return result.map(|_| ()) };
    view.finish();
    // A question's answer goes to standard output, as buildx prints it.
    if let (Ok(outcome), Some(call)) = (&result, &plan.call) {
        let name = plan.project.dockerfile_source.shown_name();
        let answer = call::answer(call, &outcome.exporter_response, name.as_deref())?;
        print!("{}", answer.text);
        if answer.status != 0 {
            return Err(BuildError::CallStatus { call: call.name(), status: answer.status }.into());
        }
        return Ok(());
    }
    match result {
        Ok(outcome) => {
            if let Some(path) = &args.solve.iidfile {
                metadata::write_iidfile(path, &outcome.exporter_response)?;
            }
            if let (Some(path), Some((response, warning))) = (&args.solve.metadata_file, &with_provenance) {
                if let Some(warning) = warning {
                    eprintln!("Warning: {warning}");
                }
                metadata::write_metadata_file(path, response, &outcome.reference)?;
            }
            if args.progress == Progress::None {
                // buildx's `--progress none`: nothing at all.
            } else if quiet {
                // buildx -q: the image ID alone (an empty line when no image was exported).
                println!("{}", metadata::image_id(&outcome.exporter_response));
            } else {
                report_outcome(&plan, &outcome);
            }
            Ok(())
        }
        Err(err) => {
            if let Some(report) = view.printer.failure_report() {
                eprintln!("{report}");
            }
            Err(err)
        }
    }
}

/// A build split across nodes: each node's progress prefixed with its platforms and name, then
/// which node built what, and the index pushed.
async fn run_split(
    backend: &Backend,
    container: OurContainer,
    plan: &BuildPlan,
    split: split::Split,
    config_dir: &std::path::Path,
    mode: Progress,
    args: &BuildArgs,
) -> Result<(), Error> {
    let shares = split.shares.clone();
    let runs = split::node_runs(backend, &container, split).await?;
    if mode != Progress::Quiet {
        for run in &runs {
            eprintln!("{}", run.announcement());
        }
    }
    // One reading of the progress per node; each line says whose it is.
    let printers: Mutex<Vec<(Share, PlainPrinter)>> =
        Mutex::new(shares.iter().map(|s| (s.clone(), PlainPrinter::new())).collect());
    let prefix = split::prefix;
    let on_status = |share: &Share, status: &StatusResponse| {
        let Ok(mut printers) = printers.lock() else { return };
        let Some((_, printer)) = printers.iter_mut().find(|(s, _)| s == share) else { return };
        let lines = printer.apply(status);
        let mut err = std::io::stderr().lock();
        match mode {
            // The live view of one build does not show several; a split build writes lines.
            Progress::Plain | Progress::Tty | Progress::Auto => {
                for line in lines {
                    // A step's closing blank line stays blank, as buildx leaves it.
                    let _ = if line.is_empty() { writeln!(err) } else { writeln!(err, "{} {line}", prefix(share)) };
                }
            }
            Progress::Rawjson => {
                let _ = writeln!(err, "{}", rawjson::raw_json(status));
            }
            _ => {}
        }
    };
    let result = split::run_split(runs, plan, config_dir, &on_status, interrupted()).await;
    let Ok(mut printers) = printers.lock() else { return result.map(|_| ()) };
    if matches!(mode, Progress::Plain | Progress::Tty | Progress::Auto) {
        for (share, printer) in printers.iter_mut() {
            for line in printer.finish() {
                eprintln!("{} {line}", prefix(share));
            }
        }
    }
    match result {
        Ok(outcome) => {
            let response = outcome.exporter_response();
            if let Some(path) = &args.solve.iidfile {
                metadata::write_iidfile(path, &response)?;
            }
            if let Some(path) = &args.solve.metadata_file {
                metadata::write_metadata_file(path, &response, &outcome.references())?;
            }
            if args.progress == Progress::None {
            } else if mode == Progress::Quiet {
                println!("{}", outcome.digest);
            } else {
                for line in outcome.sentences() {
                    println!("{line}");
                }
            }
            Ok(())
        }
        Err(err) => {
            for (share, printer) in printers.iter_mut() {
                if let Some(report) = printer.failure_report() {
                    for line in report.lines() {
                        eprintln!("{} {line}", prefix(share));
                    }
                }
            }
            Err(err)
        }
    }
}

/// Ends when the user presses Ctrl-C; never when the handler cannot be installed.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn report_outcome(plan: &BuildPlan, outcome: &BuildOutcome) {
    eprintln!("{}", outcome.transfer_sentence());
    // A tar on stdout (`-o -`) keeps stdout to itself.
    let stdout_taken = plan.outputs.iter().any(|o| o.dest == assemble_core::build::outputs::Destination::Stdout);
    for line in outcome.sentences(plan.output) {
        if stdout_taken {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// The progress as the user asked to see it.
struct View {
    mode: Progress,
    /// The one reading of BuildKit's progress (core's): plain's lines, the live view's steps.
    printer: PlainPrinter,
    began: Instant,
    /// Lines of the live area drawn last, to move back over them.
    live_lines: usize,
    /// Steps whose final line is printed above the live area.
    printed: Vec<bool>,
}

impl View {
    fn new(mode: Progress) -> Self {
        Self { mode, printer: PlainPrinter::new(), began: Instant::now(), live_lines: 0, printed: Vec::new() }
    }

    fn take(&mut self, status: &StatusResponse) {
        let lines = self.printer.apply(status);
        let mut err = std::io::stderr().lock();
        match self.mode {
            Progress::Plain => {
                for line in lines {
                    let _ = writeln!(err, "{line}");
                }
            }
            Progress::Rawjson => {
                let _ = writeln!(err, "{}", rawjson::raw_json(status));
            }
            _ => {}
        }
    }

    /// Redraws the live view: finished steps once, above; the running ones below, with the
    /// build's time and count.
    fn draw(&mut self) {
        if self.mode != Progress::Tty {
            return;
        }
        let mut out = String::new();
        if self.live_lines > 0 {
            out.push_str(&format!("\x1b[{}A\x1b[J", self.live_lines));
        }
        let now = now_seconds();
        self.printed.resize(self.printer.steps().len(), false);
        for (index, step) in self.printer.steps().iter().enumerate() {
            if step.has_ended() && !self.printed[index] {
                self.printed[index] = true;
                out.push_str(&step_line(step, now));
                out.push('\n');
            }
        }
        let steps = self.printer.steps();
        let done = steps.iter().filter(|s| s.has_ended()).count();
        let mut live =
            vec![format!("[+] Building {:.1}s ({done}/{})", self.began.elapsed().as_secs_f64(), steps.len())];
        for step in steps.iter().filter(|s| s.is_running()) {
            live.push(step_line(step, now));
            for part in step.open_parts() {
                live.push(format!(" => => {}", plain::part_text(part)));
            }
            let mut output: Vec<&str> = step.output().rev().take(TTY_OUTPUT_LINES).map(|(_, line)| line).collect();
            output.reverse();
            for line in output {
                live.push(format!(" => => # {}", clip(line, 120)));
            }
        }
        for line in &live {
            out.push_str(line);
            out.push('\n');
        }
        self.live_lines = live.len();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    /// The last lines, or the last frame with every step.
    fn finish(&mut self) {
        let lines = self.printer.finish();
        if self.mode == Progress::Plain {
            let mut err = std::io::stderr().lock();
            for line in lines {
                let _ = writeln!(err, "{line}");
            }
        }
        self.draw();
    }
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// ` => [2/3] RUN make   1.2s`, as buildx's live view writes a step.
fn step_line(step: &Step, now: f64) -> String {
    let state = if step.error.is_some() {
        "ERROR "
    } else if step.cached {
        "CACHED "
    } else {
        ""
    };
    format!(" => {state}{:<60} {:>5.1}s", clip(&step.name, 60), step.seconds(now))
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(width - 1).collect();
        clipped.push('…');
        clipped
    }
}

/// The plan as `--dry-run` prints it.
fn describe(plan: &BuildPlan, summary: &build_plan::ContextSummary) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<12}{value}\n"));
    line("Kind:", plan.project.kind.label());
    let context = match plan.context.folder() {
        Some(_) => format!(
            "{} ({} files, {}; {} left out by {})",
            plan.context.describe(),
            summary.files,
            units::binary_size(summary.bytes),
            summary.left_out,
            plan.ignore_file.as_ref().map_or("no .dockerignore".to_string(), |p| p.display().to_string())
        ),
        None => plan.context.describe(),
    };
    line("Context:", &context);
    line("Dockerfile:", &plan.project.dockerfile_source.describe());
    line("Image:", &if plan.names.is_empty() { "none (no -t)".to_string() } else { plan.names.join(", ") });
    if plan.output != Output::CacheOnly || plan.outputs.is_empty() {
        line("Output:", plan.output.describe());
    }
    for output in &plan.outputs {
        let dest = match &output.dest {
            assemble_core::build::outputs::Destination::Folder(p)
            | assemble_core::build::outputs::Destination::File(p) => p.display().to_string(),
            assemble_core::build::outputs::Destination::Layout(p) => format!("the OCI layout folder {}", p.display()),
            assemble_core::build::outputs::Destination::Stdout => "the standard output".to_string(),
            assemble_core::build::outputs::Destination::None
                if output.attrs.get("push").is_some_and(|p| p == "true") =>
            {
                "its registry (pushed)".to_string()
            }
            assemble_core::build::outputs::Destination::None => "no file here".to_string(),
        };
        line("Output -o:", &format!("{} to {dest}", output.exporter));
    }
    // Where each secret is read, never its value.
    let mut secrets: Vec<_> = plan.secrets.sources.iter().collect();
    secrets.sort_by(|a, b| a.0.cmp(b.0));
    for (id, source) in secrets {
        let from = match source {
            assemble_core::buildkit::secrets::SecretSource::File(p) => format!("the file {}", p.display()),
            assemble_core::buildkit::secrets::SecretSource::Env(v) => format!("the variable {v}"),
        };
        line("Secret:", &format!("{id} from {from}"));
    }
    let mut agents: Vec<_> = plan.ssh.agents.keys().collect();
    agents.sort();
    for id in agents {
        line("SSH:", id);
    }
    if let Some(port) = plan.project.port {
        line("Port:", &port.to_string());
    }
    if let Some(target) = &plan.target {
        line("Target:", target);
    }
    if !plan.platforms.is_empty() {
        line("Platform:", &plan.platforms.join(", "));
    }
    for (key, value) in &plan.build_args {
        line("Build arg:", &format!("{key}={value}"));
    }
    if plan.no_cache {
        line("Cache:", "not used (--no-cache)");
    }
    for (label, value) in plan.solve.describe() {
        line(label, &value);
    }
    // A Dockerfile in a remote context is the backend's to read: there is no text to show.
    if !plan.project.dockerfile.is_empty() {
        out.push_str("--- Dockerfile ---\n");
        out.push_str(&plan.project.dockerfile);
        if !plan.project.dockerfile.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
