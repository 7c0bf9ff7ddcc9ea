//! `rkube shim --config FILE`: the per-container supervisor the native runtime starts. It
//! must not start any thread before it has created its container (libcontainer clones), so
//! `main` hands over to it before doing anything else, and it never reaches clap or tracing.

/// Runs the shim if the command line asks for it; `None` otherwise.
pub fn dispatch() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os();
    args.next();
    if args.next().as_deref() != Some(std::ffi::OsStr::new("shim")) {
        return None;
    }
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let code = rkube_runtime::shim::main(&rest);
    Some(std::process::ExitCode::from(code.clamp(0, 255) as u8))
}
