//! An in-process FAKE of the Kubernetes API server, behind a real `kube::Client`.
//!
//! Why a fake: no kube-apiserver, k3s, kind or envtest can be installed on the machines these
//! tests run on (see ../shared/NOTES.md), so the reconcilers are driven against this instead,
//! as kube-rs's `controller-rs` example does. It keeps objects in a map keyed by their path
//! and understands what the operator sends: GET / LIST, server-side apply (approximated as a
//! JSON merge: field ownership between managers is not modelled), merge and JSON patches,
//! status subresources, POSTed Events, and injected failures. It validates nothing a real API
//! server would (schemas, RBAC, admission): that is what the `#[ignore]`d real-cluster path
//! and the Helm/kubernetes-validate checks are for.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    requests: Vec<(Method, String)>,
    failing: Vec<String>,
    version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi(Arc<Mutex<State>>);

/// `(object key, subresource)` of a request path: the key is the path up to the object name.
fn split(path: &str) -> (String, Option<String>, bool) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // api/v1/namespaces/ns/plural[/name[/sub]] or apis/g/v/namespaces/ns/plural[/name[/sub]]
    let base = if parts.first() == Some(&"api") { 2 } else { 3 };
    let collection_len = base + 3;
    if parts.len() <= collection_len {
        return (format!("/{}", parts.join("/")), None, true);
    }
    let key = format!("/{}", parts[..=collection_len].join("/"));
    let sub = parts.get(collection_len + 1).map(|s| s.to_string());
    (key, sub, false)
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn failure(code: u16, reason: &str, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(
        status,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

impl FakeApi {
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores an object as if a user had applied it.
    pub fn put(&self, path: &str, mut object: Value) {
        let mut state = self.0.lock().unwrap();
        state.version += 1;
        object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        }
        if object["metadata"]["generation"].is_null() {
            object["metadata"]["generation"] = json!(1);
        }
        state.objects.insert(path.to_string(), object);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.0.lock().unwrap().objects.get(path).cloned()
    }

    /// Objects whose path starts with `prefix`.
    pub fn under(&self, prefix: &str) -> Vec<Value> {
        let state = self.0.lock().unwrap();
        state
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<(Method, String)> {
        self.0.lock().unwrap().requests.clone()
    }

    /// Requests whose path contains `fragment` fail with 500 from now on.
    pub fn fail(&self, fragment: &str) {
        self.0.lock().unwrap().failing.push(fragment.into());
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = match request.into_body().collect_bytes().await {
            Ok(bytes) if bytes.is_empty() => Value::Null,
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                Err(e) => return failure(400, "BadRequest", &e.to_string()),
            },
            Err(e) => return failure(400, "BadRequest", &e.to_string()),
        };
        let mut state = self.0.lock().unwrap();
        state.requests.push((method.clone(), path.clone()));
        if state.failing.iter().any(|f| path.contains(f.as_str())) {
            return failure(500, "InternalError", "injected failure");
        }
        let (key, sub, is_collection) = split(&path);
        state.version += 1;
        let version = state.version.to_string();
        match (method, is_collection) {
            (Method::GET, true) => {
                let prefix = format!("{key}/");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .map(|(_, v)| v.clone())
                    .collect();
                respond(
                    StatusCode::OK,
                    &json!({"metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            (Method::POST, true) => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("generated-{version}"));
                let mut object = body;
                object["metadata"]["name"] = json!(name);
                object["metadata"]["resourceVersion"] = json!(version);
                state
                    .objects
                    .insert(format!("{key}/{name}"), object.clone());
                respond(StatusCode::CREATED, &object)
            }
            (Method::GET, false) => match state.objects.get(&key) {
                Some(object) => respond(StatusCode::OK, object),
                None => failure(404, "NotFound", &format!("{key} not found")),
            },
            (Method::DELETE, false) => match state.objects.remove(&key) {
                Some(object) => respond(StatusCode::OK, &object),
                None => failure(404, "NotFound", &format!("{key} not found")),
            },
            (Method::PATCH, false) => {
                let existing = state.objects.get(&key).cloned();
                let mut object = match (existing, content_type.as_str()) {
                    (Some(object), _) => object,
                    (None, "application/apply-patch+yaml") if sub.is_none() => {
                        json!({"metadata": {"uid": uuid::Uuid::new_v4().to_string(), "generation": 1}})
                    }
                    (None, _) => return failure(404, "NotFound", &format!("{key} not found")),
                };
                match content_type.as_str() {
                    "application/json-patch+json" => {
                        // A real server reads an absent list as null for `test`.
                        if object["metadata"].get("finalizers").is_none() {
                            object["metadata"]["finalizers"] = Value::Null;
                        }
                        let ops: Vec<json_patch::PatchOperation> =
                            match serde_json::from_value(body) {
                                Ok(ops) => ops,
                                Err(e) => return failure(400, "BadRequest", &e.to_string()),
                            };
                        if let Err(e) = json_patch::patch(&mut object, &ops) {
                            return failure(422, "Invalid", &e.to_string());
                        }
                    }
                    _ if sub.as_deref() == Some("status") => {
                        json_patch::merge(&mut object["status"], &body["status"]);
                    }
                    _ => json_patch::merge(&mut object, &body),
                }
                object["metadata"]["resourceVersion"] = json!(version);
                state.objects.insert(key, object.clone());
                respond(StatusCode::OK, &object)
            }
            (method, _) => failure(405, "MethodNotAllowed", &format!("{method} {path}")),
        }
    }
}
