//! Checks that the record is whole: every account whose money an accepted
//! command moved is named by the command's events, so that it is among the
//! entry's parties and the entry is in that account's history. And that the
//! roles which moved it held them: see [`check_roles`].

use agentrail_core::market::Approver;
use agentrail_core::{Balance, Did, Event, State};

/// After an accepted step signed by `signer`: an arbiter that ruled or a
/// validator that approved sits outside both parties' owner trees and held
/// a live grant (every grant up to its principal); a delegate that paid
/// someone paid a payee its mandate allows.
pub fn check_roles(state: &State, signer: Did, events: &[Event]) -> Result<(), String> {
    let now = state.clock();
    let live = |did: Did| -> Result<(), String> {
        let mut subject = did;
        while let Some(status) = state.grant_status(&subject, now) {
            if !status.active {
                return Err(format!(
                    "{did} acted in a role while the grant of {subject} was not live"
                ));
            }
            subject = status.grant.grant().issuer;
        }
        Ok(())
    };
    let outside = |role: Did, buyer: Did, provider: Did| -> Result<(), String> {
        let root = state.owner_root(&role);
        if root.is_none() || root == state.owner_root(&buyer) || root == state.owner_root(&provider)
        {
            return Err(format!("{role} judged a task of its own side"));
        }
        Ok(())
    };
    for event in events {
        match event {
            Event::DisputeResolved {
                arbiter,
                buyer,
                provider,
                ..
            } => {
                outside(*arbiter, *buyer, *provider)?;
                live(*arbiter)?;
            }
            Event::TaskApproved {
                task_id,
                by: Approver::Validator,
                buyer,
                ..
            } => {
                let provider = state
                    .task(task_id)
                    .map(|task| task.terms.provider)
                    .ok_or_else(|| format!("task {task_id} approved but unknown"))?;
                outside(signer, *buyer, provider)?;
                live(signer)?;
            }
            Event::Transferred {
                from, to, signer, ..
            } => {
                if let Some(status) = state.grant_status(signer, now)
                    && status.grant.grant().limits.check_payee(to).is_err()
                {
                    return Err(format!(
                        "{signer} paid {to} from {from} against its payee lists"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

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
