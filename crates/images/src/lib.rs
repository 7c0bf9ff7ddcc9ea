//! rkube's image store.
//!
//! - [`blobs`]: content-addressed blobs, every write verified against its sha256 digest;
//! - [`unpack`]: layers (tar, gzip, zstd) unpacked into snapshot directories, with
//!   whiteouts and opaque directories turned into overlayfs' format;
//! - [`store::ImageStore`]: the index of images, snapshots keyed by chain id, leases held by
//!   containers, removal with garbage collection;
//! - [`import`]: OCI image-layout tarballs and `docker save` archives;
//! - [`pull`]: pulls from OCI registries (auth, mirrors, plain-HTTP registries);
//! - [`mount`]: overlay roots, also for images with 100+ layers;
//! - [`merged`]: reading a file of an image's merged view without mounting it;
//! - [`config`]: the image config and Kubernetes' command/args/env rules.

pub mod blobs;
pub mod config;
pub mod digest;
mod error;
pub mod import;
pub mod merged;
pub mod mount;
pub mod pull;
pub mod reference;
pub mod store;
pub mod unpack;

pub use config::{ImageConfig, RunConfig};
pub use digest::Digest;
pub(crate) use error::io;
pub use error::{Error, Result};
pub use pull::{Credentials, DockerConfig, PullOptions, RegistryConfig};
pub use store::{ImageRecord, ImageStore};
