//! Links the `rkube` executable as a non-PIE (position-dependent) program.
//!
//! Every container start executes this binary again as its shim (`rkube shim`). As a
//! position-independent executable it carried ~58,000 relative relocations (the binary
//! holds the whole control plane) that the loader applied, touching hundreds of pages, at
//! every one of those execs: ~3.5 ms of each container create. Linked at a fixed address
//! those relocations are resolved at link time. Upstream's Go binaries are not PIE either;
//! shared libraries, heap, stack and mappings stay randomised.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
