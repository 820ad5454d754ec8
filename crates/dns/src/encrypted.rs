//! DNS over TLS (RFC 7858) on hickory-server's listener, and DNS over HTTPS (RFC 8484, see
//! [`crate::doh`] for why not hickory-server's), sharing one certificate.
//!
//! For DoT, hickory-server owns the socket, the TLS handshakes and RFC 7858's framing. Every
//! query it hands over is answered by [`Answerer::respond_from`], the function UDP and TCP
//! use, so the encrypted transports follow the same DNS rules (and the TCP size limit: nothing
//! is truncated below 65,535 bytes). hickory-server sends a response only as records to encode,
//! so the prepared answer is decoded once and re-encoded by hickory-proto: the same records,
//! flags, rcode and EDNS, with the question as the client wrote it.
//!
//! Zone transfers are refused over both (the answer function refuses AXFR/IXFR outside the TCP
//! transfer path), and so are TSIG-signed queries over DoT: a re-encoded message may compress
//! names differently, which would break a MAC computed over our bytes. Secondaries transfer
//! over TCP 53, where the ACL and TSIG apply.
//!
//! The certificate chain and key are PEM files, checked every `reload_interval`. A changed
//! pair that loads and whose key matches the certificate serves every new handshake; one that
//! does not (a key not yet written, a truncated file) is logged and counted, and the previous
//! pair keeps serving.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Header, HeaderCounts, Message, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::metrics::DnsMetrics;
use crate::{Answerer, DnsError, Outcome, Transport};

/// Where and how DNS over TLS and HTTPS are served.
#[derive(Debug, Clone)]
pub struct EncryptedConfig {
    /// DNS over TLS listen address (RFC 7858's port is 853); `None` serves none.
    pub dot_addr: Option<SocketAddr>,
    /// DNS over HTTPS listen address (HTTP/2, port 443 usually); `None` serves none.
    pub doh_addr: Option<SocketAddr>,
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of that certificate.
    pub key_file: PathBuf,
    /// The DoH path (RFC 8484's examples use `/dns-query`).
    pub doh_path: String,
    /// Handshake and idle timeout of a connection.
    pub timeout: Duration,
    /// How often the certificate and key files are checked for a change.
    pub reload_interval: Duration,
    /// Open DoH connections at most; more are closed at once (counted as TCP rejections).
    pub max_connections: usize,
}

impl EncryptedConfig {
    /// Both listeners off; the files given.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Self {
        Self {
            dot_addr: None,
            doh_addr: None,
            cert_file,
            key_file,
            doh_path: "/dns-query".into(),
            timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(5),
            max_connections: 1024,
        }
    }
}

/// Running DoT and DoH listeners. Dropping it does not stop them; call
/// [`EncryptedServer::shutdown`].
pub struct EncryptedServer {
    dot: Option<hickory_server::Server<Handler>>,
    stop_doh: tokio::sync::watch::Sender<bool>,
    doh: Option<tokio::task::JoinHandle<()>>,
    dot_addr: Option<SocketAddr>,
    doh_addr: Option<SocketAddr>,
    doh_path: String,
    reload: tokio::task::JoinHandle<()>,
}

impl EncryptedServer {
    /// Loads the certificate and key (an error if they do not load or match), binds the
    /// configured listeners and serves them. Must be called inside a tokio runtime.
    pub async fn start(answerer: Answerer, config: EncryptedConfig) -> Result<Self, DnsError> {
        let seen = stamps(&config.cert_file, &config.key_file);
        let certs = Arc::new(Certs(ArcSwap::new(load(
            &config.cert_file,
            &config.key_file,
        )?)));
        let metrics = Arc::clone(answerer.metrics());
        let bind = |addr: SocketAddr| async move {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DnsError::Socket { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| DnsError::Socket { addr, source })?;
            Ok::<_, DnsError>((listener, bound))
        };
        let (mut dot, mut dot_addr) = (None, None);
        if let Some(addr) = config.dot_addr {
            let (listener, bound) = bind(addr).await?;
            let mut server = hickory_server::Server::new(Handler {
                answerer: answerer.clone(),
                rotation: AtomicUsize::new(0),
            });
            server
                .register_tls_listener(listener, config.timeout, certs.clone())
                .map_err(|source| DnsError::Socket {
                    addr: bound,
                    source,
                })?;
            (dot, dot_addr) = (Some(server), Some(bound));
        }
        let (stop_doh, stopped) = tokio::sync::watch::channel(false);
        let (mut doh, mut doh_addr) = (None, None);
        if let Some(addr) = config.doh_addr {
            let (listener, bound) = bind(addr).await?;
            let acceptor = tokio_rustls::TlsAcceptor::from(doh_tls(certs.clone())?);
            let state = Arc::new(crate::doh::Doh {
                answerer,
                path: config.doh_path.clone(),
                timeout: config.timeout,
                max_connections: config.max_connections,
                rotation: AtomicUsize::new(0),
            });
            let task = crate::doh::serve(listener, acceptor, state, stopped);
            (doh, doh_addr) = (Some(tokio::spawn(task)), Some(bound));
        }
        let reload = tokio::spawn(reload(certs, config.clone(), seen, metrics));
        Ok(Self {
            dot,
            stop_doh,
            doh,
            dot_addr,
            doh_addr,
            doh_path: config.doh_path,
            reload,
        })
    }

    /// The DNS over TLS address, when served.
    pub fn dot_addr(&self) -> Option<SocketAddr> {
        self.dot_addr
    }

    /// The DNS over HTTPS address, when served.
    pub fn doh_addr(&self) -> Option<SocketAddr> {
        self.doh_addr
    }

    /// The DoH URL for `host` (`https://HOST:PORT/dns-query`), when served.
    pub fn doh_url(&self, host: &str) -> Option<String> {
        let addr = self.doh_addr?;
        Some(format!("https://{host}:{}{}", addr.port(), self.doh_path))
    }

    /// Stops accepting and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        self.reload.abort();
        if let Some(mut dot) = self.dot.take()
            && let Err(e) = dot.shutdown_gracefully().await
        {
            tracing::debug!(error = %e, "DNS over TLS stopped with an error");
        }
        let _ = self.stop_doh.send(true);
        if let Some(doh) = self.doh.take() {
            let _ = doh.await;
        }
    }
}

/// The served certificate and key, swapped whole on reload.
struct Certs(ArcSwap<CertifiedKey>);

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Certs")
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The DoH listener's TLS settings: the served certificate, ALPN h2 then http/1.1.
fn doh_tls(certs: Arc<Certs>) -> Result<Arc<rustls::ServerConfig>, DnsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DnsError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads a PEM certificate chain and its key, and checks that they belong together.
fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, DnsError> {
    let bad = |file: &Path, reason: String| DnsError::Certificate {
        file: file.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no PEM certificate in the file".into()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| bad(key, e.to_string()))?;
    let pair = CertifiedKey::new(chain, signer);
    pair.keys_match().map_err(|e| {
        bad(
            key,
            format!("does not match the certificate in {}: {e}", cert.display()),
        )
    })?;
    Ok(Arc::new(pair))
}

/// What identifies a version of a file: inode, length and change time (see the endpoints
/// file's watcher: the change time moves with every write and every rename over it).
type Stamp = Option<(u64, u64, i64, i64)>;

fn stamps(cert: &Path, key: &Path) -> (Stamp, Stamp) {
    use std::os::unix::fs::MetadataExt;
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.ino(), meta.len(), meta.ctime(), meta.ctime_nsec()))
    };
    (stamp(cert), stamp(key))
}

/// Reloads the pair whenever either file changes; a pair that fails to load is reported once
/// per version of the files, and the served one stays.
async fn reload(
    certs: Arc<Certs>,
    config: EncryptedConfig,
    mut seen: (Stamp, Stamp),
    metrics: Arc<DnsMetrics>,
) {
    let (cert, key) = (&config.cert_file, &config.key_file);
    loop {
        tokio::time::sleep(config.reload_interval).await;
        let now = stamps(cert, key);
        if now == seen {
            continue;
        }
        seen = now;
        match load(cert, key) {
            Ok(pair) => {
                certs.0.store(pair);
                metrics.certificate_reload(true);
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                metrics.certificate_reload(false);
                tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one serves");
            }
        }
    }
}

/// Hands hickory-server's requests to the answer function.
struct Handler {
    answerer: Answerer,
    rotation: AtomicUsize,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        // Only the TLS listener is registered (DoH is `crate::doh`'s).
        let transport = Transport::Tls;
        let unanswered = ResponseInfo::from(Header {
            metadata: request.metadata,
            counts: HeaderCounts::default(),
        });
        let raw = request.as_slice();
        let error = |code| {
            MessageResponseBuilder::new(&request.queries, None).error_msg(&request.metadata, code)
        };
        // Our parser, not hickory's decoded request: hickory-server 0.26 leaves a TSIG record
        // out of `signature` here (measured: the signed kdig query got past that check).
        if self.answerer.is_signed(raw) {
            let qtype = request
                .queries
                .queries()
                .first()
                .map(|q| u16::from(q.query_type()));
            let outcome = Outcome::Answered {
                rcode: u16::from(ResponseCode::Refused),
                truncated: false,
            };
            self.answerer.metrics().count(qtype, outcome, transport);
            return response
                .send_response(error(ResponseCode::Refused))
                .await
                .unwrap_or(unanswered);
        }
        let rotation = self.rotation.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(512);
        let client = Some(request.src().ip());
        let outcome = self
            .answerer
            .respond_from(raw, transport, rotation, client, &mut out);
        if outcome == Outcome::Dropped {
            return unanswered;
        }
        let message = match Message::from_vec(&out) {
            Ok(m) => m,
            Err(e) => {
                // Our own answer that hickory-proto cannot read back: a bug, said once per query.
                tracing::error!(error = %e, "encrypted DNS: answer not decodable; SERVFAIL");
                return response
                    .send_response(error(ResponseCode::ServFail))
                    .await
                    .unwrap_or(unanswered);
            }
        };
        let built = MessageResponseBuilder::new(&request.queries, message.edns.as_ref()).build(
            message.metadata,
            message.answers.iter(),
            message.authorities.iter(),
            std::iter::empty(),
            message.additionals.iter(),
        );
        match response.send_response(built).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "encrypted DNS answer not sent");
                unanswered
            }
        }
    }
}
