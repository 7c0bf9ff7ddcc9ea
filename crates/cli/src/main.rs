//! The `rkube` command: one binary for every rkube role. Each subcommand lives in its own
//! module; this file only parses the command line and dispatches.

mod agent;
mod bench;
mod controller_manager;
mod duration;
mod image;
mod scheduler;
mod server;
mod shim;
mod snapshot;

use clap::{Parser, Subcommand};

/// mimalloc: allocation is a fifth of the API server's CPU under load with glibc's malloc,
/// and glibc's per-thread arenas fragment badly with many connections (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kubernetes in one small binary.
#[derive(Parser)]
#[command(name = "rkube", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (and, later, a node agent) on this machine.
    Server(server::ServerArgs),
    /// Run a node agent (today: hollow nodes with --fake) joining a cluster.
    Agent(agent::AgentArgs),
    /// Run the scheduler against a cluster (as kube-scheduler does).
    Scheduler(scheduler::SchedulerArgs),
    /// Run the controller manager (leader-elected) against a cluster.
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Save, restore or inspect snapshots of the embedded datastore.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Import, list and remove the node's container images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Run benchmarks and print their figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    // The container shim must create its container before any thread exists: hand over to
    // it before anything else runs.
    if let Some(code) = shim::dispatch() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Scheduler(args) => scheduler::run(args),
        Command::ControllerManager(args) => controller_manager::run(args),
        Command::Snapshot(cmd) => snapshot::run(cmd),
        Command::Image(cmd) => image::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Version => {
            println!("rkube version {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
