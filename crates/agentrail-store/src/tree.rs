//! The journal's Merkle tree, stored as C2SP tlog-tiles.
//!
//! Row `r` of the tree holds the hashes at tree level `8·r`; a *tile* is 256
//! consecutive hashes of a row. Only full tiles are written, each once, in
//! the transaction of the batch that completes it. A stored tile keeps its
//! 256 hashes and also the 255 inner nodes above them (levels `8·r + 1` to
//! `8·r + 8`), 16 KiB per 256 entries for row 0 and far less above, so that
//! every node of the tree is one slice of one record. The partial tile at
//! the right edge of each row lives in memory ([`Edge`]), its inner nodes
//! kept as they form, and is rebuilt on open from the journal tail and the
//! stored tiles. A proof therefore costs O(log n) record reads and no
//! hashing at all, never a pass over the leaves.
//!
//! An earlier layout stored every node in its own B-tree record: durable
//! appends ran at half the speed of a bare journal (`agentrail bench log`);
//! tiles cut the tree's write cost to one record per 256 entries.

use agentrail_log::merkle::{self, Hash, Nodes, TreeError};
use redb::{ReadableTable, TableDefinition};

/// Full tiles by (row, index): the 256 hashes of the row, then each inner
/// level up to the tile's root (511 hashes of 32 bytes).
pub(crate) const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("merkle_tiles_v2");

/// Hashes per tile.
pub const TILE_WIDTH: usize = 256;
/// Tree levels per row.
const ROW_HEIGHT: u32 = 8;
/// Hashes in a stored tile: 256 + 128 + … + 1.
const STORED_HASHES: usize = 2 * TILE_WIDTH - 1;

/// Where level `within` (0 = the row's hashes, 8 = the tile's root) starts
/// in a stored tile, in hashes.
fn level_offset(within: u32) -> usize {
    2 * TILE_WIDTH - ((2 * TILE_WIDTH) >> within)
}

/// Reads stored full tiles.
pub(crate) trait StoredTiles {
    /// `count` hashes from `position` of tile `index` of row `row`, or
    /// `None` if that tile is not stored.
    fn read(
        &self,
        row: u8,
        index: u64,
        position: usize,
        count: usize,
    ) -> Result<Option<Vec<Hash>>, TreeError>;
}

/// `count` hashes from `position` of a stored tile's bytes.
fn hashes_at(bytes: &[u8], position: usize, count: usize) -> Vec<Hash> {
    bytes[32 * position..32 * (position + count)]
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("chunks of 32 bytes"))
        .collect()
}

fn row_byte(row: usize) -> u8 {
    u8::try_from(row).expect("a tree of at most 2^64 leaves has fewer than 9 rows")
}

/// The right edge of the tree: per row, the full tiles' count and the
/// partial tile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edge {
    pub(crate) size: u64,
    full: Vec<u64>,
    partial: Vec<PartialTile>,
}

/// A tile being filled, with its complete inner nodes kept as they form
/// (one hash per push, amortised).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PartialTile {
    /// `levels[k]` holds the complete nodes 2^k hashes wide.
    levels: [Vec<Hash>; ROW_HEIGHT as usize],
}

impl PartialTile {
    fn base(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// Adds a hash; when the tile becomes full, returns its stored bytes and
    /// its root, and starts over.
    fn push(&mut self, hash: Hash) -> Option<(Vec<u8>, Hash)> {
        self.levels[0].push(hash);
        let (mut index, mut node) = (self.levels[0].len() - 1, hash);
        let mut level = 0;
        while index & 1 == 1 {
            node = merkle::node_hash(&self.levels[level][index - 1], &node);
            level += 1;
            index >>= 1;
            if level == ROW_HEIGHT as usize {
                let mut bytes = Vec::with_capacity(STORED_HASHES * 32);
                for hashes in &self.levels {
                    bytes.extend_from_slice(&hashes.concat());
                }
                bytes.extend_from_slice(&node);
                debug_assert_eq!(bytes.len(), STORED_HASHES * 32);
                *self = PartialTile::default();
                return Some((bytes, node));
            }
            self.levels[level].push(node);
        }
        None
    }

    fn node(&self, within: u32, index: u64) -> Option<Hash> {
        self.levels
            .get(within as usize)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }
}

/// A full tile to store.
pub(crate) struct NewTile {
    pub row: u8,
    pub index: u64,
    pub bytes: Vec<u8>,
}

impl Edge {
    /// The edge after appending `leaves`, and the tiles they complete.
    pub(crate) fn append(&self, leaves: &[Hash]) -> (Edge, Vec<NewTile>) {
        let mut edge = self.clone();
        let mut tiles = Vec::new();
        for leaf in leaves {
            edge.push(0, *leaf, &mut tiles);
        }
        edge.size += leaves.len() as u64;
        (edge, tiles)
    }

    fn push(&mut self, row: usize, hash: Hash, tiles: &mut Vec<NewTile>) {
        if self.partial.len() == row {
            self.partial.push(PartialTile::default());
            self.full.push(0);
        }
        if let Some((bytes, root)) = self.partial[row].push(hash) {
            tiles.push(NewTile {
                row: row_byte(row),
                index: self.full[row],
                bytes,
            });
            self.full[row] += 1;
            self.push(row + 1, root, tiles);
        }
    }

    /// Rebuilds the edge of a tree of `size` leaves from its stored tiles
    /// and `tail`, the leaf hashes after the last full row-0 tile.
    pub(crate) fn rebuild(
        size: u64,
        tail: Vec<Hash>,
        tiles: &dyn StoredTiles,
    ) -> Result<Edge, TreeError> {
        let mut edge = Edge {
            size,
            ..Edge::default()
        };
        let mut row = 0usize;
        loop {
            let count = size.checked_shr(ROW_HEIGHT * row as u32).unwrap_or(0);
            if count == 0 {
                break;
            }
            let full = count / TILE_WIDTH as u64;
            let partial = if row == 0 {
                tail.clone()
            } else {
                (full * TILE_WIDTH as u64..count)
                    .map(|index| {
                        let root = tiles
                            .read(row_byte(row - 1), index, STORED_HASHES - 1, 1)?
                            .ok_or(TreeError::Missing {
                                level: (row as u32 - 1) * ROW_HEIGHT,
                                index: index * TILE_WIDTH as u64,
                            })?;
                        Ok(root[0])
                    })
                    .collect::<Result<Vec<_>, TreeError>>()?
            };
            if partial.len() as u64 != count % TILE_WIDTH as u64 {
                return Err(TreeError::Storage(
                    "the journal tail and the tree disagree".into(),
                ));
            }
            let mut tile = PartialTile::default();
            for hash in partial {
                let full_now = tile.push(hash);
                debug_assert!(full_now.is_none(), "a partial tile holds < 256 hashes");
            }
            edge.full.push(full);
            edge.partial.push(tile);
            row += 1;
        }
        Ok(edge)
    }

    /// Full tiles expected in row `row`.
    pub(crate) fn full_tiles(&self, row: usize) -> u64 {
        self.full.get(row).copied().unwrap_or(0)
    }

    /// Hashes `first..first + count` of row `row`, within one tile, if the
    /// tree holds them.
    pub(crate) fn hashes(
        &self,
        row: usize,
        first: u64,
        count: u64,
        tiles: &dyn StoredTiles,
    ) -> Result<Option<Vec<Hash>>, TreeError> {
        let width = TILE_WIDTH as u64;
        let index = first / width;
        let offset = (first % width) as usize;
        if count == 0 || offset as u64 + count > width {
            return Ok(None);
        }
        if index < self.full_tiles(row) {
            return tiles.read(row_byte(row), index, offset, count as usize);
        }
        if index == self.full_tiles(row) {
            let partial = self.partial.get(row).map(PartialTile::base).unwrap_or(&[]);
            return Ok(partial
                .get(offset..offset + count as usize)
                .map(<[Hash]>::to_vec));
        }
        Ok(None)
    }

    /// Node `index` at level `8·row + within`, if the tree holds it.
    pub(crate) fn node(
        &self,
        row: usize,
        within: u32,
        index: u64,
        tiles: &dyn StoredTiles,
    ) -> Result<Option<Hash>, TreeError> {
        let per_tile = (TILE_WIDTH as u64) >> within;
        let tile = index / per_tile;
        let position = index % per_tile;
        if tile < self.full_tiles(row) {
            let offset = level_offset(within) + position as usize;
            return Ok(tiles
                .read(row_byte(row), tile, offset, 1)?
                .map(|hashes| hashes[0]));
        }
        if tile == self.full_tiles(row) {
            return Ok(self
                .partial
                .get(row)
                .and_then(|partial| partial.node(within, position)));
        }
        Ok(None)
    }
}

/// Tree nodes from stored tiles (a redb table) and the in-memory edge.
pub(crate) struct TileNodes<'a, T> {
    pub tiles: &'a T,
    pub edge: &'a Edge,
}

/// A redb table of tiles.
pub(crate) struct TableTiles<'a, T>(pub &'a T);

impl<T: ReadableTable<(u8, u64), &'static [u8]>> StoredTiles for TableTiles<'_, T> {
    fn read(
        &self,
        row: u8,
        index: u64,
        position: usize,
        count: usize,
    ) -> Result<Option<Vec<Hash>>, TreeError> {
        let Some(value) = self
            .0
            .get((row, index))
            .map_err(|e| TreeError::Storage(e.to_string()))?
        else {
            return Ok(None);
        };
        let bytes = value.value();
        if bytes.len() != STORED_HASHES * 32 || position + count > STORED_HASHES {
            return Err(TreeError::Storage(format!(
                "stored tile {row}/{index} has the wrong size"
            )));
        }
        Ok(Some(hashes_at(bytes, position, count)))
    }
}

impl<T: ReadableTable<(u8, u64), &'static [u8]>> Nodes for TileNodes<'_, T> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, TreeError> {
        let (row, within) = (level / ROW_HEIGHT, level % ROW_HEIGHT);
        self.edge
            .node(row as usize, within, index, &TableTiles(self.tiles))?
            .ok_or(TreeError::Missing { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentrail_log::MemoryTree;
    use std::collections::BTreeMap;

    struct Map(BTreeMap<(u8, u64), Vec<u8>>);

    impl StoredTiles for Map {
        fn read(
            &self,
            row: u8,
            index: u64,
            position: usize,
            count: usize,
        ) -> Result<Option<Vec<Hash>>, TreeError> {
            Ok(self
                .0
                .get(&(row, index))
                .map(|bytes| hashes_at(bytes, position, count)))
        }
    }

    #[test]
    fn the_edge_and_its_tiles_give_every_node_of_the_tree() {
        let leaves: Vec<Hash> = (0..70_000u32)
            .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
            .collect();
        let mut tiles = Map(BTreeMap::new());
        let mut edge = Edge::default();
        let mut expected = MemoryTree::new();
        let mut at = 0;
        for batch in [1usize, 255, 1, 300, 65_000, 4_443] {
            let (next, new) = edge.append(&leaves[at..at + batch]);
            for tile in new {
                tiles.0.insert((tile.row, tile.index), tile.bytes);
            }
            edge = next;
            for leaf in &leaves[at..at + batch] {
                expected.push(*leaf);
            }
            at += batch;
            let rebuilt =
                Edge::rebuild(at as u64, leaves[at / 256 * 256..at].to_vec(), &tiles).unwrap();
            assert_eq!(rebuilt, edge, "rebuilt edge at {at}");
        }
        assert!(tiles.0.contains_key(&(1, 0)), "a row-1 tile was completed");
        // Every node answered from tiles and edge matches the tree.
        let nodes = |level: u32, index: u64| -> Result<Hash, TreeError> {
            edge.node((level / 8) as usize, level % 8, index, &tiles)?
                .ok_or(TreeError::Missing { level, index })
        };
        for level in 0..17u32 {
            let count = (at as u64) >> level;
            for index in (0..count).step_by(1 + count as usize / 50) {
                assert_eq!(
                    nodes(level, index),
                    expected.node(level, index),
                    "{level}/{index}"
                );
            }
            assert!(nodes(level, count).is_err());
        }
        // The row's hashes of a full tile, as served.
        let served = edge.hashes(0, 256, 256, &tiles).unwrap().unwrap();
        assert_eq!(served[0], expected.node(0, 256).unwrap());
    }
}
