//! API errors and their JSON body: `{"error":{"code":"…","message":"…","index":N}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::intake::IntakeError;
use serde_json::json;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("{message}")]
    TrackingPlan { index: usize, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("rate limit exceeded for this write key")]
    RateLimited { retry_after: Duration },
    #[error("request body could not be read: {0}")]
    UnreadableBody(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("too many events are waiting for acknowledgement; retry shortly")]
    Overloaded,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Intake(IntakeError::BodyTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Intake(_) | Self::TrackingPlan { .. } | Self::UnreadableBody(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Stable code for clients and the `reason` label of rejection metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Intake(e) => e.code(),
            Self::TrackingPlan { .. } => "tracking_plan_violation",
            Self::Unauthorized(_) => "unauthorized",
            Self::RateLimited { .. } => "rate_limited",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded => "overloaded",
        }
    }

    fn index(&self) -> Option<usize> {
        match self {
            Self::Intake(e) => e.index(),
            Self::TrackingPlan { index, .. } => Some(*index),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            Self::Unavailable(_) | Self::Overloaded => Some(1),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        if let Some(index) = self.index() {
            error["index"] = index.into();
        }
        let mut response = (self.status(), Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, Self::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"customersignal\""),
            );
        }
        response
    }
}
