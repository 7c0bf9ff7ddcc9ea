//! `rkube agent`: a node agent. Today only hollow nodes exist (`--fake`): N simulated
//! nodes in one process, named `<prefix>-0…N-1`, sharing one API client, one pod watch and
//! one fake runtime, each registering a Node, renewing its Lease and running the pods bound
//! to it through the kubelet's pod worker (no processes). Pod ranges come from the
//! controller manager's node IPAM unless `--assign-pod-cidrs`. The agent for real containers
//! needs the container runtime and comes with it; without `--fake` the command says so.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rkube_kubelet::ipam::Cidr;
use rkube_kubelet::runtime::FakeRuntime;
use rkube_kubelet::{Capacity, Kubelet, KubeletConfig, NodeIdentity};

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Run hollow nodes: simulated kubelets on a fake runtime (no containers).
    #[arg(long)]
    pub fake: bool,

    /// How many hollow nodes to run.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,

    /// kubeconfig of the cluster to join.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Hollow nodes are named <prefix>-0 … <prefix>-(N-1).
    #[arg(long, default_value = "hollow-node")]
    pub node_name_prefix: String,

    /// CPU capacity of each node (a Kubernetes quantity).
    #[arg(long, default_value = "4")]
    pub node_cpu: String,

    /// Memory capacity of each node.
    #[arg(long, default_value = "16Gi")]
    pub node_memory: String,

    /// Pod capacity of each node.
    #[arg(long, default_value = "110")]
    pub node_pods: u32,

    /// Give each node its pod range here (node i gets the i-th subnet of --cluster-cidr,
    /// unless its Node already has a podCIDR), for clusters without a controller manager.
    /// Without it the nodes wait for the controller manager's node IPAM to set podCIDR.
    #[arg(long)]
    pub assign_pod_cidrs: bool,

    /// Pod ranges for the nodes are cut from this range with --assign-pod-cidrs.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,

    /// Prefix length of each node's pod range.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,

    /// Node i's InternalIP is address i+1 of this range.
    #[arg(long, default_value = "172.16.0.0/12")]
    pub node_ip_range: String,
}

fn quantity_ok(s: &str) -> bool {
    let s = s.trim();
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[digits.len()..];
    !digits.is_empty()
        && digits.parse::<f64>().is_ok_and(|v| v >= 0.0)
        && [
            "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ]
        .contains(&suffix)
}

/// The nodes' identities from the flags (checked: names, ranges big enough).
fn identities(args: &AgentArgs) -> Result<Vec<NodeIdentity>> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let prefix = &args.node_name_prefix;
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
    };
    if !valid_name(&format!("{prefix}-0")) {
        bail!(
            "--node-name-prefix {prefix:?}: node names must be lowercase DNS subdomains \
             (a-z, 0-9, '-', '.', starting with a letter or digit)"
        );
    }
    let cluster: Cidr = args
        .cluster_cidr
        .parse()
        .with_context(|| "--cluster-cidr".to_string())?;
    let mask = args.node_cidr_mask_size;
    if mask < cluster.prefix || mask > 30 {
        bail!(
            "--node-cidr-mask-size {mask} must be between the cluster range's prefix ({}) and 30",
            cluster.prefix
        );
    }
    let available = 1u64 << (mask - cluster.prefix);
    if args.assign_pod_cidrs && u64::from(args.nodes) > available {
        bail!(
            "--cluster-cidr {cluster} holds {available} /{mask} node ranges, fewer than \
             --nodes {}; give a larger range (for example --cluster-cidr 10.0.0.0/8)",
            args.nodes
        );
    }
    let ips: Cidr = args
        .node_ip_range
        .parse()
        .with_context(|| "--node-ip-range".to_string())?;
    if u64::from(args.nodes) + 2 > ips.size() {
        bail!(
            "--node-ip-range {ips} has too few addresses for --nodes {}",
            args.nodes
        );
    }
    (0..u64::from(args.nodes))
        .map(|i| {
            let internal_ip: Ipv4Addr = ips.nth(i + 1).context("node IP out of range")?;
            Ok(NodeIdentity {
                name: format!("{prefix}-{i}"),
                internal_ip,
                pod_cidr: if args.assign_pod_cidrs {
                    cluster.subnet(mask, i)
                } else {
                    None
                },
            })
        })
        .collect()
}

pub fn run(args: AgentArgs) -> Result<()> {
    if !args.fake {
        bail!(
            "rkube agent runs only hollow nodes so far (--fake): the agent for real \
             containers comes with the container runtime"
        );
    }
    let Some(kubeconfig) = args.kubeconfig.clone() else {
        bail!("--kubeconfig is required (the cluster the hollow nodes join)");
    };
    for (flag, value) in [
        ("--node-cpu", &args.node_cpu),
        ("--node-memory", &args.node_memory),
    ] {
        if !quantity_ok(value) {
            bail!("{flag} {value:?} is not a quantity (for example 4, 500m, 16Gi)");
        }
    }
    let nodes = identities(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let client = rkube_client::client_from_kubeconfig(&kubeconfig).await?;
        let count = nodes.len();
        let mut config = KubeletConfig::new(nodes);
        config.capacity = Capacity {
            cpu: args.node_cpu.clone(),
            memory: args.node_memory.clone(),
            pods: args.node_pods.to_string(),
            ..Default::default()
        };
        let kubelet = Kubelet::new(client, Arc::new(FakeRuntime::new()), config)?;
        eprintln!(
            "rkube agent: {count} hollow node(s) {}-0…{}-{} (fake runtime)",
            args.node_name_prefix,
            args.node_name_prefix,
            count - 1
        );
        let stop = crate::server::shutdown_signal()?;
        tokio::select! {
            r = kubelet.run() => r.context("hollow nodes")?,
            _ = stop => eprintln!("rkube agent: stopping"),
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AgentArgs,
    }

    fn parse(extra: &[&str]) -> AgentArgs {
        let mut argv = vec!["rkube", "--fake"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn nodes_get_names_ranges_and_addresses() {
        let ids = identities(&parse(&[
            "--nodes",
            "3",
            "--node-name-prefix",
            "hn",
            "--assign-pod-cidrs",
        ]))
        .unwrap();
        let names: Vec<&str> = ids.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["hn-0", "hn-1", "hn-2"]);
        assert_eq!(ids[2].pod_cidr.unwrap().to_string(), "10.42.2.0/24");
        assert_eq!(ids[0].internal_ip.to_string(), "172.16.0.1");
        let many = identities(&parse(&[
            "--nodes",
            "5000",
            "--cluster-cidr",
            "10.0.0.0/8",
            "--assign-pod-cidrs",
        ]))
        .unwrap();
        assert_eq!(many[4999].pod_cidr.unwrap().to_string(), "10.19.135.0/24");
        // Without the flag the controller manager's node IPAM gives the ranges.
        let ipam = identities(&parse(&["--nodes", "2"])).unwrap();
        assert!(ipam.iter().all(|i| i.pod_cidr.is_none()));
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        let err = identities(&parse(&["--nodes", "300", "--assign-pod-cidrs"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 256 /24 node ranges"), "{err}");
        let err = identities(&parse(&["--node-name-prefix", "Bad_Name"])).unwrap_err();
        assert!(err.to_string().contains("--node-name-prefix"), "{err}");
        assert!(identities(&parse(&["--nodes", "0"])).is_err());
        assert!(identities(&parse(&["--cluster-cidr", "nope"])).is_err());
        assert!(quantity_ok("500m") && quantity_ok("16Gi") && quantity_ok("4"));
        assert!(!quantity_ok("lots") && !quantity_ok("4 cores") && !quantity_ok(""));
    }
}
