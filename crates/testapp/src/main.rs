//! `testapp`: the program rkube's runtime tests run in containers. It has no dependencies so
//! that `rkube-testimages` can compile it with plain `rustc` as a static binary.
//!
//! Subcommands:
//! - `serve [PORT]` — HTTP on 0.0.0.0:PORT (default 8080): `/healthz` → `ok`,
//!   `/hostname`, `/env` (one `K=V` per line), `/echo?TEXT` or the request body back;
//! - `exit N` — exit with code N;
//! - `sleep [SECS] [--ignore-term]` — sleep (forever without SECS); on SIGTERM print `term`
//!   and exit 143 unless told to ignore it;
//! - `write PATH TEXT` — write a file (then print `wrote PATH`);
//! - `args …` — print each argument on its own line; `env` — print the environment sorted;
//! - `print [--stderr] [--no-newline] TEXT…` — print the text;
//! - `lines N` — print `line 1` … `line N`;
//! - `alloc MIB` — allocate and touch MIB mebibytes, print `allocated`, then sleep;
//! - `id` — print `uid=U gid=G groups=G1,G2` (from /proc/self/status);
//! - `cat PATH` — print a file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};

static IGNORE_TERM: AtomicBool = AtomicBool::new(false);

unsafe extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
    fn _exit(code: i32) -> !;
}

const SIGTERM: i32 = 15;

extern "C" fn on_term(_: i32) {
    if IGNORE_TERM.load(Ordering::Relaxed) {
        return;
    }
    // Only async-signal-safe calls here.
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        write(1, b"term\n".as_ptr(), 5);
        _exit(143);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // SAFETY: installing a handler that only makes async-signal-safe calls.
    unsafe {
        signal(SIGTERM, on_term as *const () as usize);
    }
    let cmd = args.get(1).map(String::as_str).unwrap_or("serve");
    let rest = if args.len() > 2 { &args[2..] } else { &[] };
    let code = match cmd {
        "serve" => serve(rest.first().and_then(|p| p.parse().ok()).unwrap_or(8080)),
        "exit" => rest.first().and_then(|c| c.parse().ok()).unwrap_or(0),
        "sleep" => {
            IGNORE_TERM.store(rest.iter().any(|a| a == "--ignore-term"), Ordering::Relaxed);
            match rest.iter().find_map(|a| a.parse::<f64>().ok()) {
                Some(s) => std::thread::sleep(std::time::Duration::from_secs_f64(s)),
                None => loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                },
            }
            0
        }
        "write" => match (rest.first(), rest.get(1)) {
            (Some(p), Some(t)) => match std::fs::write(p, t) {
                Ok(()) => {
                    println!("wrote {p}");
                    0
                }
                Err(e) => {
                    eprintln!("write {p}: {e}");
                    1
                }
            },
            _ => usage(),
        },
        "args" => {
            for a in rest {
                println!("{a}");
            }
            0
        }
        "env" => {
            let mut v: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            v.sort();
            for l in v {
                println!("{l}");
            }
            0
        }
        "print" => {
            let stderr = rest.iter().any(|a| a == "--stderr");
            let nl = !rest.iter().any(|a| a == "--no-newline");
            let text: Vec<&str> = rest
                .iter()
                .filter(|a| !a.starts_with("--"))
                .map(String::as_str)
                .collect();
            let mut s = text.join(" ");
            if nl {
                s.push('\n');
            }
            if stderr {
                let _ = std::io::stderr().write_all(s.as_bytes());
            } else {
                let _ = std::io::stdout().write_all(s.as_bytes());
            }
            0
        }
        "lines" => {
            let n: u64 = rest.first().and_then(|n| n.parse().ok()).unwrap_or(10);
            let out = std::io::stdout();
            let mut out = out.lock();
            for i in 1..=n {
                let _ = writeln!(out, "line {i}");
            }
            0
        }
        "alloc" => {
            let mib: usize = rest.first().and_then(|n| n.parse().ok()).unwrap_or(64);
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mib {
                blocks.push(vec![1u8; 1 << 20]);
            }
            println!("allocated {}", blocks.len());
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        "id" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("?")
                    .to_string()
            };
            let groups = status
                .lines()
                .find(|l| l.starts_with("Groups:"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            println!(
                "uid={} gid={} groups={groups}",
                field("Uid:"),
                field("Gid:")
            );
            0
        }
        "cat" => match rest.first().map(std::fs::read) {
            Some(Ok(b)) => {
                let _ = std::io::stdout().write_all(&b);
                0
            }
            Some(Err(e)) => {
                eprintln!("cat: {e}");
                1
            }
            None => usage(),
        },
        _ => usage(),
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn usage() -> i32 {
    eprintln!(
        "usage: testapp serve [PORT] | exit N | sleep [SECS] [--ignore-term] | write PATH TEXT | \
         args ... | env | print [--stderr] [--no-newline] TEXT... | lines N | alloc MIB | id | cat PATH"
    );
    2
}

fn serve(port: u16) -> i32 {
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("listen on {port}: {e}");
            return 1;
        }
    };
    println!("listening on {port}");
    let _ = std::io::stdout().flush();
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || handle(conn));
    }
    0
}

fn handle(conn: TcpStream) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            content_length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, out) = match path {
        "/healthz" => ("200 OK", b"ok".to_vec()),
        "/hostname" => (
            "200 OK",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .as_bytes()
                .to_vec(),
        ),
        "/env" => {
            let mut v: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            v.sort();
            ("200 OK", v.join("\n").into_bytes())
        }
        "/echo" => (
            "200 OK",
            if body.is_empty() {
                query.as_bytes().to_vec()
            } else {
                body
            },
        ),
        _ => ("404 Not Found", b"not found".to_vec()),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
        out.len()
    );
    let _ = conn.write_all(&out);
}
