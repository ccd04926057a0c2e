//! The HTTP API: native `POST /v1/events` and the Segment HTTP Tracking API paths.
//!
//! Every request is authenticated by write key, rate limited per key, parsed and validated
//! whole (a bad event rejects the request and nothing of it is published), checked against
//! the Source's tracking plan, published, and answered 200 only once JetStream acked every
//! event. A 503 is always safe to retry as a whole: ids make the retry a duplicate.

use crate::error::ApiError;
use crate::keys::{Keys, Writer};
use crate::publisher::{PublishError, Publisher};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use model::event::{Event, EventKind};
use model::intake::{IntakeError, Limits, Receipt, SegmentCall, parse_native_batch};
use model::keyring::key_digest;
use model::resources::PlanMode;
use std::num::NonZeroU32;
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub keys: Keys,
    pub publisher: Publisher,
    pub limiter: Arc<DefaultKeyedRateLimiter<[u8; 32]>>,
    pub limits: Limits,
}

impl AppState {
    pub fn new(keys: Keys, publisher: Publisher, limits: Limits, rps: u32, burst: u32) -> Self {
        let rps = NonZeroU32::new(rps).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(rps);
        Self {
            keys,
            publisher,
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_second(rps).allow_burst(burst),
            )),
            limits,
        }
    }
}

/// What a path accepts.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Native,
    Call(EventKind),
    Batch,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Self::Native => "events",
            Self::Call(kind) => kind.as_str(),
            Self::Batch => "batch",
        }
    }
}

pub fn router(state: AppState) -> Router {
    let routes: [(&[&str], Endpoint); 8] = [
        (&["/v1/events"], Endpoint::Native),
        (&["/v1/track", "/v1/t"], Endpoint::Call(EventKind::Track)),
        (
            &["/v1/identify", "/v1/i"],
            Endpoint::Call(EventKind::Identify),
        ),
        (&["/v1/group", "/v1/g"], Endpoint::Call(EventKind::Group)),
        (&["/v1/page", "/v1/p"], Endpoint::Call(EventKind::Page)),
        (&["/v1/screen", "/v1/s"], Endpoint::Call(EventKind::Screen)),
        (&["/v1/alias", "/v1/a"], Endpoint::Call(EventKind::Alias)),
        (&["/v1/batch", "/v1/b", "/v1/import"], Endpoint::Batch),
    ];
    let mut api = Router::new();
    for (paths, endpoint) in routes {
        for path in paths {
            api = api.route(
                path,
                post(
                    move |State(state): State<AppState>, headers: HeaderMap, body: Body| {
                        handle(state, headers, body, endpoint)
                    },
                ),
            );
        }
    }
    // Browser SDKs post cross-origin with a basic-auth header; no cookies are involved.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
        ]);
    let publisher = state.publisher.clone();
    api.layer(RequestDecompressionLayer::new())
        .layer(cors)
        .with_state(state)
        .merge(model::service::health_routes(Arc::new(move || {
            publisher.ready()
        })))
        .layer(TraceLayer::new_for_http())
}

async fn handle(state: AppState, headers: HeaderMap, body: Body, endpoint: Endpoint) -> Response {
    let mut writer = None;
    let mut events = 0;
    let result = accept(&state, &headers, body, endpoint, &mut writer, &mut events).await;
    let (tenant, source) = writer
        .as_deref()
        .map_or(("-", "-"), |w: &Writer| (&w.tenant, &w.source));
    let labels = [
        ("tenant", tenant.to_string()),
        ("source", source.to_string()),
    ];
    let status = match &result {
        Ok(()) => {
            metrics::counter!("ingest_events_accepted_total", &labels).increment(events as u64);
            200
        }
        Err(error) => {
            let mut rejected = labels.to_vec();
            rejected.push(("reason", error.code().to_string()));
            metrics::counter!("ingest_events_rejected_total", &rejected)
                .increment(events.max(1) as u64);
            if error.status().is_server_error() {
                tracing::warn!(tenant, source, %error, "request not accepted");
            } else {
                tracing::debug!(tenant, source, %error, "request rejected");
            }
            error.status().as_u16()
        }
    };
    let mut request_labels = labels.to_vec();
    request_labels.push(("endpoint", endpoint.label().to_string()));
    request_labels.push(("status", status.to_string()));
    metrics::counter!("ingest_requests_total", &request_labels).increment(1);
    match result {
        Ok(()) => Json(serde_json::json!({"success": true, "accepted": events})).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The request's whole path from bytes to acked events. Fills `writer` and `events` as soon
/// as they are known, for the metrics.
async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    endpoint: Endpoint,
    writer: &mut Option<Arc<Writer>>,
    events: &mut usize,
) -> Result<(), ApiError> {
    // Authenticate before reading the body when the key is in a header.
    if let Some(key) = key_from_headers(headers) {
        *writer = Some(authenticate(state, &key)?);
    }
    let body = read_body(body, state.limits.max_body_bytes).await?;
    let parsed: Vec<Event> = match endpoint {
        Endpoint::Native => {
            let writer = writer.as_ref().ok_or(ApiError::Unauthorized(
                "missing write key: send it as `Authorization: Bearer <key>`",
            ))?;
            parse_native_batch(&body, &receipt(writer), &state.limits)?
        }
        Endpoint::Call(_) | Endpoint::Batch => {
            let call = match endpoint {
                Endpoint::Call(kind) => SegmentCall::parse(kind, &body, &state.limits)?,
                _ => SegmentCall::parse_batch(&body, &state.limits)?,
            };
            *events = call.len();
            if writer.is_none() {
                let key = call.write_key.as_deref().ok_or(ApiError::Unauthorized(
                    "missing write key: send it as the basic-auth user name or as `writeKey`",
                ))?;
                *writer = Some(authenticate(state, key)?);
            }
            let writer = writer
                .as_ref()
                .ok_or(ApiError::Unauthorized("missing write key"))?;
            call.into_events(&receipt(writer))
        }
    };
    *events = parsed.len();
    let writer = writer
        .as_ref()
        .ok_or(ApiError::Unauthorized("missing write key"))?;
    check_tracking_plan(writer, &parsed)?;
    state
        .publisher
        .publish(&writer.tenant, &parsed)
        .await
        .map_err(|e| match e {
            PublishError::Unavailable(message) => ApiError::Unavailable(message),
            PublishError::Overloaded => ApiError::Overloaded,
        })
}

/// Resolves a key to its writer and charges the key's rate limit.
fn authenticate(state: &AppState, key: &str) -> Result<Arc<Writer>, ApiError> {
    let digest = key_digest(key);
    let writer = state
        .keys
        .current()
        .lookup_digest(&digest)
        .ok_or(ApiError::Unauthorized("unknown write key"))?;
    if let Err(not_until) = state.limiter.check_key(&digest) {
        return Err(ApiError::RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        });
    }
    Ok(writer)
}

/// `Authorization: Bearer <key>`, or `Basic base64(<key>:)` as Segment SDKs send it.
fn key_from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        decoded
            .split_once(':')
            .map_or(decoded.clone(), |(user, _)| user.to_string())
    } else {
        return None;
    };
    (!key.is_empty()).then_some(key)
}

/// Reads the (decompressed) body, refusing it as soon as it passes the limit, so a
/// compressed bomb costs no more than `max` bytes of memory.
async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::UnreadableBody(e.to_string()))?;
        if buffer.len() + chunk.len() > max {
            return Err(IntakeError::BodyTooLarge {
                size: buffer.len() + chunk.len(),
                limit: max,
            }
            .into());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

fn receipt(writer: &Writer) -> Receipt {
    Receipt {
        tenant: writer.tenant.clone(),
        source: writer.source.clone(),
        received_at: chrono::Utc::now(),
    }
}

/// Enforced plans reject the request at the first violating event; report-only plans count.
fn check_tracking_plan(writer: &Writer, events: &[Event]) -> Result<(), ApiError> {
    let Some(plan) = &writer.tracking_plan else {
        return Ok(());
    };
    for (index, event) in events.iter().enumerate() {
        let violations = plan.check(event);
        if violations.is_empty() {
            continue;
        }
        let mode = match plan.mode {
            PlanMode::Enforced => "enforced",
            PlanMode::ReportOnly => "report_only",
        };
        metrics::counter!("ingest_tracking_plan_violations_total",
            "tenant" => writer.tenant.clone(), "source" => writer.source.clone(), "mode" => mode)
        .increment(violations.len() as u64);
        if plan.mode == PlanMode::Enforced {
            let message: Vec<String> = violations.iter().map(ToString::to_string).collect();
            return Err(ApiError::TrackingPlan {
                index,
                message: message.join("; "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn keys_from_bearer_and_basic_auth() {
        assert_eq!(
            key_from_headers(&with_auth("Bearer wk_1")),
            Some("wk_1".into())
        );
        assert_eq!(
            key_from_headers(&with_auth("bearer  wk_1 ")),
            Some("wk_1".into())
        );
        // base64("wk_2:")
        assert_eq!(
            key_from_headers(&with_auth("Basic d2tfMjo=")),
            Some("wk_2".into())
        );
        // base64("wk_3") without the colon some clients omit
        assert_eq!(
            key_from_headers(&with_auth("Basic d2tfMw==")),
            Some("wk_3".into())
        );
        assert_eq!(key_from_headers(&with_auth("Basic !!!")), None);
        assert_eq!(key_from_headers(&with_auth("Bearer ")), None);
        assert_eq!(key_from_headers(&with_auth("Digest x")), None);
        assert_eq!(key_from_headers(&HeaderMap::new()), None);
    }
}
