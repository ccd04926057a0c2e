//! One delivery attempt of a notification, and what to do next.
//!
//! 2xx is delivered. 5xx, 408, 429 and network errors or timeouts are retried: after the
//! receiver's `Retry-After` when it sends one (429/503), else after an exponential backoff
//! with full jitter. Other 4xx answers are final: the receiver rejects the notification, and
//! repeating it would not change that. Past `max_attempts` or `max_age`, a retry becomes a
//! give-up (the caller dead-letters it with the last error).

use super::signing::SigningSecret;
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub secret: Option<SigningSecret>,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Per-attempt timeout.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Give up on a notification this long after its first attempt.
    pub max_age: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered { status: u16 },
    Retry { after: Duration, error: String },
    GiveUp { error: String },
}

/// The HTTP client for webhooks: rustls with the ring provider, no proxies from the
/// environment, no redirects (a signed notification goes where it was configured to).
pub fn client() -> reqwest::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

/// Posts `body` once. `attempt` counts from 1; `first_attempt` is when attempt 1 happened.
pub async fn attempt(
    client: &reqwest::Client,
    target: &Target,
    id: &str,
    body: &[u8],
    attempt: u32,
    first_attempt: SystemTime,
    policy: &RetryPolicy,
) -> Outcome {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static("customersignal-webhooks/1"),
    );
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("webhook-id", value);
    }
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    if let Some(secret) = &target.secret
        && let Ok(value) = HeaderValue::from_str(&secret.sign(id, timestamp, body))
    {
        headers.insert("webhook-signature", value);
    }
    let response = client
        .post(&target.url)
        .headers(headers)
        .timeout(policy.timeout)
        .body(body.to_vec())
        .send()
        .await;
    let outcome = match response {
        Ok(response) if response.status().is_success() => Outcome::Delivered {
            status: response.status().as_u16(),
        },
        Ok(response) => {
            let status = response.status();
            let retry_after = retry_after(response.headers().get(RETRY_AFTER), policy.max_delay);
            let error = format!("receiver answered {status}");
            if status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                Outcome::Retry {
                    after: retry_after.unwrap_or_else(|| backoff(attempt, policy)),
                    error,
                }
            } else {
                Outcome::GiveUp { error }
            }
        }
        Err(error) => Outcome::Retry {
            after: backoff(attempt, policy),
            error: format!("request failed: {error}"),
        },
    };
    match outcome {
        Outcome::Retry { error, .. } if attempt >= policy.max_attempts => Outcome::GiveUp {
            error: format!("{error} (after {attempt} attempts)"),
        },
        Outcome::Retry { error, .. }
            if first_attempt.elapsed().unwrap_or_default() >= policy.max_age =>
        {
            Outcome::GiveUp {
                error: format!(
                    "{error} (gave up after {})",
                    humantime::format_duration(policy.max_age)
                ),
            }
        }
        other => other,
    }
}

/// `Retry-After` as seconds or an HTTP date, capped.
fn retry_after(value: Option<&HeaderValue>, cap: Duration) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    let delay = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(delay.min(cap))
}

/// Exponential backoff from `min_delay`, doubled per attempt, with jitter (so receivers
/// recovering from an outage are not hit by every sender at once), capped at `max_delay`.
pub fn backoff(attempt: u32, policy: &RetryPolicy) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1).min(30) as usize)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_dates_is_capped() {
        let cap = Duration::from_secs(60);
        assert_eq!(
            retry_after(Some(&HeaderValue::from_static("7")), cap),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(Some(&HeaderValue::from_static("7000")), cap),
            Some(cap)
        );
        assert_eq!(
            retry_after(
                Some(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
                cap
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(Some(&HeaderValue::from_static("soon")), cap),
            None
        );
        assert_eq!(retry_after(None, cap), None);
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let policy = RetryPolicy::default();
        for attempt in 1..30 {
            let delay = backoff(attempt, &policy);
            assert!(
                delay >= policy.min_delay && delay <= policy.max_delay,
                "{attempt}: {delay:?}"
            );
        }
    }
}
