//! The journal's Merkle tree, stored as C2SP tlog-tiles.
//!
//! Row `r` of the tree holds the hashes at tree level `8·r`; a *tile* is 256
//! consecutive hashes of a row. Only full tiles are written, each once, in
//! the transaction of the batch that completes it (8 KiB per 256 entries
//! for row 0, far less above). The partial tile at the right edge of each
//! row lives in memory ([`Edge`]) and is rebuilt on open from the journal
//! tail and the stored tiles. A node at a level between two rows is hashed
//! from at most 128 hashes of one tile, so every node, and with it every
//! proof, costs O(log n) tile reads and bounded hashing, never a pass over
//! the leaves.
//!
//! An earlier layout stored every node in its own B-tree record: durable
//! appends ran at half the speed of a bare journal (`agentrail bench log`);
//! tiles cut the tree's write cost to one record per 256 entries.

use agentrail_log::merkle::{self, Hash, Nodes, TreeError};
use redb::{ReadableTable, TableDefinition};

/// Full tiles by (row, index): 256 hashes of 32 bytes.
pub(crate) const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("merkle_tiles_v1");

/// Hashes per tile.
pub const TILE_WIDTH: usize = 256;
/// Tree levels per row.
const ROW_HEIGHT: u32 = 8;

/// The right edge of the tree: per row, the full tiles' count and the
/// partial tile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edge {
    pub(crate) size: u64,
    full: Vec<u64>,
    partial: Vec<PartialTile>,
}

/// A tile being filled, with its complete inner nodes kept as they form
/// (one hash per push, amortised), so that the nodes a root or a proof
/// needs at the edge cost nothing to look up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PartialTile {
    /// `levels[k]` holds the complete nodes 2^k hashes wide.
    levels: [Vec<Hash>; ROW_HEIGHT as usize],
}

impl PartialTile {
    fn base(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// Adds a hash; when the tile becomes full, returns its bytes and its
    /// root, and starts over.
    fn push(&mut self, hash: Hash) -> Option<(Vec<u8>, Hash)> {
        self.levels[0].push(hash);
        let (mut index, mut node) = (self.levels[0].len() - 1, hash);
        let mut level = 0;
        while index & 1 == 1 {
            node = merkle::node_hash(&self.levels[level][index - 1], &node);
            level += 1;
            index >>= 1;
            if level == ROW_HEIGHT as usize {
                let bytes = self.levels[0].concat();
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

/// The root of a power-of-two run of hashes.
fn subtree_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| merkle::node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

fn tile_hashes(bytes: &[u8]) -> Result<Vec<Hash>, TreeError> {
    if bytes.len() != TILE_WIDTH * 32 {
        return Err(TreeError::Storage(
            "a stored tile has the wrong size".into(),
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("32 bytes"))
        .collect())
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
                row: u8::try_from(row).expect("fewer than 8 rows"),
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
        tile: &dyn Fn(u8, u64) -> Result<Option<Vec<u8>>, TreeError>,
    ) -> Result<Edge, TreeError> {
        let mut edge = Edge {
            size,
            ..Edge::default()
        };
        let mut row = 0u32;
        loop {
            let count = size.checked_shr(ROW_HEIGHT * row).unwrap_or(0);
            if count == 0 {
                break;
            }
            let full = count / TILE_WIDTH as u64;
            let partial = if row == 0 {
                tail.clone()
            } else {
                let below = u8::try_from(row - 1).expect("fewer than 8 rows");
                (full * TILE_WIDTH as u64..count)
                    .map(|index| {
                        let bytes = tile(below, index)?.ok_or(TreeError::Missing {
                            level: (row - 1) * ROW_HEIGHT,
                            index: index * TILE_WIDTH as u64,
                        })?;
                        Ok(subtree_root(&tile_hashes(&bytes)?))
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

    /// Hashes `first..first + count` of row `row`, if the tree holds them.
    pub(crate) fn hashes(
        &self,
        row: usize,
        first: u64,
        count: u64,
        tile: &dyn Fn(u8, u64) -> Result<Option<Vec<u8>>, TreeError>,
    ) -> Result<Option<Vec<Hash>>, TreeError> {
        let width = TILE_WIDTH as u64;
        let index = first / width;
        let offset = (first % width) as usize;
        if count == 0 || offset as u64 + count > width {
            return Ok(None);
        }
        let count = count as usize;
        if index < self.full_tiles(row) {
            let row_byte = u8::try_from(row).expect("fewer than 8 rows");
            let bytes = tile(row_byte, index)?.ok_or(TreeError::Missing {
                level: row as u32 * ROW_HEIGHT,
                index: first,
            })?;
            return Ok(Some(tile_hashes(&bytes)?[offset..offset + count].to_vec()));
        }
        if index == self.full_tiles(row) {
            let partial = self.partial.get(row).map(PartialTile::base).unwrap_or(&[]);
            return Ok(partial.get(offset..offset + count).map(<[Hash]>::to_vec));
        }
        Ok(None)
    }

    /// Node `index` (in row units of 2^within hashes) of row `row`'s
    /// partial tile, if it is complete there.
    fn partial_node(&self, row: usize, within: u32, index: u64) -> Option<Hash> {
        let first_in_partial = self
            .full_tiles(row)
            .checked_mul(TILE_WIDTH as u64 >> within)?;
        let relative = index.checked_sub(first_in_partial)?;
        self.partial.get(row)?.node(within, relative)
    }
}

/// Tree nodes from stored tiles and the in-memory edge.
pub(crate) struct TileNodes<'a, T> {
    pub tiles: &'a T,
    pub edge: &'a Edge,
}

impl<T: ReadableTable<(u8, u64), &'static [u8]>> TileNodes<'_, T> {
    pub(crate) fn tile(&self, row: u8, index: u64) -> Result<Option<Vec<u8>>, TreeError> {
        Ok(self
            .tiles
            .get((row, index))
            .map_err(|e| TreeError::Storage(e.to_string()))?
            .map(|value| value.value().to_vec()))
    }
}

impl<T: ReadableTable<(u8, u64), &'static [u8]>> Nodes for TileNodes<'_, T> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, TreeError> {
        let missing = TreeError::Missing { level, index };
        let (row, within) = (level / ROW_HEIGHT, level % ROW_HEIGHT);
        if let Some(hash) = self.edge.partial_node(row as usize, within, index) {
            return Ok(hash);
        }
        let first = index.checked_shl(within).ok_or(missing.clone())?;
        let hashes = self
            .edge
            .hashes(row as usize, first, 1 << within, &|r, i| self.tile(r, i))?
            .ok_or(missing)?;
        Ok(subtree_root(&hashes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentrail_log::MemoryTree;
    use std::collections::BTreeMap;

    struct Map(BTreeMap<(u8, u64), Vec<u8>>);

    impl Map {
        fn get(&self, row: u8, index: u64) -> Result<Option<Vec<u8>>, TreeError> {
            Ok(self.0.get(&(row, index)).cloned())
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
            let rebuilt = Edge::rebuild(at as u64, leaves[at / 256 * 256..at].to_vec(), &|r, i| {
                tiles.get(r, i)
            })
            .unwrap();
            assert_eq!(rebuilt, edge, "rebuilt edge at {at}");
        }
        assert!(tiles.0.contains_key(&(1, 0)), "a row-1 tile was completed");
        // Every node answered from tiles and edge matches the tree.
        let nodes = |level: u32, index: u64| -> Result<Hash, TreeError> {
            let (row, within) = (level / 8, level % 8);
            if let Some(hash) = edge.partial_node(row as usize, within, index) {
                return Ok(hash);
            }
            let hashes = edge
                .hashes(row as usize, index << within, 1 << within, &|r, i| {
                    tiles.get(r, i)
                })?
                .ok_or(TreeError::Missing { level, index })?;
            Ok(subtree_root(&hashes))
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
    }
}
