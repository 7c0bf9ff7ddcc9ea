//! Connecting: a `kube::Client` from a kubeconfig file (its current context).

use std::path::Path;

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("reading kubeconfig {path}: {source}")]
    Read {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig {path}: {source}")]
    Config {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("client for {path}: {source}")]
    Client { path: String, source: kube::Error },
}

/// A client for the current context of the kubeconfig at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, ConnectError> {
    let shown = path.display().to_string();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(path).map_err(|source| ConnectError::Read {
            path: shown.clone(),
            source,
        })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|source| ConnectError::Config {
            path: shown.clone(),
            source,
        })?;
    kube::Client::try_from(config).map_err(|source| ConnectError::Client {
        path: shown,
        source,
    })
}
