//! Checks that the record is whole: every account whose money an accepted
//! command moved is named by the command's events, so that it is among the
//! entry's parties and the entry is in that account's history.

use agentrail_core::{Balance, Did, Event, State};

/// Every account's balance before a step.
#[derive(Debug)]
pub struct Balances(Vec<(Did, Balance)>);

impl Balances {
    pub fn capture(state: &State) -> Balances {
        Balances(
            state
                .balances()
                .map(|(did, balance)| (*did, balance))
                .collect(),
        )
    }

    /// After an accepted step with `events`: every account whose available
    /// or held money changed is among the events' parties.
    pub fn check_parties(&self, state: &State, events: &[Event]) -> Result<(), String> {
        let mut parties = Vec::new();
        for event in events {
            event.parties(&mut parties);
        }
        let mut before = self.0.iter().peekable();
        for (did, after) in state.balances() {
            let was = match before.peek() {
                Some((known, balance)) if known == did => {
                    let balance = *balance;
                    before.next();
                    balance
                }
                _ => Balance::default(),
            };
            if was != after && !parties.contains(did) {
                return Err(format!(
                    "the balance of {did} changed ({was:?} -> {after:?}) but no event names it: {events:?}"
                ));
            }
        }
        Ok(())
    }
}
