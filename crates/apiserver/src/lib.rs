//! rkube's Kubernetes API server (DESIGN §5).
//!
//! A request goes: TLS ([`serve`]) → authentication ([`authn`]) → request parsing
//! ([`request`]) → authorization ([`authz`]) → resource handlers ([`handlers`]: decoding,
//! defaulting and validation, admission, the per-resource [`strategy`], storage) or the
//! non-resource endpoints ([`nonresource`]: version, health, [`discovery`], [`openapi`]).
//! Reads and watches are served from the [`cache`], which one store watch keeps current.
//!
//! [`ApiServer::start`] binds, primes the caches, makes the [`bootstrap`] objects and
//! serves until [`ApiServer::shutdown`].

pub mod admission;
pub mod allocate;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod cache;
pub mod convert;
pub mod discovery;
mod errors;
mod handlers;
mod index_view;
mod json;
pub mod managed;
pub mod nonresource;
pub mod objects;
pub mod openapi;
mod openapi_pb;
mod priority;
pub mod request;
mod route;
pub mod serve;
mod services;
pub mod strategy;
pub mod table;
pub mod testing;
pub mod typed;
pub mod validation;
pub mod web;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rkube_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::allocate::{Allocators, Cidr};
use crate::authn::Authenticator;
use crate::authz::{AllowAuthenticated, Authorizer};
use crate::cache::Caches;

/// How to run the API server.
pub struct Config {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// CA that signs client certificates.
    pub client_ca_pem: String,
    pub authenticator: Authenticator,
    /// The range ClusterIPs come from (`10.43.0.0/16`).
    pub service_cidr: Cidr,
    /// The range NodePorts come from (30000–32767).
    pub node_ports: (u16, u16),
    /// The address and port other components reach this server on (the `kubernetes`
    /// Service's endpoint).
    pub advertise_address: Ipv4Addr,
    pub advertise_port: u16,
    /// How long Events live.
    pub event_ttl: Duration,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Config {
    /// `host:port` clients reach the server on.
    pub fn advertise(&self) -> String {
        format!("{}:{}", self.advertise_address, self.advertise_port)
    }
}

/// What every request handler shares.
pub struct State {
    pub store: Arc<dyn Store>,
    pub caches: Arc<Caches>,
    pub authn: Authenticator,
    pub authz: Box<dyn Authorizer>,
    pub allocators: Allocators,
    pub config: Config,
    bootstrapped: AtomicBool,
    shutting_down: AtomicBool,
}

impl State {
    pub fn bootstrapped(&self) -> bool {
        self.bootstrapped.load(Ordering::Acquire)
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// The API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] serve::TlsError),
}

/// A running API server.
pub struct ApiServer {
    pub state: Arc<State>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds and starts serving. The caches prime and the bootstrap objects are made in the
    /// background; `/readyz` reports when they are done.
    pub async fn start(store: Arc<dyn Store>, mut config: Config) -> Result<ApiServer, StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        if config.advertise_port == 0 {
            config.advertise_port = addr.port();
        }
        let tls = serve::tls_config(
            &config.serving_cert_pem,
            &config.serving_key_pem,
            &config.client_ca_pem,
        )?;
        let caches = Caches::new(store.clone());
        let state = Arc::new(State {
            allocators: Allocators::new(store.clone(), config.service_cidr, config.node_ports),
            authn: std::mem::take(&mut config.authenticator),
            authz: Box::new(AllowAuthenticated),
            caches: caches.clone(),
            store,
            config,
            bootstrapped: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        });
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(caches.run())];
        let boot = state.clone();
        tasks.push(tokio::spawn(async move {
            bootstrap::run(&boot).await;
            boot.bootstrapped.store(true, Ordering::Release);
        }));
        tasks.push(tokio::spawn(serve::serve(listener, tls, state.clone(), rx)));
        Ok(ApiServer {
            state,
            addr,
            shutdown,
            tasks,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until `/readyz` would pass (caches primed, bootstrap done) or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.state.caches.ready() && self.state.bootstrapped() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    /// Stops accepting requests and ends the server's tasks.
    pub async fn shutdown(self) {
        self.state.shutting_down.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}
