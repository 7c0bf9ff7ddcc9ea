//! "Guaranteed update": read-modify-write of one key that retries on conflict, the way the
//! Kubernetes API server changes every stored object.

use bytes::Bytes;

use crate::{Error, KeyValue, Revision, Store, WriteOptions};

/// What the closure of [`guaranteed_update`] decides to do with the key.
#[derive(Clone, Debug)]
pub enum UpdateAction {
    /// Store this value (create the key if it does not exist).
    Put(Bytes, WriteOptions),
    /// Delete the key (a no-op if it does not exist).
    Delete,
    /// Leave the key as it is.
    Keep,
}

/// What [`guaranteed_update`] did in the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The key now holds this value.
    Written(KeyValue),
    /// The key was deleted at `revision`; `prev` is what it held.
    Deleted { prev: KeyValue, revision: Revision },
    /// Nothing was written; this is the key as the closure last saw it.
    Unchanged(Option<KeyValue>),
}

/// Applies `f` to the current value of `key` and writes its decision, compare-and-swap
/// guarded; on a conflict `f` runs again on the newer value, until a write succeeds or `f`
/// returns an error.
///
/// `hint` is a value the caller believes current (for example from a cache); it saves the
/// first read and is corrected by the first conflict if it is stale.
pub async fn guaranteed_update<E, F>(
    store: &dyn Store,
    key: &str,
    hint: Option<Option<KeyValue>>,
    mut f: F,
) -> Result<UpdateOutcome, E>
where
    E: From<Error>,
    F: FnMut(Option<&KeyValue>) -> Result<UpdateAction, E>,
{
    let mut current = match hint {
        Some(kv) => kv,
        None => store.get(key).await?,
    };
    loop {
        let action = f(current.as_ref())?;
        let result = match (action, &current) {
            (UpdateAction::Keep, _) => return Ok(UpdateOutcome::Unchanged(current)),
            (UpdateAction::Put(value, opts), None) => store.create(key, value, opts).await,
            (UpdateAction::Put(value, opts), Some(cur)) => {
                store.update(key, value, cur.mod_revision, opts).await
            }
            (UpdateAction::Delete, None) => return Ok(UpdateOutcome::Unchanged(None)),
            (UpdateAction::Delete, Some(cur)) => {
                match store.delete(key, Some(cur.mod_revision)).await {
                    Ok((prev, revision)) => return Ok(UpdateOutcome::Deleted { prev, revision }),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(kv) => return Ok(UpdateOutcome::Written(kv)),
            Err(Error::Conflict { current: now, .. }) => current = Some(*now),
            Err(Error::NotFound { .. }) => current = None,
            Err(Error::AlreadyExists { .. }) => current = store.get(key).await?,
            Err(e) => return Err(e.into()),
        }
    }
}
