//! What deserves telling when nobody is looking: a change of state that no operation of ours
//! asked for. The app shows it as a desktop notification while no window is open.
use crate::live::status::{Snapshot, State};

/// A short title and a sentence, for a desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line.
    pub title: String,
    /// What happened and what to do.
    pub body: String,
}

/// Follows the snapshots shown and tells a loss nobody asked for: a backend seen running that is
/// then seen stopped, or whose engine went away. An error state tells nothing on its own (a stop in
/// progress passes through one, and the tray's icon shows a lasting one); what it ends in does.
#[derive(Debug, Default)]
pub struct LossWatch {
    /// The backend last seen running (its name and engine), until it is seen to stop.
    running: Option<Snapshot>,
}

impl LossWatch {
    /// An operation of ours begins: whatever follows was asked for.
    pub fn expect_change(&mut self) {
        self.running = None;
    }

    /// The notice for `snapshot`, if it shows a loss of the backend last seen running.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Option<Notice> {
        match snapshot.state {
            State::Running => {
                self.running = Some(snapshot.clone());
                None
            }
            State::Starting | State::Stopping => {
                self.running = None;
                None
            }
            State::Error => None,
            State::Stopped | State::DockerUnavailable => {
                let before = self.running.take()?;
                if before.name != snapshot.name || before.engine != snapshot.engine {
                    // Another backend or engine (a switch of context): not a loss.
                    return None;
                }
                Some(loss(snapshot))
            }
        }
    }
}

fn loss(after: &Snapshot) -> Notice {
    let detail = after.message.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
    let (title, body) = if after.state == State::DockerUnavailable {
        (
            "Docker is not reachable",
            format!("The Docker Engine went away while the backend ran.{detail} It is followed again when it is back."),
        )
    } else {
        ("The backend stopped", format!("The backend stopped on its own.{detail} Start it again from the tray."))
    };
    Notice { title: title.to_string(), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(state: State, message: Option<&str>) -> Snapshot {
        Snapshot::new(state, "docker-assemble-backend-jane".into(), message.map(String::from), None)
    }

    fn watched(states: &[Snapshot]) -> Vec<Notice> {
        let mut watch = LossWatch::default();
        states.iter().filter_map(|s| watch.observe(s)).collect()
    }

    #[test]
    fn a_running_backend_that_stops_on_its_own_is_told_once() {
        let told = watched(&[
            snapshot(State::Running, None),
            snapshot(State::Error, Some("BuildKit does not answer")),
            snapshot(State::Stopped, Some("It was stopped outside Assemble Backend.")),
            snapshot(State::Stopped, None),
        ]);
        assert_eq!(
            told,
            vec![Notice {
                title: "The backend stopped".into(),
                body: "The backend stopped on its own. It was stopped outside Assemble Backend. Start it again from \
                       the tray."
                    .into()
            }]
        );
    }

    #[test]
    fn an_engine_that_goes_away_under_a_running_backend_is_told() {
        let told = watched(&[
            snapshot(State::Running, None),
            snapshot(State::DockerUnavailable, Some("Cannot connect to the Docker daemon.")),
        ]);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].title, "Docker is not reachable");
        assert!(told[0].body.contains("went away while the backend ran. Cannot connect to the Docker daemon."));
    }

    #[test]
    fn nothing_is_told_for_changes_we_made_or_that_are_not_losses() {
        // Our own stop shows Stopping on the way.
        assert_eq!(
            watched(&[snapshot(State::Running, None), snapshot(State::Stopping, None), snapshot(State::Stopped, None)]),
            vec![]
        );
        // An operation of ours that begins is expected to change things.
        let mut watch = LossWatch::default();
        assert_eq!(watch.observe(&snapshot(State::Running, None)), None);
        watch.expect_change();
        assert_eq!(watch.observe(&snapshot(State::Stopped, None)), None);
        // Never seen running, or only in error: nothing was lost that the user had.
        assert_eq!(
            watched(&[snapshot(State::Stopped, None), snapshot(State::Error, None), snapshot(State::Stopped, None)]),
            vec![]
        );
        // Another engine (docker context use): the new one's backend is another backend.
        let on = |context: &str, state: State| {
            let engine = crate::engine::EngineView {
                context: context.into(),
                host: format!("unix:///{context}.sock"),
                tls: false,
            };
            snapshot(state, None).on_engine(Some(engine))
        };
        assert_eq!(watched(&[on("default", State::Running), on("desktop-linux", State::Stopped)]), vec![]);
        assert_eq!(
            watched(&[on("default", State::Running), on("default", State::Stopped)]).len(),
            1,
            "the same engine: told"
        );
    }
}
