//! Keeping the long-lived shim small: after creating (and after starting) its container the
//! shim gives back what it no longer needs.
//!
//! - Free heap memory goes back to the kernel (`malloc_trim`).
//! - Pages of the executable and libraries that creating the container touched (libcontainer,
//!   start-up code, the relocation tables the loader read) stay mapped in the shim and count
//!   in its resident set although the shim never uses them again. `MADV_DONTNEED` on a
//!   private file mapping that was never written removes its pages from the shim's page
//!   tables only: they stay in the page cache, shared with the agent and every other shim,
//!   and any page the shim does use again is mapped back on its next access. Mappings that
//!   can hold written (copied-on-write) pages must be left alone, since dropping those would
//!   lose their contents; without reading `/proc/self/smaps` (costly: it walks every page
//!   table) the safe ones are told apart by their place in an ELF file: code (executable
//!   segments) and the first segment of a file (headers, symbol and relocation tables,
//!   read-only data), which the loader never writes. Relocated read-only data (RELRO) is a
//!   later, non-executable segment and is never touched.

/// One mapping of `/proc/self/maps` that may be released.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// Private, read-only file mappings that are code or a file's first segment.
fn releasable(maps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in maps.lines() {
        // "start-end perms offset dev inode path"
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(offset), Some(_dev), Some(_inode), Some(path)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            usize::from_str_radix(a, 16),
            usize::from_str_radix(b, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        let p = perms.as_bytes();
        let private_read_only = p.len() == 4 && p[0] == b'r' && p[1] == b'-' && p[3] == b'p';
        let code_or_first = p.get(2) == Some(&b'x') || offset == 0;
        if private_read_only && code_or_first && path.starts_with('/') {
            out.push(Mapping { start, end });
        }
    }
    out
}

/// Gives free heap memory back and drops clean pages of read-only file mappings from the
/// resident set. The process must be single-threaded (the shim is).
pub fn release() {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for m in releasable(&maps) {
        // SAFETY: the range is a whole private read-only file mapping of this process that is
        // never written (code, or a file's first segment): discarding its pages only unmaps
        // page-cache pages, which the next access maps again with the same contents.
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

    const MAPS: &str = "\
55d0a0000000-55d0a0510000 r--p 00000000 fe:00 6253866                    /usr/bin/rkube
55d0a0510000-55d0a1148000 r-xp 0050f000 fe:00 6253866                    /usr/bin/rkube
55d0a1148000-55d0a11d7000 r--p 01148000 fe:00 6253866                    /usr/bin/rkube
55d0a11d7000-55d0a11e0000 rw-p 011d7000 fe:00 6253866                    /usr/bin/rkube
55d0a2000000-55d0a2100000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 r--s 00000000 00:05 12                         /memfd:x (deleted)
7f0000100000-7f0000200000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000301000 r--p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn only_code_and_first_segments_of_files_are_released() {
        assert_eq!(
            releasable(MAPS),
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
                // Every page release may drop is made resident first, so that the resident
                // set measured before is not already small (pages the test binary never
                // touched, or that the kernel reclaimed), which made the comparison flaky.
                let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
                for m in releasable(&maps) {
                    for page in (m.start..m.end).step_by(4096) {
                        // SAFETY: a readable mapping of this process, read one byte per page.
                        unsafe { std::ptr::read_volatile(page as *const u8) };
                    }
                }
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
