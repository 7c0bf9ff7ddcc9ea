//! `rkube bench runtime`: the native container runtime with real containers (run as root).
//!
//! - container lifecycle: create + start + stop + remove of one container (the testapp
//!   sleeping; stopped with a grace period of 0, i.e. SIGKILL), repeated in one sandbox;
//!   median and p99 of the whole, and the median of each of the four steps;
//! - many pods at once: N sandboxes with one container each, all started concurrently;
//!   the time until every container runs;
//! - shim memory: the resident set (RSS) of each shim while those N containers run;
//! - image import: an OCI archive of uncompressed layers (incompressible data) imported
//!   into an empty store (blobs verified and written, layers unpacked); MB/s of archive.
//!
//! The shims are this executable re-run as `rkube shim`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rkube_runtime::native::{NativeConfig, NativeRuntime};
use rkube_runtime::{
    ContainerConfig, ContainerMetadata, ImageSpec, PodSandboxConfig, PodSandboxFilter,
    PodSandboxMetadata, RuntimeService,
};
use rkube_testimages::{Compression, ImageDef, LayerBuilder};

use crate::stats::Latencies;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Container lifecycles to time.
    pub lifecycles: usize,
    /// Pods started concurrently.
    pub pods: usize,
    /// Size of the image imported for the import figure, in MiB.
    pub import_mib: usize,
    /// Where the runtime's state lives (a temporary directory under it).
    pub dir: PathBuf,
    /// The binary the shims run as (`rkube`).
    pub shim_binary: PathBuf,
}

/// The figures.
pub struct Report {
    pub lifecycle: Latencies,
    /// create, start, stop, remove separately.
    pub phases: [Latencies; 4],
    pub pods: usize,
    pub pods_running_after: Duration,
    pub shim_rss_kib: Latencies,
    /// The private part of it (anonymous memory: heap, stacks).
    pub shim_anon_kib: Latencies,
    pub import_bytes: u64,
    pub import_time: Duration,
}

fn sandbox_config(name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "bench".into(),
            attempt: 0,
        },
        hostname: name.into(),
        ..Default::default()
    }
}

fn sleeper(name: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: ContainerMetadata {
            name: name.into(),
            attempt: 0,
        },
        image: ImageSpec {
            image: "bench/testapp:1".into(),
        },
        args: vec!["sleep".into()],
        ..Default::default()
    }
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `RssAnon`, …).
fn status_kib(pid: i32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// An archive of `mib` MiB of incompressible data in 4 uncompressed layers.
fn import_archive(dir: &Path, mib: usize) -> Result<PathBuf> {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut layers = Vec::new();
    let per_layer = (mib.max(4) / 4) << 20;
    for i in 0..4 {
        let mut data = vec![0u8; per_layer];
        for chunk in data.chunks_mut(8) {
            // xorshift64: fast and incompressible enough for a disk benchmark.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        layers.push(
            LayerBuilder::new()
                .file(&format!("data/layer{i}.bin"), &data, 0o644)
                .finish(),
        );
    }
    let mut img = ImageDef::new("bench/import:1", layers);
    img.compression = Compression::None;
    let path = dir.join("import.tar");
    rkube_testimages::write_oci_archive(&[img], &path).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(path)
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> Result<Report> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the runtime benchmark runs real containers: run it as root");
    }
    let tmp = tempfile::Builder::new()
        .prefix("rkube-bench-runtime-")
        .tempdir_in(&opts.dir)
        .context("creating the benchmark directory")?;
    let cgroup_root = format!("/rkube-bench-{}", std::process::id());
    let cfg = NativeConfig {
        root: tmp.path().join("root"),
        run_root: tmp.path().join("run"),
        shim_binary: opts.shim_binary.clone(),
        cgroup_root: cgroup_root.clone(),
        log_max_bytes: 10 << 20,
        log_max_files: 2,
        pull: Default::default(),
        favor_dynamic_cgroups: true,
    };
    let rt = Arc::new(NativeRuntime::new(cfg)?);
    let result = measure(&rt, opts, tmp.path()).await;
    // Remove whatever is left, even after a failure.
    if let Ok(sandboxes) = rt.list_pod_sandboxes(&PodSandboxFilter::default()).await {
        for s in sandboxes {
            let _ = rt.stop_pod_sandbox(&s.id).await;
            let _ = rt.remove_pod_sandbox(&s.id).await;
        }
    }
    let _ = rkube_runtime::cgroups::remove(&cgroup_root);
    result
}

async fn measure(rt: &Arc<NativeRuntime>, opts: &Options, dir: &Path) -> Result<Report> {
    // The test image.
    let images = dir.join("images.tar");
    rkube_testimages::write_oci_archive(
        &[ImageDef::testapp("bench/testapp:1").map_err(|e| anyhow::anyhow!("{e}"))?],
        &images,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    rt.images().import(std::fs::File::open(&images)?)?;

    // Lifecycle.
    let sb_cfg = sandbox_config("lifecycle");
    let sb = rt.run_pod_sandbox(&sb_cfg).await?;
    let mut lifecycle = Latencies::default();
    let mut phases: [Latencies; 4] = Default::default();
    for i in 0..opts.lifecycles {
        let c = sleeper("c");
        let c = ContainerConfig {
            metadata: ContainerMetadata {
                name: "c".into(),
                attempt: i as u32,
            },
            ..c
        };
        let t0 = Instant::now();
        let id = rt.create_container(&sb, &c, &sb_cfg).await?;
        let t1 = Instant::now();
        rt.start_container(&id).await?;
        let t2 = Instant::now();
        // Grace period 0: SIGKILL at once. (A SIGTERM sent in the first moments of a
        // container can arrive before its program has a handler, and an unhandled SIGTERM
        // is ignored by a PID 1, which would time the grace period instead.)
        rt.stop_container(&id, Duration::ZERO).await?;
        let t3 = Instant::now();
        rt.remove_container(&id).await?;
        let t4 = Instant::now();
        lifecycle.record(t4 - t0);
        phases[0].record(t1 - t0);
        phases[1].record(t2 - t1);
        phases[2].record(t3 - t2);
        phases[3].record(t4 - t3);
    }
    rt.stop_pod_sandbox(&sb).await?;
    rt.remove_pod_sandbox(&sb).await?;

    // Many pods at once.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..opts.pods {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let cfg = sandbox_config(&format!("pod-{i}"));
            let sb = rt.run_pod_sandbox(&cfg).await?;
            let id = rt.create_container(&sb, &sleeper("main"), &cfg).await?;
            rt.start_container(&id).await?;
            Ok::<_, rkube_runtime::Error>(id)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await??);
    }
    let pods_running_after = t0.elapsed();
    let mut shim_rss_kib = Latencies::default();
    let mut shim_anon_kib = Latencies::default();
    for id in &ids {
        let pid = rt
            .shim_pid(id)
            .with_context(|| format!("no shim for container {id}"))?;
        // Latencies keeps microseconds; one "microsecond" per KiB here.
        if let Some(kib) = status_kib(pid, "VmRSS") {
            shim_rss_kib.record(Duration::from_micros(kib));
        }
        if let Some(kib) = status_kib(pid, "RssAnon") {
            shim_anon_kib.record(Duration::from_micros(kib));
        }
    }
    let sandboxes = rt.list_pod_sandboxes(&PodSandboxFilter::default()).await?;
    let mut stops = Vec::new();
    for s in sandboxes {
        let rt = rt.clone();
        stops.push(tokio::spawn(async move {
            rt.stop_pod_sandbox(&s.id).await?;
            rt.remove_pod_sandbox(&s.id).await
        }));
    }
    for s in stops {
        s.await??;
    }

    // Import.
    let archive = import_archive(dir, opts.import_mib)?;
    let import_bytes = std::fs::metadata(&archive)?.len();
    let store = rkube_images::ImageStore::open(dir.join("import-store"))?;
    let t0 = Instant::now();
    let file = std::fs::File::open(&archive)?;
    tokio::task::spawn_blocking(move || store.import(file)).await??;
    let import_time = t0.elapsed();

    Ok(Report {
        lifecycle,
        phases,
        pods: opts.pods,
        pods_running_after,
        shim_rss_kib,
        shim_anon_kib,
        import_bytes,
        import_time,
    })
}

/// The figures as a Markdown table.
pub fn table(r: &mut Report) -> String {
    let n = r.lifecycle.len();
    let mut s = String::from("| measurement | value |\n|---|---|\n");
    s.push_str(&format!(
        "| container create+start+stop+remove ({n} in a row): median / p99 ms | {:.1} / {:.1} |\n",
        r.lifecycle.percentile_ms(50.0),
        r.lifecycle.percentile_ms(99.0)
    ));
    let [c, st, sp, rm] = &mut r.phases;
    for (what, p) in [("median", 50.0), ("p99", 99.0)] {
        s.push_str(&format!(
            "| of which create / start / stop / remove: {what} ms | {:.1} / {:.1} / {:.1} / {:.1} |\n",
            c.percentile_ms(p),
            st.percentile_ms(p),
            sp.percentile_ms(p),
            rm.percentile_ms(p)
        ));
    }
    s.push_str(&format!(
        "| {} pods (sandbox + 1 container) started concurrently: all running after | {:.2} s |\n",
        r.pods,
        r.pods_running_after.as_secs_f64()
    ));
    // Stored as microseconds = KiB.
    s.push_str(&format!(
        "| shim RSS per container: median / max | {:.2} / {:.2} MiB |\n",
        r.shim_rss_kib.percentile_ms(50.0) * 1000.0 / 1024.0,
        r.shim_rss_kib.percentile_ms(100.0) * 1000.0 / 1024.0
    ));
    s.push_str(&format!(
        "| of which private (RssAnon; the rest is the shared binary): median / max | {:.2} / {:.2} MiB |\n",
        r.shim_anon_kib.percentile_ms(50.0) * 1000.0 / 1024.0,
        r.shim_anon_kib.percentile_ms(100.0) * 1000.0 / 1024.0
    ));
    s.push_str(&format!(
        "| image import ({:.0} MiB OCI archive, uncompressed layers) | {:.0} MB/s |\n",
        r.import_bytes as f64 / (1 << 20) as f64,
        r.import_bytes as f64 / 1e6 / r.import_time.as_secs_f64()
    ));
    s
}
