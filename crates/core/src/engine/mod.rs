//! Finding and reaching the Docker Engine exactly as the docker CLI does: contexts, `-H`,
//! `DOCKER_HOST`, TLS and ssh (see [`resolve`]); connecting over unix, TCP, TLS or ssh; and the one
//! sentence a user sees when the engine cannot be reached.
mod address;
mod diagnose;
pub mod error;
mod resolve;
mod ssh;
mod store;
mod tls;
mod transport;

use std::{sync::Arc, time::Duration};

pub use bollard::Docker;

pub use address::{Address, SshTarget, DEFAULT_HOST, DEFAULT_SOCKET};
pub use resolve::{
    context_picker, resolve, ContextEntry, ContextPicker, Endpoint, EngineChoice, EngineView, Environment, Origin,
    TlsFiles,
};
pub use store::{context_id, is_valid_context_name, ConfigDir, StoredContext, DEFAULT_CONTEXT};

use crate::Result;
use error::{EngineError, Unreachable};

/// Seconds a request may wait for the engine's answer (bollard's default).
const REQUEST_TIMEOUT: u64 = 120;
/// How long the engine may take to answer the first ping before it counts as unreachable; ssh gets
/// its own connect timeout (30 s) and then some.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
const SSH_PING_TIMEOUT: Duration = Duration::from_secs(40);

/// A connection to one engine, with the endpoint that named it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    endpoint: Arc<Endpoint>,
}

impl Engine {
    /// Resolves `choice` in this process's environment and connects.
    pub async fn connect(choice: &EngineChoice) -> Result<Self> {
        Self::connect_to(resolve(choice, &Environment::from_process())?).await
    }

    /// Connects to a resolved endpoint, agrees on an API version, and checks that it answers.
    pub async fn connect_to(endpoint: Endpoint) -> Result<Self> {
        let docker = match client(&endpoint)? {
            Ok(docker) => docker,
            // bollard checks that a unix socket exists before any request: that is "nothing listens".
            Err(err @ bollard::errors::Error::SocketNotFoundError(_)) => {
                return Err(diagnose::unreachable(&endpoint, &err).await.into())
            }
            Err(err) => {
                return Err(EngineError::InvalidAddress { address: endpoint.host(), reason: err.to_string() }.into())
            }
        };
        let patience = if matches!(endpoint.address, Address::Ssh(_)) { SSH_PING_TIMEOUT } else { PING_TIMEOUT };
        let docker = match tokio::time::timeout(patience, docker.negotiate_version()).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(err)) => return Err(diagnose::unreachable(&endpoint, &err).await.into()),
            Err(_) => {
                return Err(EngineError::Unreachable {
                    host: endpoint.host(),
                    context: diagnose::place(&endpoint),
                    reason: Unreachable::Silent(patience.as_secs()),
                }
                .into())
            }
        };
        Ok(Self { docker, endpoint: Arc::new(endpoint) })
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Where this engine is and which context named it.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// A bollard client for `endpoint`, not yet connected: our own errors (TLS files) outside, bollard's
/// inside.
fn client(endpoint: &Endpoint) -> Result<Result<Docker, bollard::errors::Error>> {
    Ok(match (&endpoint.address, &endpoint.tls) {
        (Address::Unix(path), _) => {
            Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT, bollard::API_DEFAULT_VERSION)
        }
        (Address::Tcp { .. }, None) => {
            Docker::connect_with_http(&endpoint.host(), REQUEST_TIMEOUT, bollard::API_DEFAULT_VERSION)
        }
        (Address::Tcp { host, port }, Some(files)) => {
            transport::docker_over(tls::TlsDial::new(host, *port, files)?, "https", REQUEST_TIMEOUT)
        }
        (Address::Ssh(target), _) => transport::docker_over(ssh::SshDial::new(target), "http", REQUEST_TIMEOUT),
    })
}

pub(crate) use crate::failure::{is_conflict, is_connection_failure, is_not_found};
