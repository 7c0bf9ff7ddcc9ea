//! The in-memory backend: the whole history in ordered maps behind one mutex. For tests and
//! hollow-node benchmarks; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::hub::{History, Hub};
use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, RangeRequest, RangeResponse, Result, Revision,
    Store, WatchOptions, WatchStream, WriteOptions,
};

/// How often keys with a TTL are checked for expiry.
const EXPIRY_TICK: Duration = Duration::from_millis(200);

/// One revision of one key.
struct Row {
    key: String,
    value: Bytes,
    create_revision: Revision,
    version: i64,
    deleted: bool,
    /// The key's previous row (0: none).
    prev: Revision,
    /// Wall-clock expiry in ms since the epoch (0: never).
    expires_ms: u64,
}

impl Row {
    fn kv(&self, revision: Revision) -> KeyValue {
        KeyValue {
            key: self.key.clone(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: revision,
            version: self.version,
        }
    }
}

#[derive(Default)]
struct State {
    /// Every retained row by revision.
    log: BTreeMap<Revision, Row>,
    /// Per key, the revisions of its retained rows, oldest first.
    keys: BTreeMap<String, Vec<Revision>>,
    revision: Revision,
    compacted: Revision,
}

impl State {
    /// The live row of `key` and its revision.
    fn live(&self, key: &str) -> Option<(Revision, &Row)> {
        let rev = *self.keys.get(key)?.last()?;
        let row = &self.log[&rev];
        (!row.deleted).then_some((rev, row))
    }

    /// The live row of `key` as of `at`.
    fn live_at(&self, revs: &[Revision], at: Revision) -> Option<(Revision, &Row)> {
        let idx = revs.partition_point(|&r| r <= at);
        let rev = *revs.get(idx.checked_sub(1)?)?;
        let row = &self.log[&rev];
        (!row.deleted).then_some((rev, row))
    }

    fn append(&mut self, row: Row) -> Revision {
        self.revision += 1;
        let rev = self.revision;
        self.keys.entry(row.key.clone()).or_default().push(rev);
        self.log.insert(rev, row);
        rev
    }

    fn event(&self, rev: Revision, row: &Row) -> Event {
        let prev_kv = match self.log.get(&row.prev) {
            Some(prev) if !prev.deleted => Some(prev.kv(row.prev)),
            _ => None,
        };
        if row.deleted {
            Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: row.key.clone(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: rev,
                    version: 0,
                },
                prev_kv,
            }
        } else {
            Event {
                kind: EventKind::Put,
                kv: row.kv(rev),
                prev_kv,
            }
        }
    }

    fn forget(&mut self, rev: Revision) {
        if let Some(row) = self.log.remove(&rev)
            && let Some(revs) = self.keys.get_mut(&row.key)
        {
            revs.retain(|&r| r != rev);
            if revs.is_empty() {
                self.keys.remove(&row.key);
            }
        }
    }
}

struct Shared {
    state: Mutex<State>,
    hub: Arc<Hub>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a row, publishes its event, and returns its revision.
    fn write(&self, state: &mut State, row: Row) -> (Revision, Event) {
        let rev = state.append(row);
        let event = state.event(rev, &state.log[&rev]);
        self.hub.publish(vec![event.clone()], rev);
        (rev, event)
    }

    fn delete_locked(
        &self,
        state: &mut State,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision)> {
        let Some((rev, row)) = state.live(key) else {
            return Err(Error::NotFound {
                key: key.to_string(),
            });
        };
        let prev = row.kv(rev);
        if let Some(expected) = expected
            && expected != rev
        {
            return Err(Error::Conflict {
                key: key.to_string(),
                expected,
                current: Box::new(prev),
            });
        }
        let (del_rev, _) = self.write(
            state,
            Row {
                key: key.to_string(),
                value: Bytes::new(),
                create_revision: 0,
                version: 0,
                deleted: true,
                prev: rev,
                expires_ms: 0,
            },
        );
        Ok((prev, del_rev))
    }

    fn expire(&self, now_ms: u64) {
        let mut state = self.lock();
        let expired: Vec<String> = state
            .keys
            .iter()
            .filter_map(|(key, revs)| {
                let row = &state.log[revs.last()?];
                (!row.deleted && row.expires_ms != 0 && row.expires_ms <= now_ms)
                    .then(|| key.clone())
            })
            .collect();
        for key in expired {
            let _ = self.delete_locked(&mut state, &key, None);
        }
    }
}

#[async_trait]
impl History for Shared {
    async fn events(
        self: Arc<Self>,
        range: &KeyRange,
        from: Revision,
        to: Revision,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let state = self.lock();
        if from < state.compacted {
            return Err(Error::Compacted {
                requested: from,
                compacted: state.compacted,
            });
        }
        Ok(state
            .log
            .range(from..=to)
            .filter(|(_, row)| range.contains(row.key.as_bytes()))
            .take(limit)
            .map(|(&rev, row)| state.event(rev, row))
            .collect())
    }
}

/// The in-memory backend.
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// An empty store at revision 1. Must be called inside a tokio runtime (a task expires
    /// keys with a TTL).
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                revision: 1,
                ..State::default()
            }),
            hub: Arc::new(Hub::new(1)),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_TICK);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                shared.expire(crate::now_ms());
            }
        });
        MemoryStore { shared }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        self.shared.hub.close();
    }
}

fn expiry(opts: &WriteOptions) -> u64 {
    opts.ttl
        .map(|ttl| crate::now_ms() + ttl.as_millis() as u64)
        .unwrap_or(0)
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let state = self.shared.lock();
        Ok(state.live(key).map(|(rev, row)| row.kv(rev)))
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let state = self.shared.lock();
        let at = if req.revision == 0 {
            state.revision
        } else {
            req.revision
        };
        if at > state.revision {
            return Err(Error::FutureRevision {
                requested: at,
                current: state.revision,
            });
        }
        if at < state.compacted {
            return Err(Error::Compacted {
                requested: at,
                compacted: state.compacted,
            });
        }
        let mut resp = RangeResponse {
            revision: state.revision,
            ..Default::default()
        };
        let keys = state
            .keys
            .range::<str, _>((
                std::ops::Bound::Included(String::from_utf8_lossy(&req.range.start).as_ref()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| req.range.contains(k.as_bytes()));
        for (_, revs) in keys {
            let Some((rev, row)) = state.live_at(revs, at) else {
                continue;
            };
            resp.count += 1;
            if req.count_only {
                continue;
            }
            if req.limit > 0 && resp.kvs.len() as i64 >= req.limit {
                resp.more = true;
                continue;
            }
            resp.kvs.push(row.kv(rev));
        }
        Ok(resp)
    }

    async fn create(&self, key: &str, value: Bytes, opts: WriteOptions) -> Result<KeyValue> {
        let mut state = self.shared.lock();
        if state.live(key).is_some() {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        let prev = state
            .keys
            .get(key)
            .and_then(|r| r.last().copied())
            .unwrap_or(0);
        let rev = state.revision + 1;
        let (_, event) = self.shared.write(
            &mut state,
            Row {
                key: key.to_string(),
                value,
                create_revision: rev,
                version: 1,
                deleted: false,
                prev,
                expires_ms: expiry(&opts),
            },
        );
        Ok(event.kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        opts: WriteOptions,
    ) -> Result<KeyValue> {
        let mut state = self.shared.lock();
        let Some((rev, row)) = state.live(key) else {
            return Err(Error::NotFound {
                key: key.to_string(),
            });
        };
        if rev != expected_mod_revision {
            return Err(Error::Conflict {
                key: key.to_string(),
                expected: expected_mod_revision,
                current: Box::new(row.kv(rev)),
            });
        }
        let new = Row {
            key: key.to_string(),
            value,
            create_revision: row.create_revision,
            version: row.version + 1,
            deleted: false,
            prev: rev,
            expires_ms: expiry(&opts),
        };
        let (_, event) = self.shared.write(&mut state, new);
        Ok(event.kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)> {
        let mut state = self.shared.lock();
        self.shared
            .delete_locked(&mut state, key, expected_mod_revision)
    }

    async fn watch(
        &self,
        range: KeyRange,
        start_revision: Revision,
        opts: WatchOptions,
    ) -> Result<WatchStream> {
        self.shared
            .hub
            .watch(self.shared.clone(), range, start_revision, opts)
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.shared.lock();
        if revision > state.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        if revision <= state.compacted {
            return Ok(());
        }
        let from = state.compacted;
        state.compacted = revision;
        let revs: Vec<Revision> = state.log.range(from..revision).map(|(&r, _)| r).collect();
        for rev in revs {
            let Some(row) = state.log.get(&rev) else {
                continue;
            };
            let (prev, deleted) = (row.prev, row.deleted);
            if prev > 0 {
                state.forget(prev);
            }
            if deleted {
                state.forget(rev);
            }
        }
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.lock().compacted)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
