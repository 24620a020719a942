//! A ledger bound to a chain: the vault's deposits are credited once each,
//! in id order, kept for keys that have not registered yet; withdrawals
//! leave as payouts to EVM addresses that the operator records as paid;
//! the books always say what the vault must hold.

use agentrail_core::chain::{ChainBinding, ChainDeposit, EvmAddress, Hash32, deposit_key};
use agentrail_core::command::{ClaimDeposits, Deposit, SettleWithdrawal, Withdraw};
use agentrail_core::constants::DAY_S;
use agentrail_core::grant::Role;
use agentrail_core::{Amount, Command, Did, Event, Genesis, Rejection, State, Timestamp};
use agentrail_sim::kit::{self, T0, usd};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const CHAIN_ID: u64 = 31337;

struct Chain {
    state: State,
    operator: SigningKey,
    now: Timestamp,
}

fn binding() -> ChainBinding {
    ChainBinding {
        chain_id: CHAIN_ID,
        vault: EvmAddress([0x5f; 20]),
        operator: EvmAddress([0x0b; 20]),
    }
}

impl Chain {
    fn new() -> Chain {
        let operator = kit::key("operator");
        Chain {
            state: State::new(Genesis {
                operator: kit::did(&operator),
                network: kit::network(),
                chain: Some(binding()),
            }),
            operator,
            now: T0,
        }
    }

    /// A chain ledger with one registered principal.
    fn with_principal() -> (Chain, SigningKey, Did) {
        let mut chain = Chain::new();
        let principal = kit::key("principal");
        let did = kit::did(&principal);
        chain
            .apply(&principal, kit::register_principal(did))
            .unwrap();
        (chain, principal, did)
    }

    fn apply(&mut self, key: &SigningKey, command: Command) -> Result<Vec<Event>, Rejection> {
        self.now = Timestamp(self.now.0 + 1);
        let outcome = self.state.apply(&kit::signed(key, command), self.now);
        self.state.check_invariants().expect("invariants hold");
        outcome
    }

    fn credit(&mut self, id: u64, to: Did, amount: Amount) -> Result<Vec<Event>, Rejection> {
        let operator = self.operator.clone();
        self.apply(&operator, chain_deposit(id, to, amount))
    }
}

fn log(id: u64) -> ChainDeposit {
    ChainDeposit {
        id,
        from: EvmAddress([0xaa; 20]),
        tx: Hash32([id as u8; 32]),
        log_index: id % 3,
        block: 100 + id,
        block_hash: Hash32([0xbb; 32]),
    }
}

fn chain_deposit(id: u64, to: Did, amount: Amount) -> Command {
    let chain = log(id);
    Command::Deposit(Deposit {
        to,
        amount,
        idempotency_key: deposit_key(CHAIN_ID, &chain),
        chain: Some(chain),
    })
}

fn withdraw_to(from: Did, amount: Amount, key: &str, to: Option<EvmAddress>) -> Command {
    Command::Withdraw(Withdraw {
        from,
        amount,
        idempotency_key: key.into(),
        to,
    })
}

fn settle(id: u64) -> Command {
    Command::SettleWithdrawal(SettleWithdrawal {
        id,
        tx: Hash32([0xcc; 32]),
        block: 900,
    })
}

fn claim(key: &str) -> Command {
    Command::ClaimDeposits(ClaimDeposits {
        idempotency_key: key.into(),
    })
}

fn code(outcome: Result<Vec<Event>, Rejection>) -> &'static str {
    outcome.expect_err("refused").code()
}

#[test]
fn deposits_are_credited_once_each_in_the_vaults_order() {
    let (mut chain, _, did) = Chain::with_principal();

    assert_eq!(
        chain.credit(1, did, usd(5)).unwrap(),
        vec![Event::Deposited {
            to: did,
            amount: usd(5)
        }]
    );
    // The same log again: the same outcome, nothing credited twice.
    assert_eq!(chain.credit(1, did, usd(5)).unwrap().len(), 1);
    assert_eq!(chain.state.balance(&did).unwrap().available, usd(5));
    // A skipped id or an old one is refused, and says which comes next.
    for id in [3, 0] {
        let refused = chain.credit(id, did, usd(1)).unwrap_err();
        assert_eq!(
            refused,
            Rejection::DepositOutOfOrder {
                expected: 2,
                got: id
            }
        );
        assert_eq!(refused.code(), "deposit_out_of_order");
    }
    chain.credit(2, did, usd(1)).unwrap();
    assert_eq!(chain.state.chain_deposits().0, 2);
    assert_eq!(chain.state.chain_deposits().1, Some(log(2)));
    assert_eq!(chain.state.totals().deposited, usd(6));
    assert_eq!(chain.state.liabilities(), usd(6));
}

#[test]
fn money_enters_a_chain_ledger_only_from_its_vault() {
    let (mut chain, principal, did) = Chain::with_principal();
    let operator = chain.operator.clone();
    assert_eq!(
        code(chain.apply(&operator, kit::deposit(did, usd(5), "faucet"))),
        "chain_deposit_required"
    );
    // The key is the log's identity on chain: nothing else.
    let mut other_key = chain_deposit(1, did, usd(5));
    if let Command::Deposit(deposit) = &mut other_key {
        deposit.idempotency_key = "my-own-key".into();
    }
    assert_eq!(code(chain.apply(&operator, other_key)), "invalid_field");
    // Only the operator credits.
    assert_eq!(
        code(chain.apply(&principal, chain_deposit(1, did, usd(5)))),
        "not_operator"
    );
    assert_eq!(chain.state.totals().deposited, Amount::ZERO);
}

#[test]
fn a_deposit_to_a_key_waits_until_that_key_registers_itself() {
    let mut chain = Chain::new();
    let principal = kit::key("principal");
    let victim = kit::key("victim");
    let (principal_did, victim_did) = (kit::did(&principal), kit::did(&victim));
    assert_eq!(
        chain.credit(1, principal_did, usd(7)).unwrap(),
        vec![Event::DepositUnclaimed {
            to: principal_did,
            amount: usd(7)
        }]
    );
    chain.credit(2, victim_did, usd(2)).unwrap();
    assert_eq!(chain.state.totals().unclaimed, usd(9));
    assert_eq!(chain.state.liabilities(), usd(9));

    let events = chain
        .apply(&principal, kit::register_principal(principal_did))
        .unwrap();
    assert_eq!(
        events.last(),
        Some(&Event::DepositClaimed {
            to: principal_did,
            amount: usd(7)
        })
    );
    // A principal registers someone else's key as its agent (the grant is
    // the principal's signature alone): what was deposited to that key is
    // not the principal's to collect, before or after the registration.
    let grant = kit::grant(
        &principal,
        victim_did,
        Role::Agent,
        kit::limits(usd(10), usd(10)),
        T0,
        Timestamp(T0.0 + 30 * DAY_S),
        "a",
    );
    let events = chain.apply(&principal, kit::register_agent(grant)).unwrap();
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Event::DepositClaimed { .. })),
        "{events:?}"
    );
    assert_eq!(
        chain.credit(3, victim_did, usd(4)).unwrap(),
        vec![Event::DepositUnclaimed {
            to: victim_did,
            amount: usd(4)
        }]
    );
    assert_eq!(
        chain.state.balance(&victim_did).unwrap().available,
        Amount::ZERO
    );
    assert_eq!(
        chain.state.balance(&principal_did).unwrap().available,
        usd(7)
    );
    assert_eq!(chain.state.totals().unclaimed, usd(6));
    assert_eq!(chain.state.liabilities(), usd(13));

    // Nobody but the key's holder claims it: not the principal that
    // registered it, not the operator.
    assert_eq!(
        code(chain.apply(&principal, claim("c1"))),
        "no_unclaimed_deposits"
    );
    let operator = chain.operator.clone();
    assert_eq!(code(chain.apply(&operator, claim("c1"))), "unknown_account");
    assert_eq!(chain.state.totals().unclaimed, usd(6));
    // The key's own signature takes it into its account, once; a retry
    // with the same key answers the same, a new claim finds nothing.
    let claimed = vec![Event::DepositClaimed {
        to: victim_did,
        amount: usd(6),
    }];
    assert_eq!(chain.apply(&victim, claim("c1")).unwrap(), claimed);
    assert_eq!(
        chain.apply(&victim, claim("c1")).unwrap(),
        vec![Event::Duplicate { original: claimed }]
    );
    assert_eq!(
        code(chain.apply(&victim, claim("c2"))),
        "no_unclaimed_deposits"
    );
    assert_eq!(chain.state.balance(&victim_did).unwrap().available, usd(6));
    assert_eq!(chain.state.totals().unclaimed, Amount::ZERO);
    assert_eq!(chain.state.liabilities(), usd(13));
}

#[test]
fn a_withdrawal_is_pending_until_the_operator_records_the_payout() {
    let (mut chain, principal, did) = Chain::with_principal();
    chain.credit(1, did, usd(10)).unwrap();
    let payee = EvmAddress([0x77; 20]);

    assert_eq!(
        code(chain.apply(&principal, withdraw_to(did, usd(1), "w0", None))),
        "invalid_field"
    );
    assert_eq!(
        code(chain.apply(
            &principal,
            withdraw_to(did, usd(1), "w0", Some(EvmAddress([0; 20])))
        )),
        "invalid_field"
    );
    let events = chain
        .apply(&principal, withdraw_to(did, usd(4), "w1", Some(payee)))
        .unwrap();
    let requested = Event::WithdrawalRequested {
        id: 1,
        from: did,
        to: payee,
        amount: usd(4),
    };
    assert_eq!(events.last(), Some(&requested));
    // A retry is the same withdrawal, not a second one.
    let again = chain
        .apply(&principal, withdraw_to(did, usd(4), "w1", Some(payee)))
        .unwrap();
    assert_eq!(again, vec![Event::Duplicate { original: events }]);
    assert_eq!(chain.state.pending_withdrawals().count(), 1);
    assert_eq!(chain.state.balance(&did).unwrap().available, usd(6));
    // The tokens are still in the vault until it pays.
    assert_eq!(chain.state.liabilities(), usd(10));

    assert_eq!(code(chain.apply(&principal, settle(1))), "not_operator");
    let operator = chain.operator.clone();
    assert_eq!(
        code(chain.apply(&operator, settle(2))),
        "withdrawal_not_found"
    );
    let paid = chain.apply(&operator, settle(1)).unwrap();
    assert!(matches!(paid[..], [Event::WithdrawalPaid { id: 1, .. }]));
    assert_eq!(
        code(chain.apply(&operator, settle(1))),
        "withdrawal_not_found"
    );
    assert_eq!(chain.state.liabilities(), usd(6));
    assert_eq!(chain.state.totals().withdrawn, usd(4));
}

#[test]
fn a_ledger_without_a_chain_refuses_chain_money() {
    let operator = kit::key("operator");
    let mut state = State::new(Genesis {
        operator: kit::did(&operator),
        network: kit::network(),
        chain: None,
    });
    let principal = kit::key("principal");
    let did = kit::did(&principal);
    state
        .apply(&kit::signed(&principal, kit::register_principal(did)), T0)
        .unwrap();
    let deposit = state.apply(&kit::signed(&operator, chain_deposit(1, did, usd(1))), T0);
    assert_eq!(code(deposit), "invalid_field");
    state
        .apply(&kit::signed(&operator, kit::deposit(did, usd(3), "k")), T0)
        .unwrap();
    let withdraw = state.apply(
        &kit::signed(
            &principal,
            withdraw_to(did, usd(1), "w", Some(EvmAddress([1; 20]))),
        ),
        T0,
    );
    assert_eq!(code(withdraw), "invalid_field");
    assert_eq!(
        code(state.apply(&kit::signed(&operator, settle(1)), T0)),
        "withdrawal_not_found"
    );
}

#[derive(Clone, Debug)]
enum Step {
    /// A vault log with this id offset from the next (0 = the next one).
    Deposit {
        ahead: i8,
        to: usize,
        cents: u32,
    },
    Register {
        who: usize,
    },
    Claim {
        who: usize,
    },
    Withdraw {
        who: usize,
        cents: u32,
    },
    Settle {
        id: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (-2i8..=1, 0usize..3, 1u32..5_000).prop_map(|(ahead, to, cents)| Step::Deposit { ahead, to, cents }),
        1 => (0usize..3).prop_map(|who| Step::Register { who }),
        1 => (0usize..3).prop_map(|who| Step::Claim { who }),
        2 => (0usize..3, 1u32..5_000).prop_map(|(who, cents)| Step::Withdraw { who, cents }),
        2 => (0u64..6).prop_map(|id| Step::Settle { id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the order of logs, registrations, withdrawals and payouts:
    /// each vault id is credited at most once, never out of order, and the
    /// books match what the vault would hold (deposits − payouts).
    #[test]
    fn the_vault_always_covers_the_books(steps in proptest::collection::vec(step(), 1..60)) {
        let mut chain = Chain::new();
        let keys: Vec<SigningKey> = (0..3).map(|i| kit::key(&format!("p{i}"))).collect();
        let dids: Vec<Did> = keys.iter().map(kit::did).collect();
        let mut vault = 0u128;
        let mut credited = 0u64;
        for (n, step) in steps.into_iter().enumerate() {
            match step {
                Step::Deposit { ahead, to, cents } => {
                    let id = (credited as i64 + 1 + ahead as i64).max(0) as u64;
                    let amount = Amount::from_atomic(u128::from(cents) * 10_000);
                    let outcome = chain.credit(id, dids[to], amount);
                    if id == credited + 1 {
                        prop_assert!(outcome.is_ok());
                        credited += 1;
                        vault += amount.atomic();
                    } else if outcome.is_ok() {
                        // Only a repeat of an id already credited with the
                        // very same log may answer again, and credits nothing.
                        prop_assert!(id >= 1 && id <= credited);
                    }
                }
                Step::Register { who } => {
                    let _ = chain.apply(&keys[who].clone(), kit::register_principal(dids[who]));
                }
                Step::Claim { who } => {
                    // Claims move money within the books, never out of them.
                    let _ = chain.apply(&keys[who].clone(), claim(&format!("c{n}")));
                }
                Step::Withdraw { who, cents } => {
                    let amount = Amount::from_atomic(u128::from(cents) * 10_000);
                    let _ = chain.apply(
                        &keys[who].clone(),
                        withdraw_to(dids[who], amount, &format!("w{n}"), Some(EvmAddress([9; 20]))),
                    );
                }
                Step::Settle { id } => {
                    let pending = chain.state.pending_withdrawals().find(|w| w.id == id).map(|w| w.amount);
                    let operator = chain.operator.clone();
                    if chain.apply(&operator, settle(id)).is_ok() {
                        vault -= pending.expect("only a pending withdrawal settles").atomic();
                    }
                }
            }
            prop_assert_eq!(chain.state.chain_deposits().0, credited);
            prop_assert_eq!(chain.state.liabilities().atomic(), vault);
        }
    }
}
