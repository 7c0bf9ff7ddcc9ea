//! Pod IPs from a node's podCIDR: IPv4 ranges, allocation and release. The network
//! address, the gateway (`.1`) and the broadcast address are never handed out, as with
//! the CNI `host-local` plugin on a bridge.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid CIDR {0:?}: expected an IPv4 range like 10.42.0.0/24")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
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
            network: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Number of addresses in the range.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        u32::from(ip) & mask == u32::from(self.network)
    }

    /// The `index`-th subnet of length `prefix` inside this range, if there is one.
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if index >= count {
            return None;
        }
        let base = u32::from(self.network) as u64 + (index << (32 - prefix as u32));
        Some(Cidr {
            network: Ipv4Addr::from(u32::try_from(base).ok()?),
            prefix,
        })
    }

    /// The `index`-th address of the range.
    pub fn nth(&self, index: u64) -> Option<Ipv4Addr> {
        if index >= self.size() {
            return None;
        }
        let ip = u32::from(self.network) as u64 + index;
        Some(Ipv4Addr::from(u32::try_from(ip).ok()?))
    }
}

/// Allocates addresses of one range.
#[derive(Debug)]
pub struct Allocator {
    cidr: Cidr,
    used: HashSet<Ipv4Addr>,
    next: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no free pod IP left in {0}")]
pub struct Exhausted(pub Cidr);

impl Allocator {
    pub fn new(cidr: Cidr) -> Self {
        Allocator {
            cidr,
            used: HashSet::new(),
            next: 2,
        }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// The next free address (round-robin, so released addresses are reused last).
    pub fn allocate(&mut self) -> Result<Ipv4Addr, Exhausted> {
        let size = self.cidr.size();
        if size < 4 {
            return Err(Exhausted(self.cidr));
        }
        let usable = size - 3; // network, gateway, broadcast
        for _ in 0..usable {
            if self.next >= size - 1 {
                self.next = 2;
            }
            let candidate = self.next;
            self.next += 1;
            if let Some(ip) = self.cidr.nth(candidate)
                && self.used.insert(ip)
            {
                return Ok(ip);
            }
        }
        Err(Exhausted(self.cidr))
    }

    /// Marks `ip` in use (an address found in a pod's status after a restart).
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        self.cidr.contains(ip) && self.used.insert(ip)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let c: Cidr = "10.42.3.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.42.3.0/24");
        assert!(c.contains("10.42.3.255".parse().unwrap()));
        assert!(!c.contains("10.42.4.1".parse().unwrap()));
        for bad in [
            "10.42.0.0",
            "10.42.0.0/33",
            "x/24",
            "10.42.0/24",
            "fd00::/64",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets_split_a_cluster_range() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert_eq!(c.subnet(24, 0).unwrap().to_string(), "10.0.0.0/24");
        assert_eq!(c.subnet(24, 257).unwrap().to_string(), "10.1.1.0/24");
        assert_eq!(c.subnet(24, 65535).unwrap().to_string(), "10.255.255.0/24");
        assert!(c.subnet(24, 65536).is_none());
        assert!(c.subnet(7, 0).is_none());
    }

    #[test]
    fn allocates_all_usable_addresses_once_then_reuses_released() {
        let mut a = Allocator::new("10.42.0.0/29".parse().unwrap());
        let got: Vec<String> = (0..5).map(|_| a.allocate().unwrap().to_string()).collect();
        assert_eq!(
            got,
            [
                "10.42.0.2",
                "10.42.0.3",
                "10.42.0.4",
                "10.42.0.5",
                "10.42.0.6"
            ]
        );
        assert!(a.allocate().is_err());
        a.release("10.42.0.4".parse().unwrap());
        assert_eq!(a.allocate().unwrap().to_string(), "10.42.0.4");
        assert!(!a.reserve("10.42.0.4".parse().unwrap()), "already in use");
        assert!(!a.reserve("10.9.0.4".parse().unwrap()), "outside the range");
        assert_eq!(a.in_use(), 5);
    }
}
