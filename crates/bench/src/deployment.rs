//! `rkube bench deployment`: a Deployment of many replicas from apply to all pods Ready on
//! hollow nodes. A real `rkube server` (API only), `rkube agent --fake --nodes N`,
//! `rkube scheduler` and the workload controllers in their own process
//! (`rkube bench deployment --controllers-only`, so their RSS is theirs alone) run as
//! children.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::api::start_server;
use crate::process::{Proc, client, rss_mib};
use crate::store::{Backend, Report};

pub struct Options {
    /// The `rkube` binary.
    pub rkube: PathBuf,
    pub nodes: usize,
    pub replicas: i32,
    pub dir: PathBuf,
}

fn spawn(rkube: &Path, args: &[&str], kubeconfig: &Path) -> Result<Proc> {
    let child = Command::new(rkube)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting rkube {args:?}"))?;
    Ok(Proc::new(child))
}

/// Runs the benchmark and returns its figures.
pub async fn run(opts: &Options) -> Result<Report> {
    let mut report = Report {
        backend: Backend::Sqlite,
        figures: Vec::new(),
    };
    let (server, _) = start_server(&opts.rkube, &opts.dir).await?;
    let kubeconfig = server.kubeconfig.clone();
    let client = client(&kubeconfig).await?;
    let nodes_arg = opts.nodes.to_string();
    let agent = spawn(
        &opts.rkube,
        &[
            "agent",
            "--fake",
            "--nodes",
            &nodes_arg,
            "--node-pods",
            "110",
            "--cluster-cidr",
            "10.0.0.0/8",
            // No controller manager's node IPAM runs here.
            "--assign-pod-cidrs",
        ],
        &kubeconfig,
    )?;
    let controllers = spawn(
        &opts.rkube,
        &["bench", "deployment", "--controllers-only"],
        &kubeconfig,
    )?;
    let scheduler = spawn(&opts.rkube, &["scheduler"], &kubeconfig)?;

    let nodes: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        let ready = nodes
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|n| {
                        n.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| {
                                cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                    .count()
            })
            .unwrap_or(0);
        if ready == opts.nodes {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("only {ready} of {} hollow nodes became Ready", opts.nodes);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the controllers' informers settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_mib(controllers.id());
    report.add("workload controllers RSS, idle (MiB)", format!("{idle:.1}"));

    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "registry.local/app:1.0",
                    "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]},
            },
        },
    }))?;
    let t0 = Instant::now();
    api.create(&PostParams::default(), &d).await?;
    let mut peak = idle;
    let mut half = None;
    loop {
        peak = peak.max(rss_mib(controllers.id()));
        let st = api.get("bench").await?.status.unwrap_or_default();
        let ready = st.ready_replicas.unwrap_or(0);
        if half.is_none() && ready >= opts.replicas / 2 {
            half = Some(t0.elapsed());
        }
        if ready == opts.replicas && st.available_replicas == Some(opts.replicas) {
            break;
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            bail!(
                "only {ready} of {} replicas Ready after 30 minutes",
                opts.replicas
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = t0.elapsed();
    report.add(
        format!("{} replicas: apply to half Ready (s)", opts.replicas),
        format!("{:.1}", half.unwrap_or(all).as_secs_f64()),
    );
    report.add(
        format!("{} replicas: apply to all Ready (s)", opts.replicas),
        format!("{:.1}", all.as_secs_f64()),
    );
    report.add(
        "pods Ready per second",
        format!("{:.0}", f64::from(opts.replicas) / all.as_secs_f64()),
    );
    report.add(
        "workload controllers RSS, peak during rollout (MiB)",
        format!("{peak:.1}"),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    report.add(
        format!(
            "workload controllers RSS, settled with {} pods (MiB)",
            opts.replicas
        ),
        format!("{:.1}", rss_mib(controllers.id())),
    );
    report.add("agent RSS (MiB)", format!("{:.1}", rss_mib(agent.id())));
    report.add(
        "scheduler RSS (MiB)",
        format!("{:.1}", rss_mib(scheduler.id())),
    );
    report.add(
        "server RSS (MiB)",
        format!("{:.1}", rss_mib(server.child.id())),
    );
    drop(scheduler);
    drop(controllers);
    drop(agent);
    drop(server);
    Ok(report)
}

/// The `--controllers-only` half: the workload controllers against `kubeconfig`, forever.
pub async fn controllers_only(kubeconfig: &Path) -> Result<()> {
    let client = client(kubeconfig).await?;
    rkube_workloads::run(client).await;
    Ok(())
}

/// The figures as a Markdown table.
pub fn table(report: &Report) -> String {
    let mut out = String::from("| measurement | value |\n|---|---|\n");
    for f in &report.figures {
        out.push_str(&format!("| {} | {} |\n", f.metric, f.value));
    }
    out
}
