//! `assemble build`: the plan (the core checks it), printed with `--dry-run`.
use assemble_core::{
    build_plan::{self, BuildInput, BuildPlan},
    settings, units, Error,
};

use crate::args::BuildArgs;

pub fn run(args: &BuildArgs) -> Result<(), Error> {
    let loaded = settings::load();
    if let Some(warning) = &loaded.warning {
        eprintln!("Warning: {warning}");
    }
    let input = BuildInput {
        context: args.path.clone(),
        dockerfile: args.file.clone(),
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
    };
    let plan = build_plan::plan(&input, |key| std::env::var(key).ok())?;
    if !args.dry_run {
        return Err(Error::BuildNotAvailable);
    }
    let summary = build_plan::summarize(&plan)?;
    print!("{}", describe(&plan, &summary));
    Ok(())
}

/// The plan as `--dry-run` prints it.
fn describe(plan: &BuildPlan, summary: &build_plan::ContextSummary) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<12}{value}\n"));
    line("Kind:", plan.project.kind.label());
    line(
        "Context:",
        &format!(
            "{} ({} files, {}; {} left out by {})",
            plan.context.display(),
            summary.files,
            units::binary_size(summary.bytes),
            summary.left_out,
            plan.ignore_file.as_ref().map_or("no .dockerignore".to_string(), |p| p.display().to_string())
        ),
    );
    line(
        "Dockerfile:",
        &plan.project.dockerfile_path.as_ref().map_or("generated (below)".to_string(), |p| p.display().to_string()),
    );
    line("Image:", &if plan.names.is_empty() { "none (no -t)".to_string() } else { plan.names.join(", ") });
    line("Output:", plan.output.describe());
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
    out.push_str("--- Dockerfile ---\n");
    out.push_str(&plan.project.dockerfile);
    if !plan.project.dockerfile.ends_with('\n') {
        out.push('\n');
    }
    out
}
