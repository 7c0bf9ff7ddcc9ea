//! `rkube scheduler`: the scheduler as a process of its own, talking to any Kubernetes API
//! server through a kubeconfig (upstream's `kube-scheduler --kubeconfig F
//! --leader-elect=true`). `rkube server` runs the same scheduler as a task unless
//! `--disable-scheduler`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rkube_scheduler::{LeaderTiming, SchedulerConfig};

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// kubeconfig of the cluster to schedule for.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Schedule only while holding the kube-system/kube-scheduler Lease.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Schedule the pods whose spec.schedulerName is this.
    #[arg(long, default_value = rkube_scheduler::DEFAULT_SCHEDULER_NAME)]
    pub scheduler_name: String,

    /// Percentage of nodes to find feasible before scoring (1-100); upstream's adaptive
    /// default when unset.
    #[arg(long)]
    pub percentage_of_nodes_to_score: Option<u32>,
}

/// The scheduler's configuration from the flags.
pub fn config(args: &SchedulerArgs) -> Result<SchedulerConfig> {
    if let Some(p) = args.percentage_of_nodes_to_score
        && p > 100
    {
        bail!("--percentage-of-nodes-to-score must be between 0 and 100, got {p}");
    }
    if args.scheduler_name.is_empty() {
        bail!("--scheduler-name must not be empty");
    }
    Ok(SchedulerConfig {
        scheduler_name: args.scheduler_name.clone(),
        percentage_of_nodes_to_score: args.percentage_of_nodes_to_score.filter(|p| *p > 0),
        ..Default::default()
    })
}

/// Runs the scheduler (leader-elected or not) until the future is dropped.
pub async fn serve(
    client: kube::Client,
    config: SchedulerConfig,
    leader_elect: bool,
) -> Result<()> {
    if leader_elect {
        rkube_scheduler::run_leader_elected(client, config, LeaderTiming::default())
            .await
            .context("leader election")
    } else {
        rkube_scheduler::run(client, config).await;
        Ok(())
    }
}

pub fn run(args: SchedulerArgs) -> Result<()> {
    let config = config(&args)?;
    let Some(kubeconfig) = args.kubeconfig.clone() else {
        bail!("--kubeconfig (or KUBECONFIG) is required");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let client = rkube_client::client_from_kubeconfig(&kubeconfig)
            .await
            .with_context(|| format!("kubeconfig {}", kubeconfig.display()))?;
        let stop = crate::server::shutdown_signal()?;
        tracing::info!(scheduler = %config.scheduler_name, identity = %config.identity, leader_elect = args.leader_elect, "starting the scheduler");
        tokio::select! {
            r = serve(client, config, args.leader_elect) => r,
            _ = stop => {
                tracing::info!("scheduler stopping");
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SchedulerArgs,
    }

    #[test]
    fn flags() {
        let a = Cli::parse_from(["rkube", "--kubeconfig", "k"]).args;
        assert!(a.leader_elect);
        let a = Cli::parse_from(["rkube", "--leader-elect=false"]).args;
        assert!(!a.leader_elect);
        let a = Cli::parse_from(["rkube", "--leader-elect"]).args;
        assert!(a.leader_elect);
        let a = Cli::parse_from(["rkube", "--percentage-of-nodes-to-score", "101"]).args;
        assert!(
            config(&a)
                .unwrap_err()
                .to_string()
                .contains("between 0 and 100")
        );
        let a = Cli::parse_from(["rkube", "--percentage-of-nodes-to-score", "30"]).args;
        assert_eq!(config(&a).unwrap().percentage_of_nodes_to_score, Some(30));
    }
}
