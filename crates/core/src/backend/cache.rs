//! Which volume holds the build cache: `--cache-volume` (or the settings' volume) wins, else the
//! default volume when it exists, else an anonymous volume that goes with the backend. Also the
//! engine's volumes, for the settings window to choose one from.
use bollard::models::VolumeCreateRequest;
use serde::Serialize;

use crate::{
    backend::labels::{self, Role},
    backend::request::{wanted_volume, CacheSetting},
    backend::Backend,
    engine::is_not_found,
    Error, Result,
};

/// The volume a start chose for the build cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CacheChoice {
    /// A named volume: survives stop. `created` when this start had to create it.
    Named {
        /// The volume's name.
        name: String,
        /// It is the user's default cache volume.
        default: bool,
        /// This start created it.
        created: bool,
    },
    /// No named volume: the cache is lost when the backend stops.
    Anonymous,
}

impl CacheChoice {
    /// The named volume, if any.
    pub fn volume_name(&self) -> Option<&str> {
        match self {
            CacheChoice::Named { name, .. } => Some(name),
            CacheChoice::Anonymous => None,
        }
    }
}

/// Makes the volume that [`wanted_volume`] chooses ready: a named one that is missing is created.
pub(crate) async fn resolve(backend: &Backend, setting: &CacheSetting) -> Result<CacheChoice> {
    let default_exists = default_volume_exists(backend, setting).await?;
    let Some(name) = wanted_volume(setting, &backend.names, default_exists) else {
        return Ok(CacheChoice::Anonymous);
    };
    let created = !volume_exists(backend, &name).await?;
    if created {
        // Like `docker run -v name:/path`, a named volume that is missing is made, but with
        // our labels so that it is clear where it came from. It is never removed by stop.
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(labels::common(&backend.names, Role::Cache)),
            ..Default::default()
        };
        backend.docker.create_volume(request).await.map_err(Error::docker(format!("creating cache volume {name}")))?;
    }
    let default = name == backend.names.default_cache_volume();
    Ok(CacheChoice::Named { name, default, created })
}

/// Whether the user's default cache volume exists, asked only when `setting` depends on it.
pub(crate) async fn default_volume_exists(backend: &Backend, setting: &CacheSetting) -> Result<bool> {
    match setting {
        CacheSetting::Auto => volume_exists(backend, &backend.names.default_cache_volume()).await,
        CacheSetting::Named(_) | CacheSetting::Anonymous => Ok(false),
    }
}

async fn volume_exists(backend: &Backend, name: &str) -> Result<bool> {
    match backend.docker.inspect_volume(name).await {
        Ok(_) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(Error::docker(format!("inspecting volume {name}"))(err)),
    }
}

/// Names of every volume on the engine, for choosing a cache volume.
pub(super) async fn volume_names(backend: &Backend) -> Result<Vec<String>> {
    let list = backend
        .docker
        .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
        .await
        .map_err(Error::docker("listing volumes"))?;
    let mut names: Vec<String> = list.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect();
    names.sort();
    Ok(names)
}
