//! Structural metadata of Kubernetes types, for patching and server-side apply.
//!
//! For every built-in type of Kubernetes v1.33 (generated from the `k8s-openapi` crate plus
//! hand-written facts of upstream's OpenAPI, see `examples/gen.rs`), per field: the JSON
//! name; what it is ([`Type`]: scalar, named definition, map, list); for lists the
//! server-side-apply list type ([`ListKind`]: atomic, set, map with keys); for structs and
//! maps the map type ([`MapKind`]: granular or atomic); and the strategic-merge-patch
//! metadata ([`PatchMeta`]: `x-kubernetes-patch-strategy`, `-merge-key`). Also, for
//! top-level kinds, the definition name and GVK.
//!
//! - [`catalog()`] is the built-in [`Catalog`]: look definitions up by name or GVK, walk
//!   their fields ([`Type::resolve`], [`Type::child`]).
//! - [`crd::from_openapi_v3`] builds the same model from a CRD's schema.
//! - [`Catalog::augment_openapi_v2`] / [`Catalog::augment_openapi_v3`] (and
//!   [`Catalog::property_extensions`]) give the `x-kubernetes-*` extensions for the
//!   published OpenAPI documents.

pub mod builtin;
pub mod crd;
mod error;
#[rustfmt::skip]
mod generated;
pub mod openapi;
mod table;
pub mod types;

pub use builtin::{Catalog, catalog};
pub use error::SchemaError;
pub use types::{
    Child, Definition, Field, Gvk, ListKind, ListType, MapKind, MapType, PatchMeta, Resolved,
    Scalar, StructType, Type,
};

#[cfg(test)]
mod tests;
