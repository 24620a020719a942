//! The web dashboard, served by the node at `/` (same origin as the API,
//! so it needs no CORS): plain HTML, CSS and JavaScript modules embedded in
//! the binary, with no build step and no third-party script.
//!
//! The page holds its owner's keys itself, as non-extractable WebCrypto
//! Ed25519 keys in IndexedDB, and signs every command with RFC 9421 exactly
//! as the CLI does; the node never sees a private key. It verifies every
//! receipt it shows against the log key it pinned, with WebCrypto's
//! SHA-256 and Ed25519. The wire format it speaks is `docs/protocol.md`.
//!
//! Every response carries a strict Content-Security-Policy: scripts,
//! styles and connections only from this origin, no inline script, and no
//! framing (an approve button must never be clickable through another
//! site's page). Everything the node returns is shown as text, never
//! parsed as HTML, so a memo or a listing name cannot inject script.
#![forbid(unsafe_code)]

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The files of the page: (name, content type, content).
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "wire.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/wire.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

const INDEX: &str = include_str!("../assets/index.html");

/// What the page may load and who may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            // A new binary may serve new files: revalidate every time.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => page(content_type, body),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// The dashboard's routes: `/` and `/dashboard/{file}`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index))
        .route("/dashboard/{name}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_files_it_serves() {
        for (file, _, _) in ASSETS {
            assert!(
                INDEX.contains(&format!("/dashboard/{file}"))
                    || ASSETS.iter().any(|(_, _, body)| body.contains(file)),
                "{file} is served but nothing loads it"
            );
        }
        // No inline script or style: the policy would refuse it.
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        assert!(!INDEX.contains("onclick=") && !INDEX.contains("onload="));
    }
}
