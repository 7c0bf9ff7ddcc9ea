//! `rkube bench api`: the API server as users meet it — a real `rkube server` process on its
//! embedded SQLite datastore, driven over HTTPS by a client library (kube-rs) from this
//! process on the same machine.
//!
//! Measures: time from process start to `/readyz` passing; RSS idle; pod creates/s from 1
//! and 64 concurrent clients; GET latency; LIST of 10,000 pods whole and in pages of 500;
//! the delay from an update to its delivery to 1,000 watchers; RSS with 10,000 pods stored.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::process::{Proc, client, cpu_time, rss_mib};
use crate::stats::Latencies;
use crate::store::Report;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `rkube` binary to start as the server.
    pub rkube: PathBuf,
    pub phase: Duration,
    pub pods: usize,
    pub watchers: usize,
    pub watch_updates: usize,
    pub dir: PathBuf,
}

/// A `rkube server` process, stopped when dropped.
pub(crate) struct ServerProcess {
    pub(crate) child: Proc,
    pub(crate) kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts the server and returns it with the time until `/readyz` passed.
pub(crate) async fn start_server(rkube: &Path, data: &Path) -> Result<(ServerProcess, Duration)> {
    let dir = tempfile::Builder::new()
        .prefix("rkube-bench-api-")
        .tempdir_in(data)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    // Certificates are made on the first start; the measured start is the second one, as a
    // restart of an existing cluster (and as every start after the first).
    for measured in [false, true] {
        let started = Instant::now();
        let child = Command::new(rkube)
            .args([
                "server",
                "--bind-address",
                "127.0.0.1",
                "--disable-agent",
                "--disable-scheduler",
                "--disable-controller-manager",
                "--https-listen-port",
            ])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting rkube server")?;
        let mut proc = ServerProcess {
            child: Proc::new(child),
            kubeconfig: kubeconfig.clone(),
            _dir: tempfile::tempdir()?,
        };
        // Wait for the kubeconfig, then for /readyz.
        let ready = loop {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("rkube server did not become ready in 60 s");
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                bail!("rkube server exited: {status}");
            }
            if kubeconfig.exists()
                && let Ok(c) = client(&kubeconfig).await
            {
                let req = http::Request::get("/readyz").body(Vec::new())?;
                if let Ok(text) = c.request_text(req).await
                    && text == "ok"
                {
                    break started.elapsed();
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        if measured {
            let _ = std::mem::replace(&mut proc._dir, dir);
            return Ok((proc, ready));
        }
        drop(proc);
    }
    unreachable!("the loop returns on its measured start")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "main", "image": "registry.local/app:1.0",
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }))
    .expect("pod")
}

async fn creates(
    client: &kube::Client,
    ns: &str,
    prefix: &str,
    clients: usize,
    phase: Duration,
) -> Result<(u64, Duration, Latencies)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let stop = stop.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut i = 0;
            let mut p = pod("");
            while !stop.load(Ordering::Relaxed) {
                p.metadata.name = Some(format!("{prefix}-{c}-{i}"));
                let t = Instant::now();
                api.create(&PostParams::default(), &p).await?;
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
    Ok((all.len() as u64, started.elapsed(), all))
}

pub async fn run(opts: &Options) -> Result<Report> {
    let mut report = Report {
        backend: crate::store::Backend::Sqlite,
        figures: Vec::new(),
    };
    let (server, ready) = start_server(&opts.rkube, &opts.dir).await?;
    let pid = server.child.id();
    report.add(
        "start to /readyz ok (restart of an existing data dir): ms",
        format!("{}", ready.as_millis()),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.add("RSS idle: MiB", format!("{:.1}", rss_mib(pid)));

    let client = client(&server.kubeconfig).await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in ["bench", "list", "watch"] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
        nss.create(&PostParams::default(), &n).await?;
    }
    for clients in [1usize, 64] {
        let cpu_before = cpu_time(pid);
        let own_before = cpu_time(std::process::id());
        let (n, elapsed, mut lat) = creates(
            &client,
            "bench",
            &format!("c{clients}"),
            clients,
            opts.phase,
        )
        .await?;
        report.add(
            format!("pod creates, {clients} client(s): creates/s"),
            format!("{:.0}", n as f64 / elapsed.as_secs_f64()),
        );
        report.add(
            format!("pod creates, {clients} client(s): server CPU per create µs"),
            format!(
                "{:.0}",
                (cpu_time(pid) - cpu_before).as_micros() as f64 / n.max(1) as f64
            ),
        );
        report.add(
            format!("pod creates, {clients} client(s): load generator CPU per create µs"),
            format!(
                "{:.0}",
                (cpu_time(std::process::id()) - own_before).as_micros() as f64 / n.max(1) as f64
            ),
        );
        report.add(
            format!("pod creates, {clients} client(s): p50 / p99 ms"),
            format!(
                "{:.2} / {:.2}",
                lat.percentile_ms(50.0),
                lat.percentile_ms(99.0)
            ),
        );
    }
    // Exactly `pods` pods in their own namespace for GET and LIST.
    let created = Api::<Pod>::namespaced(client.clone(), "bench")
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "list");
    let next = Arc::new(AtomicU64::new(0));
    let mut fill = Vec::new();
    for _ in 0..64 {
        let (api, next, target) = (pods.clone(), next.clone(), opts.pods as u64);
        fill.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= target {
                    return anyhow::Ok(());
                }
                api.create(&PostParams::default(), &pod(&format!("fill-{i}")))
                    .await?;
            }
        }));
    }
    for t in fill {
        t.await??;
    }
    let names: Vec<String> = pods
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let total = names.len();
    for clients in [1usize, 64] {
        let stop = Arc::new(AtomicBool::new(false));
        let names = Arc::new(names.clone());
        let mut tasks = Vec::new();
        let started = Instant::now();
        for c in 0..clients {
            let (api, stop, names) = (pods.clone(), stop.clone(), names.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Latencies::default();
                let mut i = c * 7919;
                while !stop.load(Ordering::Relaxed) {
                    let name = &names[i % names.len()];
                    let t = Instant::now();
                    api.get(name).await?;
                    lat.record(t.elapsed());
                    i += 1;
                }
                anyhow::Ok(lat)
            }));
        }
        tokio::time::sleep(opts.phase).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Latencies::default();
        for t in tasks {
            all.extend(t.await??);
        }
        report.add(
            format!("GET pod, {clients} client(s): gets/s"),
            format!("{:.0}", all.len() as f64 / started.elapsed().as_secs_f64()),
        );
        report.add(
            format!("GET pod, {clients} client(s): p50 / p99 ms"),
            format!(
                "{:.2} / {:.2}",
                all.percentile_ms(50.0),
                all.percentile_ms(99.0)
            ),
        );
    }
    let mut whole = Latencies::default();
    for _ in 0..5 {
        let t = Instant::now();
        let list = pods.list(&ListParams::default()).await?;
        whole.record(t.elapsed());
        anyhow::ensure!(
            list.items.len() == total,
            "listed {} of {total}",
            list.items.len()
        );
    }
    report.add(
        format!("LIST of {total} pods, whole (client decodes): ms p50"),
        format!("{:.0}", whole.percentile_ms(50.0)),
    );
    let mut raw = Latencies::default();
    for _ in 0..5 {
        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/list/pods").body(Vec::new())?;
        let text = client.request_text(req).await?;
        raw.record(t.elapsed());
        anyhow::ensure!(text.len() > total * 100);
    }
    report.add(
        format!("LIST of {total} pods, whole (server + transfer, no decoding): ms p50"),
        format!("{:.0}", raw.percentile_ms(50.0)),
    );
    let mut paged = Latencies::default();
    for _ in 0..3 {
        let t = Instant::now();
        let mut n = 0;
        let mut lp = ListParams::default().limit(500);
        loop {
            let page = pods.list(&lp).await?;
            n += page.items.len();
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => {
                    lp = ListParams::default().limit(500).continue_token(&c)
                }
                _ => break,
            }
        }
        paged.record(t.elapsed());
        anyhow::ensure!(n == total, "paged {n} of {total}");
    }
    report.add(
        format!("LIST of {total} pods, pages of 500: ms p50"),
        format!("{:.0}", paged.percentile_ms(50.0)),
    );
    report.add(
        format!("RSS with {} pods stored: MiB", total + created),
        format!("{:.1}", rss_mib(pid)),
    );

    let (lat, watchers) =
        watch_fanout(&server.kubeconfig, opts.watchers, opts.watch_updates).await?;
    let mut lat = lat;
    report.add(
        format!("update → delivered to all {watchers} watchers: p50 / p99 ms"),
        format!(
            "{:.1} / {:.1}",
            lat.percentile_ms(50.0),
            lat.percentile_ms(99.0)
        ),
    );
    report.add(
        format!("RSS with {watchers} watchers: MiB"),
        format!("{:.1}", rss_mib(pid)),
    );
    drop(server);
    Ok(report)
}

/// Opens `watchers` watches on one pod (spread over several connections), updates it
/// `updates` times one after another, and measures for each update the time from sending
/// it to the last watcher receiving it.
async fn watch_fanout(
    kubeconfig: &Path,
    watchers: usize,
    updates: usize,
) -> Result<(Latencies, usize)> {
    let main = client(kubeconfig).await?;
    let pods: Api<Pod> = Api::namespaced(main.clone(), "watch");
    let created = pods.create(&PostParams::default(), &pod("target")).await?;
    let rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    // One HTTP/2 connection carries at most a few hundred streams: 100 watches each.
    let mut clients = Vec::new();
    for _ in 0..watchers.div_ceil(100) {
        clients.push(client(kubeconfig).await?);
    }
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..updates).map(|_| AtomicU64::new(0)).collect());
    let done_at: Arc<Vec<std::sync::Mutex<Option<Instant>>>> =
        Arc::new((0..updates).map(|_| std::sync::Mutex::new(None)).collect());
    let mut tasks = Vec::new();
    let opened = Arc::new(AtomicU64::new(0));
    for w in 0..watchers {
        let api: Api<Pod> = Api::namespaced(clients[w / 100].clone(), "watch");
        let (received, done_at, rv, opened) = (
            received.clone(),
            done_at.clone(),
            rv.clone(),
            opened.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut stream = api
                .watch(
                    &WatchParams::default()
                        .fields("metadata.name=target")
                        .timeout(300),
                    &rv,
                )
                .await?
                .boxed();
            opened.fetch_add(1, Ordering::Relaxed);
            let mut seen = 0;
            while seen < updates {
                match stream.next().await {
                    Some(Ok(WatchEvent::Modified(p))) => {
                        let i: usize = p
                            .metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("round"))
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(usize::MAX);
                        if i < updates {
                            let n = received[i].fetch_add(1, Ordering::AcqRel) + 1;
                            if n as usize == watchers {
                                *done_at[i].lock().unwrap_or_else(|e| e.into_inner()) =
                                    Some(Instant::now());
                            }
                            seen += 1;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => bail!("watch ended early"),
                }
            }
            anyhow::Ok(())
        }));
    }
    while (opened.load(Ordering::Relaxed) as usize) < watchers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent_at = Vec::new();
    for i in 0..updates {
        let patch = json!({"metadata": {"labels": {"round": i.to_string()}}});
        let t = Instant::now();
        pods.patch(
            "target",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await?;
        sent_at.push(t);
        // Wait for this round to reach everyone before the next.
        let deadline = Instant::now() + Duration::from_secs(30);
        while done_at[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "round {i} not delivered to every watcher"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    for t in tasks {
        t.await??;
    }
    let mut lat = Latencies::default();
    for (i, sent) in sent_at.iter().enumerate() {
        if let Some(done) = *done_at[i].lock().unwrap_or_else(|e| e.into_inner()) {
            lat.record(done.saturating_duration_since(*sent));
        }
    }
    Ok((lat, watchers))
}
