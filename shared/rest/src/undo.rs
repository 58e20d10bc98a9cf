//! A plain REST API has no transactions: a failed batch is compensated, best effort, by
//! deleting what it created or putting back what it patched.

use hyper::Method;
use serde_json::Value;
use switchboard::ids::{EntityName, RecordId};
use switchboard::spec::rest::Paths;

use crate::transport::Ctx;
use crate::{RestData, id_text};

impl RestData {
    /// Compensation for a failed batch create: deletes what it created, best effort.
    pub(crate) async fn undo_creates(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        made: &[Value],
    ) {
        for record in made {
            let Some(id) = record.get("id").and_then(id_text) else {
                tracing::error!(%entity, "cannot undo a batch create: the created record has no id");
                continue;
            };
            if let Err(e) = self.remove(cx, entity, paths, &id, None).await {
                tracing::error!(%entity, %id, error = %e, "could not undo a batch create; remove the record by hand");
            }
        }
    }

    /// Compensation for a failed batch update: puts the previous versions back, best effort.
    pub(crate) async fn undo_updates(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        done: &[(RecordId, Value)],
    ) {
        for (id, previous) in done {
            let url = self.item_url(paths, id.as_str());
            match self
                .call(cx, entity, Method::PUT, url, Some(previous), None)
                .await
            {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => {
                    tracing::error!(%entity, %id, status = %r.status, "could not undo a batch update; restore the record by hand");
                }
                Err(e) => {
                    tracing::error!(%entity, %id, error = %e, "could not undo a batch update; restore the record by hand");
                }
            }
        }
    }
}
