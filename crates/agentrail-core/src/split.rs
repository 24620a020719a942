//! Exact splits of an amount by basis points (largest-remainder method).
//!
//! Each part first gets `floor(amount × bps / 10,000)`; the atomic units left
//! over (fewer than the number of parts) go one each to the parts with the
//! largest fractional remainders, ties to the earlier part. The parts always
//! sum to the amount exactly.

use crate::amount::{Amount, BPS_WHOLE};

/// Splits `amount` by `shares_bps`, which must sum to 10,000.
pub fn split_largest_remainder(amount: Amount, shares_bps: &[u16]) -> Vec<Amount> {
    assert_eq!(
        shares_bps.iter().map(|&bps| u32::from(bps)).sum::<u32>(),
        u32::from(BPS_WHOLE),
        "shares must sum to a whole"
    );
    let whole = u128::from(BPS_WHOLE);
    let mut parts: Vec<Amount> = shares_bps
        .iter()
        .map(|&bps| amount.share_floor(bps))
        .collect();
    // amount × bps ≡ (amount mod 10,000) × bps (mod 10,000): no overflow.
    let fractions: Vec<u128> = shares_bps
        .iter()
        .map(|&bps| (amount.atomic() % whole) * u128::from(bps) % whole)
        .collect();
    let floor_sum: u128 = parts.iter().map(|part| part.atomic()).sum();
    let leftover = amount.atomic() - floor_sum;
    assert!(
        leftover < parts.len() as u128,
        "leftover {leftover} of {} parts",
        parts.len()
    );

    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| fractions[b].cmp(&fractions[a]).then(a.cmp(&b)));
    for &index in order.iter().take(leftover as usize) {
        parts[index] = Amount::from_atomic(parts[index].atomic() + 1);
    }
    let sum: u128 = parts.iter().map(|part| part.atomic()).sum();
    assert_eq!(sum, amount.atomic(), "a split must conserve the amount");
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(amount: u128, shares: &[u16], expected: &[u128]) {
        let parts: Vec<u128> = split_largest_remainder(Amount::from_atomic(amount), shares)
            .into_iter()
            .map(Amount::atomic)
            .collect();
        assert_eq!(parts, expected, "{amount} by {shares:?}");
    }

    #[test]
    fn table() {
        check(100, &[10_000], &[100]);
        check(100, &[3_334, 3_333, 3_333], &[34, 33, 33]);
        check(10, &[3_333, 3_333, 3_334], &[3, 3, 4]);
        check(1, &[5_000, 5_000], &[1, 0]);
        check(7, &[2_500, 2_500, 2_500, 2_500], &[2, 2, 2, 1]);
        check(0, &[5_000, 5_000], &[0, 0]);
        check(
            u128::MAX,
            &[5_000, 5_000],
            &[u128::MAX / 2 + 1, u128::MAX / 2],
        );
    }

    fn shares_strategy() -> impl Strategy<Value = Vec<u16>> {
        proptest::collection::vec(1u16..=10_000, 1..=32).prop_map(|raw| {
            // Scale arbitrary weights to shares that sum to exactly 10,000.
            let total: u32 = raw.iter().map(|&w| u32::from(w)).sum();
            let mut shares: Vec<u16> = raw
                .iter()
                .map(|&w| (u32::from(w) * 10_000 / total) as u16)
                .collect();
            let assigned: u32 = shares.iter().map(|&s| u32::from(s)).sum();
            shares[0] += (10_000 - assigned) as u16;
            shares
        })
    }

    proptest! {
        #[test]
        fn parts_sum_exactly_and_stay_within_one_unit(amount in any::<u128>(), shares in shares_strategy()) {
            let parts = split_largest_remainder(Amount::from_atomic(amount), &shares);
            let sum = parts.iter().try_fold(0u128, |acc, part| acc.checked_add(part.atomic()));
            prop_assert_eq!(sum, Some(amount));
            for (part, &bps) in parts.iter().zip(&shares) {
                let floor = Amount::from_atomic(amount).share_floor(bps).atomic();
                prop_assert!(part.atomic() == floor || part.atomic() == floor + 1);
            }
        }
    }
}
