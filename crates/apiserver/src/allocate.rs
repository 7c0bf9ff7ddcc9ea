//! ClusterIP and NodePort allocation for Services.
//!
//! Each allocated IP or port is a key in the store (`/registry/serviceipallocations/<ip>`,
//! `/registry/servicenodeportallocations/<port>`) created only if absent, so two requests —
//! even on two API servers sharing etcd — can never get the same one, and allocations
//! survive restarts. Dynamic IPs come from above the low band of the range (left for
//! addresses asked for explicitly, like 10.43.0.10 for DNS), as upstream does.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rkube_api::ApiError;
use rkube_api::status::Cause;
use rkube_store::{Error, Store, WriteOptions};

const IP_PREFIX: &str = "/registry/serviceipallocations/";
const PORT_PREFIX: &str = "/registry/servicenodeportallocations/";

/// A CIDR range of IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix: u8 = len
            .parse()
            .map_err(|_| format!("{s:?} has a bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: the prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// The `n`-th address of the range.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Service IP and node port allocation.
pub struct Allocators {
    store: Arc<dyn Store>,
    pub service_cidr: Cidr,
    pub node_ports: (u16, u16),
    next_ip: Mutex<u32>,
    next_port: Mutex<u16>,
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{field}: {message}"),
        details: Some(Box::new(rkube_api::status::Details {
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                message,
                field: field.into(),
            }],
            ..Default::default()
        })),
    }
}

impl Allocators {
    pub fn new(store: Arc<dyn Store>, service_cidr: Cidr, node_ports: (u16, u16)) -> Self {
        let seed = rkube_api::meta::now().1;
        let band = Self::static_band(service_cidr);
        let dynamic = service_cidr.size() - 2 - band;
        Allocators {
            store,
            service_cidr,
            node_ports,
            next_ip: Mutex::new(band + 1 + seed % dynamic.max(1)),
            next_port: Mutex::new(
                node_ports.0 + (seed % (node_ports.1 - node_ports.0 + 1) as u32) as u16,
            ),
        }
    }

    /// Addresses kept for explicit requests: 1/16 of the range, between 16 and 256.
    fn static_band(cidr: Cidr) -> u32 {
        (cidr.size() / 16).clamp(16, 256).min(cidr.size() / 2)
    }

    async fn claim(&self, key: String, owner: &str) -> Result<bool, ApiError> {
        match self
            .store
            .create(
                &key,
                Bytes::from(owner.to_string()),
                WriteOptions::default(),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(ApiError::internal(format!("allocation: {e}"))),
        }
    }

    /// Allocates `requested`, or a free address. `owner` is `namespace/name`.
    pub async fn allocate_ip(
        &self,
        requested: Option<Ipv4Addr>,
        owner: &str,
    ) -> Result<Ipv4Addr, ApiError> {
        let cidr = self.service_cidr;
        if let Some(ip) = requested {
            let offset = u32::from(ip).wrapping_sub(u32::from(cidr.base));
            if !cidr.contains(ip) || offset == 0 || offset == cidr.size() - 1 {
                return Err(invalid(
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}"
                    ),
                ));
            }
            if self.claim(format!("{IP_PREFIX}{ip}"), owner).await? {
                return Ok(ip);
            }
            return Err(invalid(
                "spec.clusterIPs",
                format!(
                    "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
                ),
            ));
        }
        let usable = cidr.size() - 2;
        let band = Self::static_band(cidr);
        let start = *self.next_ip.lock().unwrap_or_else(|e| e.into_inner());
        // The dynamic band first, then the static band.
        let dynamic = (band + 1..=usable)
            .cycle()
            .skip_while(|o| *o != start.clamp(band + 1, usable))
            .take((usable - band) as usize);
        let order: Vec<u32> = dynamic.chain(1..=band).collect();
        for offset in order {
            let ip = cidr.nth(offset);
            if self.claim(format!("{IP_PREFIX}{ip}"), owner).await? {
                *self.next_ip.lock().unwrap_or_else(|e| e.into_inner()) = if offset >= usable {
                    band + 1
                } else {
                    offset + 1
                };
                return Ok(ip);
            }
        }
        Err(ApiError::internal(format!(
            "failed to allocate a serviceIP: range is full ({cidr})"
        )))
    }

    pub async fn release_ip(&self, ip: Ipv4Addr) {
        let _ = self.store.delete(&format!("{IP_PREFIX}{ip}"), None).await;
    }

    /// Allocates `requested`, or a free port; `field` names it in errors.
    pub async fn allocate_port(
        &self,
        requested: Option<u16>,
        owner: &str,
        field: &str,
    ) -> Result<u16, ApiError> {
        let (lo, hi) = self.node_ports;
        if let Some(port) = requested {
            if !(lo..=hi).contains(&port) {
                return Err(invalid(
                    field,
                    format!(
                        "Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                    ),
                ));
            }
            if self.claim(format!("{PORT_PREFIX}{port}"), owner).await? {
                return Ok(port);
            }
            return Err(invalid(
                field,
                format!("Invalid value: {port}: provided port is already allocated"),
            ));
        }
        let start = *self.next_port.lock().unwrap_or_else(|e| e.into_inner());
        let n = (hi - lo) as u32 + 1;
        for i in 0..n {
            let port = lo + (((start - lo) as u32 + i) % n) as u16;
            if self.claim(format!("{PORT_PREFIX}{port}"), owner).await? {
                *self.next_port.lock().unwrap_or_else(|e| e.into_inner()) =
                    if port >= hi { lo } else { port + 1 };
                return Ok(port);
            }
        }
        Err(ApiError::internal(format!(
            "failed to allocate a nodePort: range is full ({lo}-{hi})"
        )))
    }

    pub async fn release_port(&self, port: u16) {
        let _ = self
            .store
            .delete(&format!("{PORT_PREFIX}{port}"), None)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allocations_never_repeat() {
        let store: Arc<dyn Store> = Arc::new(rkube_store::memory::MemoryStore::new());
        let cidr = Cidr::parse("10.43.0.0/24").unwrap();
        let a = Allocators::new(store.clone(), cidr, (30000, 30009));
        assert_eq!(
            a.allocate_ip(Some("10.43.0.1".parse().unwrap()), "default/kubernetes")
                .await
                .unwrap(),
            "10.43.0.1".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            a.allocate_ip(Some("10.43.0.1".parse().unwrap()), "x/y")
                .await
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            a.allocate_ip(Some("10.44.0.1".parse().unwrap()), "x/y")
                .await
                .unwrap_err()
                .code,
            422
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..253 {
            let ip = a.allocate_ip(None, &format!("ns/s{i}")).await.unwrap();
            assert!(cidr.contains(ip));
            assert!(seen.insert(ip), "{ip} twice");
        }
        assert_eq!(a.allocate_ip(None, "ns/full").await.unwrap_err().code, 500);
        a.release_ip("10.43.0.77".parse().unwrap()).await;
        assert_eq!(
            a.allocate_ip(None, "ns/again").await.unwrap(),
            "10.43.0.77".parse::<Ipv4Addr>().unwrap()
        );
        // A second allocator over the same store (a restart, or another server).
        let b = Allocators::new(store, cidr, (30000, 30009));
        let mut ports = std::collections::HashSet::new();
        for i in 0..10 {
            let alloc = if i % 2 == 0 { &a } else { &b };
            assert!(
                ports.insert(
                    alloc
                        .allocate_port(None, "ns/s", "spec.ports[0].nodePort")
                        .await
                        .unwrap()
                )
            );
        }
        assert!(b.allocate_port(None, "ns/s", "f").await.is_err());
        assert_eq!(
            b.allocate_port(Some(80), "ns/s", "spec.ports[0].nodePort")
                .await
                .unwrap_err()
                .message,
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-30009"
        );
    }
}
