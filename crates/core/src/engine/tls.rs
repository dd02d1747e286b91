//! TCP with TLS, as the docker CLI speaks it: the engine's certificate checked against the CA file
//! (only that CA, as docker does), our client certificate when there is one, and no check at all
//! when the context says `SkipTLSVerify` (or `--tls` comes without `--tlsverify`). rustls with the
//! ring provider, given to each configuration, so no process-wide provider has to be installed.
use std::{path::Path, sync::Arc};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{ring, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::{EngineError, TlsFile};
use super::{
    resolve::TlsFiles,
    transport::{Dial, Dialing, EngineStream},
};
use crate::Result;

/// Connects to `host:port` and speaks TLS with `config`.
#[derive(Clone)]
pub(crate) struct TlsDial {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

impl TlsDial {
    pub(crate) fn new(host: &str, port: u16, files: &TlsFiles) -> Result<Self> {
        let server_name = ServerName::try_from(host.to_string()).map_err(|_| EngineError::InvalidAddress {
            address: host.to_string(),
            reason: "it is not a host name TLS can check".into(),
        })?;
        Ok(Self {
            host: host.to_string(),
            port,
            server_name,
            connector: TlsConnector::from(Arc::new(client_config(files)?)),
        })
    }
}

impl Dial for TlsDial {
    fn dial(&self) -> Dialing {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect((this.host.as_str(), this.port)).await?;
            tcp.set_nodelay(true)?;
            let tls = this.connector.connect(this.server_name.clone(), tcp).await?;
            Ok(EngineStream::new(tls))
        })
    }
}

fn client_config(files: &TlsFiles) -> Result<ClientConfig> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| EngineError::Tls(format!("setting up TLS: {e}")))?;
    let builder = if files.verify {
        let mut roots = RootCertStore::empty();
        match &files.ca {
            Some(ca) => {
                for cert in read_certificates(ca, TlsFile::Ca)? {
                    roots.add(cert).map_err(|e| invalid(ca, TlsFile::Ca, &e.to_string()))?;
                }
            }
            // No CA file: the system's trusted roots, as Go's TLS does.
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        builder.with_root_certificates(roots)
    } else {
        // docker still reads the CA file in this mode; a broken one is reported, not used.
        if let Some(ca) = &files.ca {
            read_certificates(ca, TlsFile::Ca)?;
        }
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    match &files.client {
        Some((cert, key)) => {
            let chain = read_certificates(cert, TlsFile::ClientCertificate)?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, TlsFile::ClientKey, &e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| EngineError::Tls(format!("the client certificate and key do not go together: {e}")).into())
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn read_certificates(path: &Path, what: TlsFile) -> Result<Vec<CertificateDer<'static>>> {
    if !path.is_file() {
        return Err(EngineError::TlsFileMissing { what, path: path.to_path_buf() }.into());
    }
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| invalid(path, what, &e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid(path, what, "it holds no PEM certificate"));
    }
    Ok(certificates)
}

fn invalid(path: &Path, what: TlsFile, reason: &str) -> crate::Error {
    EngineError::TlsFileInvalid { what, path: path.to_path_buf(), reason: reason.to_string() }.into()
}

/// Accepts any certificate (the user asked for no verification); signatures are still checked, so
/// the connection is at least to whoever holds the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
