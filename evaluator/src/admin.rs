//! The evaluator's HTTP endpoints: health, readiness, metrics, and the authenticated admin
//! API for erasing a user's data (`DELETE /admin/v1/tenants/{tenant}/users/{user_id}`).

use crate::store::gdpr;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::delete;
use axum::{Json, Router};
use std::sync::Arc;
use subtle::ConstantTimeEq;

#[derive(Clone)]
struct AdminState {
    clickhouse: clickhouse::Client,
    token: Option<Arc<str>>,
}

pub fn router(
    clickhouse: clickhouse::Client,
    token: Option<String>,
    ready: Arc<dyn Fn() -> bool + Send + Sync>,
) -> Router {
    let state = AdminState {
        clickhouse,
        token: token.filter(|t| !t.is_empty()).map(Arc::from),
    };
    Router::new()
        .route(
            "/admin/v1/tenants/{tenant}/users/{user_id}",
            delete(delete_user),
        )
        .with_state(state)
        .merge(model::service::health_routes(ready))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn delete_user(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path((tenant, user_id)): Path<(String, String)>,
) -> Response {
    let Some(token) = &state.token else {
        return error(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "the admin API is off: set --admin-token",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin token",
        );
    }
    match gdpr::delete_user(&state.clickhouse, &tenant, &user_id).await {
        Ok(erasure) => {
            tracing::info!(tenant, user_id, ?erasure, "user data erased");
            Json(serde_json::json!({"deleted": erasure})).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}
