//! Negotiation strategies that need no human: a buyer that ranks quotes by
//! price and reputation, counters once and accepts within its mandate, and
//! a provider that never goes below its reservation price. Both are pure
//! decisions over what the node serves; the caller signs and submits the
//! commands they choose (`counter_quote`, `accept_quote`, `submit_quote`).

use std::collections::BTreeMap;

use agentrail_core::amount::BPS_WHOLE;
use agentrail_core::market::{QuoteStatus, QuoteView, RfqView, Side};
use agentrail_core::state::GrantStatus;
use agentrail_core::{Amount, Did};

/// What the buyer does next on a quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuyerMove {
    /// Accept the provider's latest offer.
    Accept,
    /// Offer this price instead.
    Counter(Amount),
    /// Nothing acceptable: let the quote go.
    WalkAway,
}

/// What the provider does next on a quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderMove {
    /// Offer this price (meeting the buyer's counter, or its floor).
    Offer(Amount),
    /// The buyer's side has the turn, or the quote is settled.
    Wait,
}

/// A buyer that needs no human.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuyerStrategy {
    /// How much a perfect reputation (1000) discounts a quote's price when
    /// ranking, in basis points: at 5000, a 10 USD quote from a provider
    /// scored 1000 ranks like a 5 USD quote from one scored 0.
    pub reputation_weight_bps: u16,
    /// The first counter-offer asks this much below the quote, in basis
    /// points of its price.
    pub counter_discount_bps: u16,
}

impl Default for BuyerStrategy {
    fn default() -> BuyerStrategy {
        BuyerStrategy {
            reputation_weight_bps: 5_000,
            counter_discount_bps: 1_500,
        }
    }
}

/// The most a buyer may commit in one payment under its mandate: the
/// smallest of its per-payment cap, what its daily and total budgets still
/// allow, and (when it may not exceed one alone) its approval threshold.
pub fn mandate_ceiling(grant: &GrantStatus) -> Amount {
    let limits = &grant.grant.grant().limits;
    let mut ceiling = limits.max_per_payment.min(grant.remaining_today);
    if let Some(total) = grant.remaining_total {
        ceiling = ceiling.min(total);
    }
    if let Some(threshold) = limits.approval_threshold {
        ceiling = ceiling.min(threshold);
    }
    ceiling.min(grant.exposure.amount)
}

impl BuyerStrategy {
    /// The price a quote ranks at, reputation taken into account.
    fn ranked_price(&self, quote: &QuoteView, reputation: u16) -> u128 {
        let discount =
            u128::from(self.reputation_weight_bps) * u128::from(reputation.min(1_000)) / 1_000;
        let whole = u128::from(BPS_WHOLE);
        quote.price.atomic() / whole * (whole - discount)
            + quote.price.atomic() % whole * (whole - discount) / whole
    }

    /// The best open quote that a counter-offer could bring within
    /// `ceiling`, by ranked price (ties to the earlier quote). `reputations` maps providers to scores; a missing
    /// provider counts as 0.
    pub fn choose<'q>(
        &self,
        rfq: &'q RfqView,
        reputations: &BTreeMap<Did, u16>,
        ceiling: Amount,
    ) -> Option<&'q QuoteView> {
        rfq.quotes
            .iter()
            .filter(|quote| quote.status == QuoteStatus::Open)
            .filter(|quote| self.first_counter(quote) <= ceiling)
            .min_by_key(|quote| {
                let reputation = reputations.get(&quote.provider).copied().unwrap_or(0);
                self.ranked_price(quote, reputation)
            })
    }

    fn first_counter(&self, quote: &QuoteView) -> Amount {
        quote
            .price
            .share_floor(BPS_WHOLE - self.counter_discount_bps.min(BPS_WHOLE - 1))
            .max(Amount::from_atomic(1))
    }

    /// The next move on `quote`: counter once (the quote's first round),
    /// then accept whatever the provider answers if it is within
    /// `ceiling`, else walk away.
    pub fn respond(&self, quote: &QuoteView, ceiling: Amount) -> BuyerMove {
        if quote.status != QuoteStatus::Open || quote.last_offer_by != Side::Provider {
            return BuyerMove::WalkAway;
        }
        if quote.rounds == 1 {
            let counter = self.first_counter(quote).min(ceiling);
            if counter < quote.price && !counter.is_zero() {
                return BuyerMove::Counter(counter);
            }
        }
        if quote.price <= ceiling {
            BuyerMove::Accept
        } else {
            BuyerMove::WalkAway
        }
    }
}

/// A provider with a reservation price: it asks a markup above it, meets
/// any counter at or above it, and answers a lower one with the
/// reservation price itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderStrategy {
    pub reservation_price: Amount,
    /// The first ask, in basis points above the reservation price.
    pub markup_bps: u16,
}

impl ProviderStrategy {
    /// The first ask on `rfq`, or `None` when its budget is below the
    /// reservation price.
    pub fn ask(&self, rfq: &RfqView) -> Option<Amount> {
        if rfq.request.budget_max < self.reservation_price {
            return None;
        }
        let markup = self.reservation_price.share_floor(self.markup_bps);
        let ask = self
            .reservation_price
            .checked_add(markup)
            .unwrap_or(Amount::MAX);
        Some(ask.min(rfq.request.budget_max))
    }

    pub fn respond(&self, quote: &QuoteView) -> ProviderMove {
        if quote.status != QuoteStatus::Open || quote.last_offer_by != Side::Buyer {
            return ProviderMove::Wait;
        }
        ProviderMove::Offer(quote.price.max(self.reservation_price))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentrail_core::market::{RequestQuotes, RfqStatus};

    fn usd(whole: u128) -> Amount {
        Amount::from_atomic(whole * 1_000_000)
    }

    fn did(byte: u8) -> Did {
        Did::from_public_key_bytes([byte; 32])
    }

    fn quote(id: &str, provider: Did, price: Amount) -> QuoteView {
        QuoteView {
            quote_id: id.into(),
            rfq_id: "r".into(),
            provider,
            listing_id: None,
            price,
            last_offer_by: Side::Provider,
            rounds: 1,
            note: None,
            status: QuoteStatus::Open,
        }
    }

    fn rfq(quotes: Vec<QuoteView>, budget_max: Amount) -> RfqView {
        RfqView {
            request: RequestQuotes {
                rfq_id: "r".into(),
                from: did(9),
                capability: "compute".into(),
                description: String::new(),
                budget_max,
                deadline_s: 60,
                review_window_s: None,
                arbiter: None,
                validator: None,
                invited: Vec::new(),
                expires_at: None,
            },
            status: RfqStatus::Open,
            expires_at: agentrail_core::Timestamp(0),
            quotes,
        }
    }

    #[test]
    fn reputation_can_outrank_a_lower_price() {
        let buyer = BuyerStrategy::default();
        let request = rfq(
            vec![
                quote("cheap", did(1), usd(8)),
                quote("trusted", did(2), usd(10)),
            ],
            usd(20),
        );
        let none = BTreeMap::new();
        assert_eq!(
            buyer.choose(&request, &none, usd(20)).unwrap().quote_id,
            "cheap"
        );
        let reputations = BTreeMap::from([(did(2), 800)]);
        // 10 × (1 − 0.4) = 6 ranks below 8.
        assert_eq!(
            buyer
                .choose(&request, &reputations, usd(20))
                .unwrap()
                .quote_id,
            "trusted"
        );
    }

    #[test]
    fn buyer_counters_once_then_accepts_within_its_ceiling() {
        let buyer = BuyerStrategy::default();
        let mut offer = quote("q", did(1), usd(10));
        assert_eq!(
            buyer.respond(&offer, usd(20)),
            BuyerMove::Counter(usd(85).share_floor(1_000))
        );
        offer.rounds = 3;
        offer.price = usd(9);
        assert_eq!(buyer.respond(&offer, usd(20)), BuyerMove::Accept);
        assert_eq!(buyer.respond(&offer, usd(8)), BuyerMove::WalkAway);
    }

    #[test]
    fn provider_never_goes_below_its_reservation_price() {
        let provider = ProviderStrategy {
            reservation_price: usd(7),
            markup_bps: 2_000,
        };
        assert_eq!(
            provider.ask(&rfq(vec![], usd(20))),
            Some(Amount::from_atomic(8_400_000))
        );
        assert_eq!(provider.ask(&rfq(vec![], usd(8))), Some(usd(8)));
        assert_eq!(provider.ask(&rfq(vec![], usd(6))), None);
        let mut countered = quote("q", did(1), usd(6));
        countered.last_offer_by = Side::Buyer;
        assert_eq!(provider.respond(&countered), ProviderMove::Offer(usd(7)));
        countered.price = usd(8);
        assert_eq!(provider.respond(&countered), ProviderMove::Offer(usd(8)));
    }
}
