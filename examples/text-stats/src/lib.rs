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
