//! Ingest's HTTP API against a real nats-server (one private server per test).

mod support;

use flate2::Compression;
use flate2::write::GzEncoder;
use model::event::EventKind;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;
use support::{
    ACME_KEY, GLOBEX_KEY, REPORTING_KEY, STRICT_KEY, TestIngest, basic, default_keys, key_entry,
    write_keys,
};
use tests::eventually;

async fn post_raw(
    ingest: &TestIngest,
    path: &str,
    auth: Option<String>,
    body: &Value,
) -> reqwest::Response {
    let mut request = ingest.http.post(ingest.url(path)).json(body);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    request.send().await.expect("http")
}

async fn post(
    ingest: &TestIngest,
    path: &str,
    auth: Option<String>,
    body: Value,
) -> (StatusCode, Value) {
    let response = post_raw(ingest, path, auth, &body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn bearer(key: &str) -> Option<String> {
    Some(format!("Bearer {key}"))
}

#[tokio::test]
async fn every_endpoint_lands_on_the_right_subject_with_normalized_fields() {
    let ingest = TestIngest::start(&[]).await;
    let native = json!({"events": [{"event_type": "checkout_completed", "user_id": "u1", "group_id": "g1",
        "session_id": "s1", "message_id": "n1", "timestamp": "2026-01-01T00:00:00Z", "properties": {"value": 42}}]});
    assert_eq!(
        post(&ingest, "/v1/events", bearer(ACME_KEY), native)
            .await
            .0,
        StatusCode::OK
    );
    let calls = [
        (
            "/v1/track",
            json!({"userId": "u1", "event": "Signed Up", "messageId": "c1"}),
        ),
        (
            "/v1/identify",
            json!({"userId": "u1", "traits": {"plan": "pro"}, "messageId": "c2"}),
        ),
        (
            "/v1/group",
            json!({"userId": "u1", "groupId": "g1", "traits": {"teamSize": 12}, "messageId": "c3"}),
        ),
        (
            "/v1/page",
            json!({"anonymousId": "a1", "name": "Pricing", "messageId": "c4"}),
        ),
        (
            "/v1/screen",
            json!({"userId": "u1", "name": "Home", "messageId": "c5"}),
        ),
        (
            "/v1/alias",
            json!({"userId": "u1", "previousId": "a1", "messageId": "c6"}),
        ),
        (
            "/v1/batch",
            json!({"batch": [{"type": "track", "userId": "u2", "event": "x", "messageId": "c7"}]}),
        ),
    ];
    for (path, body) in calls {
        let (status, reply) = post(&ingest, path, Some(basic(ACME_KEY)), body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        assert_eq!(reply["success"], json!(true));
    }
    let published = ingest.published().await;
    assert_eq!(published.len(), 8);
    for (subject, id, event) in &published {
        assert_eq!(subject, "events.acme.web");
        assert_eq!(id, &format!("acme/web/{}", event.message_id));
        assert_eq!(
            (event.tenant.as_str(), event.source.as_str()),
            ("acme", "web")
        );
    }
    let kinds: Vec<(EventKind, Option<&str>)> = published
        .iter()
        .map(|(_, _, e)| (e.kind, e.name.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Track, Some("checkout_completed")),
            (EventKind::Track, Some("Signed Up")),
            (EventKind::Identify, None),
            (EventKind::Group, None),
            (EventKind::Page, Some("Pricing")),
            (EventKind::Screen, Some("Home")),
            (EventKind::Alias, None),
            (EventKind::Track, Some("x")),
        ]
    );
    let native = &published[0].2;
    assert_eq!(native.properties["value"], json!(42));
    assert_eq!(native.group_id.as_deref(), Some("g1"));
    assert_eq!(native.session_id.as_deref(), Some("s1"));
    assert_eq!(published[3].2.traits["teamSize"], json!(12));
    assert_eq!(published[6].2.previous_id.as_deref(), Some("a1"));
}

#[tokio::test]
async fn real_sdk_request_shapes_are_accepted() {
    let ingest = TestIngest::start(&[]).await;
    // analytics-node: gzip + basic auth + /v1/batch with batch-level sentAt and context.
    let body = json!({
        "batch": [
            {"type": "identify", "userId": "u9", "traits": {"email": "u9@example.com"}, "messageId": "node-1",
             "timestamp": "2026-01-01T00:00:00.000Z", "_metadata": {"nodeVersion": "20"}},
            {"type": "track", "userId": "u9", "event": "Order Completed", "messageId": "node-2",
             "properties": {"revenue": 9.5}, "timestamp": "2026-01-01T00:00:01.000Z"}
        ],
        "sentAt": "2026-01-01T00:00:02.000Z",
        "context": {"library": {"name": "analytics-node", "version": "1.3.0"}}
    });
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&serde_json::to_vec(&body).unwrap()).unwrap();
    let response = ingest
        .http
        .post(ingest.url("/v1/batch"))
        .header("Authorization", basic(ACME_KEY))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // analytics.js: short path, write key in the body, no Authorization header.
    let (status, _) = post(
        &ingest,
        "/v1/t",
        None,
        json!({"writeKey": ACME_KEY, "anonymousId": "anon-1", "event": "Clicked", "messageId": "js-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let published = ingest.published().await;
    let ids: Vec<&str> = published
        .iter()
        .map(|(_, _, e)| e.message_id.as_str())
        .collect();
    assert_eq!(ids, ["node-1", "node-2", "js-1"]);
    assert_eq!(
        published[1].2.context["library"]["name"],
        json!("analytics-node")
    );
}

#[tokio::test]
async fn a_retried_message_id_is_stored_once() {
    let ingest = TestIngest::start(&[]).await;
    let body = json!({"events": [{"event_type": "x", "user_id": "u", "message_id": "retry-me"}]});
    for _ in 0..3 {
        assert_eq!(
            post(&ingest, "/v1/events", bearer(ACME_KEY), body.clone())
                .await
                .0,
            StatusCode::OK
        );
    }
    // The same message id from another tenant is a different event.
    assert_eq!(
        post(&ingest, "/v1/events", bearer(GLOBEX_KEY), body)
            .await
            .0,
        StatusCode::OK
    );
    let subjects: Vec<String> = ingest
        .published()
        .await
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(subjects, ["events.acme.web", "events.globex.mobile"]);
}

#[tokio::test]
async fn every_bad_input_class_gets_its_status_and_body_and_publishes_nothing() {
    let ingest = TestIngest::start(&[]).await;
    let ok_event = json!({"event_type": "x", "user_id": "u"});
    let raw = |path: &'static str, body: Vec<u8>, auth: Option<String>| {
        let mut request = ingest.http.post(ingest.url(path)).body(body);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str, Option<u64>)> = vec![
        ("malformed JSON", raw("/v1/events", b"{\"events\": [".to_vec(), bearer(ACME_KEY)), 400, "malformed_json", None),
        ("wrong shape", raw("/v1/events", b"{\"batch\": []}".to_vec(), bearer(ACME_KEY)), 400, "invalid_body", None),
        (
            "invalid event",
            raw("/v1/events", serde_json::to_vec(&json!({"events": [ok_event, {"event_type": "x"}]})).unwrap(), bearer(ACME_KEY)),
            400,
            "invalid_event",
            Some(1),
        ),
        (
            "unknown key in event",
            raw("/v1/events", serde_json::to_vec(&json!({"events": [{"event_type": "x", "user_id": "u", "tenant": "globex"}]})).unwrap(), bearer(ACME_KEY)),
            400,
            "invalid_event",
            Some(0),
        ),
        ("oversize body", raw("/v1/events", vec![b' '; 600 * 1024], bearer(ACME_KEY)), 413, "body_too_large", None),
        (
            "oversize event",
            raw("/v1/events", serde_json::to_vec(&json!({"events": [{"event_type": "x", "user_id": "u", "properties": {"blob": "y".repeat(40_000)}}]})).unwrap(), bearer(ACME_KEY)),
            400,
            "event_too_large",
            Some(0),
        ),
        (
            "batch too long",
            raw("/v1/events", serde_json::to_vec(&json!({"events": vec![json!({"event_type": "x", "user_id": "u"}); 2501]})).unwrap(), bearer(ACME_KEY)),
            400,
            "batch_too_long",
            None,
        ),
        ("empty batch", raw("/v1/batch", b"{\"batch\": []}".to_vec(), Some(basic(ACME_KEY))), 400, "empty_batch", None),
        ("track without event", raw("/v1/track", b"{\"userId\": \"u\"}".to_vec(), Some(basic(ACME_KEY))), 400, "invalid_event", Some(0)),
        ("unknown key", raw("/v1/events", serde_json::to_vec(&json!({"events": [ok_event]})).unwrap(), bearer("wk_nope")), 401, "unauthorized", None),
        ("missing key", raw("/v1/events", serde_json::to_vec(&json!({"events": [ok_event]})).unwrap(), None), 401, "unauthorized", None),
        ("missing key in body", raw("/v1/track", b"{\"userId\": \"u\", \"event\": \"x\"}".to_vec(), None), 401, "unauthorized", None),
        (
            "tracking plan",
            raw("/v1/events", serde_json::to_vec(&json!({"events": [{"event_type": "checkout_completed", "user_id": "u", "properties": {"value": "12"}}]})).unwrap(), bearer(STRICT_KEY)),
            400,
            "tracking_plan_violation",
            Some(0),
        ),
        (
            "bad gzip",
            raw("/v1/batch", b"not gzip at all".to_vec(), Some(basic(ACME_KEY))).header("Content-Encoding", "gzip"),
            400,
            "unreadable_body",
            None,
        ),
    ];
    for (name, request, status, code, index) in cases {
        let response = request.send().await.expect(name);
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = response.json().await.expect(name);
        assert_eq!(body["error"]["code"], json!(code), "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
        assert_eq!(body["error"]["index"].as_u64(), index, "{name}: {body}");
        if code == "tracking_plan_violation" {
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("checkout_completed") && message.contains("value"),
                "{message}"
            );
        }
    }
    assert!(ingest.published().await.is_empty());
}

#[tokio::test]
async fn a_key_can_only_ever_write_as_its_own_tenant() {
    let ingest = TestIngest::start(&[]).await;
    // The header key wins over a body writeKey of another tenant.
    let (status, _) = post(
        &ingest,
        "/v1/track",
        Some(basic(GLOBEX_KEY)),
        json!({"writeKey": ACME_KEY, "userId": "u", "event": "x", "context": {"tenant": "acme"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let published = ingest.published().await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, "events.globex.mobile");
    assert_eq!(published[0].2.tenant, "globex");
}

#[tokio::test]
async fn nats_down_means_503_and_not_ready_and_recovery_needs_no_restart() {
    let mut ingest = TestIngest::start(&[]).await;
    let body =
        json!({"events": [{"event_type": "x", "user_id": "u", "message_id": "during-outage"}]});
    ingest.nats.stop();
    assert!(
        ingest.wait_ready(false).await,
        "/readyz should turn 503 while NATS is down"
    );
    let response = post_raw(&ingest, "/v1/events", bearer(ACME_KEY), &body).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        json!("unavailable")
    );

    ingest.nats.restart();
    assert!(
        ingest.wait_ready(true).await,
        "/readyz should recover once NATS is back"
    );
    assert_eq!(
        post(&ingest, "/v1/events", bearer(ACME_KEY), body).await.0,
        StatusCode::OK
    );
    assert_eq!(ingest.published().await.len(), 1);
}

#[tokio::test]
async fn a_changed_key_file_is_picked_up_without_restart() {
    let ingest = TestIngest::start(&[]).await;
    let body = json!({"events": [{"event_type": "x", "user_id": "u"}]});
    assert_eq!(
        post(&ingest, "/v1/events", bearer("wk_rotated"), body.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut keys = default_keys();
    keys.keys
        .retain(|k| k.tenant != "acme" || k.source != "web");
    keys.keys.push(key_entry("acme", "web", "wk_rotated", None));
    write_keys(&ingest.keys_file, &keys);
    let accepted = eventually(Duration::from_secs(10), || async {
        post(&ingest, "/v1/events", bearer("wk_rotated"), body.clone())
            .await
            .0
            == StatusCode::OK
    })
    .await;
    assert!(accepted, "the new key was never accepted");
    assert_eq!(
        post(&ingest, "/v1/events", bearer(ACME_KEY), body).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_broken_key_file_keeps_the_previous_keys() {
    let ingest = TestIngest::start(&[]).await;
    std::fs::write(&ingest.keys_file, b"{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let body = json!({"events": [{"event_type": "x", "user_id": "u"}]});
    assert_eq!(
        post(&ingest, "/v1/events", bearer(ACME_KEY), body).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    let ingest = TestIngest::start(&["--rate-limit-rps", "1", "--rate-limit-burst", "2"]).await;
    let body = json!({"events": [{"event_type": "x", "user_id": "u"}]});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            post(&ingest, "/v1/events", bearer(ACME_KEY), body.clone())
                .await
                .0
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    let response = post_raw(&ingest, "/v1/events", bearer(ACME_KEY), &body).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // Another key has its own budget.
    assert_eq!(
        post(&ingest, "/v1/events", bearer(GLOBEX_KEY), body)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_graceful_stop() {
    let ingest = TestIngest::start(&[]).await;
    let body = json!({"events": [{"event_type": "x", "user_id": "u"}]});
    assert_eq!(
        post(&ingest, "/v1/events", bearer(ACME_KEY), body).await.0,
        StatusCode::OK
    );
    let get = |path: &'static str| {
        let http = ingest.http.clone();
        let url = ingest.url(path);
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.status(), StatusCode::OK);
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"ingest_events_accepted_total{tenant="acme",source="web"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("ingest_publish_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"endpoint="events""#), "{metrics}");
    ingest.stop().await.expect("graceful stop");
}

#[tokio::test]
async fn cors_preflight_allows_browser_sdks() {
    let ingest = TestIngest::start(&[]).await;
    let response = ingest
        .http
        .request(reqwest::Method::OPTIONS, ingest.url("/v1/t"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn a_report_only_plan_accepts_violations_and_counts_them() {
    let ingest = TestIngest::start(&[]).await;
    let body = json!({"events": [{"event_type": "checkout_completed", "user_id": "u", "properties": {"value": "12"}}]});
    assert_eq!(
        post(&ingest, "/v1/events", bearer(REPORTING_KEY), body)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(ingest.published().await.len(), 1);
    let metrics = ingest
        .http
        .get(ingest.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"ingest_tracking_plan_violations_total{tenant="acme",source="reporting",mode="report_only"} 1"#),
        "{metrics}"
    );
}
