//! What holds the backend's name on the engine: nothing, a container that is not ours, or our
//! backend, read back from its labels (and, for its ports, from the port record).
use bollard::models::ContainerInspectResponse;

use crate::{
    backend::{
        error::BackendError,
        labels::{self, Role},
        sidecars::{self, record},
        Backend, ContainerState, OurContainer, Presence,
    },
    engine::is_not_found,
    names::Names,
    Error, Result,
};

/// What holds the backend's name. A container labelled ours whose other labels are damaged counts
/// as foreign, rather than guess what start decided.
pub(super) async fn read(backend: &Backend) -> Result<Presence> {
    let name = backend.names.backend();
    let inspect = match backend.docker.inspect_container(&name, None).await {
        Ok(inspect) => inspect,
        Err(err) if is_not_found(&err) => return Ok(Presence::Absent),
        Err(err) => return Err(Error::docker(format!("inspecting container {name}"))(err)),
    };
    let mut presence = presence_of(&inspect, &backend.names);
    if let Presence::Ours(container) = &mut presence {
        // The ports proxied now: what the host stands behind, narrowed by the backend's own
        // record, never widened by it (sidecars/record.rs). The label has the first set.
        let in_backend = record::read(backend, &container.id).await?;
        let sidecar_ports: Vec<u16> = sidecars::list(backend)
            .await?
            .into_iter()
            .filter(|s| s.backend_id == container.id)
            .filter_map(|s| s.port)
            .collect();
        let host = record::HostRecord::of(backend.engine.endpoint(), &container.id).read();
        let authority = record::authority(host, &container.config.ports, sidecar_ports);
        let (live, unrelayed) = record::narrow(&authority, in_backend.as_ref());
        container.config.ports = live;
        container.unrelayed = unrelayed;
    }
    Ok(presence)
}

/// The running backend, or the reason there is none.
pub(super) async fn running(backend: &Backend) -> Result<OurContainer> {
    match read(backend).await? {
        Presence::Ours(container) if container.running => Ok(*container),
        Presence::Foreign => Err(BackendError::ForeignContainer { name: backend.names.backend() }.into()),
        _ => Err(BackendError::NotRunning.into()),
    }
}

/// What the container that holds `names`' backend name is to us.
fn presence_of(inspect: &ContainerInspectResponse, names: &Names) -> Presence {
    let container_labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    if !labels::is_ours(container_labels, names, Role::Backend) {
        return Presence::Foreign;
    }
    match our_container(inspect) {
        Some(container) => Presence::Ours(Box::new(container)),
        // Ours by owner and role, but the rest of the record is damaged: treat it as foreign
        // rather than guess what start decided.
        None => Presence::Foreign,
    }
}

fn our_container(inspect: &ContainerInspectResponse) -> Option<OurContainer> {
    let config = labels::read_backend(inspect.config.as_ref()?.labels.as_ref()?)?;
    let state = inspect.state.as_ref();
    Some(OurContainer {
        id: inspect.id.clone()?,
        name: inspect.name.clone().unwrap_or_default().trim_start_matches('/').to_string(),
        state: state
            .and_then(|s| s.status)
            .map_or(ContainerState::Unknown, |s| ContainerState::from_engine(s.as_ref())),
        running: state.and_then(|s| s.running).unwrap_or(false),
        started_at: state.and_then(|s| s.started_at.clone()),
        image_id: inspect.image.clone().unwrap_or_default(),
        config,
        unrelayed: crate::ports::PortSet::none(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        backend::labels::{BackendLabels, SecurityMode},
        ports::PortSet,
    };

    /// An inspect response as the engine sends it, for a container labelled `labels`.
    fn inspect(state: serde_json::Value, labels: serde_json::Value) -> ContainerInspectResponse {
        serde_json::from_value(json!({
            "Id": "b1",
            "Name": "/docker-assemble-backend-u",
            "Image": "sha256:1",
            "State": state,
            "Config": { "Labels": labels },
            "NetworkSettings": { "Networks": { "bridge": { "Gateway": "172.17.0.1" } } },
        }))
        .unwrap()
    }

    fn our_labels() -> serde_json::Value {
        json!({
            "com.docker.assemble.backend.owner": "u",
            "com.docker.assemble.backend.role": "backend",
            "com.docker.assemble.backend.version": "0.1.0",
            "com.docker.assemble.backend.ports": "5000,6000",
            "com.docker.assemble.backend.cache-volume": "",
            "com.docker.assemble.backend.image": "moby/buildkit:v0.25.1",
            "com.docker.assemble.backend.security": "capabilities",
        })
    }

    fn presence(state: serde_json::Value, labels: serde_json::Value) -> Presence {
        presence_of(&inspect(state, labels), &Names::for_user("u"))
    }

    /// The container, when the inspect response reads as ours.
    fn ours(state: serde_json::Value) -> OurContainer {
        match presence(state, our_labels()) {
            Presence::Ours(container) => *container,
            other => panic!("expected ours, got {other:?}"),
        }
    }

    #[test]
    fn a_running_container_of_ours_reads_back_with_what_start_decided() {
        let container = ours(json!({ "Status": "running", "Running": true, "StartedAt": "2025-01-02T03:04:05Z" }));
        assert_eq!(
            (container.id.as_str(), container.name.as_str(), container.image_id.as_str()),
            ("b1", "docker-assemble-backend-u", "sha256:1")
        );
        assert_eq!((container.state, container.running), (ContainerState::Running, true));
        assert_eq!(container.started_at.as_deref(), Some("2025-01-02T03:04:05Z"));
        assert_eq!(
            container.config,
            BackendLabels {
                ports: PortSet::from_ports([5000, 6000]),
                cache_volume: None,
                image: "moby/buildkit:v0.25.1".into(),
                version: "0.1.0".into(),
                security: SecurityMode::Capabilities,
                security_reason: None,
                cache_limit: None,
                network_host: false,
                local_images: crate::backend::mirror::LocalImages::Off { reason: None },
            }
        );
    }

    #[test]
    fn a_stopped_container_of_ours_is_not_running_and_keeps_the_engines_word() {
        let exited = ours(json!({ "Status": "exited", "Running": false, "ExitCode": 1 }));
        assert_eq!((exited.state, exited.running), (ContainerState::Exited, false));
        let dead = ours(json!({ "Status": "dead", "Running": false, "Dead": true }));
        assert_eq!((dead.state, dead.running), (ContainerState::Dead, false));
        let created = ours(json!({ "Status": "created", "Running": false }));
        assert_eq!((created.state, created.running), (ContainerState::Created, false));
        let silent = ours(json!({}));
        assert_eq!((silent.state, silent.running), (ContainerState::Unknown, false), "no state: unknown, not running");
    }

    #[test]
    fn a_container_without_our_owner_and_role_is_foreign() {
        let running = json!({ "Status": "running", "Running": true });
        let mut other_user = our_labels();
        other_user["com.docker.assemble.backend.owner"] = json!("someone-else");
        let mut sidecar = our_labels();
        sidecar["com.docker.assemble.backend.role"] = json!("proxy");
        for labels in [json!({}), json!(null), other_user, sidecar] {
            assert!(matches!(presence(running.clone(), labels.clone()), Presence::Foreign), "{labels}");
        }
    }

    #[test]
    fn a_container_of_ours_with_damaged_labels_is_treated_as_foreign() {
        let running = json!({ "Status": "running", "Running": true });
        let mut no_image = our_labels();
        no_image.as_object_mut().unwrap().remove("com.docker.assemble.backend.image");
        let mut bad_ports = our_labels();
        bad_ports["com.docker.assemble.backend.ports"] = json!("5000,x");
        for labels in [no_image, bad_ports] {
            assert!(matches!(presence(running.clone(), labels.clone()), Presence::Foreign), "{labels}");
        }
    }
}
