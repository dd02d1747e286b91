//! Start progress: a live line on a terminal, plain lines otherwise. Notices go to stderr so that
//! stdout keeps the original's shape.
use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
};

use assemble_core::{units::human_size, StartEvent};

pub struct StartPrinter {
    terminal: bool,
    last_plain: Mutex<Option<(usize, usize)>>,
}

impl StartPrinter {
    pub fn new() -> Self {
        Self { terminal: std::io::stdout().is_terminal(), last_plain: Mutex::new(None) }
    }

    pub fn event(&self, event: StartEvent) {
        let mut stdout = std::io::stdout().lock();
        match event {
            StartEvent::PullProgress { image, downloaded, total, layers_done, layers } => {
                if self.terminal {
                    let percent = (downloaded * 100).checked_div(total).unwrap_or(0);
                    let _ = write!(
                        stdout,
                        "\r\x1b[2KPulling image {image}: {percent:>3}% ({} of {}, {layers_done}/{layers} layers)",
                        human_size(downloaded as i64),
                        human_size(total as i64)
                    );
                    let _ = stdout.flush();
                } else if let Ok(mut last) = self.last_plain.lock() {
                    // One line per finished layer, not one per progress tick.
                    if *last != Some((layers_done, layers)) {
                        *last = Some((layers_done, layers));
                        let _ = writeln!(stdout, "Pulling image {image}: {layers_done}/{layers} layers");
                    }
                }
            }
            StartEvent::PullDone { image } => {
                let clear = if self.terminal { "\r\x1b[2K" } else { "" };
                let _ = writeln!(stdout, "{clear}Pulling image {image}: Success");
            }
            StartEvent::PrivilegedRefused { reason } => eprintln!(
                "Note: the engine refused a privileged container: its runtime could not apply the capabilities \
                 ({reason}).\n      Running BuildKit with all capabilities except SYS_RESOURCE, unconfined profiles \
                 and writable cgroups instead."
            ),

            StartEvent::CacheVolumeCreated { name } => eprintln!("Created cache volume {name:?}"),
            StartEvent::ProxyImageBuilt { image } => eprintln!("Made sidecar image {image}"),
            StartEvent::MirrorImageBuilt { image } => eprintln!("Made local-image mirror image {image}"),
            // The outcome prints it once, after the start.
            StartEvent::LocalImages { .. } | StartEvent::MirrorStarted { .. } => {}
            StartEvent::ImagePresent { .. }
            | StartEvent::BackendCreated { .. }
            | StartEvent::WaitingForBuildkit
            | StartEvent::SecurityMode { .. }
            | StartEvent::ProxyStarted { .. } => {}
        }
    }
}
