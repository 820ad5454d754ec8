//! `GET /`: the dashboard, one static page (no front-end build step) that lists services and
//! endpoints from the API and updates live from the `/v1/watch` stream.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use crate::Shared;

const PAGE: &str = include_str!("dashboard.html");

/// The page, with the zone filled in (a DNS name: no characters that need HTML escaping).
pub(crate) async fn page(State(s): State<Arc<Shared>>) -> Html<String> {
    let zone: String = s
        .zone
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    Html(PAGE.replacen("<body>", &format!("<body data-zone=\"{zone}\">"), 1))
}
