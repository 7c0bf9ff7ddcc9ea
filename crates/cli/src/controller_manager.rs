//! `rkube controller-manager`: the controller manager on its own, against any cluster's
//! API (leader-elected through the `kube-system/kube-controller-manager` Lease). The same
//! manager runs inside `rkube server` unless `--disable-controller-manager`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rkube_controllers::nodeipam::Cidr;
use rkube_controllers::{ControllerSet, ControllersConfig, Manager};

use crate::duration;

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerManagerArgs {
    /// kubeconfig of the cluster to manage.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The CA certificate (PEM) published in every namespace as `kube-root-ca.crt`
    /// (default: the kubeconfig's certificate authority).
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,

    /// Node pod ranges are cut from this range.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,

    /// Prefix length of each node's pod range.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,

    /// How long a node may go without renewing its Lease before it is marked unknown.
    #[arg(long, default_value = "40s", value_parser = duration::parse)]
    pub node_monitor_grace_period: Duration,

    /// Terminated pods beyond this many are deleted, oldest first.
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
}

/// The controllers' settings from the flags (checked).
pub fn config(args: &ControllerManagerArgs, ca_pem: Option<String>) -> Result<ControllersConfig> {
    let cidr = Cidr::parse(&args.cluster_cidr).context("--cluster-cidr")?;
    if args.node_cidr_mask_size < cidr.prefix || args.node_cidr_mask_size > 30 {
        bail!(
            "--node-cidr-mask-size {} must be between the cluster range's prefix ({}) and 30",
            args.node_cidr_mask_size,
            cidr.prefix
        );
    }
    Ok(ControllersConfig {
        root_ca_pem: ca_pem,
        cluster_cidr: cidr,
        node_cidr_mask_size: args.node_cidr_mask_size,
        node_monitor_grace_period: args.node_monitor_grace_period,
        terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
        ..Default::default()
    })
}

/// The root CA: the flag's file, else the kubeconfig's.
pub fn root_ca(
    args: &ControllerManagerArgs,
    kubeconfig: &std::path::Path,
) -> Result<Option<String>> {
    match &args.root_ca_file {
        Some(f) => {
            Ok(Some(std::fs::read_to_string(f).with_context(|| {
                format!("--root-ca-file {}", f.display())
            })?))
        }
        None => Ok(rkube_controllers::manager::ca_from_kubeconfig(kubeconfig)?),
    }
}

/// Runs a manager with the cluster and workload controllers until `stop` resolves.
pub async fn serve(
    kubeconfig: PathBuf,
    config: ControllersConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let client = rkube_client::client_from_kubeconfig(&kubeconfig).await?;
    let manager = Manager::new(client)
        .with_sets(rkube_controllers::cluster_sets(config))
        .with_sets([ControllerSet::new("workloads", rkube_workloads::run)]);
    tracing::info!(controllers = ?manager.set_names(), "controller manager: campaigning for the kube-system/kube-controller-manager lease");
    manager.run(stop).await?;
    Ok(())
}

pub fn run(args: ControllerManagerArgs) -> Result<()> {
    let Some(kubeconfig) = args.kubeconfig.clone() else {
        bail!("--kubeconfig is required (the cluster to manage)");
    };
    let ca = root_ca(&args, &kubeconfig)?;
    if ca.is_none() {
        tracing::warn!(
            "no CA certificate in the kubeconfig and no --root-ca-file: kube-root-ca.crt is not published"
        );
    }
    let config = config(&args, ca)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let stop = crate::server::shutdown_signal()?;
        serve(kubeconfig, config, stop).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerManagerArgs,
    }

    #[test]
    fn flags_are_checked() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["rkube"];
            argv.extend_from_slice(extra);
            Cli::parse_from(argv).args
        };
        let c = config(&parse(&["--cluster-cidr", "10.0.0.0/8"]), None).unwrap();
        assert_eq!(c.cluster_cidr.to_string(), "10.0.0.0/8");
        assert_eq!(c.node_monitor_grace_period, Duration::from_secs(40));
        assert!(config(&parse(&["--cluster-cidr", "nope"]), None).is_err());
        let err = config(&parse(&["--node-cidr-mask-size", "8"]), None).unwrap_err();
        assert!(err.to_string().contains("--node-cidr-mask-size"), "{err}");
    }
}
