//! C2SP tlog-tiles paths (https://c2sp.org/tlog-tiles).
//!
//! A tile at level `L` and index `N` holds the hashes of tree level `8·L`,
//! nodes `256·N … 256·N + 255`; an entry bundle `N` holds leaves
//! `256·N … 256·N + 255`, each prefixed with its length as a big-endian
//! u16. A partial tile or bundle of width `W` (1–255) holds the first `W`.
//! `N` is written in groups of three digits, all but the last prefixed with
//! `x`: 1234067 is `x001/x234/067`.

/// Hashes per full tile, entries per full bundle.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// A parsed tile path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// `None` for an entry bundle.
    pub level: Option<u32>,
    pub index: u64,
    /// `None` for a full tile.
    pub width: Option<u64>,
}

impl Tile {
    /// How many hashes or entries the tile holds.
    pub fn count(&self) -> u64 {
        self.width.unwrap_or(TILE_WIDTH)
    }

    /// The path below `/tile/`.
    pub fn path(&self) -> String {
        let level = self
            .level
            .map_or_else(|| "entries".to_owned(), |l| l.to_string());
        let mut path = format!("{level}/{}", format_index(self.index));
        if let Some(width) = self.width {
            path.push_str(&format!(".p/{width}"));
        }
        path
    }

    /// Reads the path below `/tile/`; `None` for anything else.
    pub fn parse(path: &str) -> Option<Tile> {
        let (level_text, rest) = path.split_once('/')?;
        let level = match level_text {
            "entries" => None,
            text if text.len() <= 2 && text.bytes().all(|b| b.is_ascii_digit()) => {
                let level: u32 = text.parse().ok()?;
                // Level 7 already covers 2^64 leaves.
                (level < 8 && (level == 0 || !text.starts_with('0'))).then_some(level)?;
                Some(level)
            }
            _ => return None,
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width: u64 = (!width.starts_with('0') && width.len() <= 3)
                    .then(|| width.parse().ok())
                    .flatten()?;
                (1..TILE_WIDTH).contains(&width).then_some(())?;
                (index, Some(width))
            }
            None => (rest, None),
        };
        let groups: Vec<&str> = index_text.split('/').collect();
        let mut index: u64 = 0;
        for (position, group) in groups.iter().enumerate() {
            let last = position + 1 == groups.len();
            let digits = if last {
                *group
            } else {
                group.strip_prefix('x')?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
        }
        // Canonical: no leading zero groups.
        if groups.len() > 1 && groups[0] == "x000" {
            return None;
        }
        Some(Tile {
            level,
            index,
            width,
        })
    }
}

/// `N` in groups of three digits.
pub fn format_index(index: u64) -> String {
    let mut groups = Vec::new();
    let mut rest = index;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(position, group)| {
            if position == last {
                format!("{group:03}")
            } else {
                format!("x{group:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        assert_eq!(format_index(1_234_067), "x001/x234/067");
        assert_eq!(format_index(0), "000");
        let tile = Tile::parse("0/x001/x234/067.p/8").unwrap();
        assert_eq!(
            tile,
            Tile {
                level: Some(0),
                index: 1_234_067,
                width: Some(8)
            }
        );
        assert_eq!(tile.path(), "0/x001/x234/067.p/8");
        let entries = Tile::parse("entries/005").unwrap();
        assert_eq!(entries.level, None);
        assert_eq!(entries.count(), 256);
        for bad in [
            "0/5",
            "0/x000/005",
            "0/005.p/0",
            "0/005.p/256",
            "8/000",
            "01/000",
            "0/001/002",
            "x/000",
            "entries",
            "0/005.p/08",
        ] {
            assert_eq!(Tile::parse(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn index_paths_round_trip(index in proptest::num::u64::ANY, width in 0u64..256) {
            let tile = Tile { level: Some(1), index, width: (width > 0).then_some(width) };
            proptest::prop_assert_eq!(Tile::parse(&tile.path()), Some(tile));
        }
    }
}
