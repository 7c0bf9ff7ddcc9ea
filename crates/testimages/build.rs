//! Compiles `crates/testapp/src/main.rs` with plain `rustc` into a static binary
//! (`$OUT_DIR/testapp`), which the library embeds. Plain `rustc`, not cargo: a nested cargo
//! would wait on the build directory's lock that the outer cargo holds.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let src = manifest.join("../testapp/src/main.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("testapp");
    println!("cargo:rerun-if-changed={}", src.display());
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "-C",
            "opt-level=2",
            "-C",
            "strip=symbols",
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "panic=abort"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("running rustc for testapp");
    assert!(status.success(), "compiling testapp failed");
}
