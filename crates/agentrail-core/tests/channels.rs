//! Payment channels: every transition, every refusal, and the invariants
//! under random sequences of vouchers, collects, top-ups, closes and time.

mod support;

use agentrail_core::channel::{ChannelId, Voucher, VoucherTerms};
use agentrail_core::command::{ChannelRef, CollectChannel, OpenChannel, TopUpChannel};
use agentrail_core::event::CloseReason;
use agentrail_core::state::ChannelStatus;
use agentrail_core::{Amount, Command, Did, Event, Rejection, Timestamp};
use agentrail_sim::kit::{self, usd};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use support::World;

fn open(from: Did, payee: Did, deposit: Amount, key: &str) -> Command {
    Command::OpenChannel(OpenChannel {
        from,
        payee,
        deposit,
        voucher_key: None,
        expires_at: None,
        dispute_window_s: Some(3_600),
        category: Some("compute".into()),
        idempotency_key: key.into(),
    })
}

fn voucher(
    key: &SigningKey,
    channel_id: ChannelId,
    payee: Did,
    sub: &str,
    nonce: u64,
    amount: Amount,
) -> Voucher {
    VoucherTerms {
        channel_id,
        epoch: 0,
        sub_channel_id: sub.into(),
        accumulated_amount: amount,
        nonce,
        payee_id: payee,
    }
    .sign(key, &kit::network())
}

fn collect(channel_id: ChannelId, vouchers: Vec<Voucher>) -> Command {
    Command::CollectChannel(CollectChannel {
        channel_id,
        vouchers,
        amounts: Default::default(),
        listing_id: None,
    })
}

fn close(channel_id: ChannelId, vouchers: Vec<Voucher>) -> Command {
    Command::CloseChannel(CollectChannel {
        channel_id,
        vouchers,
        amounts: Default::default(),
        listing_id: None,
    })
}

fn top_up(channel_id: ChannelId, amount: Amount, key: &str) -> Command {
    Command::TopUpChannel(TopUpChannel {
        channel_id,
        amount,
        idempotency_key: key.into(),
    })
}

fn start_close(channel_id: ChannelId) -> Command {
    Command::StartChannelClose(ChannelRef { channel_id })
}

/// `thrifty` (per payment 10, daily 25, total 15, funded 100) opens a
/// channel of 10 to the other principal.
fn opened(world: &mut World) -> ChannelId {
    let (agent, payee) = (world.thrifty.did, world.other_principal.did);
    let events = world.ok(
        &world.thrifty.key.clone(),
        open(agent, payee, usd(10), "ch-1"),
    );
    let id = ChannelId::derive(&agent, &payee, "ch-1");
    assert!(matches!(
        events.as_slice(),
        [Event::ChannelOpened { channel_id, deposit, .. }] if *channel_id == id && *deposit == usd(10)
    ));
    id
}

#[test]
fn open_collect_and_close_cooperatively_move_exactly_what_was_vouched() {
    let mut world = World::new();
    let (agent, payee) = (world.thrifty.did, world.other_principal.did);
    let agent_key = world.thrifty.key.clone();
    let payee_key = world.other_principal.key.clone();
    let id = opened(&mut world);
    assert_eq!(world.held(&agent), usd(10).atomic());
    assert_eq!(world.available(&agent), usd(90).atomic());

    let first = voucher(&agent_key, id, payee, "a", 1, usd(3));
    let events = world.ok(&payee_key, collect(id, vec![first]));
    assert!(matches!(
        events.as_slice(),
        [Event::ChannelCollected { amount, collected, .. }] if *amount == usd(3) && *collected == usd(3)
    ));
    assert_eq!(world.available(&payee), usd(3).atomic());
    assert_eq!(world.held(&agent), usd(7).atomic());

    // Two streams at once: each has its own counter.
    let vouchers = vec![
        voucher(&agent_key, id, payee, "a", 2, usd(5)),
        voucher(&agent_key, id, payee, "b", 1, usd(2)),
    ];
    world.ok(&payee_key, collect(id, vouchers));
    assert_eq!(world.available(&payee), usd(7).atomic());
    let view = world.state.channel(&id).unwrap();
    assert_eq!(view.collected, usd(7));
    assert_eq!(view.sub_channels.len(), 2);

    // The payee closes with a last voucher; the rest returns to the agent
    // and to its budgets.
    let last = voucher(&agent_key, id, payee, "b", 2, usd(3));
    let events = world.ok(&payee_key, close(id, vec![last]));
    assert!(matches!(
        events.as_slice(),
        [
            Event::ChannelCollected { amount, .. },
            Event::ChannelClosed { paid, refunded, reason: CloseReason::Cooperative, .. }
        ] if *amount == usd(1) && *paid == usd(8) && *refunded == usd(2)
    ));
    assert_eq!(world.available(&payee), usd(8).atomic());
    assert_eq!(world.held(&agent), 0);
    assert_eq!(world.available(&agent), usd(92).atomic());
    let grant = world.state.grant_status(&agent, world.now).unwrap();
    assert_eq!(
        grant.spent_today,
        usd(8),
        "the refund went back to the budget"
    );
    assert_eq!(
        world.state.channel(&id).unwrap().status,
        ChannelStatus::Closed
    );
    world.state.check_invariants().unwrap();

    // Nothing moves after a close.
    let late = voucher(&agent_key, id, payee, "a", 3, usd(6));
    assert_eq!(
        world.apply(&payee_key, collect(id, vec![late])),
        Err(Rejection::ChannelClosed { channel_id: id })
    );
}

fn collect_up_to(
    channel_id: ChannelId,
    vouchers: Vec<Voucher>,
    sub: &str,
    amount: Amount,
) -> Command {
    Command::CollectChannel(CollectChannel {
        channel_id,
        vouchers,
        amounts: [(sub.to_owned(), amount)].into(),
        listing_id: None,
    })
}

#[test]
fn a_payee_collects_what_it_charged_and_the_credit_signed_ahead_returns_to_the_payer() {
    let mut world = World::new();
    let (agent, payee) = (world.thrifty.did, world.other_principal.did);
    let agent_key = world.thrifty.key.clone();
    let payee_key = world.other_principal.key.clone();
    let id = opened(&mut world);

    // The payer signed 6 ahead (a metered call's maximum); 2 was charged.
    let ahead = voucher(&agent_key, id, payee, "a", 1, usd(6));
    let events = world.ok(
        &payee_key,
        collect_up_to(id, vec![ahead.clone()], "a", usd(2)),
    );
    assert!(matches!(
        events.as_slice(),
        [Event::ChannelCollected { amount, collected, .. }] if *amount == usd(2) && *collected == usd(2)
    ));
    let redeemed = world.state.channel(&id).unwrap().sub_channels["a"];
    assert_eq!((redeemed.nonce, redeemed.amount), (1, usd(2)));

    // More was charged against the same credit: the same voucher again,
    // further; never beyond its total, never back, never an older one.
    world.ok(
        &payee_key,
        collect_up_to(id, vec![ahead.clone()], "a", usd(3)),
    );
    assert_eq!(
        world
            .apply(
                &payee_key,
                collect_up_to(id, vec![ahead.clone()], "a", usd(7))
            )
            .unwrap_err(),
        Rejection::InvalidField {
            field: "amounts",
            reason: "an amount is more than its voucher's total",
        }
    );
    assert_eq!(
        world
            .apply(
                &payee_key,
                collect_up_to(id, vec![ahead.clone()], "a", usd(3))
            )
            .unwrap_err()
            .code(),
        "voucher_stale"
    );
    assert_eq!(
        world
            .apply(
                &payee_key,
                collect_up_to(id, vec![ahead.clone()], "b", usd(1))
            )
            .unwrap_err(),
        Rejection::InvalidField {
            field: "amounts",
            reason: "an amount names a sub-channel none of the vouchers pays",
        }
    );
    let next = voucher(&agent_key, id, payee, "a", 2, usd(8));
    world.ok(&payee_key, collect_up_to(id, vec![next], "a", usd(4)));
    assert_eq!(
        world
            .apply(&payee_key, collect_up_to(id, vec![ahead], "a", usd(5)))
            .unwrap_err()
            .code(),
        "voucher_stale",
        "an older voucher never redeems after a newer one"
    );

    // The close redeems up to what was charged; the rest goes home.
    let last = voucher(&agent_key, id, payee, "a", 3, usd(9));
    let events = world.ok(
        &payee_key,
        Command::CloseChannel(CollectChannel {
            channel_id: id,
            vouchers: vec![last],
            amounts: [("a".to_owned(), usd(5))].into(),
            listing_id: None,
        }),
    );
    assert!(matches!(
        events.as_slice(),
        [
            Event::ChannelCollected { amount, .. },
            Event::ChannelClosed { paid, refunded, .. }
        ] if *amount == usd(1) && *paid == usd(5) && *refunded == usd(5)
    ));
    assert_eq!(world.available(&payee), usd(5).atomic());
    assert_eq!(world.available(&agent), usd(95).atomic());
    world.state.check_invariants().unwrap();
}

#[test]
fn every_bad_voucher_has_its_own_refusal() {
    let mut world = World::new();
    let payee = world.other_principal.did;
    let agent_key = world.thrifty.key.clone();
    let payee_key = world.other_principal.key.clone();
    let id = opened(&mut world);
    world.ok(
        &payee_key,
        collect(id, vec![voucher(&agent_key, id, payee, "a", 5, usd(4))]),
    );

    let refused = |world: &mut World, voucher: Voucher| {
        world
            .apply(&payee_key, collect(id, vec![voucher]))
            .unwrap_err()
    };
    // Signed by another key.
    let forged = voucher(&world.session.key.clone(), id, payee, "a", 6, usd(5));
    assert_eq!(
        refused(&mut world, forged),
        Rejection::VoucherSignatureInvalid {
            sub_channel_id: "a".into()
        }
    );
    // Signed for another network.
    let mut foreign = VoucherTerms {
        channel_id: id,
        epoch: 0,
        sub_channel_id: "a".into(),
        accumulated_amount: usd(5),
        nonce: 6,
        payee_id: payee,
    }
    .sign(
        &agent_key,
        &agentrail_core::channel::network_hash("agentrail:elsewhere"),
    );
    assert_eq!(
        refused(&mut world, foreign.clone()).code(),
        "voucher_signature_invalid"
    );
    // Tampered after signing.
    foreign = voucher(&agent_key, id, payee, "a", 6, usd(5));
    foreign.accumulated_amount = usd(6);
    assert_eq!(
        refused(&mut world, foreign).code(),
        "voucher_signature_invalid"
    );
    // Older or equal: the same voucher again, a lower amount, a lower nonce.
    for (nonce, amount) in [(5, usd(4)), (6, usd(3)), (4, usd(6)), (6, usd(4))] {
        assert_eq!(
            refused(
                &mut world,
                voucher(&agent_key, id, payee, "a", nonce, amount)
            ),
            Rejection::VoucherStale {
                sub_channel_id: "a".into(),
                nonce: 5,
                amount: usd(4)
            }
        );
    }
    // More than the deposit across sub-channels.
    assert_eq!(
        refused(&mut world, voucher(&agent_key, id, payee, "b", 1, usd(7))),
        Rejection::ChannelExhausted {
            deposit: usd(10),
            claimed: usd(11)
        }
    );
    // Another channel's voucher, another payee, another epoch.
    let other = ChannelId::derive(&world.thrifty.did, &payee, "ch-2");
    assert_eq!(
        refused(
            &mut world,
            voucher(&agent_key, other, payee, "a", 6, usd(5))
        )
        .code(),
        "invalid_field"
    );
    let stranger = world.stranger.did;
    assert_eq!(
        refused(
            &mut world,
            voucher(&agent_key, id, stranger, "a", 6, usd(5))
        )
        .code(),
        "invalid_field"
    );
    // Only the payee collects.
    let good = voucher(&agent_key, id, payee, "a", 6, usd(5));
    assert_eq!(
        world
            .apply(&world.thrifty.key.clone(), collect(id, vec![good.clone()]))
            .unwrap_err()
            .code(),
        "not_authorized"
    );
    // Unknown channels.
    assert_eq!(
        world.apply(&payee_key, collect(other, vec![good])),
        Err(Rejection::ChannelNotFound { channel_id: other })
    );
    // Nothing above moved any money.
    assert_eq!(world.available(&payee), usd(4).atomic());
    world.state.check_invariants().unwrap();
}

#[test]
fn the_payer_closes_through_a_dispute_window_in_which_the_payee_still_collects() {
    let mut world = World::new();
    let (agent, payee) = (world.thrifty.did, world.other_principal.did);
    let agent_key = world.thrifty.key.clone();
    let payee_key = world.other_principal.key.clone();
    let id = opened(&mut world);
    let events = world.ok(&agent_key, start_close(id));
    let closes_at = Timestamp(world.now.0 + 3_600);
    assert_eq!(
        events,
        vec![Event::ChannelClosing {
            channel_id: id,
            closes_at
        }]
    );
    // A closing channel takes no more money, and closes once.
    assert_eq!(
        world.apply(&agent_key, top_up(id, usd(1), "t-1")),
        Err(Rejection::ChannelClosing { channel_id: id })
    );
    assert_eq!(
        world.apply(&agent_key, start_close(id)),
        Err(Rejection::ChannelClosing { channel_id: id })
    );
    // The payee presents its best voucher within the window.
    world.now = Timestamp(closes_at.0 - 1);
    world.ok(
        &payee_key,
        collect(id, vec![voucher(&agent_key, id, payee, "a", 1, usd(6))]),
    );
    // The window ends: the rest returns.
    world.now = closes_at;
    let events = world.state.advance(world.now);
    assert!(matches!(
        events.as_slice(),
        [Event::ChannelClosed { paid, refunded, reason: CloseReason::DisputeWindowEnded, .. }]
            if *paid == usd(6) && *refunded == usd(4)
    ));
    assert_eq!(world.held(&agent), 0);
    assert_eq!(world.available(&payee), usd(6).atomic());
    assert_eq!(
        world
            .apply(
                &payee_key,
                collect(id, vec![voucher(&agent_key, id, payee, "a", 2, usd(7))])
            )
            .unwrap_err(),
        Rejection::ChannelClosed { channel_id: id }
    );
    world.state.check_invariants().unwrap();
}

#[test]
fn an_expired_channel_returns_its_rest_and_refuses_everything() {
    let mut world = World::new();
    let (agent, payee) = (world.thrifty.did, world.other_principal.did);
    let agent_key = world.thrifty.key.clone();
    let payee_key = world.other_principal.key.clone();
    let expires_at = Timestamp(world.now.0 + 600);
    world.ok(
        &agent_key,
        Command::OpenChannel(OpenChannel {
            expires_at: Some(expires_at),
            ..match open(agent, payee, usd(5), "short") {
                Command::OpenChannel(open) => open,
                _ => unreachable!(),
            }
        }),
    );
    let id = ChannelId::derive(&agent, &payee, "short");
    world.ok(
        &payee_key,
        collect(id, vec![voucher(&agent_key, id, payee, "a", 1, usd(2))]),
    );
    world.now = expires_at;
    let late = voucher(&agent_key, id, payee, "a", 2, usd(3));
    assert_eq!(
        world.apply(&payee_key, collect(id, vec![late])),
        Err(Rejection::ChannelExpired { channel_id: id })
    );
    assert_eq!(world.held(&agent), 0);
    assert_eq!(world.available(&agent), usd(98).atomic());
    assert_eq!(
        world.state.channel(&id).unwrap().status,
        ChannelStatus::Expired
    );
    world.state.check_invariants().unwrap();
}

#[test]
fn the_deposit_counts_against_the_mandate_once_at_open_and_top_up() {
    let mut world = World::new();
    // `agent`: per payment 10, deny list, approval above 8.
    let (agent, agent_key) = (world.agent.did, world.agent.key.clone());
    let payee = world.other_principal.did;
    for (deposit, payee, code) in [
        (usd(11), payee, "per_payment_limit_exceeded"),
        (usd(5), world.denied.did, "payee_denied"),
        (usd(9), payee, "not_authorized"),
    ] {
        assert_eq!(
            world
                .apply(&agent_key, open(agent, payee, deposit, "refused"))
                .unwrap_err()
                .code(),
            code
        );
    }
    world.ok(&agent_key, open(agent, payee, usd(8), "small"));

    // `thrifty`: total budget 15.
    let thrifty = world.thrifty.did;
    let thrifty_key = world.thrifty.key.clone();
    let id = opened(&mut world);
    // Opening again with the same key is the same channel.
    let again = world.ok(&thrifty_key, open(thrifty, payee, usd(10), "ch-1"));
    assert!(matches!(again.as_slice(), [Event::Duplicate { .. }]));
    assert_eq!(world.held(&thrifty), usd(10).atomic());
    // A different open under the same key conflicts.
    assert_eq!(
        world
            .apply(&thrifty_key, open(thrifty, payee, usd(9), "ch-1"))
            .unwrap_err()
            .code(),
        "idempotency_conflict"
    );
    // Top-ups count too: 10 + 5 reaches the total budget of 15.
    world.ok(&thrifty_key, top_up(id, usd(5), "t-1"));
    assert_eq!(
        world
            .apply(&thrifty_key, top_up(id, usd(1), "t-2"))
            .unwrap_err()
            .code(),
        "budget_exceeded"
    );
    // A repeated top-up is not applied twice.
    let repeated = world.ok(&thrifty_key, top_up(id, usd(5), "t-1"));
    assert!(matches!(repeated.as_slice(), [Event::Duplicate { .. }]));
    assert_eq!(world.state.channel(&id).unwrap().deposit, usd(15));
    // Vouchers are paid without touching the budget again.
    let payee_key = world.other_principal.key.clone();
    world.ok(
        &payee_key,
        collect(id, vec![voucher(&thrifty_key, id, payee, "a", 1, usd(12))]),
    );
    let status = world.state.grant_status(&thrifty, world.now).unwrap();
    assert_eq!(status.spent_total, usd(15));
    // The close gives the unspent 3 back to the budget.
    world.ok(&payee_key, close(id, Vec::new()));
    let status = world.state.grant_status(&thrifty, world.now).unwrap();
    assert_eq!(status.spent_total, usd(12));
    world.state.check_invariants().unwrap();
}

/// One step of a random channel history.
#[derive(Clone, Debug)]
enum Step {
    /// A voucher on sub-channel `sub` raising its amount by `raise`
    /// (0 replays an old one) with its nonce bumped by `bump` (0 keeps it).
    Pay {
        sub: u8,
        raise: u64,
        bump: u64,
    },
    /// The payee collects the best voucher it holds on `sub`, or an older
    /// one; with `up_to`, only that share of its total (in percent, over
    /// 100 asking for more than it says).
    Collect {
        sub: u8,
        older: bool,
        up_to: Option<u8>,
    },
    TopUp {
        amount: u64,
    },
    StartClose,
    CloseByPayee,
    Wait {
        seconds: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3, 0u64..3_000_000, 0u64..3).prop_map(|(sub, raise, bump)| Step::Pay { sub, raise, bump }),
        4 => (0u8..3, any::<bool>(), prop::option::of(0u8..110)).prop_map(|(sub, older, up_to)| Step::Collect { sub, older, up_to }),
        1 => (1u64..4_000_000).prop_map(|amount| Step::TopUp { amount }),
        1 => Just(Step::StartClose),
        1 => Just(Step::CloseByPayee),
        1 => (0u64..2_000).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the order of vouchers, collects, top-ups, closes and time:
    /// the payee never receives more than the deposit nor more than the
    /// best vouchers signed; an older voucher never beats a newer one;
    /// nothing moves once the channel ended; money is conserved.
    #[test]
    fn channel_invariants_hold_under_random_histories(steps in prop::collection::vec(step(), 1..40)) {
        let mut world = World::new();
        let (agent, payee) = (world.thrifty.did, world.other_principal.did);
        let agent_key = world.thrifty.key.clone();
        let payee_key = world.other_principal.key.clone();
        let id = opened(&mut world);
        let payee_start = world.available(&payee);
        let agent_start = world.available(&agent) + world.held(&agent);
        // What the payer signed, per sub-channel: (nonce, amount) in order.
        let mut signed: Vec<Vec<(u64, u64)>> = vec![Vec::new(); 3];
        let mut top_ups = 0;
        for step in steps {
            let before = world.state.channel(&id).unwrap();
            let ended = matches!(before.status, ChannelStatus::Closed | ChannelStatus::Expired);
            let result = match step {
                Step::Pay { sub, raise, bump } => {
                    let list = &mut signed[usize::from(sub)];
                    let (nonce, amount) = list.last().copied().unwrap_or((0, 0));
                    list.push((nonce + bump, amount + raise));
                    continue;
                }
                Step::Collect { sub, older, up_to } => {
                    let list = &signed[usize::from(sub)];
                    let pick = if older { list.first() } else { list.last() };
                    let Some(&(nonce, amount)) = pick else { continue };
                    let name = format!("s{sub}");
                    let voucher = voucher(&agent_key, id, payee, &name, nonce, Amount::from_atomic(u128::from(amount)));
                    match up_to {
                        None => world.apply(&payee_key, collect(id, vec![voucher])),
                        Some(percent) => {
                            let cap = Amount::from_atomic(u128::from(amount) * u128::from(percent) / 100);
                            let result = world.apply(&payee_key, collect_up_to(id, vec![voucher], &name, cap));
                            if result.is_ok() {
                                prop_assert_eq!(world.state.channel(&id).unwrap().sub_channels[&name].amount, cap);
                            }
                            result
                        }
                    }
                }
                Step::TopUp { amount } => {
                    top_ups += 1;
                    world.apply(&agent_key, top_up(id, Amount::from_atomic(u128::from(amount)), &format!("t{top_ups}")))
                }
                Step::StartClose => world.apply(&agent_key, start_close(id)),
                Step::CloseByPayee => world.apply(&payee_key, close(id, Vec::new())),
                Step::Wait { seconds } => {
                    world.now = Timestamp(world.now.0 + seconds);
                    world.state.advance(world.now);
                    Ok(Vec::new())
                }
            };
            let after = world.state.channel(&id).unwrap();
            prop_assert!(world.state.check_invariants().is_ok(), "{:?}", world.state.check_invariants());
            // The payee never holds more than the deposit from the channel.
            prop_assert!(after.collected <= after.deposit);
            prop_assert_eq!(Amount::from_atomic(world.available(&payee) - payee_start), after.collected);
            // Collected is exactly what each stream redeemed, and each is
            // at most a voucher the payer signed with that nonce.
            let sum: u128 = after.sub_channels.values().map(|r| r.amount.atomic()).sum();
            prop_assert_eq!(sum, after.collected.atomic());
            for (name, redeemed) in &after.sub_channels {
                let sub: usize = name[1..].parse().unwrap();
                prop_assert!(signed[sub].iter().any(|&(nonce, amount)| nonce == redeemed.nonce && u128::from(amount) >= redeemed.amount.atomic()));
                // Never below what was redeemed before.
                if let Some(old) = before.sub_channels.get(name) {
                    prop_assert!(redeemed.nonce >= old.nonce && redeemed.amount >= old.amount);
                }
            }
            if ended {
                prop_assert!(result.is_err() || result.as_ref().is_ok_and(|events| events.is_empty()));
                prop_assert_eq!(after.collected, before.collected);
            }
            // Money only moves between the payer and the payee.
            prop_assert_eq!(
                world.available(&agent) + world.held(&agent) + (world.available(&payee) - payee_start),
                agent_start
            );
        }
    }
}
