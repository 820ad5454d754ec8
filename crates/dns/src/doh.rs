//! DNS over HTTPS (RFC 8484): GET and POST, over HTTP/2 and HTTP/1.1, on hyper.
//!
//! Not hickory-server's DoH listener: in 0.26 it refuses GET ("GET unimplemented"), which RFC
//! 8484 section 4.1 says a server MUST implement, and which HTTP caches need. Here the query's
//! bytes go to [`Answerer::respond_from`] and its bytes go out unchanged, so a DoH answer is
//! the TCP answer byte for byte. `Cache-Control: max-age` is the answer's smallest TTL
//! (section 5.1).
//!
//! Limits: a connection cap (shared with nothing else), a TLS handshake timeout, an idle
//! timeout (a connection with no request for that long is closed gracefully), and a 65,535-byte
//! query. A bad request gets an HTTP error (400, 404, 405, 413, 415), never a panic.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::{Answerer, Outcome, Transport};

/// RFC 8484's media type.
const DNS_MESSAGE: &str = "application/dns-message";

/// What each DoH connection shares.
pub(crate) struct Doh {
    pub(crate) answerer: Answerer,
    pub(crate) path: String,
    pub(crate) timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) rotation: AtomicUsize,
}

/// Accepts connections until `stop` turns true; each is served on a task of its own.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    doh: Arc<Doh>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(doh.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or the like: wait rather than spin on the error.
                tracing::warn!(error = %e, "DoH accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            doh.answerer.metrics().tcp_rejected();
            continue;
        };
        let (doh, acceptor, stop) = (Arc::clone(&doh), acceptor.clone(), stop.clone());
        connections.spawn(async move {
            let _slot = slot;
            let Ok(Ok(tls)) = tokio::time::timeout(doh.timeout, acceptor.accept(stream)).await
            else {
                return;
            };
            connection(tls, peer.ip(), doh, stop).await;
        });
    }
    connections.shutdown().await;
}

/// Serves one TLS connection: HTTP/2 or HTTP/1.1 as ALPN chose, closed when idle or stopping.
async fn connection(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    client: IpAddr,
    doh: Arc<Doh>,
    mut stop: watch::Receiver<bool>,
) {
    let requests = Arc::new(AtomicU64::new(0));
    let service = {
        let (doh, requests) = (Arc::clone(&doh), Arc::clone(&requests));
        hyper::service::service_fn(move |request| {
            requests.fetch_add(1, Ordering::Relaxed);
            let doh = Arc::clone(&doh);
            async move { Ok::<_, Infallible>(answer(request, client, &doh).await) }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(doh.timeout);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let mut seen = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(doh.timeout), if !closing => {
                let now = requests.load(Ordering::Relaxed);
                if now == seen {
                    doh.answerer.metrics().tcp_idle_closed();
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                seen = now;
            }
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            // A graceful close waits for open requests; one that never finishes (a client
            // that stops reading) must not hold the slot: one more timeout, then it is dropped.
            _ = tokio::time::sleep(doh.timeout), if closing => return,
        }
    }
}

/// One HTTP exchange: the query from the GET parameter or the POST body, the answer as the
/// body.
async fn answer(request: Request<Incoming>, client: IpAddr, doh: &Doh) -> Response<Full<Bytes>> {
    if request.uri().path() != doh.path {
        return status(StatusCode::NOT_FOUND, "not a DNS endpoint");
    }
    let query = match *request.method() {
        Method::GET => match get_query(request.uri().query()) {
            Some(q) => q,
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "GET needs ?dns= with a base64url DNS message",
                );
            }
        },
        Method::POST => {
            let media = request.headers().get(CONTENT_TYPE);
            if media.and_then(|v| v.to_str().ok()) != Some(DNS_MESSAGE) {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "POST needs Content-Type: application/dns-message",
                );
            }
            match Limited::new(request.into_body(), usize::from(u16::MAX))
                .collect()
                .await
            {
                Ok(body) => body.to_bytes().to_vec(),
                Err(_) => {
                    return status(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "a DNS message is at most 65,535 bytes",
                    );
                }
            }
        }
        _ => {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED, "GET or POST");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
            return r;
        }
    };
    let rotation = doh.rotation.fetch_add(1, Ordering::Relaxed);
    let mut out = Vec::with_capacity(512);
    let outcome =
        doh.answerer
            .respond_from(&query, Transport::Https, rotation, Some(client), &mut out);
    if outcome == Outcome::Dropped {
        return status(StatusCode::BAD_REQUEST, "not a DNS query");
    }
    let max_age = crate::wire::min_ttl(&out).unwrap_or(0);
    let mut response = Response::new(Full::new(Bytes::from(out)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE));
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}")) {
        headers.insert(CACHE_CONTROL, v);
    }
    response
}

/// The `dns` parameter of a GET, decoded (base64url; RFC 8484 says unpadded, padding is
/// forgiven).
fn get_query(query: Option<&str>) -> Option<Vec<u8>> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("dns="))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim_end_matches("%3D").trim_end_matches('='))
        .ok()
}

fn status(code: StatusCode, why: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(why.as_bytes())));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

#[cfg(test)]
mod tests {
    use super::get_query;

    #[test]
    fn get_parameter_decodes_with_or_without_padding() {
        // RFC 8484 section 4.1.1's example query, www.example.com A.
        let q = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
        let want = get_query(Some(&format!("dns={q}"))).unwrap();
        assert_eq!(want.len(), 33);
        assert_eq!(&want[12..16], b"\x03www");
        assert_eq!(get_query(Some(&format!("ct=x&dns={q}=="))), Some(want));
        assert_eq!(get_query(Some("dns=!!")), None);
        assert_eq!(get_query(Some("other=1")), None);
        assert_eq!(get_query(None), None);
    }
}
