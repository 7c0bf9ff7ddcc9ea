//! `rkube bench scheduler`: upstream scheduler_perf's SchedulingBasic shape against real
//! processes — a `rkube server` (API server only), a separate `rkube scheduler` (so its
//! memory and CPU are its own), and either plain Node objects (as scheduler_perf creates
//! them: no kubelets) or `rkube agent --fake` hollow nodes.
//!
//! Each variant: create the nodes, create the existing pods and wait until they are bound,
//! then create the measured pods from 64 concurrent clients and time from the first
//! creation to the last binding seen by a watch. The churn variant keeps creating and
//! deleting other pods while the measured ones are scheduled.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::process::{Proc, client, cpu_time, status_mib};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `rkube` binary (server, scheduler, agent).
    pub rkube: PathBuf,
    pub nodes: usize,
    pub existing_pods: usize,
    pub pods: usize,
    /// Concurrent clients creating the measured pods.
    pub clients: usize,
    /// Which variants: "plain", "churn", "hollow".
    pub variants: Vec<String>,
    pub dir: PathBuf,
}

/// One variant's figures.
pub struct Report {
    pub variant: String,
    pub figures: Vec<(String, String)>,
}

impl Report {
    fn add(&mut self, metric: impl Into<String>, value: impl Into<String>) {
        let (metric, value) = (metric.into(), value.into());
        eprintln!("  [{}] {metric}: {value}", self.variant);
        self.figures.push((metric, value));
    }
}

fn spawn(rkube: &Path, args: &[&str]) -> Result<Proc> {
    let child = Command::new(rkube)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting rkube {}", args.first().unwrap_or(&"")))?;
    Ok(Proc::new(child))
}

async fn start_server(opts: &Options, dir: &Path) -> Result<(Proc, PathBuf, kube::Client)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port()
        .to_string();
    let data = dir.to_string_lossy().into_owned();
    let mut server = spawn(
        &opts.rkube,
        &[
            "server",
            "--bind-address",
            "127.0.0.1",
            "--disable-agent",
            "--disable-scheduler",
            "--disable-controller-manager",
            "--https-listen-port",
            &port,
            "--data-dir",
            &data,
        ],
    )?;
    let kubeconfig = dir.join("kubeconfig.yaml");
    let started = Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("rkube server did not become ready in 60 s");
        }
        if let Ok(Some(status)) = server.try_wait() {
            bail!("rkube server exited: {status}");
        }
        if kubeconfig.exists()
            && let Ok(c) = client(&kubeconfig).await
        {
            let req = http::Request::get("/readyz").body(Vec::new())?;
            if let Ok(text) = c.request_text(req).await
                && text == "ok"
            {
                return Ok((server, kubeconfig, c));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// scheduler_perf's node template: 4 CPUs, 32 GiB, 110 pods.
fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .expect("node")
}

/// scheduler_perf's pod template: one pause container requesting 100m CPU and 500 MiB.
fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80}],
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"},
                          "limits": {"cpu": "100m", "memory": "500Mi"}}}]},
    }))
    .expect("pod")
}

/// Runs `count` creates from `clients` concurrent tasks.
async fn create_many<K, F>(api: Api<K>, count: usize, clients: usize, make: F) -> Result<()>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(usize) -> K + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let api = api.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < count {
                let obj = make(i);
                let mut tries = 0;
                loop {
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => break,
                        Err(e) if tries < 5 => {
                            tries += 1;
                            tracing::debug!(error = %e, "create failed, retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(anyhow::Error::from(e)),
                    }
                }
                i += clients.max(1);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Watches a namespace's pods and resolves when `want` of them are bound; the instant the
/// last one was seen bound.
fn watch_bound(
    client: kube::Client,
    ns: &str,
    want: usize,
) -> tokio::task::JoinHandle<Result<Instant>> {
    let api: Api<Pod> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let mut bound: HashSet<String> = HashSet::new();
        let stream = watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let pods = match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "watch error");
                    continue;
                }
            };
            for p in pods {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    bound.insert(p.metadata.name.unwrap_or_default());
                }
            }
            if bound.len() >= want {
                return Ok(Instant::now());
            }
        }
        bail!("pod watch ended with {} of {want} bound", bound.len())
    })
}

async fn namespace(client: &kube::Client, name: &str) -> Result<()> {
    let nss: Api<Namespace> = Api::all(client.clone());
    let n: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    nss.create(&PostParams::default(), &n).await?;
    Ok(())
}

async fn run_variant(opts: &Options, variant: &str) -> Result<Report> {
    let mut report = Report {
        variant: variant.to_string(),
        figures: Vec::new(),
    };
    let dir = tempfile::Builder::new()
        .prefix("rkube-bench-scheduler-")
        .tempdir_in(&opts.dir)?;
    let (server, kubeconfig, client) = start_server(opts, dir.path()).await?;
    let kc = kubeconfig.to_string_lossy().into_owned();
    for ns in ["init", "bench", "churn"] {
        namespace(&client, ns).await?;
    }

    // Nodes.
    let t = Instant::now();
    let _agent = if variant == "hollow" {
        let n = opts.nodes.to_string();
        let agent = spawn(
            &opts.rkube,
            &[
                "agent",
                "--fake",
                "--nodes",
                &n,
                "--kubeconfig",
                &kc,
                "--node-name-prefix",
                "node",
                "--node-cpu",
                "4",
                "--node-memory",
                "32Gi",
                "--node-pods",
                "110",
                "--cluster-cidr",
                "10.0.0.0/8",
            ],
        )?;
        let nodes: Api<Node> = Api::all(client.clone());
        loop {
            let l = nodes.list_metadata(&ListParams::default()).await?;
            if l.items.len() >= opts.nodes {
                break;
            }
            if t.elapsed() > Duration::from_secs(600) {
                bail!("hollow nodes did not register in 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Some(agent)
    } else {
        create_many(Api::<Node>::all(client.clone()), opts.nodes, 64, |i| {
            node(&format!("node-{i}"))
        })
        .await?;
        None
    };
    report.add(
        "nodes",
        format!(
            "{} ({:.1} s to create)",
            opts.nodes,
            t.elapsed().as_secs_f64()
        ),
    );

    let sched = spawn(
        &opts.rkube,
        &["scheduler", "--kubeconfig", &kc, "--leader-elect=false"],
    )?;
    let sched_pid = sched.id();
    let server_pid = server.id();

    // Existing pods, scheduled before the measurement.
    let init_done = watch_bound(client.clone(), "init", opts.existing_pods);
    create_many(
        Api::<Pod>::namespaced(client.clone(), "init"),
        opts.existing_pods,
        opts.clients,
        |i| pod(&format!("init-{i}")),
    )
    .await?;
    tokio::time::timeout(Duration::from_secs(600), init_done)
        .await
        .context("existing pods not bound in 10 minutes")???;
    report.add("existing pods bound", opts.existing_pods.to_string());
    let rss_before = status_mib(sched_pid, "VmRSS:");

    // Churn: other pods created and deleted while the measured ones are scheduled.
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let churn = if variant == "churn" {
        let api: Api<Pod> = Api::namespaced(client.clone(), "churn");
        let (stop, churned) = (stop.clone(), churned.clone());
        Some(tokio::spawn(async move {
            let mut i = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let _ = api
                    .create(&PostParams::default(), &pod(&format!("churn-{i}")))
                    .await;
                if i >= 50 {
                    let _ = api
                        .delete(
                            &format!("churn-{}", i - 50),
                            &DeleteParams::default().grace_period(0),
                        )
                        .await;
                }
                i += 1;
                churned.store(i, Ordering::Relaxed);
            }
        }))
    } else {
        None
    };

    let (sched_cpu0, server_cpu0) = (
        cpu_time(sched_pid).as_secs_f64(),
        cpu_time(server_pid).as_secs_f64(),
    );
    let done = watch_bound(client.clone(), "bench", opts.pods);
    // Let the watch start before the clock does.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    create_many(
        Api::<Pod>::namespaced(client.clone(), "bench"),
        opts.pods,
        opts.clients,
        |i| pod(&format!("pod-{i}")),
    )
    .await?;
    let created = start.elapsed();
    let last_bound = tokio::time::timeout(Duration::from_secs(900), done)
        .await
        .context("measured pods not bound in 15 minutes")???;
    let total = last_bound.duration_since(start);
    stop.store(true, Ordering::Relaxed);
    if let Some(c) = churn {
        let _ = c.await;
    }
    let (sched_cpu, server_cpu) = (
        cpu_time(sched_pid).as_secs_f64() - sched_cpu0,
        cpu_time(server_pid).as_secs_f64() - server_cpu0,
    );
    report.add(
        "measured pods: first creation to last binding",
        format!("{} pods in {:.2} s", opts.pods, total.as_secs_f64()),
    );
    report.add(
        "**scheduling throughput: pods/s**",
        format!("**{:.0}**", opts.pods as f64 / total.as_secs_f64()),
    );
    report.add(
        "creating the measured pods alone: creates/s",
        format!("{:.0}", opts.pods as f64 / created.as_secs_f64()),
    );
    report.add(
        "last binding after the last creation: s",
        format!("{:.2}", total.saturating_sub(created).as_secs_f64()),
    );
    if variant == "churn" {
        report.add(
            "churn pods created (and deleted 50 later), 100/s target",
            churned.load(Ordering::Relaxed).to_string(),
        );
    }
    report.add(
        "CPU during the measurement: scheduler / API server, s",
        format!("{sched_cpu:.1} / {server_cpu:.1}"),
    );
    report.add(
        "scheduler RSS with the existing pods / after / peak: MiB",
        format!(
            "{rss_before:.0} / {:.0} / {:.0}",
            status_mib(sched_pid, "VmRSS:"),
            status_mib(sched_pid, "VmHWM:")
        ),
    );
    report.add(
        "API server RSS after: MiB",
        format!("{:.0}", status_mib(server_pid, "VmRSS:")),
    );
    drop(sched);
    drop(server);
    Ok(report)
}

pub async fn run(opts: &Options) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for v in &opts.variants {
        if !["plain", "churn", "hollow"].contains(&v.as_str()) {
            bail!("unknown variant {v:?}: expected plain, churn or hollow");
        }
        eprintln!("== {v}");
        reports.push(run_variant(opts, v).await?);
    }
    Ok(reports)
}

/// The figures as a Markdown table, one column per variant.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from("| measurement |");
    for r in reports {
        out.push_str(&format!(" {} |", r.variant));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(reports.len()));
    out.push('\n');
    let mut metrics: Vec<&str> = Vec::new();
    for r in reports {
        for (m, _) in &r.figures {
            if !metrics.contains(&m.as_str()) {
                metrics.push(m);
            }
        }
    }
    for metric in metrics {
        out.push_str(&format!("| {metric} |"));
        for r in reports {
            let v = r
                .figures
                .iter()
                .find(|(m, _)| m == metric)
                .map(|(_, v)| v.as_str())
                .unwrap_or("–");
            out.push_str(&format!(" {v} |"));
        }
        out.push('\n');
    }
    out
}
