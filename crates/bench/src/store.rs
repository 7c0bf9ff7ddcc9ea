//! `rkube bench store`: the storage backends side by side in one run.
//!
//! Phases, each on a fresh key prefix of the same store: creates of 1 KiB values from 1 and
//! from 64 concurrent writers; gets (one client, and 64); a range read of 10,000 keys whole
//! and in pages of 500; fan-out of writes to 100 watchers; and the datastore's size on disk
//! while 10,000 keys are updated a million times with compaction running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use rand::Rng;
use rkube_store::compactor::{self, CompactorConfig};
use rkube_store::etcd::{EtcdConfig, EtcdStore};
use rkube_store::etcd_process::EtcdProcess;
use rkube_store::sqlite::SqliteStore;
use rkube_store::{KeyRange, RangeRequest, Store, WatchMessage, WatchOptions, WriteOptions};

use crate::stats::Latencies;

/// A backend to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Etcd,
    Memory,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "etcd" => Ok(Backend::Etcd),
            "memory" => Ok(Backend::Memory),
            other => Err(format!("unknown backend {other:?} (sqlite, etcd, memory)")),
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub backends: Vec<Backend>,
    /// How long each throughput phase runs.
    pub phase: Duration,
    /// Size of each value.
    pub value_size: usize,
    /// Keys for the range, get and update phases.
    pub keys: usize,
    /// Watchers in the fan-out phase, and writes they all receive.
    pub watchers: usize,
    pub watch_writes: usize,
    /// Updates in the disk-size phase (0 skips it), and the history the compactor keeps.
    pub updates: u64,
    pub retention: Duration,
    /// Where the datastores live (a temporary directory under it).
    pub dir: PathBuf,
    /// Which phases to run (all when empty).
    pub phases: Vec<Phase>,
    /// Leave the datastores on disk afterwards (for inspection).
    pub keep: bool,
}

/// The parts of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Create,
    Get,
    Range,
    Watch,
    Disk,
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "create" => Ok(Phase::Create),
            "get" => Ok(Phase::Get),
            "range" => Ok(Phase::Range),
            "watch" => Ok(Phase::Watch),
            "disk" => Ok(Phase::Disk),
            other => Err(format!(
                "unknown phase {other:?} (create, get, range, watch, disk)"
            )),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backends: vec![Backend::Sqlite, Backend::Etcd],
            phase: Duration::from_secs(5),
            value_size: 1024,
            keys: 10_000,
            watchers: 100,
            watch_writes: 1000,
            updates: 1_000_000,
            retention: Duration::from_secs(10),
            dir: std::env::temp_dir(),
            phases: Vec::new(),
            keep: false,
        }
    }
}

/// One figure of one backend.
#[derive(Clone, Debug)]
pub struct Figure {
    pub metric: String,
    pub value: String,
}

/// All figures of one backend.
#[derive(Clone, Debug)]
pub struct Report {
    pub backend: Backend,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn add(&mut self, metric: impl Into<String>, value: impl Into<String>) {
        let (metric, value) = (metric.into(), value.into());
        eprintln!("  {:?} {metric}: {value}", self.backend);
        self.figures.push(Figure { metric, value });
    }
}

/// Runs every phase on every backend and returns the figures.
pub async fn run(opts: &Options) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for &backend in &opts.backends {
        eprintln!("== {backend:?}");
        let env = BackendEnv::start(backend, &opts.dir).await?;
        let mut report = Report {
            backend,
            figures: Vec::new(),
        };
        measure(&env, opts, &mut report).await?;
        env.stop(opts.keep).await;
        reports.push(report);
    }
    Ok(reports)
}

/// Formats reports as one Markdown table, a column per backend.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from("| measurement |");
    for r in reports {
        out.push_str(&format!(" {:?} |", r.backend));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(reports.len()));
    out.push('\n');
    let Some(first) = reports.first() else {
        return out;
    };
    for (i, f) in first.figures.iter().enumerate() {
        out.push_str(&format!("| {} |", f.metric));
        for r in reports {
            let v = r.figures.get(i).map(|f| f.value.as_str()).unwrap_or("–");
            out.push_str(&format!(" {v} |"));
        }
        out.push('\n');
    }
    out
}

/// A started backend and what it needs kept alive.
struct BackendEnv {
    store: Arc<dyn Store>,
    sqlite: Option<Arc<SqliteStore>>,
    etcd: Option<EtcdProcess>,
    dir: tempfile::TempDir,
}

impl BackendEnv {
    async fn start(backend: Backend, base: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("rkube-bench-store-")
            .tempdir_in(base)
            .context("creating the benchmark directory")?;
        Ok(match backend {
            Backend::Sqlite => {
                let s = Arc::new(SqliteStore::open(dir.path().join("state.db"))?);
                BackendEnv {
                    store: s.clone(),
                    sqlite: Some(s),
                    etcd: None,
                    dir,
                }
            }
            Backend::Etcd => {
                let etcd = tokio::task::spawn_blocking(EtcdProcess::start)
                    .await?
                    .map_err(anyhow::Error::msg)?;
                let store = EtcdStore::connect(EtcdConfig::new(vec![etcd.endpoint()])).await?;
                BackendEnv {
                    store: Arc::new(store),
                    sqlite: None,
                    etcd: Some(etcd),
                    dir,
                }
            }
            Backend::Memory => BackendEnv {
                store: Arc::new(rkube_store::memory::MemoryStore::new()),
                sqlite: None,
                etcd: None,
                dir,
            },
        })
    }

    /// Bytes the datastore occupies on disk.
    fn disk_bytes(&self) -> u64 {
        if let Some(s) = &self.sqlite {
            let base = s.path().to_path_buf();
            return ["", "-wal", "-shm"]
                .iter()
                .map(|suffix| {
                    let mut p = base.clone().into_os_string();
                    p.push(suffix);
                    std::fs::metadata(PathBuf::from(p))
                        .map(|m| m.len())
                        .unwrap_or(0)
                })
                .sum();
        }
        if let Some(etcd) = &self.etcd {
            return dir_size(&etcd.data_dir());
        }
        0
    }

    async fn stop(self, keep: bool) {
        if let Some(s) = &self.sqlite {
            s.close().await;
        }
        drop(self.etcd);
        if keep {
            eprintln!("kept {}", self.dir.keep().display());
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}

async fn measure(env: &BackendEnv, opts: &Options, report: &mut Report) -> Result<()> {
    let store = &env.store;
    let value = Bytes::from(vec![b'v'; opts.value_size]);
    let runs = |p: Phase| opts.phases.is_empty() || opts.phases.contains(&p);

    for writers in [1usize, 64] {
        if !runs(Phase::Create) {
            break;
        }
        let (ops, elapsed, mut lat) = concurrent_creates(
            store,
            &format!("/bench/c{writers}"),
            writers,
            &value,
            opts.phase,
        )
        .await?;
        report.add(
            format!("create 1 KiB, {writers} writer(s): ops/s"),
            format!("{:.0}", ops as f64 / elapsed.as_secs_f64()),
        );
        report.add(
            format!("create 1 KiB, {writers} writer(s): p50 / p99 ms"),
            format!(
                "{:.2} / {:.2}",
                lat.percentile_ms(50.0),
                lat.percentile_ms(99.0)
            ),
        );
    }

    // The data set for gets and ranges.
    if runs(Phase::Get) || runs(Phase::Range) {
        populate(store, "/bench/r/", opts.keys, &value).await?;
    }
    for clients in [1usize, 64] {
        if !runs(Phase::Get) {
            break;
        }
        let (ops, elapsed, mut lat) =
            gets(store, "/bench/r/", opts.keys, clients, opts.phase).await?;
        report.add(
            format!("get, {clients} client(s): ops/s"),
            format!("{:.0}", ops as f64 / elapsed.as_secs_f64()),
        );
        report.add(
            format!("get, {clients} client(s): p50 / p99 ms"),
            format!(
                "{:.3} / {:.3}",
                lat.percentile_ms(50.0),
                lat.percentile_ms(99.0)
            ),
        );
    }

    if runs(Phase::Range) {
        range_phase(store, opts, report).await?;
    }
    if runs(Phase::Watch) {
        watch_phase(store, opts, &value, report).await?;
    }
    if opts.updates > 0 && runs(Phase::Disk) {
        let (marks, settled) = churn(env, opts, &value).await?;
        for (done, bytes, rate) in marks {
            report.add(
                format!(
                    "disk after {}k updates to {} keys (history kept {:?}): size, updates/s so far",
                    done / 1000,
                    opts.keys,
                    opts.retention
                ),
                format!("{}, {rate:.0}", mib(bytes)),
            );
        }
        report.add(
            "disk once compaction has caught up (one history period later)",
            mib(settled),
        );
    }
    Ok(())
}

async fn range_phase(store: &Arc<dyn Store>, opts: &Options, report: &mut Report) -> Result<()> {
    let mut whole = Latencies::default();
    for _ in 0..10 {
        let t = Instant::now();
        let resp = store.range(RangeRequest::prefix("/bench/r/")).await?;
        whole.record(t.elapsed());
        anyhow::ensure!(
            resp.kvs.len() == opts.keys,
            "range returned {}",
            resp.kvs.len()
        );
    }
    report.add(
        format!("range of {} keys, whole: ms (p50)", opts.keys),
        format!("{:.1}", whole.percentile_ms(50.0)),
    );
    let mut paged = Latencies::default();
    for _ in 0..5 {
        let t = Instant::now();
        let n = paged_range(store, "/bench/r/", 500).await?;
        paged.record(t.elapsed());
        anyhow::ensure!(n == opts.keys, "paged range returned {n}");
    }
    report.add(
        format!("range of {} keys, pages of 500: ms (p50)", opts.keys),
        format!("{:.1}", paged.percentile_ms(50.0)),
    );
    Ok(())
}

async fn watch_phase(
    store: &Arc<dyn Store>,
    opts: &Options,
    value: &Bytes,
    report: &mut Report,
) -> Result<()> {
    let (mut lat, per_sec) = watch_fanout(store, opts.watchers, opts.watch_writes, value).await?;
    report.add(
        format!(
            "watch fan-out to {}: write→all delivered p50 / p99 ms",
            opts.watchers
        ),
        format!(
            "{:.2} / {:.2}",
            lat.percentile_ms(50.0),
            lat.percentile_ms(99.0)
        ),
    );
    report.add(
        format!("watch fan-out to {}: events delivered/s", opts.watchers),
        format!("{per_sec:.0}"),
    );
    Ok(())
}

async fn concurrent_creates(
    store: &Arc<dyn Store>,
    prefix: &str,
    writers: usize,
    value: &Bytes,
    phase: Duration,
) -> Result<(u64, Duration, Latencies)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, value, stop) = (store.clone(), value.clone(), stop.clone());
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                store
                    .create(
                        &format!("{prefix}/{w}/{i:08}"),
                        value.clone(),
                        WriteOptions::default(),
                    )
                    .await?;
                lat.record(t.elapsed());
                i += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    Ok((all.len() as u64, elapsed, all))
}

async fn populate(store: &Arc<dyn Store>, prefix: &str, keys: usize, value: &Bytes) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, value, next) = (store.clone(), value.clone(), next.clone());
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= keys {
                    return anyhow::Ok(());
                }
                store
                    .create(
                        &format!("{prefix}{i:06}"),
                        value.clone(),
                        WriteOptions::default(),
                    )
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn gets(
    store: &Arc<dyn Store>,
    prefix: &str,
    keys: usize,
    clients: usize,
    phase: Duration,
) -> Result<(u64, Duration, Latencies)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (store, stop) = (store.clone(), stop.clone());
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            while !stop.load(Ordering::Relaxed) {
                let i = rand::rng().random_range(0..keys);
                let t = Instant::now();
                let kv = store.get(&format!("{prefix}{i:06}")).await?;
                lat.record(t.elapsed());
                anyhow::ensure!(kv.is_some(), "key {i} missing");
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all.len() as u64, started.elapsed(), all))
}

async fn paged_range(store: &Arc<dyn Store>, prefix: &str, page: i64) -> Result<usize> {
    let range = KeyRange::prefix(prefix);
    let mut req = RangeRequest::new(range.clone()).limit(page);
    let mut n = 0;
    loop {
        let resp = store.range(req.clone()).await?;
        n += resp.kvs.len();
        if !resp.more {
            return Ok(n);
        }
        let mut start = resp
            .kvs
            .last()
            .map(|kv| kv.key.clone().into_bytes())
            .unwrap_or_default();
        start.push(0);
        req = RangeRequest::new(range.starting_at(start))
            .limit(page)
            .at_revision(resp.revision);
    }
}

/// Writes `writes` keys one after another while `watchers` watch them; returns the time from
/// starting each write to its delivery to the last watcher, and deliveries per second.
async fn watch_fanout(
    store: &Arc<dyn Store>,
    watchers: usize,
    writes: usize,
    value: &Bytes,
) -> Result<(Latencies, f64)> {
    let prefix = "/bench/w/";
    let start_rev = store.current_revision().await? + 1;
    // Per write: when it started, and how many watchers have it.
    let started_at: Arc<Vec<std::sync::Mutex<Option<Instant>>>> =
        Arc::new((0..writes).map(|_| std::sync::Mutex::new(None)).collect());
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());
    let done_at: Arc<Vec<std::sync::Mutex<Option<Instant>>>> =
        Arc::new((0..writes).map(|_| std::sync::Mutex::new(None)).collect());
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut w = store
            .watch(KeyRange::prefix(prefix), start_rev, WatchOptions::default())
            .await?;
        let (received, done_at) = (received.clone(), done_at.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < writes {
                match w.next_message().await {
                    Some(Ok(WatchMessage::Events(evs))) => {
                        for e in evs {
                            let i: usize = e.kv.key[prefix.len()..].parse()?;
                            let n = received[i].fetch_add(1, Ordering::AcqRel) + 1;
                            if n as usize == watchers {
                                *done_at[i].lock().unwrap() = Some(Instant::now());
                            }
                            seen += 1;
                        }
                    }
                    Some(Ok(WatchMessage::Progress(_))) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("watch ended"),
                }
            }
            anyhow::Ok(())
        }));
    }
    let t0 = Instant::now();
    for i in 0..writes {
        *started_at[i].lock().unwrap() = Some(Instant::now());
        store
            .create(
                &format!("{prefix}{i:06}"),
                value.clone(),
                WriteOptions::default(),
            )
            .await?;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .context("watchers did not receive every event")???;
    }
    let elapsed = t0.elapsed();
    let mut lat = Latencies::default();
    for i in 0..writes {
        let s = started_at[i].lock().unwrap().context("write start")?;
        let d = done_at[i].lock().unwrap().context("delivery")?;
        lat.record(d.saturating_duration_since(s));
    }
    Ok((lat, (writes * watchers) as f64 / elapsed.as_secs_f64()))
}

/// Updates `keys` keys `updates` times from 64 writers with the compactor keeping
/// `retention` of history; returns (updates done, bytes on disk, updates/s) at each quarter,
/// and the bytes on disk once compaction has caught up after the last update.
async fn churn(
    env: &BackendEnv,
    opts: &Options,
    value: &Bytes,
) -> Result<(Vec<(u64, u64, f64)>, u64)> {
    let store = &env.store;
    let prefix = "/bench/u/";
    populate(store, prefix, opts.keys, value).await?;
    let compactor = compactor::spawn(
        store.clone(),
        CompactorConfig {
            retention: opts.retention,
            interval: (opts.retention / 10).max(Duration::from_millis(100)),
        },
    );
    let writers = 64usize;
    let per_writer = opts.keys / writers;
    let done = Arc::new(AtomicU64::new(0));
    let total = opts.updates;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, value, done) = (store.clone(), value.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // Each writer owns a slice of the keys, so its compare-and-swaps never conflict.
            let keys: Vec<String> = (w * per_writer..(w + 1) * per_writer)
                .map(|i| format!("{prefix}{i:06}"))
                .collect();
            let mut revs = Vec::with_capacity(keys.len());
            for k in &keys {
                revs.push(store.get(k).await?.context("populated")?.mod_revision);
            }
            let mut j = 0;
            while done.fetch_add(1, Ordering::Relaxed) < total {
                let kv = store
                    .update(&keys[j], value.clone(), revs[j], WriteOptions::default())
                    .await?;
                revs[j] = kv.mod_revision;
                j = (j + 1) % keys.len();
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    let mut marks = Vec::new();
    let mut next_mark = total / 4;
    while marks.len() < 4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = done.load(Ordering::Relaxed).min(total);
        if n >= next_mark {
            let rate = n as f64 / started.elapsed().as_secs_f64();
            marks.push((n, env.disk_bytes(), rate));
            next_mark += total / 4;
        }
        if tasks.iter().all(|t| t.is_finished()) && n >= total {
            break;
        }
    }
    for t in tasks {
        t.await??;
    }
    // Let one more compaction round run, then measure the settled size.
    tokio::time::sleep(opts.retention + opts.retention / 5).await;
    let settled = env.disk_bytes();
    compactor.abort();
    Ok((marks, settled))
}
