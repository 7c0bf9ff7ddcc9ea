//! `rkube bench …`: runs a benchmark and prints the machine, the command and a Markdown table
//! of figures for BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use rkube_bench::store::{self, Backend};

use crate::duration;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// The storage backends side by side.
    Store(StoreArgs),
    /// The API server: a real `rkube server` driven over HTTPS.
    Api(ApiArgs),
    /// The native container runtime with real containers (as root).
    Runtime(RuntimeArgs),
    /// The scheduler in upstream's SchedulingBasic shape (separate server and scheduler
    /// processes).
    Scheduler(SchedulerArgs),
    /// A many-replica Deployment from apply to all pods Ready on hollow nodes.
    Deployment(DeploymentArgs),
}

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Pods scheduled before the measurement.
    #[arg(long, default_value_t = 1000)]
    existing_pods: usize,
    /// Pods created and scheduled in the measurement.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Variants, comma-separated: plain (Node objects, as upstream's scheduler_perf),
    /// churn (plain with pods created and deleted meanwhile), hollow (rkube agent --fake).
    #[arg(long, value_delimiter = ',', default_value = "plain,churn")]
    variants: Vec<String>,
    /// Directory for the server's data (default: the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct DeploymentArgs {
    /// Hollow nodes (110 pods each).
    #[arg(long, default_value_t = 200)]
    nodes: usize,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 10_000)]
    replicas: i32,
    /// Directory for the server's data (default: the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Internal: run only the workload controllers (the benchmark's child process).
    #[arg(long, hide = true)]
    controllers_only: bool,
    /// Internal: kubeconfig for --controllers-only.
    #[arg(long, hide = true)]
    kubeconfig: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RuntimeArgs {
    /// Container lifecycles (create+start+stop+remove) to time.
    #[arg(long, default_value_t = 100)]
    lifecycles: usize,
    /// Pods started concurrently.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Size of the archive for the image-import figure, in MiB.
    #[arg(long, default_value_t = 256)]
    import_mib: usize,
    /// Directory for the runtime's state (default: the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// How long each throughput phase runs.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    phase: Duration,
    /// Pods stored for the GET, LIST and memory measurements.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Watchers in the fan-out measurement.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Updates delivered to the watchers.
    #[arg(long, default_value_t = 100)]
    watch_updates: usize,
    /// Directory for the server's data (default: the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// Backends to measure, comma-separated: sqlite, etcd, memory.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,etcd")]
    backends: Vec<Backend>,
    /// How long each throughput phase runs.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    phase: Duration,
    /// Keys for the get, range and update phases.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Watchers in the fan-out phase.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Writes every watcher receives in the fan-out phase.
    #[arg(long, default_value_t = 1000)]
    watch_writes: usize,
    /// Updates in the disk-size phase (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    updates: u64,
    /// History the compactor keeps during the disk-size phase.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    retention: Duration,
    /// Phases to run, comma-separated: create, get, range, watch, disk (default: all).
    #[arg(long, value_delimiter = ',')]
    phases: Vec<store::Phase>,
    /// Keep the datastores on disk afterwards (for inspection).
    #[arg(long)]
    keep: bool,
    /// Directory for the datastores (default: the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        BenchCommand::Store(args) => {
            let opts = store::Options {
                backends: args.backends,
                phase: args.phase,
                keys: args.keys,
                watchers: args.watchers,
                watch_writes: args.watch_writes,
                updates: args.updates,
                retention: args.retention,
                dir: args.dir.unwrap_or_else(std::env::temp_dir),
                phases: args.phases,
                keep: args.keep,
                ..Default::default()
            };
            let reports = runtime.block_on(store::run(&opts))?;
            print_header();
            print!("{}", store::table(&reports));
        }
        BenchCommand::Runtime(args) => {
            let opts = rkube_bench::runtime::Options {
                lifecycles: args.lifecycles,
                pods: args.pods,
                import_mib: args.import_mib,
                dir: args.dir.unwrap_or_else(std::env::temp_dir),
                shim_binary: std::env::current_exe().context("finding the rkube binary")?,
            };
            let mut report = runtime.block_on(rkube_bench::runtime::run(&opts))?;
            print_header();
            print!("{}", rkube_bench::runtime::table(&mut report));
        }
        BenchCommand::Scheduler(args) => {
            let opts = rkube_bench::scheduler::Options {
                rkube: std::env::current_exe().context("finding the rkube binary")?,
                nodes: args.nodes,
                existing_pods: args.existing_pods,
                pods: args.pods,
                clients: args.clients,
                variants: args.variants,
                dir: args.dir.unwrap_or_else(std::env::temp_dir),
            };
            let reports = runtime.block_on(rkube_bench::scheduler::run(&opts))?;
            print_header();
            print!("{}", rkube_bench::scheduler::table(&reports));
        }
        BenchCommand::Api(args) => {
            let opts = rkube_bench::api::Options {
                rkube: std::env::current_exe().context("finding the rkube binary")?,
                phase: args.phase,
                pods: args.pods,
                watchers: args.watchers,
                watch_updates: args.watch_updates,
                dir: args.dir.unwrap_or_else(std::env::temp_dir),
            };
            let report = runtime.block_on(rkube_bench::api::run(&opts))?;
            print_header();
            print!("{}", store::table(&[report]));
        }
        BenchCommand::Deployment(args) => {
            if args.controllers_only {
                let kubeconfig = args
                    .kubeconfig
                    .context("--controllers-only needs --kubeconfig")?;
                return runtime.block_on(rkube_bench::deployment::controllers_only(&kubeconfig));
            }
            let opts = rkube_bench::deployment::Options {
                rkube: std::env::current_exe().context("finding the rkube binary")?,
                nodes: args.nodes,
                replicas: args.replicas,
                dir: args.dir.unwrap_or_else(std::env::temp_dir),
            };
            let report = runtime.block_on(rkube_bench::deployment::run(&opts))?;
            print_header();
            print!("{}", rkube_bench::deployment::table(&report));
        }
    }
    Ok(())
}

fn print_header() {
    println!("machine: {}", rkube_bench::machine());
    println!(
        "command: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!();
}
