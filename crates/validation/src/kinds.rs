//! The per-kind glue: [`Def`] ties a `k8s-openapi` type to its defaulting and validation
//! functions, and implements the JSON-level [`Kind`] interface the registry hands out.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::{Metadata, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Gvk;
use crate::decode::{self, DecodeError};
use crate::error::FieldError;
use crate::meta::{self, Errs};
use crate::names::NameFn;
use crate::path::Path;

thread_local! {
    /// The JSON of the object being validated on this thread, while [`with_raw`] runs.
    static RAW: std::cell::Cell<*const Value> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Runs `f` with `raw` as the JSON of the object being validated, so that validators can
/// tell a field that was absent (Go's nil) from one that was empty ([`raw_absent`]).
fn with_raw<R>(raw: &Value, f: impl FnOnce() -> R) -> R {
    /// Restores the previous pointer when `f` returns or unwinds.
    struct Reset(*const Value);
    impl Drop for Reset {
        fn drop(&mut self) {
            RAW.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(RAW.with(|r| r.replace(raw as *const Value)));
    f()
}

/// True if the field at `path` was absent or null in the JSON being validated.
pub(crate) fn raw_absent(path: &[&str]) -> bool {
    let ptr = RAW.with(|r| r.get());
    // SAFETY: the pointer is only non-null inside `with_raw`, which borrows the value for
    // the whole time it is set (and resets it on return or unwind), on this thread.
    let Some(mut v) = (unsafe { ptr.as_ref() }) else {
        return false;
    };
    for p in path {
        match v.get(*p) {
            Some(x) => v = x,
            None => return true,
        }
    }
    v.is_null()
}

/// Fields that `k8s-openapi` models as required (so they always serialize) but that Go
/// keeps as nil pointers: if the request left them out, they stay out, so validation can
/// report them as required.
const NIL_POINTER_FIELDS: &[&[&str]] = &[&["spec", "selector"]];

fn keep_absent(input: &Value, out: &mut Value) {
    for path in NIL_POINTER_FIELDS {
        let (last, parents) = match path.split_last() {
            Some(x) => x,
            None => continue,
        };
        let absent_in_input = {
            let mut v = Some(input);
            for p in parents {
                v = v.and_then(|x| x.get(*p));
            }
            v.and_then(|x| x.get(*last)).is_none_or(Value::is_null)
        };
        if !absent_in_input {
            continue;
        }
        let mut o = Some(&mut *out);
        for p in parents {
            o = o.and_then(|x| x.get_mut(*p));
        }
        if let Some(Value::Object(m)) = o
            && m.get(*last)
                .is_some_and(|v| v.as_object().is_some_and(|x| x.is_empty()))
        {
            m.remove(*last);
        }
    }
}

/// Defaulting and validation of one kind, on JSON.
pub(crate) trait Kind: Sync {
    fn namespaced(&self) -> bool;
    /// The object with upstream's defaults applied (the input is not changed).
    fn defaulted(&self, gvk: Gvk<'_>, obj: &Value) -> Result<Value, DecodeError>;
    fn validate_create(&self, gvk: Gvk<'_>, obj: &Value) -> Result<Vec<FieldError>, DecodeError>;
    fn validate_update(
        &self,
        gvk: Gvk<'_>,
        new: &Value,
        old: &Value,
    ) -> Result<Vec<FieldError>, DecodeError>;
    fn validate_status_update(
        &self,
        gvk: Gvk<'_>,
        new: &Value,
        old: &Value,
    ) -> Result<Vec<FieldError>, DecodeError>;
}

/// A kind's rules on its typed struct. ObjectMeta is validated here; the functions check
/// the rest.
pub(crate) struct Def<T> {
    pub namespaced: bool,
    pub name: NameFn,
    pub default: fn(&mut T),
    /// Checks on create (everything but ObjectMeta).
    pub validate: fn(&T, &mut Errs),
    /// Checks on update of the main resource (everything but ObjectMeta).
    pub update: fn(&T, &T, &mut Errs),
    /// Checks on update through the status subresource (everything but ObjectMeta).
    pub status: fn(&T, &T, &mut Errs),
    /// Whether ObjectMeta is validated before `validate` on create (core/v1 Events do
    /// their own metadata checks).
    pub meta: bool,
}

/// A kind definition with the usual ObjectMeta validation.
pub(crate) const fn def<T>(
    namespaced: bool,
    name: NameFn,
    default: fn(&mut T),
    validate: fn(&T, &mut Errs),
    update: fn(&T, &T, &mut Errs),
    status: fn(&T, &T, &mut Errs),
) -> Def<T> {
    Def {
        namespaced,
        name,
        default,
        validate,
        update,
        status,
        meta: true,
    }
}

/// Defaults nothing.
pub(crate) fn no_default<T>(_: &mut T) {}
/// Update checks when upstream has none beyond ObjectMeta.
pub(crate) fn no_update_checks<T>(_: &T, _: &T, _: &mut Errs) {}

impl<T> Def<T>
where
    T: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + JsonSchema,
{
    fn decode(&self, gvk: Gvk<'_>, v: &Value) -> Result<T, DecodeError> {
        decode::decode::<T>(gvk.kind, gvk.version, v)
    }

    /// Decodes an object that is most likely well formed (a request body, or one that has
    /// been through [`Kind::defaulted`] or was stored): see [`decode::decode_fast`].
    fn decode_fast(&self, gvk: Gvk<'_>, v: &Value) -> Result<T, DecodeError> {
        decode::decode_fast::<T>(gvk.kind, gvk.version, v)
    }
}

impl<T> Kind for Def<T>
where
    T: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + JsonSchema,
{
    fn namespaced(&self) -> bool {
        self.namespaced
    }

    fn defaulted(&self, gvk: Gvk<'_>, obj: &Value) -> Result<Value, DecodeError> {
        let mut typed = self.decode_fast(gvk, obj)?;
        (self.default)(&mut typed);
        let mut out = decode::encode(&typed)?;
        if decode::canonicalize_quantities::<T>(&mut out).is_err() {
            // A malformed quantity: the schema walk words upstream's error for it.
            self.decode(gvk, obj)?;
        }
        keep_absent(obj, &mut out);
        Ok(out)
    }

    fn validate_create(&self, gvk: Gvk<'_>, obj: &Value) -> Result<Vec<FieldError>, DecodeError> {
        let typed = self.decode_fast(gvk, obj)?;
        let mut errs = Vec::new();
        if self.meta {
            meta::validate_object_meta(
                typed.metadata(),
                self.namespaced,
                self.name,
                &Path::new("metadata"),
                &mut errs,
            );
        }
        with_raw(obj, || (self.validate)(&typed, &mut errs));
        Ok(errs)
    }

    fn validate_update(
        &self,
        gvk: Gvk<'_>,
        new: &Value,
        old: &Value,
    ) -> Result<Vec<FieldError>, DecodeError> {
        let raw = new;
        let new = self.decode_fast(gvk, new)?;
        let old = self.decode_fast(gvk, old)?;
        let mut errs = Vec::new();
        meta::validate_object_meta_update(
            new.metadata(),
            old.metadata(),
            &Path::new("metadata"),
            &mut errs,
        );
        with_raw(raw, || (self.update)(&new, &old, &mut errs));
        Ok(errs)
    }

    fn validate_status_update(
        &self,
        gvk: Gvk<'_>,
        new: &Value,
        old: &Value,
    ) -> Result<Vec<FieldError>, DecodeError> {
        let new = self.decode_fast(gvk, new)?;
        let old = self.decode_fast(gvk, old)?;
        let mut errs = Vec::new();
        meta::validate_object_meta_update(
            new.metadata(),
            old.metadata(),
            &Path::new("metadata"),
            &mut errs,
        );
        (self.status)(&new, &old, &mut errs);
        Ok(errs)
    }
}
