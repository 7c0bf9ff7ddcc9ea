//! Hollow nodes set up for tests: the configuration the end-to-end suites of several
//! crates share (node names, addresses, capacity, fast lease and status timings).

use std::time::Duration;

use crate::ipam::Cidr;
use crate::{Capacity, KubeletConfig, NodeIdentity};

/// `nodes` hollow nodes `hollow-0…` (addresses `172.16.0.1…`), 8 CPUs, 32 GiB and 50 pods
/// each, leases renewed every 500 ms and status every second. `pod_cidrs`: a /24 of it per
/// node, in order; `None` leaves podCIDRs to the node IPAM controller.
pub fn hollow_config(nodes: usize, pod_cidrs: Option<&Cidr>) -> KubeletConfig {
    let ids = (0..nodes)
        .map(|i| NodeIdentity {
            name: format!("hollow-{i}"),
            internal_ip: format!("172.16.0.{}", i + 1)
                .parse()
                .expect("a node address"),
            pod_cidr: pod_cidrs.and_then(|r| r.subnet(24, i as u64)),
        })
        .collect();
    let mut config = KubeletConfig::new(ids);
    config.capacity = Capacity {
        cpu: "8".into(),
        memory: "32Gi".into(),
        pods: "50".into(),
        ..Default::default()
    };
    config.lease_renew_interval = Duration::from_millis(500);
    config.status_report_interval = Duration::from_secs(1);
    config
}
