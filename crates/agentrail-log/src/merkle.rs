//! RFC 9162 §2.1 Merkle trees over SHA-256.
//!
//! Leaf hash `SHA-256(0x00 ‖ leaf)`, interior hash `SHA-256(0x01 ‖ left ‖
//! right)`, the empty tree's hash `SHA-256("")`. A tree is stored as the
//! hashes of its *complete* subtrees: node `(level, index)` covers leaves
//! `index·2^level … (index+1)·2^level − 1`. Every proof is assembled from
//! O(log n) such nodes, never recomputed from the leaves. Node `(8·L, i)` is
//! the `i`-th hash of a C2SP tlog-tiles tile at level `L`.
//!
//! Written from the RFC rather than taken from a crate: the proofs must be
//! built from our own stored nodes (a store-backed [`Nodes`]), which the
//! in-memory tree crates do not offer.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a tree could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    #[error("tree node {level}/{index} is not stored")]
    Missing { level: u32, index: u64 },
    #[error("index {index} is not inside a tree of size {size}")]
    OutOfRange { index: u64, size: u64 },
    #[error("the log store failed: {0}")]
    Storage(String),
}

/// Why a proof does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("the index is not inside the tree")]
    OutOfRange,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the second tree is smaller than the first")]
    Shrinking,
}

/// The hashes of complete subtrees.
pub trait Nodes {
    /// The root of complete subtree `index` at `level` (2^level leaves).
    fn node(&self, level: u32, index: u64) -> Result<Hash, TreeError>;
}

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(leaf)
        .finalize()
        .into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start..end])` for a range the RFC's recursion produces: `start`
/// is a multiple of the largest power of two not above `end − start`.
fn range_hash(nodes: &(impl Nodes + ?Sized), start: u64, end: u64) -> Result<Hash, TreeError> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return nodes.node(level, start >> level);
    }
    let k = split(n);
    Ok(node_hash(
        &range_hash(nodes, start, start + k)?,
        &range_hash(nodes, start + k, end)?,
    ))
}

/// The root of the tree's first `size` leaves.
pub fn root(nodes: &(impl Nodes + ?Sized), size: u64) -> Result<Hash, TreeError> {
    range_hash(nodes, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of size `size`
/// (RFC 9162 §2.1.3.1), from the leaf up.
pub fn inclusion_proof(
    nodes: &(impl Nodes + ?Sized),
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError> {
    if index >= size {
        return Err(TreeError::OutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(nodes, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(
    nodes: &(impl Nodes + ?Sized),
    index: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if index < start + k {
        path(nodes, index, start, start + k, proof)?;
        proof.push(range_hash(nodes, start + k, end)?);
    } else {
        path(nodes, index, start + k, end, proof)?;
        proof.push(range_hash(nodes, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of size `first` to the tree of size
/// `second` (RFC 9162 §2.1.4.1). Empty when `first` is 0 or equals `second`.
pub fn consistency_proof(
    nodes: &(impl Nodes + ?Sized),
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, TreeError> {
    if first > second {
        return Err(TreeError::OutOfRange {
            index: first,
            size: second,
        });
    }
    let mut proof = Vec::new();
    if first > 0 && first < second {
        subproof(nodes, first, 0, second, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof(
    nodes: &(impl Nodes + ?Sized),
    first: u64,
    start: u64,
    end: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let m = first - start;
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(range_hash(nodes, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, first, start, start + k, whole, proof)?;
        proof.push(range_hash(nodes, start + k, end)?);
    } else {
        subproof(nodes, first, start + k, end, false, proof)?;
        proof.push(range_hash(nodes, start, start + k)?);
    }
    Ok(())
}

/// Checks that `leaf_hash` is leaf `index` of the tree of size `size` whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of size `second` with root `second_root` extends
/// the tree of size `first` with root `first_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::Shrinking);
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if first == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *first_root || sr != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A whole tree in memory: for tests, benchmarks and audits.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends one leaf by its hash.
    pub fn push(&mut self, leaf_hash: Hash) {
        let (mut level, mut hash) = (0usize, leaf_hash);
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            let index = self.levels[level].len() - 1;
            if index & 1 == 0 {
                break;
            }
            hash = node_hash(&self.levels[level][index - 1], &hash);
            level += 1;
        }
    }

    pub fn root(&self) -> Hash {
        root(self, self.size()).expect("a memory tree holds all its nodes")
    }
}

impl Nodes for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Result<Hash, TreeError> {
        self.levels
            .get(level as usize)
            .and_then(|hashes| hashes.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(TreeError::Missing { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference leaves of RFC 6962's test vectors (used by Certificate
    /// Transparency's implementations).
    fn reference_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).expect("hex"))
        .collect()
    }

    fn h(text: &str) -> Hash {
        hex::decode(text)
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    }

    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_tree() -> MemoryTree {
        let mut tree = MemoryTree::new();
        for leaf in reference_leaves() {
            tree.push(leaf_hash(&leaf));
        }
        tree
    }

    #[test]
    fn reference_roots_for_sizes_0_to_8() {
        let mut tree = MemoryTree::new();
        assert_eq!(tree.root(), h(ROOTS[0]));
        for (size, leaf) in reference_leaves().iter().enumerate() {
            tree.push(leaf_hash(leaf));
            assert_eq!(tree.root(), h(ROOTS[size + 1]), "size {}", size + 1);
        }
        let full = reference_tree();
        for size in 0..=8 {
            assert_eq!(root(&full, size).unwrap(), h(ROOTS[size as usize]));
        }
    }

    #[test]
    fn reference_inclusion_proofs() {
        let tree = reference_tree();
        let cases: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let leaves = reference_leaves();
        for (index, size, expected) in cases {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
            assert_eq!(proof, expected, "leaf {index} of {size}");
            let root = h(ROOTS[size as usize]);
            let leaf = leaf_hash(&leaves[index as usize]);
            assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        }
        assert_eq!(inclusion_proof(&tree, 0, 1).unwrap(), Vec::<Hash>::new());
    }

    #[test]
    fn reference_consistency_proofs() {
        let tree = reference_tree();
        let cases: [(u64, u64, &[&str]); 4] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                3,
                8,
                &[
                    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
        ];
        for (first, second, expected) in cases {
            let proof = consistency_proof(&tree, first, second).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
            assert_eq!(proof, expected, "{first} to {second}");
            assert_eq!(
                verify_consistency(
                    first,
                    second,
                    &h(ROOTS[first as usize]),
                    &h(ROOTS[second as usize]),
                    &proof
                ),
                Ok(())
            );
        }
        assert_eq!(consistency_proof(&tree, 0, 8).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&tree, 8, 8).unwrap(), Vec::<Hash>::new());
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    #[test]
    fn every_proof_of_every_tree_up_to_130_leaves_verifies_and_resists_a_flipped_bit() {
        let mut tree = MemoryTree::new();
        let mut roots = vec![tree.root()];
        let mut leaves = Vec::new();
        for i in 0..130u32 {
            let leaf = leaf_hash(&i.to_le_bytes());
            leaves.push(leaf);
            tree.push(leaf);
            roots.push(tree.root());
        }
        for size in 1..=130u64 {
            let root = roots[size as usize];
            for index in 0..size {
                let proof = inclusion_proof(&tree, index, size).unwrap();
                let leaf = leaves[index as usize];
                assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
                // A flipped bit anywhere breaks it (sampled bits keep the
                // test quick: one per proof element, the leaf and the root).
                let bit = (index as usize * 7 + size as usize) % 256;
                assert!(verify_inclusion(&flip(&leaf, bit), index, size, &proof, &root).is_err());
                assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, bit)).is_err());
                for position in 0..proof.len() {
                    let mut altered = proof.clone();
                    altered[position] = flip(&altered[position], bit);
                    assert!(verify_inclusion(&leaf, index, size, &altered, &root).is_err());
                }
                assert!(verify_inclusion(&leaf, index + 1, size, &proof, &root).is_err());
            }
            for first in 0..=size {
                let proof = consistency_proof(&tree, first, size).unwrap();
                let (r1, r2) = (roots[first as usize], roots[size as usize]);
                assert_eq!(verify_consistency(first, size, &r1, &r2, &proof), Ok(()));
                if first > 0 && first < size {
                    let bit = (first as usize * 13 + size as usize) % 256;
                    assert!(verify_consistency(first, size, &flip(&r1, bit), &r2, &proof).is_err());
                    assert!(verify_consistency(first, size, &r1, &flip(&r2, bit), &proof).is_err());
                    for position in 0..proof.len() {
                        let mut altered = proof.clone();
                        altered[position] = flip(&altered[position], bit);
                        assert!(verify_consistency(first, size, &r1, &r2, &altered).is_err());
                    }
                    assert!(verify_consistency(first, size, &r1, &r2, &proof[1..]).is_err());
                }
            }
        }
    }
}
