//! A real HTTP webhook receiver for end-to-end tests: it checks every request's Standard
//! Webhooks signature (HMAC-SHA256 of `id.timestamp.body` under the path's `whsec_` secret,
//! written here from the spec, independently of the evaluator's signer) and records it. It
//! can be taken down (connections refused), answer 503 with `Retry-After: 1`, or hold requests
//! open until told otherwise, to put faults between the evaluator and its receivers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 to every request.
    Accept,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    /// Keep each request open until the mode changes, then answer 503: the sender never sees
    /// a success for a held request.
    Hold,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The last path segment: `/hooks/<hook>`.
    pub hook: String,
    pub webhook_id: String,
    pub body: Value,
    /// Signature check against the hook's secret; `Err` says why it failed.
    pub verified: Result<(), String>,
    /// The status answered; `None` while held.
    pub status: Option<u16>,
}

impl Delivery {
    /// `(tenant, rule, group)` of the notification.
    pub fn alert(&self) -> (String, String, String) {
        let field = |name: &str| self.body[name].as_str().unwrap_or_default().to_string();
        (field("tenant"), field("rule"), field("group"))
    }

    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

struct Shared {
    /// Hook name → decoded signing secret.
    secrets: HashMap<String, Vec<u8>>,
    deliveries: Mutex<Vec<Delivery>>,
    mode: watch::Sender<Mode>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    server: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Receiver {
    /// A receiver for `hooks` (name, `whsec_…` secret), not listening yet: connections to
    /// `port` are refused until [`up`](Self::up).
    pub fn new(port: u16, hooks: &[(&str, &str)]) -> Self {
        let secrets = hooks
            .iter()
            .map(|(hook, secret)| {
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                let key = STANDARD.decode(encoded).expect("a base64 test secret");
                (hook.to_string(), key)
            })
            .collect();
        Self {
            port,
            shared: Arc::new(Shared {
                secrets,
                deliveries: Mutex::default(),
                mode: watch::channel(Mode::Accept).0,
            }),
            server: None,
        }
    }

    pub fn url(&self, hook: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{hook}", self.port)
    }

    /// Starts listening (again, on the same port).
    pub async fn up(&mut self) {
        if self.server.is_some() {
            return;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the receiver's port is free");
        let app = Router::new()
            .route("/hooks/{hook}", post(receive))
            .with_state(self.shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        self.server = Some((stop, task));
    }

    /// Stops listening and closes every connection: senders get connection errors.
    pub async fn down(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            // Held requests must finish for the graceful shutdown to complete.
            let held = self.mode() == Mode::Hold;
            if held {
                self.set_mode(Mode::Unavailable);
            }
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.set_mode(Mode::Accept);
        if let Some((stop, _)) = self.server.take() {
            let _ = stop.send(());
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let webhook_id = header("webhook-id");
    let verified = match shared.secrets.get(&hook) {
        Some(secret) => verify(
            secret,
            &webhook_id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
        ),
        None => Err(format!("no secret for hook {hook}")),
    };
    let index = {
        let mut deliveries = shared.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        deliveries.push(Delivery {
            hook,
            webhook_id,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            verified,
            status: None,
        });
        deliveries.len() - 1
    };
    let mut mode = shared.mode.subscribe();
    let held = *mode.borrow() == Mode::Hold;
    if held {
        let _ = mode.wait_for(|m| *m != Mode::Hold).await;
    }
    let status = match *mode.borrow() {
        Mode::Accept if !held => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    if let Some(delivery) = shared
        .deliveries
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(index)
    {
        delivery.status = Some(status.as_u16());
    }
    if status == StatusCode::OK {
        status.into_response()
    } else {
        (status, [("retry-after", "1")]).into_response()
    }
}

/// Standard Webhooks verification: the timestamp within 5 minutes, and a `v1,<base64>` entry
/// of the space-separated signature list that is the HMAC-SHA256 of `id.timestamp.body`.
fn verify(
    secret: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> Result<(), String> {
    if id.is_empty() {
        return Err("no webhook-id".into());
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| format!("bad webhook-timestamp {timestamp:?}"))?;
    if (chrono::Utc::now().timestamp() - sent).abs() > 300 {
        return Err(format!("webhook-timestamp {sent} is not within 5 minutes"));
    }
    if signed(secret, id, timestamp, signatures, body) {
        Ok(())
    } else {
        Err(format!("no valid v1 signature in {signatures:?}"))
    }
}

fn signed(secret: &[u8], id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> bool {
    signatures.split(' ').any(|entry| {
        let Some(signature) = entry
            .strip_prefix("v1,")
            .and_then(|encoded| STANDARD.decode(encoded).ok())
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::{STANDARD, signed, verify};
    use base64::Engine;

    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn checks_the_spec_example_and_rejects_tampering() {
        // The example published with the Standard Webhooks spec.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(signed(&key, ID, TIMESTAMP, SIGNATURE, BODY));
        assert!(signed(
            &key,
            ID,
            TIMESTAMP,
            &format!("v1,AAAA {SIGNATURE}"),
            BODY
        ));
        assert!(!signed(&key, "msg_other", TIMESTAMP, SIGNATURE, BODY));
        assert!(!signed(&key, ID, "1614265331", SIGNATURE, BODY));
        assert!(!signed(&key, ID, TIMESTAMP, SIGNATURE, b"{}"));
        assert!(!signed(&key[1..], ID, TIMESTAMP, SIGNATURE, BODY));
        assert!(!signed(&key, ID, TIMESTAMP, "v2,g0hM9SsE", BODY));
        // Valid signature, but a replay from 2021.
        let old = verify(&key, ID, TIMESTAMP, SIGNATURE, BODY).unwrap_err();
        assert!(old.contains("within 5 minutes"), "{old}");
    }
}
