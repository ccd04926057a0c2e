//! The Source's entry in the write-keys Secret ingest mounts. Every Source writes one data key
//! of the same Secret, so entries are set and removed with JSON merge patches that touch only
//! that key: Sources reconciled concurrently never overwrite each other.

use super::{Context, Error};
use crate::desired::{FIELD_MANAGER, write_keys_entry_name};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use model::keyring::KeyFile;
use serde_json::json;

fn api(ctx: &Context) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), &ctx.namespace)
}

/// Sets the Source's entry, creating the Secret when it is the first.
pub async fn put(
    ctx: &Context,
    namespace: &str,
    source: &str,
    file: &KeyFile,
) -> Result<(), Error> {
    let api = api(ctx);
    let text = serde_json::to_vec(file).map_err(|e| Error::Render(e.to_string()))?;
    let entry = write_keys_entry_name(namespace, source);
    let patch = Patch::Merge(json!({"data": {entry: ByteString(text)}}));
    let merge = PatchParams::default();
    let set = || api.patch(&ctx.write_keys_secret, &merge, &patch);
    match set().await {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    // The first Source: create the Secret (empty, owned by the operator's field manager).
    let shell = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": ctx.write_keys_secret,
            "labels": {"app.kubernetes.io/name": "customersignal", "app.kubernetes.io/component": "write-keys"}
        },
        "type": "Opaque"
    });
    api.patch(
        &ctx.write_keys_secret,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&shell),
    )
    .await?;
    set().await?;
    Ok(())
}

/// Removes the Source's entry; nothing to do when the Secret or the entry is gone already.
pub async fn remove(ctx: &Context, namespace: &str, source: &str) -> Result<(), Error> {
    let entry = write_keys_entry_name(namespace, source);
    let patch = json!({"data": {entry: null}});
    match api(ctx)
        .patch(
            &ctx.write_keys_secret,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
