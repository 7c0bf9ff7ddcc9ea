//! Node IPAM: every Node without a podCIDR gets the next free range of the cluster range
//! (a /24 of 10.42.0.0/16 by default) in `spec.podCIDR` and `spec.podCIDRs`. Ranges in
//! use are learned from the existing Nodes before anything is handed out, so a restart
//! never hands a range out twice; a deleted Node's range is free again. When the range is
//! exhausted the Node gets a `CIDRNotAvailable` event.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use rkube_client::{Change, RateLimiter, Store, WorkQueue};
use serde_json::json;

use crate::base::{self, Error, Tasks, is_not_found};
use crate::shared::Shared;
use rkube_client::Recorder;
use rkube_client::events::NORMAL;

/// An IPv4 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

/// Why a range could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid CIDR {0:?}: expected an IPv4 range like 10.42.0.0/16")]
pub struct CidrError(String);

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let (ip, prefix) = s.trim().split_once('/').ok_or_else(err)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        if prefix > 32 {
            return Err(err());
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    /// How many /`mask` subnets the range holds (0 when `mask` is shorter).
    pub fn subnets(&self, mask: u8) -> u64 {
        if mask < self.prefix || mask > 32 {
            0
        } else {
            1u64 << (mask - self.prefix)
        }
    }

    /// The `i`-th /`mask` subnet.
    pub fn subnet(&self, mask: u8, i: u64) -> Option<Cidr> {
        if i >= self.subnets(mask) {
            return None;
        }
        let size = 1u64 << (32 - mask);
        Some(Cidr {
            base: (u64::from(self.base) + i * size) as u32,
            prefix: mask,
        })
    }

    /// The index of `sub` among the /`sub.prefix` subnets, if it is one of them.
    pub fn index_of(&self, sub: &Cidr) -> Option<u64> {
        if sub.prefix < self.prefix {
            return None;
        }
        let size = 1u64 << (32 - sub.prefix);
        let offset = u64::from(sub.base).checked_sub(u64::from(self.base))?;
        (offset % size == 0 && offset / size < self.subnets(sub.prefix)).then_some(offset / size)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// Which subnets are taken, and by which node.
pub struct Allocator {
    range: Cidr,
    mask: u8,
    used: HashMap<u64, String>,
    next: u64,
}

impl Allocator {
    pub fn new(range: Cidr, mask: u8) -> Self {
        Allocator {
            range,
            mask,
            used: HashMap::new(),
            next: 0,
        }
    }

    /// Records a node's existing range (ignored when outside ours).
    pub fn occupy(&mut self, node: &str, cidr: &str) {
        if let Ok(c) = Cidr::parse(cidr)
            && c.prefix == self.mask
            && let Some(i) = self.range.index_of(&c)
        {
            self.used.insert(i, node.to_string());
        }
    }

    /// The range `node` holds, or a fresh one.
    pub fn allocate(&mut self, node: &str) -> Option<Cidr> {
        if let Some((&i, _)) = self.used.iter().find(|(_, n)| n.as_str() == node) {
            return self.range.subnet(self.mask, i);
        }
        let total = self.range.subnets(self.mask);
        for k in 0..total {
            let i = (self.next + k) % total;
            if let std::collections::hash_map::Entry::Vacant(e) = self.used.entry(i) {
                e.insert(node.to_string());
                self.next = (i + 1) % total;
                return self.range.subnet(self.mask, i);
            }
        }
        None
    }

    /// Frees the ranges of `node`.
    pub fn release(&mut self, node: &str) {
        self.used.retain(|_, n| n != node);
    }
}

fn pod_cidr(n: &Node) -> Option<&str> {
    n.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .filter(|c| !c.is_empty())
}

/// Runs the allocator over `range` cut into /`mask` ranges until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>, range: Cidr, mask: u8) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let alloc = Arc::new(Mutex::new(Allocator::new(range, mask)));
    let (q, a) = (queue.clone(), alloc.clone());
    shared.nodes.on_change(move |c: &Change<Node>| match c {
        Change::Deleted(n) => lock(&a).release(&base::name_of(n.as_ref())),
        Change::Added(n) | Change::Updated { new: n, .. } => {
            let name = base::name_of(n.as_ref());
            match pod_cidr(n) {
                Some(cidr) => lock(&a).occupy(&name, cidr),
                None => q.add(name),
            }
        }
    });
    let store = shared.nodes.store();
    let mut tasks = Tasks::new();
    // Ranges in use are known before any is handed out: workers start after the sync.
    shared.nodes.start().await;
    let (recorder, writer) = Recorder::new(client.clone(), "cidrAllocator");
    tasks.spawn(writer);
    base::spawn_workers(&mut tasks, "node-ipam", &queue, 2, move |name| {
        let (client, store, alloc, recorder) = (
            client.clone(),
            store.clone(),
            alloc.clone(),
            recorder.clone(),
        );
        async move { reconcile(&client, &store, &alloc, &recorder, &name).await }
    });
    tasks.join().await;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn reconcile(
    client: &kube::Client,
    store: &Store<Node>,
    alloc: &Mutex<Allocator>,
    recorder: &Recorder,
    name: &str,
) -> Result<(), Error> {
    let Some(node) = store.get(name) else {
        return Ok(());
    };
    if pod_cidr(&node).is_some() {
        return Ok(());
    }
    let Some(cidr) = lock(alloc).allocate(name) else {
        let mut r = base::reference(node.as_ref());
        r.namespace = None;
        recorder.event_ref(
            &r,
            NORMAL,
            "CIDRNotAvailable",
            format!("Node {name} status is now: CIDRNotAvailable"),
        );
        return Err(Error::Other(format!("no pod range left for node {name}")));
    };
    let api: Api<Node> = Api::all(client.clone());
    let url = format!("{}/{name}", api.resource_url());
    let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
    match base::merge_patch(client, &url, &patch).await {
        Ok(_) => {
            tracing::info!(node = name, %cidr, "allocated pod range");
            Ok(())
        }
        Err(e) if is_not_found(&e) => {
            lock(alloc).release(name);
            Ok(())
        }
        Err(e) => {
            lock(alloc).release(name);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_handed_out_once_and_reused_after_release() {
        let range = Cidr::parse("10.42.0.0/16").unwrap();
        let mut a = Allocator::new(range, 24);
        a.occupy("old", "10.42.0.0/24");
        a.occupy("foreign", "192.168.0.0/24");
        assert_eq!(a.allocate("n1").unwrap().to_string(), "10.42.1.0/24");
        assert_eq!(a.allocate("n2").unwrap().to_string(), "10.42.2.0/24");
        // Asking again for the same node gives its range.
        assert_eq!(a.allocate("n1").unwrap().to_string(), "10.42.1.0/24");
        a.release("old");
        let mut seen = std::collections::HashSet::new();
        for i in 0..254 {
            let c = a.allocate(&format!("x{i}")).unwrap();
            assert!(seen.insert(c), "{c} handed out twice");
        }
        assert!(a.allocate("one-too-many").is_none());
        assert!(Cidr::parse("10.42.0.0").is_err());
        assert!(Cidr::parse("10.42.0.0/33").is_err());
        assert_eq!(
            range.index_of(&Cidr::parse("10.42.7.0/24").unwrap()),
            Some(7)
        );
    }
}
