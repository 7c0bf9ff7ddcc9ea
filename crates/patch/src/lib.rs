//! Every patch type the Kubernetes API accepts, over `serde_json::Value` objects, driven by
//! the structural metadata of [`rkube_schema`]:
//!
//! - [`json_patch`]: JSON Patch (RFC 6902), `application/json-patch+json`;
//! - [`merge_patch`]: JSON Merge Patch (RFC 7386), `application/merge-patch+json`;
//! - [`strategic`]: strategic merge patch, `application/strategic-merge-patch+json`;
//! - [`managed`]: server-side apply (`application/apply-patch+yaml`) and the
//!   `metadata.managedFields` bookkeeping of every write, built on [`fieldpath`] (field
//!   sets in upstream's `FieldsV1` form) and [`ssa`] (typed merge, comparison, field sets).
//!
//! Errors are one [`PatchError`] enum carrying the HTTP status, reason and message upstream
//! answers with.

mod error;
pub mod fieldpath;
pub mod json_patch;
pub mod managed;
pub mod merge_patch;
pub mod ssa;
pub mod strategic;

pub use error::{Conflict, PatchError};
pub use managed::{
    ApplyOptions, ManagedFields, ManagerEntry, Operation, UpdateOptions, apply, field_set, update,
    update_owned,
};
