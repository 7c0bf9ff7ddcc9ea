//! Pod sandboxes of the native runtime without a pause process: the pod's network, IPC and
//! UTS namespaces are created by a short-lived thread (`unshare`), which sets the hostname,
//! brings up loopback and bind-mounts the namespace files onto `<run>/ns/<sandbox>/{net,ipc,
//! uts}`; those mounts keep the namespaces alive and every container of the pod joins them.
//! The runtime also writes the pod's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.
//!
//! `<run>/ns` is a small private tmpfs of its own while any sandbox exists, so that a shim
//! can drop every other pod's pins from its mount namespace at once (one lazy unmount; see
//! [`crate::shim`]): copies of them would otherwise keep those pods' namespaces alive and
//! make every read of the shim's mount table longer.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::types::PodSandboxConfig;
use crate::{Error, Result};

/// The namespaces a sandbox pins (false: shared with the host).
#[derive(Clone, Copy, Debug)]
pub struct Pins {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

impl Pins {
    pub fn for_config(c: &PodSandboxConfig) -> Self {
        Self {
            net: !c.namespaces.host_network,
            ipc: !c.namespaces.host_ipc,
            // Host networking shares the host's hostname too, as upstream.
            uts: !c.namespaces.host_network,
        }
    }

    fn list(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.net {
            v.push("net");
        }
        if self.ipc {
            v.push("ipc");
        }
        if self.uts {
            v.push("uts");
        }
        v
    }
}

fn bring_up_loopback() -> std::io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Creates and pins the sandbox's namespaces under `dir`.
pub fn pin(dir: &Path, hostname: &str, pins: Pins) -> Result<()> {
    let names = pins.list();
    if names.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(crate::error::io(format!("creating {}", dir.display())))?;
    let pin_dir = dir.to_path_buf();
    let hostname = hostname.to_string();
    let res = std::thread::spawn(move || -> std::result::Result<(), String> {
        let mut flags = CloneFlags::empty();
        if pins.net {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        if pins.ipc {
            flags |= CloneFlags::CLONE_NEWIPC;
        }
        if pins.uts {
            flags |= CloneFlags::CLONE_NEWUTS;
        }
        // Only this thread moves into the new namespaces; it ends right after.
        nix::sched::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
        if pins.uts && !hostname.is_empty() {
            nix::unistd::sethostname(&hostname).map_err(|e| format!("sethostname: {e}"))?;
        }
        if pins.net {
            bring_up_loopback().map_err(|e| format!("bringing up lo: {e}"))?;
        }
        for name in pins.list() {
            let target = pin_dir.join(name);
            std::fs::File::create(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            let src = format!("/proc/thread-self/ns/{name}");
            nix::mount::mount(
                Some(src.as_str()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("pinning the {name} namespace at {}: {e}", target.display()))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error::Runtime("the namespace thread panicked".into()))?;
    if let Err(e) = res {
        let _ = unpin(dir);
        return Err(Error::Runtime(e));
    }
    Ok(())
}

/// Unmounts and deletes the pinned namespaces under `dir` (missing ones are fine).
pub fn unpin(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    for name in ["net", "ipc", "uts"] {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        match nix::mount::umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => {
                return Err(Error::Runtime(format!("unmounting {}: {e}", p.display())));
            }
        }
        let _ = std::fs::remove_file(&p);
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// `/etc/hosts` of a pod.
pub fn hosts_file(c: &PodSandboxConfig) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = &c.pod_ip
        && !c.hostname.is_empty()
    {
        s.push_str(&format!("{ip}\t{}\n", c.hostname));
    }
    if !c.host_aliases.is_empty() {
        s.push_str("\n# Entries added by HostAliases.\n");
        for a in &c.host_aliases {
            s.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.join("\t")));
        }
    }
    s
}

/// `/etc/resolv.conf` of a pod: its DNS config, or the host's file.
pub fn resolv_conf(c: &PodSandboxConfig) -> String {
    match &c.dns {
        Some(d) => {
            let mut s = String::new();
            if !d.searches.is_empty() {
                s.push_str(&format!("search {}\n", d.searches.join(" ")));
            }
            for n in &d.servers {
                s.push_str(&format!("nameserver {n}\n"));
            }
            if !d.options.is_empty() {
                s.push_str(&format!("options {}\n", d.options.join(" ")));
            }
            s
        }
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{DnsConfig, HostAlias};

    #[test]
    fn pod_files() {
        let c = PodSandboxConfig {
            hostname: "web-0".into(),
            pod_ip: Some("10.42.0.7".into()),
            host_aliases: vec![HostAlias {
                ip: "1.2.3.4".into(),
                hostnames: vec!["a".into(), "b".into()],
            }],
            dns: Some(DnsConfig {
                servers: vec!["10.43.0.10".into()],
                searches: vec![
                    "default.svc.cluster.local".into(),
                    "svc.cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
            }),
            ..Default::default()
        };
        let h = hosts_file(&c);
        assert!(h.contains("10.42.0.7\tweb-0\n"));
        assert!(h.contains("1.2.3.4\ta\tb\n"));
        assert_eq!(
            resolv_conf(&c),
            "search default.svc.cluster.local svc.cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n"
        );
    }
}
