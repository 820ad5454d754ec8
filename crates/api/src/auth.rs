//! Bearer tokens, request time limits, request counting and the request log: one middleware in
//! front of every route.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, Shared};

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file cannot be read.
    #[error("cannot read token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no token.
    #[error("token file {path} holds no token")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads bearer tokens: one per line, blank lines and `#` comments ignored (several tokens allow
/// rotation without downtime).
pub fn read_tokens(path: &Path) -> Result<Vec<String>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(tokens)
}

/// Whether the caller proved a token (or none is needed), for handlers that show more to
/// authorized callers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authorized(pub(crate) bool);

/// The token presented: `Authorization: Bearer T`, or `?access_token=T` (RFC 6750 §2.3, for the
/// dashboard's EventSource, which cannot set headers).
fn presented(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION)
        && let Ok(value) = value.to_str()
        && let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
    {
        return Some(token.trim().to_string());
    }
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri()).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v)
}

/// Compares without an early exit, so response time does not reveal how much of a token matched.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Authorizes, limits time, counts and logs every request.
pub(crate) async fn guard(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let tokens = &shared.config.tokens;
    let authorized = tokens.is_empty()
        || presented(&request).is_some_and(|p| tokens.iter().any(|t| same(t, &p)));
    // Load balancers and ECS health checks cannot send tokens; these two reveal no data to
    // unauthenticated callers (readyz hides error texts from them). The dashboard page is
    // open too: it holds no data, only the sign-in form and the script that asks for a token.
    // Cloud Map discovery calls (POST /) are reads of what DNS serves, open as DNS is: SDK
    // clients sign with SigV4 and cannot send a bearer token.
    let discovery = path == "/" && crate::cloudmap::is_discovery(request.headers());
    let reading = matches!(method, Method::GET | Method::HEAD);
    let open = path == "/healthz" || path == "/readyz" || (path == "/" && (reading || discovery));
    let mutating = !reading && !discovery;
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let response = if mutating && tokens.is_empty() {
        ApiError::MutationsDisabled.into_response()
    } else if !authorized && !open {
        ApiError::Unauthorized.into_response()
    } else if declared_length.is_some_and(|n| n > shared.config.max_body) {
        ApiError::TooLarge(shared.config.max_body).into_response()
    } else {
        request.extensions_mut().insert(Authorized(authorized));
        let streaming = path == "/v1/watch";
        let blocking = request.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.starts_with("index=") || kv.starts_with("wait="))
        });
        if streaming {
            next.run(request).await
        } else {
            let limit = if blocking {
                shared.config.max_wait + shared.config.request_timeout
            } else {
                shared.config.request_timeout
            };
            match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => response,
                Err(_) => ApiError::Timeout.into_response(),
            }
        }
    };
    let status = response.status().as_u16();
    shared.http.count(status);
    tracing::debug!(%method, path, status, took = ?started.elapsed(), "http request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_and_file() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
        let dir = std::env::temp_dir().join(format!("ecsdns-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(&file, "# ops\n\n  first \nsecond\n").unwrap();
        assert_eq!(read_tokens(&file).unwrap(), vec!["first", "second"]);
        std::fs::write(&file, "# none\n").unwrap();
        assert!(matches!(read_tokens(&file), Err(TokenError::Empty { .. })));
        assert!(matches!(
            read_tokens(&dir.join("missing")),
            Err(TokenError::Read { .. })
        ));
    }
}
