//! The shim on its own (`rkube-shim shim --config FILE`), so this crate's tests can run
//! containers without building the whole `rkube` binary. `rkube shim` is the same code.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "shim" => {
            std::process::ExitCode::from(rkube_runtime::shim::main(rest).clamp(0, 255) as u8)
        }
        _ => {
            eprintln!("usage: rkube-shim shim --config FILE");
            std::process::ExitCode::from(2)
        }
    }
}
