//! A bollard client over a connection of our own making (TLS, ssh): one pooling hyper client on a
//! connector that hands it byte streams. Failures a connector knows more about than an
//! `io::Error` can say travel inside the `io::Error` as a [`TransportError`].
use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::{
    client::legacy::{
        connect::{Connected, Connection},
        Client,
    },
    rt::{TokioExecutor, TokioIo},
};
use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) use crate::failure::TransportError;

/// A byte stream in both directions.
pub(crate) trait Duplex: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Duplex for T {}

/// A connection to the engine, as hyper wants it.
pub(crate) struct EngineStream {
    io: TokioIo<Pin<Box<dyn Duplex>>>,
}

impl EngineStream {
    pub(crate) fn new(io: impl Duplex + 'static) -> Self {
        Self { io: TokioIo::new(Box::pin(io)) }
    }
}

impl Connection for EngineStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for EngineStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for EngineStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

pub(crate) type Dialing = Pin<Box<dyn Future<Output = io::Result<EngineStream>> + Send>>;

/// Makes connections to one engine.
pub(crate) trait Dial: Clone + Send + Sync + 'static {
    fn dial(&self) -> Dialing;
}

/// Adapts a [`Dial`] to the connector hyper's client takes; the URI is ours and ignored.
#[derive(Clone)]
struct Connector<D>(D);

impl<D: Dial> tower_service::Service<http::Uri> for Connector<D> {
    type Response = EngineStream;
    type Error = io::Error;
    type Future = Dialing;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Dialing {
        self.0.dial()
    }
}

/// A bollard client whose connections `dial` makes. `scheme` only labels the requests.
pub(crate) fn docker_over(
    dial: impl Dial,
    scheme: &str,
    timeout_seconds: u64,
) -> Result<Docker, bollard::errors::Error> {
    let client = Client::builder(TokioExecutor::new()).build(Connector(dial));
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = client.clone();
            async move { client.request(request).await.map_err(bollard::errors::Error::from) }
        },
        Some(format!("{scheme}://docker.engine")),
        timeout_seconds,
        API_DEFAULT_VERSION,
    )
}
