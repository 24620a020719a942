//! The work the example provider sells: statistics of a text.

#![forbid(unsafe_code)]

use std::collections::HashMap;

use serde::Serialize;

/// Counts of a text, and its most frequent words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub bytes: usize,
    pub lines: usize,
    pub words: usize,
    pub distinct_words: usize,
    /// The most frequent words, most frequent first (ties alphabetical).
    pub top: Vec<(String, usize)>,
}

/// Statistics of `text`, keeping the `top` most frequent words.
pub fn stats(text: &str, top: usize) -> Stats {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut words = 0;
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        words += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    let distinct_words = ranked.len();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top);
    Stats {
        bytes: text.len(),
        lines: text.lines().count(),
        words,
        distinct_words,
        top: ranked,
    }
}

/// Price of `/stats`, per call: 0.001 USD.
pub const STATS_PRICE: agentrail_core::Amount = agentrail_core::Amount::from_atomic(1_000);
/// Price of `/stats/full`, per started kilobyte of text, and at most per call.
pub const FULL_PRICE_PER_KB: agentrail_core::Amount = agentrail_core::Amount::from_atomic(500);
pub const FULL_MAX_PER_CALL: agentrail_core::Amount = agentrail_core::Amount::from_atomic(50_000);

async fn summary(text: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(stats(&text, 10)).into_response()
}

async fn full(text: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(stats(&text, usize::MAX)).into_response();
    response
        .extensions_mut()
        .insert(agentrail_pay::paywall::Units(
            text.len().div_ceil(1024).max(1) as u64,
        ));
    response
}

/// The API's routes, unpriced: `POST /stats` and `POST /stats/full`.
pub fn routes() -> axum::Router {
    axum::Router::new()
        .route("/stats", axum::routing::post(summary))
        .route("/stats/full", axum::routing::post(full))
}

/// The API priced in x402 channel payments to `payee`, and in x402's
/// `exact` payments too for the route priced per call when `exact` is
/// given.
pub fn paid_routes(
    payee: agentrail_pay::Payee,
    network: &str,
    exact: Option<agentrail_pay::paywall::ExactOffer>,
) -> axum::Router {
    let mut paywall = agentrail_pay::paywall::Paywall::new(payee, network)
        .per_call("/stats", STATS_PRICE)
        .per_unit(
            "/stats/full",
            FULL_PRICE_PER_KB,
            "kilobyte",
            FULL_MAX_PER_CALL,
        );
    if let Some(exact) = exact {
        paywall = paywall.exact(exact);
    }
    routes().layer(paywall.layer())
}

/// Reads a key file, or writes a new key there first.
pub fn key_file(path: &std::path::Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    if !path.exists() {
        let key = agentrail_client::generate_key();
        std::fs::write(path, agentrail_wire::keyfile::encode(&key))?;
    }
    let text = std::fs::read_to_string(path)?;
    Ok(agentrail_wire::keyfile::decode(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ranks_words() {
        let stats = stats("The cat and the hat.\nThe end", 2);
        assert_eq!((stats.lines, stats.words, stats.distinct_words), (2, 7, 5));
        assert_eq!(
            stats.top,
            vec![("the".to_owned(), 3), ("and".to_owned(), 1)]
        );
    }
}
