//! Human-readable fields (memos, names, descriptions, notes, reasons) are
//! shown to people by wallets, dashboards and logs. A character that changes
//! how the text around it displays without being seen itself — a control
//! character, a bidirectional override or isolate, a zero-width or other
//! invisible format character, a line or paragraph separator — lets one
//! string pose as another (`U+202E` turns `txt.exe` into `exe.txt`). The
//! ledger refuses them rather than escaping them, so every reader shows the
//! same bytes the signer signed.

/// Whether `c` may disguise how a human-readable field displays.
pub fn is_disguising(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'               // soft hyphen
            | '\u{061C}'             // Arabic letter mark
            | '\u{180E}'             // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // separators, embeddings, overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}' // isolates, deprecated format characters
            | '\u{FEFF}'             // zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        )
}

/// Whether `text` is free of characters that disguise how it displays.
pub fn is_plain(text: &str) -> bool {
    !text.chars().any(is_disguising)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_disguises_and_keeps_what_reads() {
        for spoof in [
            "invoice\u{202E}fdp.exe",
            "a\u{2066}b",
            "zero\u{200B}width",
            "bell\u{7}",
            "line\u{2028}break",
            "\u{FEFF}bom",
        ] {
            assert!(!is_plain(spoof), "{spoof:?}");
        }
        for plain in [
            "GPU hours, 2×",
            "données d'entraînement",
            "日本語のメモ",
            "emoji 🚀",
            "עברית",
        ] {
            assert!(is_plain(plain), "{plain:?}");
        }
    }
}
