//! Grants (mandates): signed, bounded authority from a principal to an agent
//! and from an agent to a short-lived session key.
//!
//! ```text
//! principal ──grant(role=agent)──▶ agent ──grant(role=session)──▶ session
//! ```
//!
//! A child grant may only narrow its parent, on every limit and on its
//! validity window (attenuation). A grant is signed by its issuer over
//! `"agentrail grant v1\n" ‖ JCS(grant)`; its id is the SHA-256 of those bytes.

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::amount::Amount;
use crate::canonical::CanonicalError;
use crate::constants::{
    AGENT_GRANT_DURATION_MAX_S, CATEGORIES_PER_LIST_MAX, CATEGORY_BYTES_MAX, DAY_S,
    NONCE_BYTES_MAX, PAYEES_PER_LIST_MAX, SESSION_GRANT_DURATION_MAX_S,
};
use crate::did::Did;
use crate::signing::{
    DocumentError, DocumentId, GRANT_DOMAIN, SignatureBytes, decode_document, signing_bytes,
};
use crate::time::Timestamp;

/// The only grant format version this code reads and writes.
pub const GRANT_VERSION: u32 = 1;

/// A grant's id: SHA-256 of its signing bytes.
pub type GrantId = DocumentId;

/// What a grant makes its subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Granted by a principal; spends from its own account.
    Agent,
    /// Granted by an agent; spends from its agent's account.
    Session,
}

/// The spending limits of a grant. Absent options mean "no limit of this
/// kind at this level"; the limits of every grant above still apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_per_payment: Amount,
    pub daily_budget: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_budget: Option<Amount>,
    /// When present, only these payees may be paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_payees: Option<Vec<Did>>,
    /// These payees may never be paid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_payees: Vec<Did>,
    /// When present, every payment must name one of these categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_categories: Option<Vec<String>>,
    /// Payments strictly above this amount wait for the principal's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_threshold: Option<Amount>,
    /// A payment that takes the UTC day's spending through the grant
    /// strictly above this amount waits for the principal's approval, so a
    /// series of payments each below `approval_threshold` cannot add up past
    /// the principal unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_approval_threshold: Option<Amount>,
}

/// One limit of a grant, named in rejections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Limit {
    MaxPerPayment,
    DailyBudget,
    TotalBudget,
    AllowedPayees,
    DeniedPayees,
    AllowedCategories,
    ApprovalThreshold,
    DailyApprovalThreshold,
    NotBefore,
    ExpiresAt,
}

impl Limit {
    /// The limit's field name in the grant document.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxPerPayment => "max_per_payment",
            Limit::DailyBudget => "daily_budget",
            Limit::TotalBudget => "total_budget",
            Limit::AllowedPayees => "allowed_payees",
            Limit::DeniedPayees => "denied_payees",
            Limit::AllowedCategories => "allowed_categories",
            Limit::ApprovalThreshold => "approval_threshold",
            Limit::DailyApprovalThreshold => "daily_approval_threshold",
            Limit::NotBefore => "not_before",
            Limit::ExpiresAt => "expires_at",
        }
    }
}

/// The unsigned body of a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub version: u32,
    pub issuer: Did,
    pub subject: Did,
    pub role: Role,
    pub limits: Limits,
    pub not_before: Timestamp,
    pub expires_at: Timestamp,
    /// Issuer-chosen, so that two grants with equal terms have distinct ids.
    pub nonce: String,
}

/// Why a grant document is malformed (independent of any ledger state).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid grant: {field} {reason}")]
pub struct InvalidGrant {
    pub field: &'static str,
    pub reason: &'static str,
}

fn invalid(field: &'static str, reason: &'static str) -> InvalidGrant {
    InvalidGrant { field, reason }
}

/// Why a grant cannot be used at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inactive {
    NotYetValid,
    Expired,
}

/// What has already been spent through a grant, for budget arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub today: Amount,
    pub total: Amount,
}

/// The most money that can still leave through a grant before it expires,
/// even if its key is stolen, and which limit decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Exposure {
    pub amount: Amount,
    pub bound: ExposureBound,
}

/// The limit that binds a grant's [`Exposure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ExposureBound {
    /// The grant is expired or revoked: nothing can leave through it.
    Inactive,
    /// The remaining total budget.
    TotalBudget,
    /// The daily budget over the UTC days left in the window (today counts
    /// with what is left of it).
    DailyBudget { days: u64 },
    /// A grant above this one binds first.
    Parent,
}

pub(crate) fn is_category(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= CATEGORY_BYTES_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

fn is_nonce(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= NONCE_BYTES_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_unique<T: Ord>(items: &[T]) -> bool {
    let mut seen = BTreeSet::new();
    items.iter().all(|item| seen.insert(item))
}

impl Limits {
    /// Checks the shape of the limits: list sizes, uniqueness, category names.
    pub fn validate(&self) -> Result<(), InvalidGrant> {
        if let Some(allowed) = &self.allowed_payees {
            if allowed.len() > PAYEES_PER_LIST_MAX {
                return Err(invalid(
                    "allowed_payees",
                    "has too many entries (at most 64)",
                ));
            }
            if !check_unique(allowed) {
                return Err(invalid("allowed_payees", "lists a payee twice"));
            }
        }
        if self.denied_payees.len() > PAYEES_PER_LIST_MAX {
            return Err(invalid(
                "denied_payees",
                "has too many entries (at most 64)",
            ));
        }
        if !check_unique(&self.denied_payees) {
            return Err(invalid("denied_payees", "lists a payee twice"));
        }
        if let Some(categories) = &self.allowed_categories {
            if categories.len() > CATEGORIES_PER_LIST_MAX {
                return Err(invalid(
                    "allowed_categories",
                    "has too many entries (at most 32)",
                ));
            }
            if !categories.iter().all(|c| is_category(c)) {
                return Err(invalid(
                    "allowed_categories",
                    "holds a name that is not 1-32 characters of a-z, 0-9, '_', '.', '-'",
                ));
            }
            if !check_unique(categories) {
                return Err(invalid("allowed_categories", "lists a category twice"));
            }
        }
        Ok(())
    }

    /// `Ok` when every limit of `self` is at least as strict as `parent`'s;
    /// otherwise the first limit (in document order) that widens.
    pub fn check_narrows(&self, parent: &Limits) -> Result<(), Limit> {
        if self.max_per_payment > parent.max_per_payment {
            return Err(Limit::MaxPerPayment);
        }
        if self.daily_budget > parent.daily_budget {
            return Err(Limit::DailyBudget);
        }
        if !narrows_cap(self.total_budget, parent.total_budget) {
            return Err(Limit::TotalBudget);
        }
        if !narrows_set(
            self.allowed_payees.as_deref(),
            parent.allowed_payees.as_deref(),
        ) {
            return Err(Limit::AllowedPayees);
        }
        if !parent
            .denied_payees
            .iter()
            .all(|payee| self.denied_payees.contains(payee))
        {
            return Err(Limit::DeniedPayees);
        }
        if !narrows_set(
            self.allowed_categories.as_deref(),
            parent.allowed_categories.as_deref(),
        ) {
            return Err(Limit::AllowedCategories);
        }
        if !narrows_cap(self.approval_threshold, parent.approval_threshold) {
            return Err(Limit::ApprovalThreshold);
        }
        if !narrows_cap(
            self.daily_approval_threshold,
            parent.daily_approval_threshold,
        ) {
            return Err(Limit::DailyApprovalThreshold);
        }
        Ok(())
    }

    /// The payee lists' verdict on `payee`.
    pub fn check_payee(&self, payee: &Did) -> Result<(), Limit> {
        if self.denied_payees.contains(payee) {
            return Err(Limit::DeniedPayees);
        }
        match &self.allowed_payees {
            Some(allowed) if !allowed.contains(payee) => Err(Limit::AllowedPayees),
            _ => Ok(()),
        }
    }

    /// The category list's verdict on a payment's category.
    pub fn check_category(&self, category: Option<&str>) -> Result<(), Limit> {
        match (&self.allowed_categories, category) {
            (None, _) => Ok(()),
            (Some(allowed), Some(category)) if allowed.iter().any(|c| c == category) => Ok(()),
            (Some(_), _) => Err(Limit::AllowedCategories),
        }
    }
}

/// A cap narrows when the parent has none, or the child's is no larger.
fn narrows_cap(child: Option<Amount>, parent: Option<Amount>) -> bool {
    match (child, parent) {
        (_, None) => true,
        (Some(child), Some(parent)) => child <= parent,
        (None, Some(_)) => false,
    }
}

/// An allow-list narrows when the parent has none, or the child's is a subset.
fn narrows_set<T: PartialEq>(child: Option<&[T]>, parent: Option<&[T]>) -> bool {
    match (child, parent) {
        (_, None) => true,
        (Some(child), Some(parent)) => child.iter().all(|item| parent.contains(item)),
        (None, Some(_)) => false,
    }
}

impl Grant {
    /// Checks the document on its own: version, parties, window, nonce, limits.
    pub fn validate(&self) -> Result<(), InvalidGrant> {
        if self.version != GRANT_VERSION {
            return Err(invalid("version", "is not 1"));
        }
        if self.issuer == self.subject {
            return Err(invalid(
                "subject",
                "is the issuer; a key cannot grant to itself",
            ));
        }
        if !self.not_before.is_valid() || !self.expires_at.is_valid() {
            return Err(invalid("expires_at", "is after the year 9999"));
        }
        if self.expires_at <= self.not_before {
            return Err(invalid("expires_at", "is not after not_before"));
        }
        let duration_max_s = match self.role {
            Role::Agent => AGENT_GRANT_DURATION_MAX_S,
            Role::Session => SESSION_GRANT_DURATION_MAX_S,
        };
        if self.expires_at.0 - self.not_before.0 > duration_max_s {
            return Err(invalid(
                "expires_at",
                "is too far after not_before (agents: 366 days, sessions: 31 days)",
            ));
        }
        if !is_nonce(&self.nonce) {
            return Err(invalid(
                "nonce",
                "is not 1-64 characters of A-Z, a-z, 0-9, '_', '-'",
            ));
        }
        self.limits.validate()
    }

    /// `Ok` when this grant narrows `parent` on every limit and its window.
    pub fn check_narrows(&self, parent: &Grant) -> Result<(), Limit> {
        self.limits.check_narrows(&parent.limits)?;
        if self.not_before < parent.not_before {
            return Err(Limit::NotBefore);
        }
        if self.expires_at > parent.expires_at {
            return Err(Limit::ExpiresAt);
        }
        Ok(())
    }

    /// Whether the grant's window contains `now` (`not_before ≤ now < expires_at`).
    pub fn check_active(&self, now: Timestamp) -> Result<(), Inactive> {
        if now < self.not_before {
            Err(Inactive::NotYetValid)
        } else if now >= self.expires_at {
            Err(Inactive::Expired)
        } else {
            Ok(())
        }
    }

    /// The most that can still leave through this grant alone, given what it
    /// has spent. The per-payment cap never binds a sum on its own (the number
    /// of payments is not limited), so the binding limit is the remaining
    /// total budget or the daily budget over the UTC days left, whichever is
    /// smaller.
    pub fn exposure(&self, now: Timestamp, spent: Spent) -> Exposure {
        if now >= self.expires_at {
            return Exposure {
                amount: Amount::ZERO,
                bound: ExposureBound::Inactive,
            };
        }
        let start = now.max(self.not_before);
        let first_day = start.utc_day();
        let last_day = (self.expires_at.0 - 1) / DAY_S;
        let days = last_day - first_day + 1;
        let first_day_left = if first_day == now.utc_day() {
            self.limits.daily_budget.saturating_sub(spent.today)
        } else {
            self.limits.daily_budget
        };
        let daily_sum = self
            .limits
            .daily_budget
            .checked_mul(u128::from(days - 1))
            .and_then(|rest| rest.checked_add(first_day_left))
            .unwrap_or(Amount::MAX);
        match self.limits.total_budget {
            Some(total) if total.saturating_sub(spent.total) <= daily_sum => Exposure {
                amount: total.saturating_sub(spent.total),
                bound: ExposureBound::TotalBudget,
            },
            _ => Exposure {
                amount: daily_sum,
                bound: ExposureBound::DailyBudget { days },
            },
        }
    }

    /// Signs the grant with the issuer's key. The key must be the issuer's.
    pub fn sign(self, issuer_key: &SigningKey) -> Result<SignedGrant, CanonicalError> {
        assert_eq!(
            Did::from_verifying_key(&issuer_key.verifying_key()),
            self.issuer,
            "a grant is signed by its issuer"
        );
        let document =
            serde_json::to_value(&self).map_err(|e| CanonicalError::NotJson(e.to_string()))?;
        let bytes = signing_bytes(GRANT_DOMAIN, &document)?;
        let signature = SignatureBytes::sign(issuer_key, &bytes);
        Ok(SignedGrant {
            id: GrantId::of(&bytes),
            grant: self,
            document,
            signing_bytes: bytes,
            signature,
        })
    }
}

/// A grant with its issuer's signature, exactly as it was signed.
///
/// The signature covers the JCS bytes of the document *as received*, so a
/// client may write optional fields as absent or as `null` and still verify;
/// unknown fields are rejected, so nothing signed goes unenforced.
#[derive(Clone)]
pub struct SignedGrant {
    grant: Grant,
    document: Value,
    signing_bytes: Vec<u8>,
    signature: SignatureBytes,
    id: GrantId,
}

impl std::fmt::Debug for SignedGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedGrant")
            .field("id", &self.id)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SignedGrant {
    fn eq(&self, other: &SignedGrant) -> bool {
        self.id == other.id && self.signature == other.signature
    }
}
impl Eq for SignedGrant {}

impl SignedGrant {
    /// Reads a grant document and its signature; does not check the signature.
    pub fn from_document(
        document: Value,
        signature: SignatureBytes,
    ) -> Result<SignedGrant, DocumentError> {
        let (grant, bytes) = decode_document::<Grant>(GRANT_DOMAIN, &document)?;
        Ok(SignedGrant {
            id: GrantId::of(&bytes),
            grant,
            document,
            signing_bytes: bytes,
            signature,
        })
    }

    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    pub fn id(&self) -> GrantId {
        self.id
    }

    pub fn signature(&self) -> &SignatureBytes {
        &self.signature
    }

    /// The exact bytes the issuer signed.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signing_bytes
    }

    /// Whether the issuer named in the grant signed exactly these bytes.
    pub fn verify_signature(&self) -> bool {
        self.grant
            .issuer
            .verify(&self.signing_bytes, &self.signature.0)
    }
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SignedGrantWire {
    grant: Value,
    signature: SignatureBytes,
}

impl Serialize for SignedGrant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignedGrantWire {
            grant: self.document.clone(),
            signature: self.signature,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedGrant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SignedGrant, D::Error> {
        let wire = SignedGrantWire::deserialize(deserializer)?;
        SignedGrant::from_document(wire.grant, wire.signature).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did(seed: u8) -> (SigningKey, Did) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let did = Did::from_verifying_key(&key.verifying_key());
        (key, did)
    }

    fn usd(whole: u128) -> Amount {
        Amount::from_atomic(whole * 1_000_000)
    }

    fn limits() -> Limits {
        Limits {
            max_per_payment: usd(10),
            daily_budget: usd(50),
            total_budget: Some(usd(500)),
            allowed_payees: None,
            denied_payees: vec![],
            allowed_categories: None,
            approval_threshold: None,
            daily_approval_threshold: None,
        }
    }

    fn grant(issuer: Did, subject: Did, limits: Limits) -> Grant {
        Grant {
            version: 1,
            issuer,
            subject,
            role: Role::Agent,
            limits,
            not_before: Timestamp(1_767_225_600), // 2026-01-01T00:00:00Z
            expires_at: Timestamp(1_767_225_600 + 30 * DAY_S),
            nonce: "n1".into(),
        }
    }

    #[test]
    fn attenuation_names_the_widening_limit() {
        let (_, payee) = did(9);
        let parent = Limits {
            allowed_payees: Some(vec![payee]),
            allowed_categories: Some(vec!["compute".into()]),
            approval_threshold: Some(usd(5)),
            denied_payees: vec![did(8).1],
            ..limits()
        };
        let cases: Vec<(Limits, Result<(), Limit>)> = vec![
            (parent.clone(), Ok(())),
            (
                Limits {
                    max_per_payment: usd(11),
                    ..parent.clone()
                },
                Err(Limit::MaxPerPayment),
            ),
            (
                Limits {
                    daily_budget: usd(51),
                    ..parent.clone()
                },
                Err(Limit::DailyBudget),
            ),
            (
                Limits {
                    total_budget: None,
                    ..parent.clone()
                },
                Err(Limit::TotalBudget),
            ),
            (
                Limits {
                    total_budget: Some(usd(501)),
                    ..parent.clone()
                },
                Err(Limit::TotalBudget),
            ),
            (
                Limits {
                    allowed_payees: None,
                    ..parent.clone()
                },
                Err(Limit::AllowedPayees),
            ),
            (
                Limits {
                    allowed_payees: Some(vec![payee, did(7).1]),
                    ..parent.clone()
                },
                Err(Limit::AllowedPayees),
            ),
            (
                Limits {
                    denied_payees: vec![],
                    ..parent.clone()
                },
                Err(Limit::DeniedPayees),
            ),
            (
                Limits {
                    allowed_categories: None,
                    ..parent.clone()
                },
                Err(Limit::AllowedCategories),
            ),
            (
                Limits {
                    approval_threshold: None,
                    ..parent.clone()
                },
                Err(Limit::ApprovalThreshold),
            ),
            (
                Limits {
                    approval_threshold: Some(usd(6)),
                    ..parent.clone()
                },
                Err(Limit::ApprovalThreshold),
            ),
            (
                Limits {
                    max_per_payment: usd(1),
                    allowed_payees: Some(vec![]),
                    allowed_categories: Some(vec![]),
                    denied_payees: vec![did(8).1, did(7).1],
                    approval_threshold: Some(Amount::ZERO),
                    ..parent.clone()
                },
                Ok(()),
            ),
        ];
        for (child, expected) in cases {
            assert_eq!(child.check_narrows(&parent), expected, "{child:?}");
        }
    }

    #[test]
    fn window_must_narrow_too() {
        let (_, principal) = did(1);
        let (_, agent) = did(2);
        let (_, session) = did(3);
        let parent = grant(principal, agent, limits());
        let mut child = grant(agent, session, limits());
        assert_eq!(child.check_narrows(&parent), Ok(()));
        child.expires_at = Timestamp(parent.expires_at.0 + 1);
        assert_eq!(child.check_narrows(&parent), Err(Limit::ExpiresAt));
        child.expires_at = parent.expires_at;
        child.not_before = Timestamp(parent.not_before.0 - 1);
        assert_eq!(child.check_narrows(&parent), Err(Limit::NotBefore));
    }

    #[test]
    fn exposure_takes_the_binding_limit() {
        let (_, principal) = did(1);
        let (_, agent) = did(2);
        let mut g = grant(principal, agent, limits());
        let start = g.not_before;
        // 30 days × 50 = 1500 > total 500: the total binds.
        assert_eq!(
            g.exposure(start, Spent::default()),
            Exposure {
                amount: usd(500),
                bound: ExposureBound::TotalBudget
            }
        );
        // Two days left, 20 spent today: 30 + 50 = 80 < 500 - 100.
        let late = Timestamp(g.expires_at.0 - DAY_S - 3600);
        assert_eq!(
            g.exposure(
                late,
                Spent {
                    today: usd(20),
                    total: usd(100)
                }
            ),
            Exposure {
                amount: usd(80),
                bound: ExposureBound::DailyBudget { days: 2 }
            }
        );
        // Not yet valid: every day of the window counts in full.
        g.limits.total_budget = None;
        assert_eq!(
            g.exposure(Timestamp(start.0 - 10 * DAY_S), Spent::default()),
            Exposure {
                amount: usd(1500),
                bound: ExposureBound::DailyBudget { days: 30 }
            }
        );
        assert_eq!(
            g.exposure(g.expires_at, Spent::default()).amount,
            Amount::ZERO
        );
    }

    #[test]
    fn signature_covers_the_document_as_received() {
        let (principal_key, principal) = did(1);
        let (_, agent) = did(2);
        let signed = grant(principal, agent, limits())
            .sign(&principal_key)
            .unwrap();
        assert!(signed.verify_signature());

        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedGrant = serde_json::from_str(&json).unwrap();
        assert!(back.verify_signature());
        assert_eq!(back.id(), signed.id());

        // Writing an absent option as null is a different document: it still
        // parses to the same grant, but the signature does not cover it.
        let mut value: Value = serde_json::from_str(&json).unwrap();
        value["grant"]["limits"]["approval_threshold"] = Value::Null;
        let altered: SignedGrant = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(altered.grant(), signed.grant());
        assert!(!altered.verify_signature());

        value["grant"]["limits"]["daily_budget"] = Value::String("51000000".into());
        let widened: SignedGrant = serde_json::from_value(value.clone()).unwrap();
        assert!(!widened.verify_signature());

        value["grant"]["extra"] = Value::Bool(true);
        assert!(serde_json::from_value::<SignedGrant>(value).is_err());
    }

    #[test]
    fn validation_table() {
        let (_, principal) = did(1);
        let (_, agent) = did(2);
        let base = grant(principal, agent, limits());
        let cases: Vec<(Grant, &str)> = vec![
            (
                Grant {
                    version: 2,
                    ..base.clone()
                },
                "version",
            ),
            (
                Grant {
                    subject: principal,
                    ..base.clone()
                },
                "subject",
            ),
            (
                Grant {
                    expires_at: base.not_before,
                    ..base.clone()
                },
                "expires_at",
            ),
            (
                Grant {
                    expires_at: Timestamp(base.not_before.0 + 367 * DAY_S),
                    ..base.clone()
                },
                "expires_at",
            ),
            (
                Grant {
                    role: Role::Session,
                    expires_at: Timestamp(base.not_before.0 + 32 * DAY_S),
                    ..base.clone()
                },
                "expires_at",
            ),
            (
                Grant {
                    nonce: String::new(),
                    ..base.clone()
                },
                "nonce",
            ),
            (
                Grant {
                    nonce: "a b".into(),
                    ..base.clone()
                },
                "nonce",
            ),
            (
                Grant {
                    limits: Limits {
                        denied_payees: vec![agent, agent],
                        ..limits()
                    },
                    ..base.clone()
                },
                "denied_payees",
            ),
            (
                Grant {
                    limits: Limits {
                        allowed_categories: Some(vec!["Compute".into()]),
                        ..limits()
                    },
                    ..base.clone()
                },
                "allowed_categories",
            ),
        ];
        assert_eq!(base.validate(), Ok(()));
        for (grant, field) in cases {
            assert_eq!(
                grant.validate().map_err(|e| e.field),
                Err(field),
                "{grant:?}"
            );
        }
    }
}

/// The worked example of ARCHITECTURE.md ("Signed grants, byte for byte"):
/// the document there must be exactly what this code signs.
#[cfg(test)]
mod worked_example {
    use super::*;

    pub(super) fn example() -> SignedGrant {
        let principal_key = SigningKey::from_bytes(&[0; 32]);
        let mut agent_seed = [0; 32];
        agent_seed[31] = 1;
        let agent = Did::from_verifying_key(&SigningKey::from_bytes(&agent_seed).verifying_key());
        Grant {
            version: GRANT_VERSION,
            issuer: Did::from_verifying_key(&principal_key.verifying_key()),
            subject: agent,
            role: Role::Agent,
            limits: Limits {
                max_per_payment: Amount::from_atomic(2_000_000),
                daily_budget: Amount::from_atomic(10_000_000),
                total_budget: Some(Amount::from_atomic(50_000_000)),
                allowed_payees: None,
                denied_payees: Vec::new(),
                allowed_categories: Some(vec!["compute".to_owned()]),
                approval_threshold: Some(Amount::from_atomic(5_000_000)),
                daily_approval_threshold: None,
            },
            not_before: Timestamp(1_767_225_600),
            expires_at: Timestamp(1_769_817_600),
            nonce: "01HX4R7J2S".to_owned(),
        }
        .sign(&principal_key)
        .unwrap()
    }

    #[test]
    fn architecture_md_shows_the_exact_bytes() {
        let signed = example();
        let bytes = signed.signed_bytes();
        let document = std::str::from_utf8(&bytes[GRANT_DOMAIN.len()..]).unwrap();
        let signature = hex::encode(signed.signature().0.to_bytes());
        let id = signed.id().to_string();
        let architecture = include_str!("../../../ARCHITECTURE.md");
        for (what, value) in [
            ("canonical JSON", document),
            ("signature", &signature),
            ("grant id", &id),
        ] {
            assert!(
                architecture.contains(value),
                "ARCHITECTURE.md lacks the {what}:\n{value}"
            );
        }
        assert!(signed.verify_signature());
    }
}
