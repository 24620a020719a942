//! Any parsed command, from any of a small world's identities, applied to
//! a ledger with accounts, a mandate, a channel, a listing and a task:
//! never a panic, and every invariant holds after it.

use std::sync::OnceLock;

use agentrail_core::command::Command;
use agentrail_core::grant::Role;
use agentrail_core::{Authenticated, Did, Genesis, State, Timestamp};
use agentrail_sim::kit::{self, T0, usd};

const NAMES: [&str; 6] = [
    "operator",
    "principal",
    "agent",
    "seller",
    "arbiter",
    "stranger",
];

fn world() -> &'static (State, Vec<Did>) {
    static WORLD: OnceLock<(State, Vec<Did>)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let keys: Vec<_> = NAMES.iter().map(|name| kit::key(name)).collect();
        let dids: Vec<Did> = keys.iter().map(kit::did).collect();
        let mut state = State::new(Genesis {
            operator: dids[0],
            network: kit::network(),
            chain: None,
        });
        let mut ok = |who: usize, command: Command| {
            state
                .apply(&kit::signed(&keys[who], command), T0)
                .expect("the world builds");
        };
        for who in [1, 3, 4] {
            ok(who, kit::register_principal(dids[who]));
        }
        let grant = kit::grant(
            &keys[1],
            dids[2],
            Role::Agent,
            kit::limits(usd(10), usd(50)),
            T0,
            Timestamp(T0.0 + 86_400),
            "g",
        );
        ok(1, kit::register_agent(grant));
        ok(0, kit::deposit(dids[2], usd(100), "d1"));
        ok(0, kit::deposit(dids[3], usd(100), "d2"));
        ok(
            2,
            kit::open_channel_until(dids[2], dids[3], usd(5), "c", Timestamp(T0.0 + 43_200)),
        );
        ok(
            3,
            kit::publish(agentrail_core::market::PublishListing {
                stake: Some(usd(5)),
                ..kit::listing("l", dids[3], &["compute"], usd(3))
            }),
        );
        let request = agentrail_core::market::RequestQuotes {
            arbiter: Some(dids[4]),
            ..kit::rfq("r", dids[2], "compute", usd(5), 3_600)
        };
        ok(2, kit::request_quotes(request));
        ok(3, kit::quote("q", "r", dids[3], Some("l"), usd(4)));
        ok(2, kit::accept("q", "t"));
        (state, dids)
    })
}

pub fn run(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let Ok(command) = serde_json::from_slice::<Command>(body) else {
        return;
    };
    let (state, dids) = world();
    let mut state = state.clone();
    let signer = dids[usize::from(first) % dids.len()];
    let now = Timestamp(T0.0 + u64::from(first) * 997);
    let _ = state.apply(&Authenticated::assume_verified(signer, command), now);
    state.check_invariants().expect("every invariant holds");
}
