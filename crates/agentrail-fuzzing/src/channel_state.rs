//! The channel state machine, driven by bytes: opens, top-ups, vouchers
//! (new, replayed, forged, over the deposit), collects, closes by either
//! side and time passing. After every step every invariant holds, the
//! payee never holds more than the deposit, and the payer never loses more
//! than the best vouchers it signed.

use agentrail_core::channel::ChannelId;
use agentrail_core::{Amount, Genesis, State, Timestamp};
use agentrail_sim::kit::{self, T0, usd};

pub fn run(data: &[u8]) {
    let (operator, payer, payee, thief) = (
        kit::key("op"),
        kit::key("payer"),
        kit::key("payee"),
        kit::key("thief"),
    );
    let mut state = State::new(Genesis {
        operator: kit::did(&operator),
        network: kit::network(),
        chain: None,
    });
    let mut now = T0;
    for key in [&payer, &payee, &thief] {
        state
            .apply(
                &kit::signed(key, kit::register_principal(kit::did(key))),
                now,
            )
            .expect("the channel world builds");
    }
    state
        .apply(
            &kit::signed(&operator, kit::deposit(kit::did(&payer), usd(100), "d")),
            now,
        )
        .expect("the channel world builds");
    let channel = ChannelId::derive(&kit::did(&payer), &kit::did(&payee), "c");
    // The best total signed per sub-channel, and its nonce.
    let mut signed = [(0u64, 0u128); 2];
    for (step, op) in data.chunks(3).take(64).enumerate() {
        let (kind, a, b) = (
            op[0] % 8,
            *op.get(1).unwrap_or(&0),
            *op.get(2).unwrap_or(&0),
        );
        let command = match kind {
            0 => kit::open_channel(
                kit::did(&payer),
                kit::did(&payee),
                Amount::from_atomic(u128::from(a) * 100_000 + 1),
                "c",
            ),
            1 => kit::top_up_channel(
                channel,
                Amount::from_atomic(u128::from(a) * 10_000 + 1),
                &format!("t{step}"),
            ),
            2 | 3 => {
                let sub = usize::from(b % 2);
                let (nonce, total) = if kind == 2 {
                    (signed[sub].0 + 1, signed[sub].1 + u128::from(a) * 10_000)
                } else {
                    signed[sub]
                };
                let voucher = kit::voucher(
                    &payer,
                    &kit::network(),
                    channel,
                    kit::did(&payee),
                    &format!("s{sub}"),
                    nonce,
                    Amount::from_atomic(total),
                );
                if kind == 2 {
                    signed[sub] = (nonce, total);
                }
                kit::collect_channel(channel, vec![voucher])
            }
            4 => {
                let forged = kit::voucher(
                    &thief,
                    &kit::network(),
                    channel,
                    kit::did(&payee),
                    "s0",
                    u64::from(a) + 1_000,
                    usd(1),
                );
                kit::collect_channel(channel, vec![forged])
            }
            5 => kit::close_channel(channel, Vec::new()),
            6 => kit::start_channel_close(channel),
            _ => {
                now = Timestamp(now.0 + u64::from(a) * u64::from(b) * 60);
                state.advance(now);
                state.check_invariants().expect("every invariant holds");
                continue;
            }
        };
        let signer = match kind {
            0 | 1 | 6 => &payer,
            _ => &payee,
        };
        if let Ok(events) = state.apply(&kit::signed(signer, command), now)
            && kind == 4
        {
            panic!("a forged voucher was accepted: {events:?}");
        }
        state.check_invariants().expect("every invariant holds");
        if let Some(view) = state.channel(&channel) {
            assert!(
                view.collected <= view.deposit,
                "the payee got more than the deposit"
            );
            let vouched: u128 = signed.iter().map(|(_, total)| total).sum();
            assert!(
                view.collected.atomic() <= vouched,
                "the payer lost more than it signed"
            );
        }
    }
}
