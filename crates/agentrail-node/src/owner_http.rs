//! What a principal owns, for its dashboard and its tools: its agents with
//! their grants, accounts and sessions, and the payments that wait for its
//! approval. Public reads, like every other: a principal's tree is in its
//! log already, and what it may approve is decided by signatures, not by
//! who can see the list.

use agentrail_core::state::IdentityKind;
use agentrail_wire::api::{
    AGENTS_PAGE_MAX, APPROVALS_PAGE_MAX, AgentSummary, AgentsPage, ApprovalsPage, BalanceResponse,
};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::http::{ApiError, App, path_did, read_state};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsQuery {
    offset: Option<u64>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

fn limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be between 1 and {max}"),
        )
        .with_param("limit"));
    }
    Ok(limit)
}

fn not_a_principal(did: agentrail_core::Did) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_identity",
        format!("{did} is not a registered principal"),
    )
}

pub async fn get_agents(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<AgentsQuery>, QueryRejection>,
) -> Result<axum::Json<AgentsPage>, ApiError> {
    let principal = path_did(path)?;
    let params = query(params)?;
    let limit = limit(params.limit, 20, AGENTS_PAGE_MAX)?;
    let offset = params.offset.unwrap_or(0);
    let now = app.ledger.now();
    let page = read_state(&app.ledger, |state| {
        let agents = state.agents_of(&principal)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(agents.len());
        let end = start.saturating_add(limit).min(agents.len());
        let items = agents[start..end]
            .iter()
            .filter_map(|did| {
                let grant = state.grant_status(did, state.clock().max(now))?;
                Some(AgentSummary {
                    did: *did,
                    grant,
                    balance: state.balance(did).map(|b| BalanceResponse {
                        did: *did,
                        available: b.available,
                        held: b.held,
                    }),
                    sessions: state.sessions_of(did).unwrap_or_default().to_vec(),
                })
            })
            .collect();
        Some(AgentsPage {
            principal,
            total: agents.len() as u64,
            items,
            next_offset: (end < agents.len()).then_some(end as u64),
        })
    })
    .await?;
    page.map(axum::Json)
        .ok_or_else(|| not_a_principal(principal))
}

pub async fn get_approvals(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<ApprovalsQuery>, QueryRejection>,
) -> Result<axum::Json<ApprovalsPage>, ApiError> {
    let principal = path_did(path)?;
    let params = query(params)?;
    let limit = limit(params.limit, 50, APPROVALS_PAGE_MAX)?;
    let page = read_state(&app.ledger, |state| {
        (state.identity_kind(&principal) == Some(IdentityKind::Principal)).then(|| {
            let (items, next_after) =
                state.pending_approvals_of(&principal, params.after.unwrap_or(0), limit);
            ApprovalsPage { items, next_after }
        })
    })
    .await?;
    page.map(axum::Json)
        .ok_or_else(|| not_a_principal(principal))
}
