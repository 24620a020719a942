//! Market reads: discovery, listings, requests for quotes, tasks, licences,
//! reputation and A2A agent cards. Market changes are commands, posted to
//! `/v1/commands` like every other.

use agentrail_core::constants::{CATEGORY_BYTES_MAX, DISCOVERY_PAGE_MAX, KEY_BYTES_MAX};
use agentrail_core::economy::{BountyView, OrderView, SubscriptionView};
use agentrail_core::market::{
    Discovery, DiscoveryPage, LicenseView, ListingKind, ListingStatus, ListingView, RfqPage,
    RfqQuery, RfqView, TaskView,
};
use agentrail_core::reputation::Reputation;
use agentrail_core::state::IdentityKind;
use agentrail_core::{Amount, Did};
use agentrail_wire::api::{
    AgentCapabilities, AgentCard, AgentExtension, AgentProvider, AgentSkill, MARKET_EXTENSION_URI,
};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, App, from_archive, path_did, read_state};
use agentrail_core::state::{ArchiveKind, Archived};

/// Listings a discovery page returns when the query names no limit.
pub const DISCOVERY_PAGE_DEFAULT: usize = 20;
/// The furthest a discovery query may page.
pub const DISCOVERY_OFFSET_MAX: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryQuery {
    capability: Option<String>,
    kind: Option<ListingKind>,
    /// Atomic units.
    max_price: Option<Amount>,
    min_reputation: Option<u16>,
    offset: Option<usize>,
    limit: Option<usize>,
}

fn invalid_query(param: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).with_param(param)
}

fn check_capability(capability: Option<&str>) -> Result<(), ApiError> {
    if capability.is_some_and(|c| c.is_empty() || c.len() > CATEGORY_BYTES_MAX) {
        return Err(invalid_query("capability", "a capability is 1-32 bytes"));
    }
    Ok(())
}

/// A page's offset and limit, defaulted and bounded.
fn page(offset: Option<usize>, limit: Option<usize>) -> Result<(usize, usize), ApiError> {
    let limit = limit.unwrap_or(DISCOVERY_PAGE_DEFAULT);
    if limit == 0 || limit > DISCOVERY_PAGE_MAX {
        return Err(invalid_query("limit", "limit must be between 1 and 100"));
    }
    let offset = offset.unwrap_or(0);
    if offset > DISCOVERY_OFFSET_MAX {
        return Err(invalid_query("offset", "offset must be at most 100000"));
    }
    Ok((offset, limit))
}

/// `GET /v1/listings?capability=&kind=&max_price=&min_reputation=&offset=&limit=`
pub async fn get_listings(
    State(app): State<App>,
    query: Result<Query<DiscoveryQuery>, QueryRejection>,
) -> Result<axum::Json<DiscoveryPage>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    check_capability(query.capability.as_deref())?;
    let (offset, limit) = page(query.offset, query.limit)?;
    if query.min_reputation.is_some_and(|min| min > 1_000) {
        return Err(invalid_query("min_reputation", "a reputation is 0-1000"));
    }
    let discovery = Discovery {
        capability: query.capability,
        kind: query.kind,
        max_price: query.max_price,
        min_reputation: query.min_reputation,
        offset,
        limit,
    };
    let page = read_state(&app.ledger, |state| state.discover(&discovery)).await?;
    Ok(axum::Json(page))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfqListQuery {
    capability: Option<String>,
    /// A did:key: only requests it may quote on.
    provider: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /v1/rfqs?capability=&provider=&offset=&limit=`: open requests for
/// quotes, for providers looking for work.
pub async fn get_rfqs(
    State(app): State<App>,
    query: Result<Query<RfqListQuery>, QueryRejection>,
) -> Result<axum::Json<RfqPage>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    check_capability(query.capability.as_deref())?;
    let provider = match &query.provider {
        Some(text) => Some(
            text.parse::<Did>()
                .map_err(|e| invalid_query("provider", &e.to_string()))?,
        ),
        None => None,
    };
    let (offset, limit) = page(query.offset, query.limit)?;
    let rfq_query = RfqQuery {
        capability: query.capability,
        provider,
        offset,
        limit,
    };
    let page = read_state(&app.ledger, |state| state.open_rfqs(&rfq_query)).await?;
    Ok(axum::Json(page))
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    if id.is_empty() || id.len() > KEY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "an id is 1-64 bytes",
        )
        .with_param("id"));
    }
    Ok(id)
}

fn not_found(code: &str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        code,
        format!("no {what} has this id"),
    )
    .with_param("id")
}

/// One thing by its id in the path, or a 404 with `code`.
async fn by_id<T>(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    read: impl FnOnce(&agentrail_core::State, &str) -> Option<T>,
    code: &str,
    what: &str,
) -> Result<axum::Json<T>, ApiError> {
    by_id_or_archived(app, path, read, None, code, what).await
}

/// What an ended record's archived form gives a read of its kind.
type FromArchive<T> = (ArchiveKind, fn(Archived) -> Option<T>);

/// [`by_id`], looking in the archive for a record the state forgot a
/// retention after it ended.
async fn by_id_or_archived<T>(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    read: impl FnOnce(&agentrail_core::State, &str) -> Option<T>,
    archived: Option<FromArchive<T>>,
    code: &str,
    what: &str,
) -> Result<axum::Json<T>, ApiError> {
    let id = path_id(path)?;
    let found = match read_state(&app.ledger, |state| read(state, &id)).await? {
        Some(found) => Some(found),
        None => match archived {
            Some((kind, pick)) => from_archive(&app.ledger, kind, &id, pick)?,
            None => None,
        },
    };
    found.map(axum::Json).ok_or_else(|| not_found(code, what))
}

pub async fn get_listing(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<ListingView>, ApiError> {
    by_id(
        &app,
        path,
        |state, id| state.listing(id),
        "listing_not_found",
        "listing",
    )
    .await
}

pub async fn get_rfq(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<RfqView>, ApiError> {
    by_id_or_archived(
        &app,
        path,
        |state, id| state.rfq(id),
        Some((ArchiveKind::Rfq, |archived| match archived {
            Archived::Rfq { view, .. } => Some(view),
            _ => None,
        })),
        "rfq_not_found",
        "request for quotes",
    )
    .await
}

pub async fn get_task(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<TaskView>, ApiError> {
    by_id_or_archived(
        &app,
        path,
        |state, id| state.task(id),
        Some((ArchiveKind::Task, |archived| match archived {
            Archived::Task { view, .. } => Some(view),
            _ => None,
        })),
        "task_not_found",
        "task",
    )
    .await
}

pub async fn get_license(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<LicenseView>, ApiError> {
    by_id_or_archived(
        &app,
        path,
        |state, id| state.license(id),
        Some((ArchiveKind::License, |archived| match archived {
            Archived::License { view, .. } => Some(view),
            _ => None,
        })),
        "license_not_found",
        "licence",
    )
    .await
}

pub async fn get_subscription(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<SubscriptionView>, ApiError> {
    by_id_or_archived(
        &app,
        path,
        |state, id| state.subscription(id),
        Some((ArchiveKind::Subscription, |archived| match archived {
            Archived::Subscription { view, .. } => Some(view),
            _ => None,
        })),
        "subscription_not_found",
        "subscription",
    )
    .await
}

pub async fn get_bounty(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<BountyView>, ApiError> {
    by_id_or_archived(
        &app,
        path,
        |state, id| state.bounty(id),
        Some((ArchiveKind::Bounty, |archived| match archived {
            Archived::Bounty { view, .. } => Some(view),
            _ => None,
        })),
        "bounty_not_found",
        "bounty",
    )
    .await
}

pub async fn get_order(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<OrderView>, ApiError> {
    by_id_or_archived(
        &app,
        path,
        |state, id| state.order(id),
        Some((ArchiveKind::Order, |archived| match archived {
            Archived::Order { view, .. } => Some(view),
            _ => None,
        })),
        "order_not_found",
        "order",
    )
    .await
}

fn unknown_identity(did: &Did) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_identity",
        format!("{did} is not registered"),
    )
    .with_param("did")
}

pub async fn get_reputation(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<Reputation>, ApiError> {
    let did = path_did(path)?;
    read_state(&app.ledger, |state| {
        state.identity_kind(&did).map(|_| state.reputation(&did))
    })
    .await?
    .map(axum::Json)
    .ok_or_else(|| unknown_identity(&did))
}

/// `GET /v1/agents/{did}/card`: the identity's live listings as an A2A
/// Agent Card. The card's `url` is the first listing's endpoint (or the
/// passport path when none names one); `provider.organization` is the
/// owning principal; prices, stakes, revenue shares and the reputation
/// score are in the agentrail market extension.
pub async fn get_agent_card(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<AgentCard>, ApiError> {
    let did = path_did(path)?;
    let found = read_state(&app.ledger, |state| {
        let kind = state.identity_kind(&did)?;
        let owner = match kind {
            IdentityKind::Principal => did,
            _ => state.grant_status(&did, state.clock())?.principal,
        };
        let listings: Vec<ListingView> = state
            .listings_of(&did)
            .into_iter()
            .filter(|listing| listing.status == ListingStatus::Listed)
            .collect();
        Some((owner, listings, state.reputation(&did)))
    })
    .await?;
    let (owner, listings, reputation) = found.ok_or_else(|| unknown_identity(&did))?;
    let passport = format!("/v1/passports/{did}");
    let first = listings.first().map(|view| &view.listing);
    let card = AgentCard {
        protocol_version: "0.3.0".into(),
        name: first.map_or_else(|| did.to_string(), |listing| listing.name.clone()),
        description: first.map_or_else(
            || "An agent on an agentrail ledger".to_owned(),
            |listing| listing.description.clone(),
        ),
        url: first
            .and_then(|listing| listing.endpoint.clone())
            .unwrap_or_else(|| passport.clone()),
        preferred_transport: "HTTP+JSON".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        provider: AgentProvider {
            organization: owner.to_string(),
            url: format!("/v1/passports/{owner}"),
        },
        capabilities: AgentCapabilities {
            streaming: false,
            push_notifications: false,
            extensions: vec![AgentExtension {
                uri: MARKET_EXTENSION_URI.into(),
                description: "agentrail market terms: prices, stakes, revenue shares, reputation"
                    .into(),
                required: false,
                params: json!({
                    "did": did,
                    "principal": owner,
                    "passport": passport,
                    "reputation": reputation.score,
                    "reputation_version": reputation.version,
                    "listings": listings.iter().map(|view| json!({
                        "listing_id": view.listing.listing_id,
                        "kind": view.listing.kind,
                        "pricing": view.listing.pricing,
                        "endpoint": view.listing.endpoint,
                        "revenue_share": view.listing.revenue_share,
                        "stake_held": view.stake_held,
                        "content_hash": view.listing.content_hash,
                    })).collect::<Vec<_>>(),
                }),
            }],
        },
        default_input_modes: vec!["application/json".into()],
        default_output_modes: vec!["application/json".into()],
        skills: listings
            .iter()
            .map(|view| AgentSkill {
                id: view.listing.listing_id.clone(),
                name: view.listing.name.clone(),
                description: view.listing.description.clone(),
                tags: view.listing.capabilities.clone(),
            })
            .collect(),
    };
    Ok(axum::Json(card))
}
