//! The per-container supervisor: the `rkube` binary re-executed as `rkube shim --config
//! FILE`. [`main`] must run before the process has started any thread, because
//! `libcontainer` clones processes and that is undefined behaviour in a multi-threaded
//! process; the shim stays single-threaded for its whole life (a current-thread tokio
//! runtime, no blocking pool), so exec — another clone — is safe too.
//!
//! The shim:
//! 1. forks once so that it is not the runtime's child (the runtime reaps the short-lived
//!    parent), making it independent of the agent: it keeps running when the agent restarts;
//! 2. becomes a child subreaper, so the container's init and exec'd processes are its
//!    children whatever libcontainer's intermediate processes do;
//! 3. moves into a mount namespace of its own and mounts the container's root filesystem
//!    there ([`rootfs`]);
//! 4. creates the container with libcontainer (stdio on pipes, or on a pseudo-terminal) and
//!    reports `ok` or the error to the runtime on its standard output (a pipe), which it
//!    then turns to its log;
//! 5. serves [`protocol::Request`]s on a unix socket: start, kill, wait, reopen-log, exec
//!    and attach (streamed in frames);
//! 6. writes the container's output as CRI log lines ([`logs`]), forwards the signals it
//!    receives to the container, and when the container exits records the exit code, time
//!    and reason (`OOMKilled` when the cgroup's OOM counter moved) in `status.json`,
//!    removes libcontainer's state and the container cgroup, and exits.

pub mod logs;
mod memory;
pub mod protocol;
mod rootfs;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use logs::{LogWriter, Stream};
use protocol::{Reply, Request, ShimConfig, ShimState, ShimStatus, frame};

/// Runs the shim; returns the process exit code. Call before any thread exists.
pub fn main(args: &[String]) -> i32 {
    let config_path = match args {
        [flag, path] if flag == "--config" => path.clone(),
        _ => {
            eprintln!("usage: rkube shim --config FILE (started by the rkube runtime)");
            return 2;
        }
    };
    // SAFETY: the process is single-threaded here (asserted below after the fork too).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            report_ready(&format!("error: fork: {e}"));
            return 1;
        }
    }
    // A session of its own: signals for the agent's terminal or process group never reach
    // the shim.
    let _ = nix::unistd::setsid();
    // Diagnostics (libcontainer's included) go to the shim's log when asked for.
    if let Ok(filter) = std::env::var("RKUBE_SHIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
    match run(Path::new(&config_path)) {
        Ok(()) => 0,
        Err(e) => {
            report_ready(&format!("error: {e}"));
            eprintln!("rkube shim: {e}");
            1
        }
    }
}

/// Writes the one-line creation report to the runtime, which reads it from the shim's
/// standard output (a pipe), and then points standard output at the shim's log (standard
/// error), closing the pipe. Once; later calls do nothing.
fn report_ready(msg: &str) {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", msg.replace('\n', " "));
    let _ = out.flush();
    // SAFETY: dup2 of the process's own standard descriptors.
    unsafe {
        libc::dup2(2, 1);
    }
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

/// The container's standard streams as the shim holds them.
struct Stdio {
    /// For the container (moved into libcontainer).
    child_in: OwnedFd,
    child_out: OwnedFd,
    child_err: OwnedFd,
    /// The shim's ends.
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: Option<OwnedFd>,
    /// The terminal's master, for resizes.
    pty: Option<OwnedFd>,
}

fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

fn make_stdio(tty: bool, stdin: bool) -> std::io::Result<Stdio> {
    if tty {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        let master = pty.master;
        set_cloexec(master.as_raw_fd());
        set_cloexec(pty.slave.as_raw_fd());
        let slave_out = pty.slave.try_clone()?;
        let slave_err = pty.slave.try_clone()?;
        let master_in = master.try_clone()?;
        let master_out = master.try_clone()?;
        Ok(Stdio {
            child_in: if stdin { pty.slave } else { dev_null()? },
            child_out: slave_out,
            child_err: slave_err,
            stdin: stdin.then_some(master_in),
            stdout: master_out,
            stderr: None,
            pty: Some(master),
        })
    } else {
        let (out_r, out_w) = cloexec_pipe()?;
        let (err_r, err_w) = cloexec_pipe()?;
        let (child_in, shim_in) = if stdin {
            let (r, w) = cloexec_pipe()?;
            (r, Some(w))
        } else {
            (dev_null()?, None)
        };
        Ok(Stdio {
            child_in,
            child_out: out_w,
            child_err: err_w,
            stdin: shim_in,
            stdout: out_r,
            stderr: Some(err_r),
            pty: None,
        })
    }
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a valid descriptor.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

fn now_nanos() -> i64 {
    crate::types::now_nanos()
}

fn write_status(path: &Path, st: &ShimStatus) {
    let Ok(data) = serde_json::to_vec(st) else {
        return;
    };
    let tmp = path.with_extension("json.tmp");
    if std::fs::write(&tmp, data).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn run(config_path: &Path) -> Result<(), String> {
    let data = std::fs::read(config_path)
        .map_err(|e| format!("reading {}: {e}", config_path.display()))?;
    let cfg: ShimConfig = serde_json::from_slice(&data)
        .map_err(|e| format!("parsing {}: {e}", config_path.display()))?;
    let n = threads();
    if n != 1 {
        return Err(format!(
            "the shim must be single-threaded before creating a container, it has {n} threads"
        ));
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "becoming a subreaper: {}",
            std::io::Error::last_os_error()
        ));
    }
    rootfs::setup(
        &cfg.rootfs,
        &cfg.pins_root,
        &cfg.pins,
        cfg.keep_mounts_shared,
    )?;
    let stdio = make_stdio(cfg.tty, cfg.stdin).map_err(|e| format!("container stdio: {e}"))?;
    let log = LogWriter::open(&cfg.log_path, cfg.log_max_bytes, cfg.log_max_files)
        .map_err(|e| format!("opening log {}: {e}", cfg.log_path.display()))?;
    let _ = std::fs::remove_file(&cfg.socket);
    let std_listener = std::os::unix::net::UnixListener::bind(&cfg.socket)
        .map_err(|e| format!("listening on {}: {e}", cfg.socket.display()))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;

    let container = libcontainer::container::builder::ContainerBuilder::new(
        cfg.id.clone(),
        libcontainer::syscall::syscall::SyscallType::Linux,
    )
    .with_root_path(&cfg.state_root)
    .map_err(|e| format!("container state root: {e}"))?
    .with_stdin(stdio.child_in)
    .with_stdout(stdio.child_out)
    .with_stderr(stdio.child_err)
    .validate_id()
    .map_err(|e| format!("container id: {e}"))?
    .as_init(&cfg.bundle)
    .with_systemd(false)
    .with_detach(true)
    .build()
    .map_err(|e| {
        // What the container's init wrote before failing says more than libcontainer's
        // summary.
        let mut detail = String::new();
        for fd in [Some(&stdio.stdout), stdio.stderr.as_ref()]
            .into_iter()
            .flatten()
        {
            set_nonblocking(fd.as_raw_fd());
            let mut buf = [0u8; 4096];
            if let Ok(n) = nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                detail.push_str(String::from_utf8_lossy(&buf[..n]).trim());
            }
        }
        if detail.is_empty() {
            format!("creating container: {e}")
        } else {
            format!("creating container: {e}: {detail}")
        }
    })?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or("libcontainer reported no init pid")?;
    let status = ShimStatus {
        state: ShimState::Created,
        pid,
        shim_pid: std::process::id() as i32,
        started_at: 0,
        finished_at: 0,
        exit_code: 0,
        reason: String::new(),
        message: String::new(),
    };
    write_status(&cfg.status_file, &status);
    report_ready("ok");
    // Creating the container used memory the shim never needs again: give it back, as the
    // shim lives as long as its container.
    memory::release();
    // From here on the shim's own output goes to its log file only.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the event loop: {e}"))?;
    let local = tokio::task::LocalSet::new();
    // Pipes register with the runtime's reactor: build the shim inside it.
    let _enter = rt.enter();
    let shim = Rc::new(Shim::new(cfg, status, log, stdio.stdin, stdio.pty));
    local.block_on(&rt, shim.serve(std_listener, stdio.stdout, stdio.stderr))
}

/// The container process's identity, which exec'd processes share (from the bundle).
#[derive(Default, serde::Deserialize)]
struct ProcessSpec {
    #[serde(default)]
    user: UserSpec,
    #[serde(default = "root_dir")]
    cwd: std::path::PathBuf,
}

fn root_dir() -> std::path::PathBuf {
    "/".into()
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserSpec {
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    #[serde(default)]
    additional_gids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct BundleSpec {
    process: ProcessSpec,
}

/// An exec'd process the shim waits for.
type ExitWaiters = RefCell<HashMap<i32, oneshot::Sender<i32>>>;

struct Shim {
    cfg: ShimConfig,
    process: ProcessSpec,
    status: RefCell<ShimStatus>,
    log: RefCell<LogWriter>,
    /// Output for attached clients: (frame kind, bytes).
    output: broadcast::Sender<(u8, Vec<u8>)>,
    stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    pty: Option<OwnedFd>,
    exited: watch::Sender<bool>,
    execs: ExitWaiters,
    /// Connections being served.
    connections: watch::Sender<usize>,
}

/// Counts a connection while it is served.
struct Served(watch::Sender<usize>);

impl Served {
    fn new(n: &watch::Sender<usize>) -> Self {
        n.send_modify(|n| *n += 1);
        Self(n.clone())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn pipe_receiver(fd: OwnedFd) -> std::io::Result<pipe::Receiver> {
    set_nonblocking(fd.as_raw_fd());
    pipe::Receiver::from_owned_fd_unchecked(fd)
}

fn pipe_sender(fd: OwnedFd) -> std::io::Result<pipe::Sender> {
    set_nonblocking(fd.as_raw_fd());
    pipe::Sender::from_owned_fd_unchecked(fd)
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a valid descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn resize(pty: &OwnedFd, payload: &[u8]) {
    if payload.len() < 4 {
        return;
    }
    let ws = libc::winsize {
        ws_col: u16::from_be_bytes([payload[0], payload[1]]),
        ws_row: u16::from_be_bytes([payload[2], payload[3]]),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a terminal descriptor.
    unsafe {
        libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}

fn exit_code(ws: WaitStatus) -> Option<(i32, i32)> {
    match ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

/// Reads an output stream until its end, handing each chunk to `sink`.
async fn pump(mut rx: pipe::Receiver, mut sink: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => sink(&buf[..n]),
            // A terminal whose other side closed reports EIO.
            Err(_) => break,
        }
    }
}

impl Shim {
    fn new(
        cfg: ShimConfig,
        status: ShimStatus,
        log: LogWriter,
        stdin: Option<OwnedFd>,
        pty: Option<OwnedFd>,
    ) -> Self {
        let stdin = stdin.and_then(|fd| pipe_sender(fd).ok());
        let process = std::fs::read(cfg.bundle.join("config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice::<BundleSpec>(&d).ok())
            .map(|b| b.process)
            .unwrap_or_default();
        Self {
            cfg,
            process,
            status: RefCell::new(status),
            log: RefCell::new(log),
            output: broadcast::channel(1024).0,
            stdin: tokio::sync::Mutex::new(stdin),
            pty,
            exited: watch::channel(false).0,
            execs: RefCell::new(HashMap::new()),
            connections: watch::channel(0).0,
        }
    }

    fn init_pid(&self) -> i32 {
        self.status.borrow().pid
    }

    /// Reaps every child that has ended, handing exec'd processes' exit codes to their
    /// sessions; returns init's exit code when init was among them.
    fn reap(&self) -> Option<i32> {
        let mut init_exit = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return init_exit,
                Ok(ws) => {
                    if let Some((pid, code)) = exit_code(ws) {
                        if pid == self.init_pid() {
                            init_exit = Some(code);
                        } else if let Some(tx) = self.execs.borrow_mut().remove(&pid) {
                            let _ = tx.send(code);
                        }
                    }
                }
            }
        }
    }

    async fn serve(
        self: Rc<Self>,
        listener: std::os::unix::net::UnixListener,
        stdout: OwnedFd,
        stderr: Option<OwnedFd>,
    ) -> Result<(), String> {
        use tokio::signal::unix::{SignalKind, signal};
        let listener = UnixListener::from_std(listener).map_err(|e| format!("socket: {e}"))?;
        let mut sigchld = signal(SignalKind::child()).map_err(|e| format!("signals: {e}"))?;
        let mut forwarded = Vec::new();
        for sig in [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
            SignalKind::quit(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
        ] {
            forwarded.push((
                sig.as_raw_value(),
                signal(sig).map_err(|e| format!("signals: {e}"))?,
            ));
        }
        // Output pumps.
        let mut pumps = Vec::new();
        for (fd, stream) in [(Some(stdout), Stream::Stdout), (stderr, Stream::Stderr)] {
            let Some(fd) = fd else { continue };
            let rx = pipe_receiver(fd).map_err(|e| format!("output pipe: {e}"))?;
            let me = self.clone();
            pumps.push(tokio::task::spawn_local(async move {
                pump(rx, |data| {
                    me.log.borrow_mut().write(stream, data);
                    let kind = match stream {
                        Stream::Stdout => frame::STDOUT,
                        Stream::Stderr => frame::STDERR,
                    };
                    let _ = me.output.send((kind, data.to_vec()));
                })
                .await
            }));
        }
        // Forwarded signals.
        for (raw, mut s) in forwarded {
            let me = self.clone();
            tokio::task::spawn_local(async move {
                while s.recv().await.is_some() {
                    if let Ok(sig) = Signal::try_from(raw) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(me.init_pid()), sig);
                    }
                }
            });
        }
        // Requests.
        {
            let me = self.clone();
            tokio::task::spawn_local(async move {
                loop {
                    if let Ok((conn, _)) = listener.accept().await {
                        let me = me.clone();
                        let served = Served::new(&me.connections);
                        tokio::task::spawn_local(async move {
                            me.handle(conn).await;
                            drop(served);
                        });
                    }
                }
            });
        }
        // Reap children until init exits.
        let init_status = loop {
            if let Some(code) = self.reap() {
                break code;
            }
            sigchld.recv().await;
        };
        let finished_at = now_nanos();
        // Drain output: every writer is gone once the pid namespace is; do not wait forever
        // for descriptors a process outside it might still hold.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(pumps)).await;
        self.log.borrow_mut().flush();
        let ooms = crate::cgroups::oom_kills(&self.cfg.cgroup);
        {
            let mut st = self.status.borrow_mut();
            st.state = ShimState::Exited;
            st.exit_code = init_status;
            st.finished_at = finished_at;
            st.reason = if ooms > 0 && init_status == 137 {
                "OOMKilled".into()
            } else if init_status == 0 {
                "Completed".into()
            } else {
                "Error".into()
            };
            write_status(&self.cfg.status_file, &st);
        }
        // libcontainer's state and the container cgroup (the pod's stays).
        if let Ok(mut c) =
            libcontainer::container::Container::load(self.cfg.state_root.join(&self.cfg.id))
        {
            let _ = c.delete(true);
        }
        let _ = crate::cgroups::remove(&self.cfg.cgroup);
        let _ = std::fs::remove_file(&self.cfg.socket);
        self.exited.send_replace(true);
        // Let waiters, attached clients and exec sessions (whose processes died with the
        // container's init; reaped here) read the end; a client that does not read gets a
        // second.
        let mut served = self.connections.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                self.reap();
                if *served.borrow_and_update() == 0 {
                    return;
                }
                tokio::select! {
                    _ = sigchld.recv() => {}
                    _ = served.changed() => {}
                }
            }
        })
        .await;
        Ok(())
    }

    async fn reply(conn: &mut UnixStream, error: Option<String>) {
        if let Ok(mut line) = serde_json::to_vec(&Reply { error }) {
            line.push(b'\n');
            let _ = conn.write_all(&line).await;
        }
    }

    async fn handle(self: Rc<Self>, mut conn: UnixStream) {
        // Byte by byte: frames may follow the request line at once and must stay unread.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match conn.read(&mut byte).await {
                Ok(1) if byte[0] == b'\n' => break,
                Ok(1) if line.len() < 64 * 1024 => line.push(byte[0]),
                _ => return,
            }
        }
        let req: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                Self::reply(&mut conn, Some(format!("bad request: {e}"))).await;
                return;
            }
        };
        match req {
            Request::Start => {
                let res = self.start();
                Self::reply(&mut conn, res.err()).await;
            }
            Request::Kill { signal } => {
                let res = match Signal::try_from(signal) {
                    Err(_) => Err(format!("unknown signal {signal}")),
                    Ok(_) if *self.exited.borrow() => Ok(()),
                    Ok(sig) => nix::sys::signal::kill(Pid::from_raw(self.init_pid()), sig)
                        .or_else(|e| {
                            if e == nix::errno::Errno::ESRCH {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })
                        .map_err(|e| format!("signalling the container: {e}")),
                };
                Self::reply(&mut conn, res.err()).await;
            }
            Request::Wait => {
                let mut rx = self.exited.subscribe();
                let _ = rx.wait_for(|e| *e).await;
                Self::reply(&mut conn, None).await;
            }
            Request::ReopenLog => {
                self.log.borrow_mut().reopen();
                Self::reply(&mut conn, None).await;
            }
            Request::Exec { args, tty, stdin } => self.exec(conn, args, tty, stdin).await,
            Request::Attach { stdin } => self.attach(conn, stdin).await,
        }
    }

    fn start(&self) -> Result<(), String> {
        if self.status.borrow().state != ShimState::Created {
            return Err("the container is not in the created state".into());
        }
        let mut c =
            libcontainer::container::Container::load(self.cfg.state_root.join(&self.cfg.id))
                .map_err(|e| format!("loading container state: {e}"))?;
        c.start().map_err(|e| format!("starting container: {e}"))?;
        let mut st = self.status.borrow_mut();
        if st.state == ShimState::Created {
            st.state = ShimState::Running;
            st.started_at = now_nanos();
            write_status(&self.cfg.status_file, &st);
        }
        // Starting ran libcontainer once more: drop what it touched.
        memory::release();
        Ok(())
    }

    /// Runs a process in the container and streams it over `conn`.
    async fn exec(self: Rc<Self>, conn: UnixStream, args: Vec<String>, tty: bool, stdin: bool) {
        let (mut rd, wr) = conn.into_split();
        let (out_tx, out_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
        let writer = tokio::task::spawn_local(frame_writer(wr, out_rx));
        let fail = |msg: String| {
            let out_tx = out_tx.clone();
            async move {
                let _ = out_tx.send((frame::ERROR, msg.into_bytes())).await;
            }
        };
        if *self.exited.borrow() || self.status.borrow().state != ShimState::Running {
            fail("the container is not running".into()).await;
            drop(out_tx);
            let _ = writer.await;
            return;
        }
        let stdio = match make_stdio(tty, stdin) {
            Ok(s) => s,
            Err(e) => {
                fail(format!("exec stdio: {e}")).await;
                drop(out_tx);
                let _ = writer.await;
                return;
            }
        };
        let exec_id = format!("{}-exec", self.cfg.id);
        let built = libcontainer::container::builder::ContainerBuilder::new(
            self.cfg.id.clone(),
            libcontainer::syscall::syscall::SyscallType::Linux,
        )
        .with_root_path(&self.cfg.state_root)
        .map(|b| {
            let p = &self.process;
            b.with_stdin(stdio.child_in)
                .with_stdout(stdio.child_out)
                .with_stderr(stdio.child_err)
                .as_tenant()
                .with_detach(true)
                .with_container_args(args.clone())
                .with_user(Some(p.user.uid))
                .with_group(Some(p.user.gid))
                .with_additional_gids(p.user.additional_gids.clone())
                .with_cwd(Some(p.cwd.clone()))
                .build()
        });
        let pid = match built {
            Ok(Ok(pid)) => pid.as_raw(),
            Ok(Err(e)) | Err(e) => {
                let _ = exec_id;
                fail(format!("exec {args:?} failed: {e}")).await;
                drop(out_tx);
                let _ = writer.await;
                return;
            }
        };
        // Registered before the next await, so the reaper cannot miss the exit.
        let (exit_tx, exit_rx) = oneshot::channel();
        self.execs.borrow_mut().insert(pid, exit_tx);
        let mut pumps = Vec::new();
        for (fd, kind) in [
            (Some(stdio.stdout), frame::STDOUT),
            (stdio.stderr, frame::STDERR),
        ] {
            let Some(fd) = fd else { continue };
            let Ok(rx) = pipe_receiver(fd) else { continue };
            let tx = out_tx.clone();
            pumps.push(tokio::task::spawn_local(async move {
                let mut rx = rx;
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match rx.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send((kind, buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }));
        }
        let mut stdin_tx = stdio.stdin.and_then(|fd| pipe_sender(fd).ok());
        let pty = stdio.pty;
        let input = async {
            loop {
                match protocol::read_frame(&mut rd).await {
                    Ok(Some((frame::STDIN, data))) => {
                        if let Some(s) = stdin_tx.as_mut() {
                            let _ = s.write_all(&data).await;
                        }
                    }
                    Ok(Some((frame::CLOSE_STDIN, _))) => {
                        stdin_tx = None;
                        if let Some(p) = &pty {
                            // End of input on a terminal: Ctrl-D.
                            let _ = nix::unistd::write(p, &[4u8]);
                        }
                    }
                    Ok(Some((frame::RESIZE, data))) => {
                        if let Some(p) = &pty {
                            resize(p, &data);
                        }
                    }
                    Ok(Some(_)) => {}
                    // The client went away.
                    Ok(None) | Err(_) => return,
                }
            }
        };
        tokio::select! {
            code = exit_rx => {
                let code = code.unwrap_or(255);
                let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(pumps)).await;
                let _ = out_tx.send((frame::EXIT, code.to_be_bytes().to_vec())).await;
            }
            _ = input => {
                // Nobody is listening any more: end the process.
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        drop(out_tx);
        let _ = writer.await;
    }

    /// Streams the container's output (and input) over `conn` until it exits.
    async fn attach(self: Rc<Self>, conn: UnixStream, want_stdin: bool) {
        let (mut rd, wr) = conn.into_split();
        let (out_tx, out_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
        let writer = tokio::task::spawn_local(frame_writer(wr, out_rx));
        let mut sub = self.output.subscribe();
        let mut exited = self.exited.subscribe();
        let output = {
            let tx = out_tx.clone();
            async move {
                loop {
                    match sub.recv().await {
                        Ok(f) => {
                            if tx.send(f).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        };
        let me = self.clone();
        let input = async move {
            loop {
                match protocol::read_frame(&mut rd).await {
                    Ok(Some((frame::STDIN, data))) if want_stdin => {
                        if let Some(s) = me.stdin.lock().await.as_mut() {
                            let _ = s.write_all(&data).await;
                        }
                    }
                    Ok(Some((frame::CLOSE_STDIN, _))) if want_stdin => {
                        *me.stdin.lock().await = None;
                    }
                    Ok(Some((frame::RESIZE, data))) => {
                        if let Some(p) = &me.pty {
                            resize(p, &data);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return,
                }
            }
        };
        tokio::select! {
            _ = exited.wait_for(|e| *e) => {
                let code = self.status.borrow().exit_code;
                let _ = out_tx.send((frame::EXIT, code.to_be_bytes().to_vec())).await;
            }
            _ = output => {}
            _ = input => {
                if want_stdin && self.cfg.stdin_once {
                    *self.stdin.lock().await = None;
                }
            }
        }
        drop(out_tx);
        let _ = writer.await;
    }
}

async fn frame_writer(
    mut wr: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::Receiver<(u8, Vec<u8>)>,
) {
    while let Some((kind, data)) = rx.recv().await {
        if protocol::write_frame(&mut wr, kind, &data).await.is_err() {
            return;
        }
        if kind == frame::EXIT || kind == frame::ERROR {
            let _ = wr.shutdown().await;
            return;
        }
    }
}
