//! rkube's API machinery, shared by the API server and by every component that talks to it.
//!
//! - [`resources`]: the one table of built-in resources (group, version, kind, names,
//!   scope, verbs, subresources, categories) that discovery, routing, storage and
//!   authorization all read.
//! - [`status`]: `metav1.Status` errors with upstream's codes, reasons and messages.
//! - [`selectors`]: label and field selectors (parsing and matching).
//! - [`meta`]: reading and writing `metadata` of objects held as JSON.

pub mod meta;
pub mod resources;
pub mod selectors;
pub mod status;

pub use resources::{GroupVersionKind, GroupVersionResource, Resource, Scope};
pub use status::ApiError;
