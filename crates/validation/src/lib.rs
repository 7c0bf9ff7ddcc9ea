//! Defaulting and validation of rkube's built-in Kubernetes types, as upstream's API server
//! does them before an object is stored.
//!
//! The API server keeps objects as JSON. For a kind named by its [`Gvk`]:
//!
//! 1. [`default_object`] decodes the JSON into the kind's `k8s-openapi` struct (a value of
//!    the wrong JSON type is a [`DecodeError`] with upstream's text, answered with 400),
//!    applies upstream's `SetDefaults_*` rules, puts quantities in canonical form and
//!    writes the object back. Fields the type does not know are dropped, as upstream's
//!    decoder drops them, so unknown-field checks (`fieldValidation`) come before this.
//! 2. [`validate_create`], [`validate_update`] and [`validate_status_update`] return the
//!    [`FieldError`]s upstream's `Validate*` functions report, in upstream's order; an empty
//!    list means the object is valid. [`format_invalid`] builds the message of the 422
//!    `Invalid` Status; each error gives the `reason`, `message` ([`FieldError::body`]) and
//!    `field` of a `details.causes` entry.
//!
//! 3. [`prepare_for_create`], [`prepare_for_update`] and [`prepare_for_status_update`] do
//!    what upstream's per-resource strategies do just before validation (status reset or
//!    carried over, generation, Namespace finalizer, Pod QoS class, Job selector, Service
//!    allocations kept on update).
//!
//! The caller does what upstream's generic registry does around these calls: names from
//! `generateName`, the namespace from the URL, `uid`/`creationTimestamp` on create, and
//! on update the `resourceVersion` of unconditional updates (validation requires one).
//!
//! Order on create: decode/[`default_object`] → admission → `uid` etc. →
//! [`prepare_for_create`] → [`validate_create`]. On update: [`default_object`] →
//! [`prepare_for_update`] (or [`prepare_for_status_update`]) → [`validate_update`] (or
//! [`validate_status_update`]).

mod decode;
pub mod error;
mod kinds;
pub mod meta;
pub mod names;
pub mod path;
pub mod quantity;
mod registry;
pub mod strategy;
pub mod usage;

mod groups;

pub use decode::DecodeError;
pub use error::{
    BadValue, ErrorType, FieldError, aggregate, format_invalid, format_kubectl_invalid,
};
pub use path::Path;
pub use strategy::{prepare_for_create, prepare_for_status_update, prepare_for_update};

use serde_json::Value;

/// A kind's group, version and kind (`("apps", "v1", "Deployment")`; the core group is `""`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gvk<'a> {
    /// API group; empty for the core group.
    pub group: &'a str,
    /// API version.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
}

impl<'a> Gvk<'a> {
    /// Builds a `Gvk`.
    pub const fn new(group: &'a str, version: &'a str, kind: &'a str) -> Self {
        Gvk {
            group,
            version,
            kind,
        }
    }
}

/// Why an object could not be defaulted or validated at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The kind is not one this crate knows.
    #[error("no defaulting or validation is defined for {group}/{version}, Kind={kind}")]
    Unsupported {
        /// Group.
        group: String,
        /// Version.
        version: String,
        /// Kind.
        kind: String,
    },
    /// The JSON does not decode into the kind's type (upstream answers 400 BadRequest).
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

fn lookup(gvk: Gvk<'_>) -> Result<&'static dyn kinds::Kind, Error> {
    registry::lookup(gvk).ok_or_else(|| Error::Unsupported {
        group: gvk.group.to_string(),
        version: gvk.version.to_string(),
        kind: gvk.kind.to_string(),
    })
}

/// True if this crate defaults and validates the kind.
pub fn is_supported(gvk: Gvk<'_>) -> bool {
    registry::lookup(gvk).is_some()
}

/// Whether the kind is namespaced (`None` for unknown kinds).
pub fn is_namespaced(gvk: Gvk<'_>) -> Option<bool> {
    registry::lookup(gvk).map(|k| k.namespaced())
}

/// Every kind this crate supports.
pub fn supported_kinds() -> Vec<Gvk<'static>> {
    registry::all()
}

/// Applies upstream's defaults to `obj` in place (see the crate documentation).
pub fn default_object(gvk: Gvk<'_>, obj: &mut Value) -> Result<(), Error> {
    *obj = defaulted_object(gvk, obj)?;
    Ok(())
}

/// `obj` with upstream's defaults applied, leaving `obj` as it was (for callers that compare
/// the two, without copying the input first).
pub fn defaulted_object(gvk: Gvk<'_>, obj: &Value) -> Result<Value, Error> {
    lookup(gvk)?.defaulted(gvk, obj).map_err(Error::from)
}

/// Validates an object about to be created.
pub fn validate_create(gvk: Gvk<'_>, obj: &Value) -> Result<Vec<FieldError>, Error> {
    lookup(gvk)?.validate_create(gvk, obj).map_err(Error::from)
}

/// Validates an update of the main resource, given the stored object.
pub fn validate_update(gvk: Gvk<'_>, new: &Value, old: &Value) -> Result<Vec<FieldError>, Error> {
    lookup(gvk)?
        .validate_update(gvk, new, old)
        .map_err(Error::from)
}

/// Validates an update through the `status` subresource, given the stored object.
pub fn validate_status_update(
    gvk: Gvk<'_>,
    new: &Value,
    old: &Value,
) -> Result<Vec<FieldError>, Error> {
    lookup(gvk)?
        .validate_status_update(gvk, new, old)
        .map_err(Error::from)
}
