//! HTTPS for a node without a terminator in front: `serve --tls-cert FILE
//! --tls-key FILE`.
//!
//! rustls with the ring provider (the clients' provider too). Handshakes
//! run on their own tasks, each within [`HANDSHAKE_TIMEOUT`], so a slow or
//! silent client holds up no other connection. The connection limits of
//! [`crate::limits`] apply underneath, to the TCP connections (in all and
//! per address): a handshake holds its connection's place, so one address
//! can hold no more handshakes than it may hold connections, and a
//! connection over the limits is closed without a word (a plain-text 429
//! means nothing to a TLS client).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::limits::{LimitedListener, LimitedStream};

/// Longest a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken and waiting for the server to take them.
const READY_MAX: usize = 256;

/// The server's TLS configuration from a PEM certificate chain and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "--tls-cert {} holds no PEM certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .map_err(|e| format!("the TLS certificate and key do not match: {e}"))?;
    // The API speaks HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that hands the server only connections whose TLS handshake
/// completed.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<LimitedStream>, SocketAddr)>,
}

impl TlsListener {
    /// Starts accepting on `inner` (on the current runtime).
    pub fn new(inner: LimitedListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        use axum::serve::Listener;
        let mut inner = inner.without_refusals();
        let local = inner.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (ready, receiver) = mpsc::channel(READY_MAX);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = inner.accept() => accepted,
                    // The server is gone: stop listening.
                    () = ready.closed() => return,
                };
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready: receiver,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<LimitedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended (it ends only once this listener is
            // dropped); nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
