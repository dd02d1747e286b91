//! The panel's Nodes section and the tray's count: the backend on other engines (core `nodes`),
//! listed, added and removed. Each listing goes to the panel as a `nodes` event and to the tray.
use assemble_core::{
    nodes::{self, NodeReport, NodeStatus, Reached},
    StartFlags, StartRequest,
};
use serde::Serialize;
use tauri::{menu::MenuItem, AppHandle, Emitter, Manager, Runtime};

use crate::{errors::Reply, state::Connection};

/// The tray menu's nodes line ("Nodes: 1 of 2 up"); the tray makes it, each listing writes it.
pub struct NodesItem<R: Runtime>(pub MenuItem<R>);

/// The nodes as the panel shows them, and what went wrong on some of them in the last start or stop.
#[derive(Clone, Serialize)]
pub struct NodesView {
    nodes: Vec<NodeStatus>,
    problems: Vec<String>,
}

/// Lists the nodes now; the panel and the tray follow.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>, problems: Vec<String>) -> assemble_core::Result<NodesView> {
    let backend = app.state::<Connection>().backend().await?;
    let statuses = nodes::list(&backend, &nodes::store::path()).await?;
    if let Some(item) = app.try_state::<NodesItem<R>>() {
        let _ = item.0.set_text(nodes::tray_line(&statuses));
    }
    let view = NodesView { nodes: statuses, problems };
    let _ = app.emit("nodes", &view);
    Ok(view)
}

/// The sentences of the nodes an operation did not reach or failed on (the local backend's own
/// outcome is the action's).
pub fn problems<T>(reports: &[NodeReport<T>]) -> Vec<String> {
    reports
        .iter()
        .filter_map(|report| match &report.reached {
            Reached::Done { .. } => None,
            Reached::Unreachable { reason } | Reached::Failed { reason } => Some(format!("{}: {reason}", report.name)),
        })
        .collect()
}

#[tauri::command]
pub async fn list_nodes<R: Runtime>(app: AppHandle<R>) -> Reply<NodesView> {
    Ok(refresh(&app, Vec::new()).await?)
}

/// Starts the backend on the engine `context` reaches and joins it to the builder, declared for
/// the platforms typed (none: buildx asks its workers).
#[tauri::command]
pub async fn add_node<R: Runtime>(app: AppHandle<R>, context: String, platforms: String) -> Reply<String> {
    let connection = app.state::<Connection>();
    let platforms = nodes::parse_typed_platforms(&platforms)?;
    let request = StartRequest::resolve(&StartFlags::default(), &connection.settings())?;
    let added = nodes::add(&connection.backend().await?, &context, &platforms, &request, &nodes::store::path()).await?;
    refresh(&app, Vec::new()).await?;
    Ok(format!("Added node {} ({}): in the buildx builder \"assemble\" as {}", added.name, added.host, added.endpoint))
}

/// Takes the node out of the builder and removes its containers and the cache volume we made.
#[tauri::command]
pub async fn remove_node<R: Runtime>(app: AppHandle<R>, name: String) -> Reply<String> {
    let connection = app.state::<Connection>();
    let removed = nodes::remove(&connection.backend().await?, &name, false, false, &nodes::store::path()).await?;
    refresh(&app, Vec::new()).await?;
    Ok(format!("Removed node {}", removed.name))
}
