//! Keeping the long-lived shim small: after creating (and after starting) its container the
//! shim gives back what it no longer needs.
//!
//! - Free heap memory goes back to the kernel (`malloc_trim`).
//! - Pages of the executable and libraries that creating the container touched (libcontainer,
//!   start-up code) stay mapped in the shim and count in its resident set although the shim
//!   never runs them again. For read-only private file mappings that hold no private copy of
//!   a page (no relocated data), `MADV_DONTNEED` removes those pages from the shim's page
//!   tables only: they stay in the page cache, shared with the agent and every other shim,
//!   and any page the shim does use again is mapped back on its next access. Writable
//!   mappings and any mapping with private (copied-on-write) pages are left alone, because
//!   dropping those would lose their contents.

/// One mapping of `/proc/self/smaps` that may be released.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// The read-only, private, file-backed mappings without private (anonymous) pages.
fn releasable(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    // The mapping being read: (range, candidate so far).
    let mut current: Option<(Mapping, bool)> = None;
    let finish = |cur: Option<(Mapping, bool)>, out: &mut Vec<Mapping>| {
        if let Some((m, true)) = cur {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // A mapping header: "start-end perms offset dev inode path".
            finish(current.take(), &mut out);
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let candidate = perms.len() == 4
                && perms.starts_with('r')
                && perms.as_bytes()[1] == b'-'
                && perms.ends_with('p')
                && path.starts_with('/');
            current = Some((Mapping { start, end }, candidate));
        } else if first == "Anonymous:"
            && let Some((_, candidate)) = current.as_mut()
            && fields.next() != Some("0")
        {
            *candidate = false;
        }
    }
    finish(current.take(), &mut out);
    out
}

/// Gives free heap memory back and drops clean pages of read-only file mappings from the
/// resident set. The process must be single-threaded (the shim is).
pub fn release() {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for m in releasable(&smaps) {
        // SAFETY: the range is a whole private read-only file mapping of this process with no
        // private pages: discarding its pages only unmaps page-cache pages, which the next
        // access maps again with the same contents.
        unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0510000 r--p 00000000 fe:00 6253866                    /usr/bin/rkube
Rss:                 320 kB
Anonymous:             0 kB
55d0a0510000-55d0a1148000 r-xp 0050f000 fe:00 6253866                    /usr/bin/rkube
Rss:                1852 kB
Anonymous:             0 kB
55d0a1148000-55d0a11d7000 r--p 01148000 fe:00 6253866                    /usr/bin/rkube
Rss:                 572 kB
Anonymous:           572 kB
55d0a11d7000-55d0a11e0000 rw-p 011d7000 fe:00 6253866                    /usr/bin/rkube
Anonymous:            36 kB
55d0a2000000-55d0a2100000 rw-p 00000000 00:00 0                          [heap]
Anonymous:           100 kB
7f0000000000-7f0000001000 r--s 00000000 00:05 12                         /memfd:x (deleted)
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_private_file_mappings_are_released() {
        assert_eq!(
            releasable(SMAPS),
            vec![
                Mapping {
                    start: 0x55d0a0000000,
                    end: 0x55d0a0510000
                },
                Mapping {
                    start: 0x55d0a0510000,
                    end: 0x55d0a1148000
                },
                Mapping {
                    start: 0x7f0000100000,
                    end: 0x7f0000200000
                },
            ]
        );
    }

    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn release_shrinks_the_resident_set_and_the_process_keeps_working() {
        // In a forked child: it is single-threaded, as `release` requires.
        // SAFETY: the child only reads files, calls release and exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let before = rss_file_kib();
                release();
                let after = rss_file_kib();
                // The code below runs from pages that were just dropped.
                let v: Vec<u64> = (0..1000).collect();
                let ok = v.iter().sum::<u64>() == 499_500 && after < before;
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
