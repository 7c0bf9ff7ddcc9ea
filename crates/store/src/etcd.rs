//! The etcd backend: the [`Store`] trait over the etcd v3 API, for clusters of several
//! servers.
//!
//! Writes are etcd transactions comparing create or mod revisions, exactly as the upstream
//! API server does them. Watches re-open from the last delivered revision when the stream
//! breaks, so an etcd restart or a network hiccup costs no events. Keys with a TTL share
//! etcd leases granted at most once per TTL per reuse window. Compaction is coordinated
//! through the `compact_rev_key` key, as upstream's API servers coordinate it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    KvClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchClient,
};
use tokio::sync::mpsc;
use tonic::Code;

use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, RangeRequest, RangeResponse, Result, Revision,
    Store, WatchMessage, WatchOptions, WatchStream, WriteOptions,
};

/// The key that records the last compaction (the same key upstream uses).
pub const COMPACT_KEY: &str = "compact_rev_key";

/// How to reach an etcd cluster.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// CA bundle to verify the servers (TLS).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (TLS client authentication).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Limit on each request.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdConfig {
            endpoints,
            ca_file: None,
            cert_file: None,
            key_file: None,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// A lease shared by keys written with the same TTL within a short window.
struct Lease {
    id: i64,
    granted: Instant,
}

/// Largest gRPC message accepted from etcd (upstream's API server allows 2 GiB too): a range
/// of 10,000 objects of 1 KiB is already 10 MB.
const MAX_MESSAGE: usize = i32::MAX as usize;

/// One member endpoint and its connection.
struct Member {
    endpoint: String,
    client: Client,
    kv: KvClient,
    watch: WatchClient,
}

/// The members of the cluster, and the one requests currently go to.
///
/// Requests go to one member at a time. When a request fails in a way that shows it never
/// reached the member (refused or failed connection, no leader), it is tried on the next
/// member and that one becomes current — as upstream's etcd client fails over. A request that
/// times out is not retried: it may have been applied.
struct Members {
    list: Vec<Member>,
    current: AtomicUsize,
}

impl Members {
    fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.list.len()
    }

    /// Moves on from member `from` (if it is still the current one).
    fn advance(&self, from: usize) {
        let _ = self.current.compare_exchange(
            from,
            (from + 1) % self.list.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    async fn call<T, F, Fut>(&self, timeout: Duration, op: F) -> Result<T>
    where
        F: Fn(&Member) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut last = None;
        for _ in 0..self.list.len() {
            let i = self.current();
            let member = &self.list[i];
            match tokio::time::timeout(timeout, op(member)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if not_sent(&e) => {
                    tracing::debug!(endpoint = %member.endpoint, error = %e, "etcd member unreachable; trying the next");
                    last = Some(map_err(e));
                    self.advance(i);
                }
                Ok(Err(e)) => return Err(map_err(e)),
                Err(_) => {
                    self.advance(i);
                    return Err(Error::Unavailable(format!(
                        "etcd ({}) did not answer within {timeout:?}",
                        member.endpoint
                    )));
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no etcd endpoints".into())))
    }
}

/// Whether a failed request certainly never reached etcd (so it is safe to send elsewhere).
fn not_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message();
            status.code() == Code::Unavailable
                && (msg.contains("connect") || msg.contains("refused") || msg.contains("no leader"))
        }
        _ => false,
    }
}

/// The etcd backend.
pub struct EtcdStore {
    members: Arc<Members>,
    timeout: Duration,
    leases: Mutex<HashMap<u64, Lease>>,
}

fn map_err(e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                Error::Unavailable(status.message().to_string())
            }
            Code::Unknown if status.message().contains("transport") => {
                Error::Unavailable(status.message().to_string())
            }
            _ => Error::Backend(format!("etcd: {}", status.message())),
        },
        E::TransportError(e) => Error::Unavailable(format!("etcd: {e}")),
        E::IoError(e) => Error::Unavailable(format!("etcd: {e}")),
        E::WatchError(e) => Error::Unavailable(format!("etcd watch: {e}")),
        other => Error::Backend(format!("etcd: {other}")),
    }
}

fn key_string(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: key_string(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
    }
}

fn range_end(range: &KeyRange) -> Vec<u8> {
    if range.end.is_empty() {
        vec![0]
    } else {
        range.end.clone()
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Revision {
    h.map(|h| h.revision()).unwrap_or(0)
}

impl EtcdStore {
    /// Connects to the cluster. The connection is made lazily: an unreachable cluster makes
    /// each operation fail with [`Error::Unavailable`] until it is back.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if config.ca_file.is_some() || config.cert_file.is_some() {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| {
                    Error::InvalidArgument(format!("cannot read {}: {e}", p.display()))
                })
            };
            let mut tls = TlsOptions::new();
            if let Some(ca) = &config.ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            match (&config.cert_file, &config.key_file) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
                }
                (None, None) => {}
                _ => {
                    return Err(Error::InvalidArgument(
                        "an etcd client certificate needs both a certificate and a key file".into(),
                    ));
                }
            }
            options = options.with_tls(tls);
        }
        if config.endpoints.is_empty() {
            return Err(Error::InvalidArgument("no etcd endpoints given".into()));
        }
        let mut list = Vec::new();
        for endpoint in &config.endpoints {
            let client = Client::connect([endpoint], Some(options.clone()))
                .await
                .map_err(map_err)?;
            list.push(Member {
                endpoint: endpoint.clone(),
                kv: client
                    .kv_client()
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
                watch: client.watch_client().max_decoding_message_size(MAX_MESSAGE),
                client,
            });
        }
        Ok(EtcdStore {
            members: Arc::new(Members {
                list,
                current: AtomicUsize::new(0),
            }),
            timeout: config.request_timeout,
            leases: Mutex::new(HashMap::new()),
        })
    }

    /// Runs a key-value request on the current member, failing over as [`Members`] does.
    async fn kv<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(KvClient) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.members.call(self.timeout, |m| op(m.kv.clone())).await
    }

    /// A lease for a key that must live `ttl`, reusing a recent one where possible.
    async fn lease(&self, ttl: Duration) -> Result<i64> {
        let secs = ttl.as_secs_f64().ceil().max(1.0) as u64;
        // A lease is reused for up to 5% of the TTL (at most a minute) and granted that much
        // longer, so every key lives at least its TTL.
        let window = (secs / 20).min(60);
        if window > 0 {
            let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(lease) = leases.get(&secs)
                && lease.granted.elapsed() < Duration::from_secs(window)
            {
                return Ok(lease.id);
            }
        }
        let ttl_secs = (secs + window) as i64;
        let resp = self
            .members
            .call(self.timeout, |m| {
                let mut client = m.client.clone();
                async move { client.lease_grant(ttl_secs, None).await }
            })
            .await?;
        if window > 0 {
            self.leases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    secs,
                    Lease {
                        id: resp.id(),
                        granted: Instant::now(),
                    },
                );
        }
        Ok(resp.id())
    }

    async fn put_options(&self, opts: &WriteOptions) -> Result<PutOptions> {
        let mut put = PutOptions::new().with_prev_key();
        if let Some(ttl) = opts.ttl {
            put = put.with_lease(self.lease(ttl).await?);
        }
        Ok(put)
    }

    /// The answer of a failed compare: the key's current value, if any.
    fn current_from(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
        resp.op_responses().iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(to_kv),
            _ => None,
        })
    }

    /// Turns etcd's "compacted"/"future revision" errors into ours, with the numbers.
    async fn revision_error(&self, e: Error, requested: Revision) -> Error {
        let Error::Backend(msg) = &e else { return e };
        if msg.contains("required revision has been compacted") {
            Error::Compacted {
                requested,
                compacted: self.compacted_revision().await.unwrap_or(0),
            }
        } else if msg.contains("future revision") {
            Error::FutureRevision {
                requested,
                current: self.current_revision().await.unwrap_or(0),
            }
        } else {
            e
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .kv(|mut kv| async move { kv.get(key, None).await })
            .await?;
        Ok(resp.kvs().first().map(to_kv))
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let mut opts = GetOptions::new().with_range(range_end(&req.range));
        if req.limit > 0 {
            opts = opts.with_limit(req.limit);
        }
        if req.revision > 0 {
            opts = opts.with_revision(req.revision);
        }
        if req.count_only {
            opts = opts.with_count_only();
        }
        let start = &req.range.start;
        let resp = match self
            .kv(|mut kv| {
                let (start, opts) = (start.clone(), opts.clone());
                async move { kv.get(start, Some(opts)).await }
            })
            .await
        {
            Ok(resp) => resp,
            Err(e) => return Err(self.revision_error(e, req.revision).await),
        };
        Ok(RangeResponse {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            more: resp.more(),
            count: resp.count(),
            revision: header_revision(resp.header()),
        })
    }

    async fn create(&self, key: &str, value: Bytes, opts: WriteOptions) -> Result<KeyValue> {
        let put = self.put_options(&opts).await?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), Some(put))]);
        let resp = self
            .kv(|mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        let rev = header_revision(resp.header());
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        opts: WriteOptions,
    ) -> Result<KeyValue> {
        let put = self.put_options(&opts).await?;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key,
                CompareOp::Equal,
                expected_mod_revision,
            )])
            .and_then([TxnOp::put(key, value.to_vec(), Some(put))])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .kv(|mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?;
        if !resp.succeeded() {
            return Err(match Self::current_from(&resp) {
                None => Error::NotFound {
                    key: key.to_string(),
                },
                Some(current) => Error::Conflict {
                    key: key.to_string(),
                    expected: expected_mod_revision,
                    current: Box::new(current),
                },
            });
        }
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Put(put) => put.prev_key().map(to_kv),
            _ => None,
        });
        let Some(prev) = prev else {
            // The compare matched, so the key existed; etcd always returns it with prev_kv.
            return Err(Error::Backend("etcd returned no previous value".into()));
        };
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: prev.create_revision,
            mod_revision: header_revision(resp.header()),
            version: prev.version + 1,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)> {
        // Unconditional deletes still go through a transaction so that "not found" and the
        // deleted value come back in one round trip.
        let compare = match expected_mod_revision {
            Some(rev) => Compare::mod_revision(key, CompareOp::Equal, rev),
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .kv(|mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?;
        if !resp.succeeded() {
            return Err(match (Self::current_from(&resp), expected_mod_revision) {
                (Some(current), Some(expected)) => Error::Conflict {
                    key: key.to_string(),
                    expected,
                    current: Box::new(current),
                },
                _ => Error::NotFound {
                    key: key.to_string(),
                },
            });
        }
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(del) => del.prev_kvs().first().map(to_kv),
            _ => None,
        });
        match prev {
            Some(prev) => Ok((prev, header_revision(resp.header()))),
            None => Err(Error::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(
        &self,
        range: KeyRange,
        start_revision: Revision,
        opts: WatchOptions,
    ) -> Result<WatchStream> {
        if start_revision < 0 {
            return Err(Error::InvalidArgument(format!(
                "watch start revision {start_revision} is negative"
            )));
        }
        let start = if start_revision == 0 {
            self.current_revision().await? + 1
        } else {
            start_revision
        };
        let (tx, rx) = mpsc::channel(128);
        let members = self.members.clone();
        let task = tokio::spawn(async move {
            let mut watch = EtcdWatch {
                members,
                range,
                opts,
                next: start,
                tx,
            };
            if let Err(e) = watch.run().await {
                let _ = watch.tx.send(Err(e)).await;
            }
        });
        Ok(WatchStream::new(rx, task))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .kv(|mut kv| async move {
                kv.get(COMPACT_KEY, Some(GetOptions::new().with_count_only()))
                    .await
            })
            .await?;
        Ok(header_revision(resp.header()))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let marker = self
            .kv(|mut kv| async move { kv.get(COMPACT_KEY, None).await })
            .await?;
        let (done, version) = marker
            .kvs()
            .first()
            .map(|kv| {
                let done = std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.parse::<Revision>().ok())
                    .unwrap_or(0);
                (done, kv.version())
            })
            .unwrap_or((0, 0));
        if revision <= done {
            return Ok(());
        }
        let current = header_revision(marker.header());
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        // Whoever moves the marker compacts; a server that loses the race leaves it to the
        // winner, as upstream's API servers do.
        let txn = Txn::new()
            .when([Compare::version(COMPACT_KEY, CompareOp::Equal, version)])
            .and_then([TxnOp::put(COMPACT_KEY, revision.to_string(), None)]);
        let won = self
            .kv(|mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?
            .succeeded();
        if !won {
            return Ok(());
        }
        match self
            .kv(|mut kv| async move { kv.compact(revision, None).await })
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Backend(msg)) if msg.contains("compacted") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        let resp = self
            .kv(|mut kv| async move { kv.get(COMPACT_KEY, None).await })
            .await?;
        Ok(resp
            .kvs()
            .first()
            .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok())
            .unwrap_or(0))
    }

    fn backend(&self) -> &'static str {
        "etcd"
    }
}

/// One watch, re-opened from the next undelivered revision whenever the stream breaks.
struct EtcdWatch {
    members: Arc<Members>,
    range: KeyRange,
    opts: WatchOptions,
    /// The first revision not yet delivered.
    next: Revision,
    tx: mpsc::Sender<Result<WatchMessage>>,
}

impl EtcdWatch {
    async fn run(&mut self) -> Result<()> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.stream().await {
                Ok(()) => return Ok(()),
                Err(e @ (Error::Compacted { .. } | Error::Closed)) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, next = self.next, "etcd watch broke; re-watching");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.tx.closed() => return Ok(()),
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Follows one watch stream. `Ok` means the consumer went away.
    async fn stream(&mut self) -> Result<()> {
        let mut options = etcd_client::WatchOptions::new()
            .with_range(range_end(&self.range))
            .with_start_revision(self.next);
        if self.opts.prev_kv {
            options = options.with_prev_key();
        }
        let member = self.members.current();
        let mut client = self.members.list[member].watch.clone();
        let mut stream = match client.watch(self.range.start.clone(), Some(options)).await {
            Ok(stream) => stream,
            Err(e) => {
                // Re-watch on the next member.
                self.members.advance(member);
                return Err(map_err(e));
            }
        };
        let mut last_sent = tokio::time::Instant::now();
        loop {
            let progress_at = self.opts.progress_interval.map(|d| last_sent + d);
            let msg = tokio::select! {
                msg = stream.message() => msg.map_err(map_err)?,
                _ = crate::sleep_until_opt(progress_at) => {
                    stream.request_progress().await.map_err(map_err)?;
                    last_sent = tokio::time::Instant::now();
                    continue;
                }
                _ = self.tx.closed() => return Ok(()),
            };
            let Some(resp) = msg else {
                return Err(Error::Unavailable("etcd closed the watch stream".into()));
            };
            if resp.canceled() {
                if resp.compact_revision() > 0 {
                    return Err(Error::Compacted {
                        requested: self.next,
                        compacted: resp.compact_revision(),
                    });
                }
                return Err(Error::Unavailable(format!(
                    "etcd canceled the watch: {}",
                    resp.cancel_reason()
                )));
            }
            if resp.created() {
                continue;
            }
            let events: Vec<Event> = resp
                .events()
                .iter()
                .filter_map(|e| {
                    let kv = e.kv()?;
                    Some(Event {
                        kind: match e.event_type() {
                            etcd_client::EventType::Put => EventKind::Put,
                            etcd_client::EventType::Delete => EventKind::Delete,
                        },
                        kv: to_kv(kv),
                        prev_kv: e.prev_kv().map(to_kv),
                    })
                })
                .filter(|e| e.revision() >= self.next)
                .collect();
            let msg = if let Some(last) = events.last() {
                self.next = last.revision() + 1;
                WatchMessage::Events(events)
            } else if resp.events().is_empty() && self.opts.progress_interval.is_some() {
                // A progress notification: everything up to the header revision is delivered.
                let rev = header_revision(resp.header());
                if rev < self.next - 1 {
                    continue;
                }
                self.next = rev + 1;
                WatchMessage::Progress(rev)
            } else {
                continue;
            };
            if self.tx.send(Ok(msg)).await.is_err() {
                return Ok(());
            }
            last_sent = tokio::time::Instant::now();
        }
    }
}
