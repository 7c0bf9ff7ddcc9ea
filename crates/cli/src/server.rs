//! `rkube server`: the control plane of one machine. It opens and checks the datastore,
//! keeps its history compacted, makes the cluster's certificates on first start (reusing
//! them afterwards), serves the Kubernetes API over HTTPS and writes an admin kubeconfig.
//! The scheduler (unless `--disable-scheduler`) and the controller manager (unless
//! `--disable-controller-manager`) run in-process as tasks, clients of its own API through
//! the admin kubeconfig (DESIGN §2). The components that follow (node agent, DNS, ingress)
//! are named at start-up as not running yet.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rkube_apiserver::allocate::Cidr;
use rkube_apiserver::authn::Authenticator;
use rkube_apiserver::{ApiServer, Config};
use rkube_pki::{CertAuthority, CertSpec};
use rkube_store::compactor::{self, CompactorConfig};
use rkube_store::{Datastore, Error, EtcdTlsFiles, Store};

use crate::duration;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where rkube keeps its state (default /var/lib/rkube as root, else ~/.rkube).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,

    /// The datastore: empty for the embedded SQLite file under --data-dir, sqlite://PATH,
    /// etcd://HOST:PORT[,HOST:PORT...], https://HOST:PORT[,...] or memory://.
    #[arg(long, env = "RKUBE_DATASTORE_ENDPOINT", default_value = "")]
    pub datastore_endpoint: String,

    /// CA bundle to verify etcd's certificates.
    #[arg(long)]
    pub datastore_cafile: Option<PathBuf>,

    /// Client certificate for etcd.
    #[arg(long)]
    pub datastore_certfile: Option<PathBuf>,

    /// Client key for etcd.
    #[arg(long)]
    pub datastore_keyfile: Option<PathBuf>,

    /// How much history the datastore keeps for watches and reads at past revisions.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub datastore_retention: Duration,

    /// The port the API server listens on.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,

    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: Ipv4Addr,

    /// The address other nodes and pods reach this server on (default: the first
    /// non-loopback IPv4 address of this machine, else 127.0.0.1).
    #[arg(long)]
    pub advertise_address: Option<Ipv4Addr>,

    /// Extra names and addresses for the serving certificate (repeatable).
    #[arg(long)]
    pub tls_san: Vec<String>,

    /// Where to write the admin kubeconfig (default <data-dir>/kubeconfig.yaml).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,

    /// Also accept the bearer tokens of this file (`token,user,uid,"group1,group2"` lines).
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,

    /// The range Service ClusterIPs are allocated from.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,

    /// The range NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// How long Events are kept.
    #[arg(long, default_value = "1h", value_parser = duration::parse)]
    pub event_ttl: Duration,

    /// Do not run a node agent on this machine.
    #[arg(long)]
    pub disable_agent: bool,

    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub disable_scheduler: bool,

    /// Do not run the controller manager in this server.
    #[arg(long)]
    pub disable_controller_manager: bool,

    /// The range node pod ranges are cut from (a /24 per node).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
}

/// The default data directory: /var/lib/rkube for root, ~/.rkube otherwise.
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return PathBuf::from("/var/lib/rkube");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".rkube"))
        .unwrap_or_else(|| PathBuf::from(".rkube"))
}

/// The embedded datastore's file under a data directory.
pub fn sqlite_path(data_dir: &Path) -> PathBuf {
    data_dir.join("db").join("state.db")
}

pub fn run(args: ServerArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

/// This machine's IPv4 addresses other than loopback, in interface order.
fn local_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut ifaddrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we walk read-only and free with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut ifaddrs) != 0 {
            return out;
        }
        let mut cur = ifaddrs;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() && (*addr).sa_family as i32 == libc::AF_INET {
                let sin = addr as *const libc::sockaddr_in;
                let ip = Ipv4Addr::from(u32::from_be((*sin).sin_addr.s_addr));
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifaddrs);
    }
    out
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (lo, hi) = s
        .split_once('-')
        .with_context(|| format!("--service-node-port-range {s:?}: expected LOW-HIGH"))?;
    let (lo, hi): (u16, u16) = (lo.trim().parse()?, hi.trim().parse()?);
    if lo == 0 || lo > hi {
        bail!("--service-node-port-range {s:?}: LOW must be at least 1 and at most HIGH");
    }
    Ok((lo, hi))
}

/// Makes (or reuses) the CA and the serving and admin certificates under
/// `<data-dir>/tls`, and writes the admin kubeconfig.
fn certificates(
    args: &ServerArgs,
    advertise: Ipv4Addr,
    first_service_ip: Ipv4Addr,
) -> Result<(String, rkube_pki::Issued, PathBuf)> {
    let tls = args.data_dir.join("tls");
    let ca = CertAuthority::load_or_create(&tls, "ca", "rkube-ca")
        .with_context(|| format!("the cluster CA in {}", tls.display()))?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut dns_names: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !hostname.is_empty() {
        dns_names.push(hostname);
    }
    let mut ips: Vec<IpAddr> = vec![
        Ipv4Addr::LOCALHOST.into(),
        first_service_ip.into(),
        advertise.into(),
    ];
    ips.extend(local_addresses().into_iter().map(IpAddr::from));
    for san in &args.tls_san {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns_names.push(san.clone()),
        }
    }
    ips.sort();
    ips.dedup();
    dns_names.sort();
    dns_names.dedup();
    let serving = ca.load_or_issue(
        &tls,
        "serving-kube-apiserver",
        &CertSpec {
            common_name: "kube-apiserver".into(),
            dns_names,
            ips,
            server: true,
            ..Default::default()
        },
    )?;
    let admin = ca.load_or_issue(
        &tls,
        "client-admin",
        &CertSpec {
            common_name: "system:admin".into(),
            organizations: vec!["system:masters".into()],
            client: true,
            ..Default::default()
        },
    )?;
    let kubeconfig = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| args.data_dir.join("kubeconfig.yaml"));
    rkube_pki::write_kubeconfig(
        &kubeconfig,
        &format!("https://127.0.0.1:{}", args.https_listen_port),
        &ca.cert_pem,
        &admin,
    )
    .with_context(|| format!("writing the kubeconfig {}", kubeconfig.display()))?;
    Ok((ca.cert_pem, serving, kubeconfig))
}

async fn serve(args: ServerArgs) -> Result<()> {
    let started = Instant::now();
    // Installed first, so that a stop request during start-up is not lost.
    let shutdown = shutdown_signal()?;
    let service_cidr =
        Cidr::parse(&args.service_cidr).map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?;
    let node_ports = parse_port_range(&args.service_node_port_range)?;
    let advertise = args
        .advertise_address
        .or_else(|| local_addresses().first().copied())
        .unwrap_or(Ipv4Addr::LOCALHOST);

    let datastore = Datastore::parse(
        &args.datastore_endpoint,
        &sqlite_path(&args.data_dir),
        EtcdTlsFiles {
            ca_file: args.datastore_cafile.clone(),
            cert_file: args.datastore_certfile.clone(),
            key_file: args.datastore_keyfile.clone(),
        },
    )?;
    let store = rkube_store::open(&datastore).await?;
    let revision = wait_for_datastore(store.as_ref(), &datastore.describe()).await?;
    tracing::info!(
        datastore = %datastore.describe(),
        revision,
        history = ?args.datastore_retention,
        "datastore ready"
    );
    let compactor = compactor::spawn(
        store.clone(),
        CompactorConfig::keep(args.datastore_retention),
    );

    let controllers = if args.disable_controller_manager {
        None
    } else {
        let flags = crate::controller_manager::ControllerManagerArgs {
            kubeconfig: None,
            root_ca_file: None,
            cluster_cidr: args.cluster_cidr.clone(),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12500,
        };
        Some(crate::controller_manager::config(&flags, None)?)
    };
    let (ca_pem, serving, kubeconfig) = certificates(&args, advertise, service_cidr.nth(1))?;
    let mut authenticator = Authenticator::new();
    if let Some(file) = &args.token_auth_file {
        authenticator.load_token_file(file)?;
    }
    let config = Config {
        listen: SocketAddr::from((args.bind_address, args.https_listen_port)),
        serving_cert_pem: serving.cert_pem,
        serving_key_pem: serving.key_pem,
        client_ca_pem: ca_pem.clone(),
        authenticator,
        service_cidr,
        node_ports,
        advertise_address: advertise,
        advertise_port: args.https_listen_port,
        event_ttl: args.event_ttl,
        bookmark_interval: Duration::from_secs(60),
    };
    let server = ApiServer::start(store.clone(), config).await?;
    if !server.wait_ready(Duration::from_secs(60)).await {
        tracing::warn!("the API server is not ready after 60s; still waiting");
    }
    tracing::info!(
        address = %server.local_addr(),
        kubeconfig = %kubeconfig.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "API server ready"
    );
    let scheduler = if args.disable_scheduler {
        None
    } else {
        let client = rkube_client::client_from_kubeconfig(&kubeconfig)
            .await
            .context("the scheduler's API client")?;
        let config = rkube_scheduler::SchedulerConfig::default();
        tracing::info!(
            identity = %config.identity,
            "scheduler running (leader election through kube-system/kube-scheduler)"
        );
        Some(tokio::spawn(async move {
            if let Err(e) = crate::scheduler::serve(client, config, true).await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        }))
    };
    // The controller manager is a client of the API like any other (DESIGN §2).
    let (stop_controllers, controllers_stopped) = tokio::sync::oneshot::channel::<()>();
    let controller_manager = controllers.map(|mut config| {
        config.root_ca_pem = Some(ca_pem.clone());
        let kubeconfig = kubeconfig.clone();
        tokio::spawn(async move {
            let stop = async {
                let _ = controllers_stopped.await;
            };
            if let Err(e) = crate::controller_manager::serve(kubeconfig, config, stop).await {
                tracing::error!(error = %format!("{e:#}"), "controller manager");
            }
        })
    });
    let agent = if args.disable_agent {
        ""
    } else {
        " node agent (kubelet, service proxy),"
    };
    tracing::warn!(
        "not running yet:{agent} cluster DNS, ingress — pods are {} but not started",
        if scheduler.is_some() {
            "scheduled"
        } else {
            "not scheduled"
        }
    );

    shutdown.await;
    tracing::info!("shutting down");
    if let Some(s) = scheduler {
        s.abort();
    }
    if let Some(task) = controller_manager {
        let _ = stop_controllers.send(());
        // Gives the Lease up so that another server takes over at once.
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("controller manager did not stop within 5s");
        }
    }
    server.shutdown().await;
    compactor.abort();
    store.close().await;
    Ok(())
}

/// Waits until the datastore answers (etcd may still be starting); other errors are fatal.
async fn wait_for_datastore(store: &dyn Store, name: &str) -> Result<i64> {
    let mut logged = false;
    loop {
        match store.current_revision().await {
            Ok(rev) => return Ok(rev),
            Err(Error::Unavailable(msg)) => {
                if !logged {
                    tracing::warn!(datastore = name, error = %msg, "datastore not reachable yet; retrying");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context(format!("datastore {name}")),
        }
    }
}

/// Resolves on SIGTERM or SIGINT; the handlers are in place once this returns.
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
