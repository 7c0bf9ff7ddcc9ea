//! The runtime's side of the shim protocol: starting a shim (`rkube shim --config FILE`,
//! reporting creation on its standard output), one-shot requests, and turning a streaming
//! connection into a [`StreamSession`].

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::shim::protocol::{Reply, Request, frame, read_frame, write_frame};
use crate::{Error, ExecSyncResponse, Result, StreamSession, TerminalSize};

/// How long creating a container may take before the runtime gives up on its shim.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts a shim for the container described by `config` and waits until it has created
/// the container (or failed to). The shim's own diagnostics go to `log`.
///
/// The shim reports on its standard output (a pipe) and then turns it to its log. Nothing has
/// to run in the child between fork and exec, so the standard library spawns it with
/// `posix_spawn` (a vfork): no copy of the agent's page tables, however big the agent is.
pub async fn spawn(binary: &Path, config: &Path, log: &Path) -> Result<()> {
    let binary = binary.to_path_buf();
    let config = config.to_path_buf();
    let shim_log = log.to_path_buf();
    let log = log.to_path_buf();
    let task = tokio::task::spawn_blocking(move || -> Result<String> {
        let logf = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(crate::error::io(format!("opening {}", log.display())))?;
        let mut child = std::process::Command::new(&binary)
            .arg("shim")
            .arg("--config")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(logf)
            .env_remove("RUST_LOG")
            // The `rkube` binary allocates with mimalloc, whose transparent huge pages would
            // give each shim (and each process libcontainer clones from it, copying on
            // write) 2 MiB pages for a few KiB of heap.
            .env("MIMALLOC_ALLOW_THP", "0")
            .spawn()
            .map_err(crate::error::io(format!("starting {}", binary.display())))?;
        let out = child.stdout.take();
        // The shim forks at once and its first process exits.
        let _ = child.wait();
        let mut line = String::new();
        if let Some(out) = out {
            std::io::BufReader::new(out)
                .read_line(&mut line)
                .map_err(crate::error::io("reading the shim's report"))?;
        }
        Ok(line)
    });
    let line = tokio::time::timeout(CREATE_TIMEOUT, task)
        .await
        .map_err(|_| Error::Timeout("the shim did not report within 60 s".into()))?
        .map_err(|e| Error::Runtime(format!("shim start task: {e}")))??;
    let line = line.trim();
    if line == "ok" {
        return Ok(());
    }
    let msg = line.strip_prefix("error: ").unwrap_or(line);
    let msg = if msg.is_empty() {
        let log = std::fs::read_to_string(&shim_log).unwrap_or_default();
        format!("the shim exited without a report: {}", log.trim())
    } else {
        msg.to_string()
    };
    Err(Error::Runtime(msg))
}

async fn connect(socket: &Path) -> Result<UnixStream> {
    UnixStream::connect(socket).await.map_err(|e| {
        Error::FailedPrecondition(format!("the container's shim is not running ({e})"))
    })
}

async fn send(conn: &mut UnixStream, req: &Request) -> Result<()> {
    let mut line = serde_json::to_vec(req).map_err(|e| Error::Runtime(e.to_string()))?;
    line.push(b'\n');
    conn.write_all(&line)
        .await
        .map_err(crate::error::io("talking to the shim"))
}

/// Sends a request and waits for its reply.
pub async fn request(socket: &Path, req: &Request) -> Result<()> {
    let mut conn = connect(socket).await?;
    send(&mut conn, req).await?;
    let mut line = String::new();
    BufReader::new(conn)
        .read_line(&mut line)
        .await
        .map_err(crate::error::io("reading the shim's reply"))?;
    if line.is_empty() {
        // The shim ended while answering (the container exited): that is an answer too.
        return Ok(());
    }
    let reply: Reply = serde_json::from_str(&line)
        .map_err(|e| Error::Runtime(format!("bad reply from shim: {e}")))?;
    match reply.error {
        None => Ok(()),
        Some(e) => Err(Error::Runtime(e)),
    }
}

/// Whether a shim answers on `socket`.
pub async fn alive(socket: &Path) -> bool {
    UnixStream::connect(socket).await.is_ok()
}

/// Waits (at most `timeout`) until the shim process `pid` has ended, mount namespace and
/// all. `config` (its `shim.json`) guards against a reused pid: a process whose command line
/// does not name it is not the shim, and is not waited for.
pub async fn wait_gone(pid: i32, config: &Path, timeout: Duration) {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    if pid <= 0 {
        return;
    }
    // SAFETY: pidfd_open with a pid and no flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        // Gone already (or no pidfds on this kernel: nothing to wait with).
        return;
    }
    // SAFETY: pidfd_open returned a descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The descriptor pins this pid to the process it names now: check that it is the shim.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let want = config.as_os_str().as_bytes();
    if want.is_empty() || !cmdline.windows(want.len()).any(|w| w == want) {
        return;
    }
    // A pidfd becomes readable when its process ends.
    // SAFETY: the AsyncFd owns the descriptor from here on and nothing closes it under it.
    let Ok(fd) = (unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }) else {
        return;
    };
    let _ = tokio::time::timeout(timeout, fd.readable()).await;
}

/// Runs a command and collects its output.
pub async fn exec_sync(
    socket: &Path,
    args: &[String],
    timeout: Duration,
) -> Result<ExecSyncResponse> {
    let mut conn = connect(socket).await?;
    send(
        &mut conn,
        &Request::Exec {
            args: args.to_vec(),
            tty: false,
            stdin: false,
        },
    )
    .await?;
    let collect = async {
        let mut out = ExecSyncResponse::default();
        loop {
            match read_frame(&mut conn).await {
                Ok(Some((frame::STDOUT, d))) => out.stdout.extend(d),
                Ok(Some((frame::STDERR, d))) => out.stderr.extend(d),
                Ok(Some((frame::EXIT, d))) if d.len() == 4 => {
                    out.exit_code = i32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                    return Ok(out);
                }
                Ok(Some((frame::ERROR, d))) => {
                    return Err(Error::Runtime(String::from_utf8_lossy(&d).into_owned()));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(Error::Runtime("the shim ended the exec early".into())),
                Err(e) => return Err(crate::error::io("reading exec output")(e)),
            }
        }
    };
    if timeout.is_zero() {
        collect.await
    } else {
        tokio::time::timeout(timeout, collect)
            .await
            .map_err(|_| Error::Timeout(format!("command {args:?} ran longer than {timeout:?}")))?
    }
}

/// Opens a streaming exec or attach and returns it as a session.
pub async fn stream(
    socket: &Path,
    req: &Request,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> Result<StreamSession> {
    let mut conn = connect(socket).await?;
    send(&mut conn, req).await?;
    let (mut rd, mut wr) = conn.into_split();
    let (out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (err_w, err_r) = tokio::io::duplex(64 * 1024);
    let (in_w, mut in_r) = tokio::io::duplex(64 * 1024);
    let (resize_tx, resize_rx) = tokio::sync::mpsc::channel::<TerminalSize>(8);
    let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    // Shim → caller.
    tokio::spawn(async move {
        let (mut out_w, mut err_w) = (out_w, err_w);
        let result = loop {
            match read_frame(&mut rd).await {
                Ok(Some((frame::STDOUT, d))) => {
                    let _ = out_w.write_all(&d).await;
                }
                Ok(Some((frame::STDERR, d))) => {
                    let _ = err_w.write_all(&d).await;
                }
                Ok(Some((frame::EXIT, d))) if d.len() == 4 => {
                    break Ok(i32::from_be_bytes([d[0], d[1], d[2], d[3]]));
                }
                Ok(Some((frame::ERROR, d))) => {
                    break Err(Error::Runtime(String::from_utf8_lossy(&d).into_owned()));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    break Err(Error::Runtime(
                        "the stream ended without an exit code".into(),
                    ));
                }
                Err(e) => break Err(crate::error::io("reading the stream")(e)),
            }
        };
        let _ = out_w.shutdown().await;
        let _ = err_w.shutdown().await;
        let _ = done_tx.send(true);
        let _ = exit_tx.send(result);
    });
    // Caller → shim. The connection stays open until the stream ends: the shim takes a
    // closed connection as the caller having gone away.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut stdin_open = stdin;
        let mut resize_rx = Some(resize_rx);
        loop {
            let next_size = async {
                match resize_rx.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = async { let _ = done_rx.wait_for(|d| *d).await; } => return,
                n = in_r.read(&mut buf), if stdin_open => match n {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        if write_frame(&mut wr, frame::CLOSE_STDIN, &[]).await.is_err() {
                            return;
                        }
                    }
                    Ok(n) => {
                        if write_frame(&mut wr, frame::STDIN, &buf[..n]).await.is_err() {
                            return;
                        }
                    }
                },
                size = next_size => match size {
                    Some(s) => {
                        let mut p = [0u8; 4];
                        p[..2].copy_from_slice(&s.width.to_be_bytes());
                        p[2..].copy_from_slice(&s.height.to_be_bytes());
                        if write_frame(&mut wr, frame::RESIZE, &p).await.is_err() {
                            return;
                        }
                    }
                    None => resize_rx = None,
                },
            }
        }
    });
    Ok(StreamSession {
        stdin: stdin.then(|| Box::pin(in_w) as crate::WriteStream),
        stdout: stdout.then(|| Box::pin(out_r) as crate::ReadStream),
        stderr: (stderr && !tty).then(|| Box::pin(err_r) as crate::ReadStream),
        resize: tty.then_some(resize_tx),
        exit: exit_rx,
    })
}
