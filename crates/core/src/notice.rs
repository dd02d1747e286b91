//! What deserves telling when nobody is looking: a change of state that no operation of ours
//! asked for. The app shows it as a desktop notification while no window is open.
use crate::status::{Snapshot, State};

/// A short title and a sentence, for a desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line.
    pub title: String,
    /// What happened and what to do.
    pub body: String,
}

/// The notice for going from `before` to `after` while no start, stop or restart of ours was
/// under way: a running backend that stopped or broke, or an engine that went away under it.
pub fn unexpected_change(before: &Snapshot, after: &Snapshot) -> Option<Notice> {
    if before.state != State::Running || before.name != after.name || before.engine != after.engine {
        return None;
    }
    let detail = after.message.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
    let (title, body) = match after.state {
        State::Stopped => {
            ("The backend stopped", format!("The backend stopped on its own.{detail} Start it again from the tray."))
        }
        State::Error => (
            "The backend is in trouble",
            format!("The backend does not run as it should.{detail} Open the panel to see why."),
        ),
        State::DockerUnavailable => (
            "Docker is not reachable",
            format!("The Docker Engine went away while the backend ran.{detail} It is followed again when it is back."),
        ),
        State::Running | State::Starting | State::Stopping => return None,
    };
    Some(Notice { title: title.to_string(), body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(state: State, message: Option<&str>) -> Snapshot {
        Snapshot::new(state, "docker-assemble-backend-jane".into(), message.map(String::from), None)
    }

    #[test]
    fn a_running_backend_that_stops_on_its_own_is_told() {
        let notice = unexpected_change(&snapshot(State::Running, None), &snapshot(State::Stopped, None))
            .expect("a stop nobody asked for is told");
        assert_eq!(notice.title, "The backend stopped");
        assert_eq!(notice.body, "The backend stopped on its own. Start it again from the tray.");
    }

    #[test]
    fn the_engines_reason_is_part_of_the_notice() {
        let after = snapshot(State::DockerUnavailable, Some("Cannot connect to the Docker daemon."));
        let notice = unexpected_change(&snapshot(State::Running, None), &after).expect("told");
        assert_eq!(notice.title, "Docker is not reachable");
        assert!(
            notice.body.contains("went away while the backend ran. Cannot connect to the Docker daemon."),
            "{}",
            notice.body
        );
        let broken = unexpected_change(&snapshot(State::Running, None), &snapshot(State::Error, Some("Sidecar dead.")));
        assert_eq!(broken.map(|n| n.title), Some("The backend is in trouble".to_string()));
    }

    #[test]
    fn nothing_is_told_for_changes_we_made_or_that_are_not_losses() {
        // During our own stop the app shows Stopping, then Stopped: never Running → Stopped.
        assert_eq!(unexpected_change(&snapshot(State::Stopping, None), &snapshot(State::Stopped, None)), None);
        assert_eq!(unexpected_change(&snapshot(State::Stopped, None), &snapshot(State::Running, None)), None);
        assert_eq!(unexpected_change(&snapshot(State::Running, None), &snapshot(State::Running, None)), None);
        assert_eq!(unexpected_change(&snapshot(State::Error, None), &snapshot(State::Stopped, None)), None);
    }
}
