//! Choosing and opening a backend from a datastore endpoint, as given to
//! `rkube server --datastore-endpoint`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::etcd::{EtcdConfig, EtcdStore};
use crate::memory::MemoryStore;
use crate::sqlite::SqliteStore;
use crate::{Error, Result, Store};

/// Which backend to use and where it is.
#[derive(Clone, Debug)]
pub enum Datastore {
    /// The embedded SQLite datastore in this file.
    Sqlite(PathBuf),
    /// An etcd cluster.
    Etcd(EtcdConfig),
    /// Process memory (tests, benchmarks).
    Memory,
}

/// TLS files for etcd (`--datastore-cafile`, `--datastore-certfile`, `--datastore-keyfile`).
#[derive(Clone, Debug, Default)]
pub struct EtcdTlsFiles {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Datastore {
    /// Parses a datastore endpoint:
    /// - empty: SQLite at `default_sqlite`;
    /// - `sqlite://PATH` (or `sqlite:PATH`): SQLite at PATH;
    /// - `etcd://HOST:PORT[,HOST:PORT…]`: etcd (over TLS when TLS files are given);
    /// - `http://HOST:PORT[,…]` / `https://HOST:PORT[,…]`: etcd at those client URLs;
    /// - `memory://`: in memory, nothing kept.
    pub fn parse(endpoint: &str, default_sqlite: &Path, tls: EtcdTlsFiles) -> Result<Self> {
        let endpoint = endpoint.trim();
        if endpoint.is_empty() {
            return Ok(Datastore::Sqlite(default_sqlite.to_path_buf()));
        }
        if endpoint == "memory://" || endpoint == "memory:" {
            return Ok(Datastore::Memory);
        }
        if let Some(path) = endpoint
            .strip_prefix("sqlite://")
            .or_else(|| endpoint.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Ok(Datastore::Sqlite(default_sqlite.to_path_buf()));
            }
            return Ok(Datastore::Sqlite(PathBuf::from(path)));
        }
        let secure = tls.ca_file.is_some() || tls.cert_file.is_some();
        let endpoints: Vec<String> = if let Some(hosts) = endpoint.strip_prefix("etcd://") {
            let scheme = if secure { "https" } else { "http" };
            split_hosts(hosts, endpoint)?
                .into_iter()
                .map(|h| format!("{scheme}://{h}"))
                .collect()
        } else if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            return Err(Error::InvalidArgument(format!(
                "unsupported datastore endpoint {endpoint:?}: use sqlite://PATH, \
                 etcd://HOST:PORT[,HOST:PORT...], https://HOST:PORT[,...] or memory://"
            )));
        };
        let mut config = EtcdConfig::new(endpoints);
        config.ca_file = tls.ca_file;
        config.cert_file = tls.cert_file;
        config.key_file = tls.key_file;
        Ok(Datastore::Etcd(config))
    }

    /// A one-line description for logs (no credentials are part of an endpoint).
    pub fn describe(&self) -> String {
        match self {
            Datastore::Sqlite(path) => format!("sqlite {}", path.display()),
            Datastore::Etcd(cfg) => format!("etcd {}", cfg.endpoints.join(",")),
            Datastore::Memory => "memory".into(),
        }
    }
}

fn split_hosts<'a>(hosts: &'a str, endpoint: &str) -> Result<Vec<&'a str>> {
    let hosts: Vec<&str> = hosts
        .trim_end_matches('/')
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "datastore endpoint {endpoint:?} names no etcd host"
        )));
    }
    Ok(hosts)
}

/// Opens the backend. Must be called inside a tokio runtime.
pub async fn open(datastore: &Datastore) -> Result<Arc<dyn Store>> {
    Ok(match datastore {
        Datastore::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        Datastore::Etcd(config) => Arc::new(EtcdStore::connect(config.clone()).await?),
        Datastore::Memory => Arc::new(MemoryStore::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Datastore> {
        Datastore::parse(s, Path::new("/d/db/state.db"), EtcdTlsFiles::default())
    }

    #[test]
    fn endpoints() {
        assert!(
            matches!(parse("").unwrap(), Datastore::Sqlite(p) if p == Path::new("/d/db/state.db"))
        );
        assert!(
            matches!(parse("sqlite:///x/y.db").unwrap(), Datastore::Sqlite(p) if p == Path::new("/x/y.db"))
        );
        assert!(matches!(parse("memory://").unwrap(), Datastore::Memory));
        match parse("etcd://10.0.0.1:2379,10.0.0.2:2379").unwrap() {
            Datastore::Etcd(cfg) => assert_eq!(
                cfg.endpoints,
                vec!["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
            ),
            other => panic!("{other:?}"),
        }
        let tls = EtcdTlsFiles {
            ca_file: Some("/ca.pem".into()),
            ..Default::default()
        };
        match Datastore::parse("etcd://h:2379", Path::new("/x"), tls).unwrap() {
            Datastore::Etcd(cfg) => assert_eq!(cfg.endpoints, vec!["https://h:2379"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("mysql://x"), Err(Error::InvalidArgument(_))));
        assert!(matches!(parse("etcd://"), Err(Error::InvalidArgument(_))));
    }
}
