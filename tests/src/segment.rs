//! Sends Segment Spec messages to ingest the way analytics-node does: `POST /v1/batch`,
//! write key as the basic-auth user name, gzip body, `sentAt`. A 429/503 or a connection
//! error is retried with the same body (so the same message ids), as the retry contract asks.

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

/// What a [`send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Events ingest accepted (`accepted` of its 200 answers).
    pub accepted: u64,
    /// Requests refused (429, 503, connection errors) and sent again.
    pub retries: u64,
}

/// Sends `messages` in batches of `batch`, one request at a time (so the stream keeps their
/// order), retrying each until accepted or `give_up` passes.
pub async fn send(
    http: &reqwest::Client,
    ingest: &str,
    write_key: &str,
    messages: &[Value],
    batch: usize,
    give_up: Duration,
) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    for chunk in messages.chunks(batch.max(1)) {
        send_batch(http, ingest, write_key, chunk, give_up, &mut sent).await?;
    }
    Ok(sent)
}

async fn send_batch(
    http: &reqwest::Client,
    ingest: &str,
    write_key: &str,
    chunk: &[Value],
    give_up: Duration,
    sent: &mut Sent,
) -> anyhow::Result<()> {
    let sent_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&serde_json::to_vec(
        &json!({"batch": chunk, "sentAt": sent_at}),
    )?)?;
    let body = gzip.finish()?;
    let deadline = Instant::now() + give_up;
    loop {
        let answer = http
            .post(format!("{ingest}/v1/batch"))
            .basic_auth(write_key, Some(""))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .timeout(Duration::from_secs(15))
            .body(body.clone())
            .send()
            .await;
        let wait = match answer {
            Ok(response) if response.status().is_success() => {
                let answer: Value = response.json().await?;
                sent.accepted += answer["accepted"]
                    .as_u64()
                    .ok_or_else(|| anyhow::anyhow!("no `accepted` in {answer}"))?;
                return Ok(());
            }
            Ok(response) if matches!(response.status().as_u16(), 429 | 503) => {
                let seconds = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                Duration::from_secs(seconds.clamp(1, 5))
            }
            Ok(response) => {
                let status = response.status();
                anyhow::bail!("ingest answered {status}: {}", response.text().await?);
            }
            // Connection refused or reset, or a timeout: ingest or its NATS is restarting.
            Err(_) => Duration::from_millis(500),
        };
        if Instant::now() + wait > deadline {
            anyhow::bail!("ingest kept refusing a batch for {give_up:?}");
        }
        sent.retries += 1;
        tokio::time::sleep(wait).await;
    }
}
