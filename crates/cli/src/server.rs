//! `rkube server`: the control plane of one machine. So far that is the datastore (opened,
//! checked, compacted on a schedule); the components that follow (API server, scheduler,
//! controllers, node agent, DNS, ingress) are named at start-up as not running yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
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

    /// Do not run a node agent on this machine.
    #[arg(long)]
    pub disable_agent: bool,
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
pub fn sqlite_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("db").join("state.db")
}

pub fn run(args: ServerArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> Result<()> {
    // Installed first, so that a stop request during start-up is not lost.
    let shutdown = shutdown_signal()?;
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

    let agent = if args.disable_agent {
        ""
    } else {
        " node agent (kubelet, service proxy),"
    };
    tracing::warn!(
        "rkube server runs only the datastore so far. Not running yet:{agent} API server (:6443), \
         scheduler, controller manager, cluster DNS, ingress; no kubeconfig is written until the \
         API server exists"
    );

    shutdown.await;
    tracing::info!("shutting down");
    compactor.abort();
    close(store).await;
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

async fn close(store: Arc<dyn Store>) {
    store.close().await;
}

/// Resolves on SIGTERM or SIGINT; the handlers are in place once this returns.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
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
