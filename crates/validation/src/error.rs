//! Field errors shaped like upstream's `field.Error`, and upstream's exact message text.
//!
//! A [`FieldError`] carries a type, a field path, the offending value and a detail, and
//! renders exactly as upstream's `field.Error.Error()` does
//! (`spec.replicas: Invalid value: -1: must be greater than or equal to 0`). The bad value
//! is kept as a [`BadValue`], already in the shape Go's formatting prints it in, so that
//! the messages match upstream byte for byte.

use std::collections::BTreeMap;
use std::fmt;

use crate::path::Path;

/// The kind of a field error: upstream's `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A value was looked up and not found (`FieldValueNotFound`).
    NotFound,
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// A value that must be unique is repeated (`FieldValueDuplicate`).
    Duplicate,
    /// A malformed or out-of-range value (`FieldValueInvalid`).
    Invalid,
    /// A value outside an enumeration (`FieldValueNotSupported`).
    NotSupported,
    /// A well-formed value that is not allowed here (`FieldValueForbidden`).
    Forbidden,
    /// A value that is too long (`FieldValueTooLong`).
    TooLong,
    /// A list with too many items (`FieldValueTooMany`).
    TooMany,
    /// An error not caused by the input (`InternalError`).
    InternalError,
}

impl ErrorType {
    /// The machine-readable cause type upstream puts in `Status.details.causes[].reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::InternalError => "InternalError",
        }
    }

    /// The human text upstream prints for the type (`Invalid value`, `Required value`, …).
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::InternalError => "Internal error",
        }
    }
}

/// The offending value of a field error, in the form Go's `fmt` prints it.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// No value is printed (upstream's `omitValue`, and the value of Required/Forbidden).
    Omit,
    /// Go's `nil`: printed as `null`.
    Null,
    /// A string, printed quoted (`%q`).
    Str(String),
    /// An integer, printed plainly.
    Int(i64),
    /// A floating-point number, printed as Go's `%v` does.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A value already rendered the way Go prints it (`%#v` of a struct, map or slice, or
    /// the `String()` of a type such as `resource.Quantity`); printed verbatim.
    Raw(String),
}

impl BadValue {
    /// Renders the value as upstream's `ErrorBody` does.
    pub fn render(&self) -> Option<String> {
        match self {
            BadValue::Omit => None,
            BadValue::Null => Some("null".to_string()),
            BadValue::Str(s) => Some(go_quote(s)),
            BadValue::Int(i) => Some(i.to_string()),
            BadValue::Float(f) => Some(go_float(*f)),
            BadValue::Bool(b) => Some(b.to_string()),
            BadValue::Raw(s) => Some(s.clone()),
        }
    }

    /// The value as JSON, for callers that want to show it (not part of upstream's Status).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            BadValue::Omit | BadValue::Null => serde_json::Value::Null,
            BadValue::Str(s) | BadValue::Raw(s) => serde_json::Value::String(s.clone()),
            BadValue::Int(i) => serde_json::Value::from(*i),
            BadValue::Float(f) => serde_json::Value::from(*f),
            BadValue::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue::Str(s.to_string())
    }
}
impl From<String> for BadValue {
    fn from(s: String) -> Self {
        BadValue::Str(s)
    }
}
impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        BadValue::Str(s.clone())
    }
}
impl From<i64> for BadValue {
    fn from(i: i64) -> Self {
        BadValue::Int(i)
    }
}
impl From<i32> for BadValue {
    fn from(i: i32) -> Self {
        BadValue::Int(i.into())
    }
}
impl From<usize> for BadValue {
    fn from(i: usize) -> Self {
        BadValue::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}
impl From<bool> for BadValue {
    fn from(b: bool) -> Self {
        BadValue::Bool(b)
    }
}
impl From<f64> for BadValue {
    fn from(f: f64) -> Self {
        BadValue::Float(f)
    }
}
impl<T: Into<BadValue>> From<Option<T>> for BadValue {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => v.into(),
            None => BadValue::Null,
        }
    }
}

/// One field-level validation error: upstream's `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub error_type: ErrorType,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// Further explanation (may be empty).
    pub detail: String,
}

impl FieldError {
    fn new(error_type: ErrorType, path: &Path, bad_value: BadValue, detail: String) -> Self {
        FieldError {
            error_type,
            field: path.to_string(),
            bad_value,
            detail,
        }
    }

    /// `field.Invalid`.
    pub fn invalid(path: &Path, value: impl Into<BadValue>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, path, value.into(), detail.into())
    }

    /// `field.Required`.
    pub fn required(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, path, BadValue::Omit, detail.into())
    }

    /// `field.Forbidden`.
    pub fn forbidden(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, path, BadValue::Omit, detail.into())
    }

    /// `field.Duplicate`.
    pub fn duplicate(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::Duplicate, path, value.into(), String::new())
    }

    /// `field.NotFound`.
    pub fn not_found(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::NotFound, path, value.into(), String::new())
    }

    /// `field.NotSupported`: the detail lists the supported values, quoted, in order.
    pub fn not_supported(path: &Path, value: impl Into<BadValue>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, path, value.into(), detail)
    }

    /// `field.TooLong`: `must have at most N bytes`.
    pub fn too_long(path: &Path, value: impl Into<BadValue>, max: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            path,
            value.into(),
            format!("must have at most {max} bytes"),
        )
    }

    /// `field.TooMany`: `must have at most N items`, with the actual count as the value.
    pub fn too_many(path: &Path, actual: usize, max: usize) -> Self {
        Self::new(
            ErrorType::TooMany,
            path,
            BadValue::from(actual),
            format!("must have at most {max} items"),
        )
    }

    /// `field.InternalError`.
    pub fn internal(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::InternalError,
            path,
            BadValue::Null,
            detail.into(),
        )
    }

    /// The message without the field name: upstream's `ErrorBody()`, which is what
    /// `Status.details.causes[].message` carries.
    pub fn body(&self) -> String {
        let mut s = String::from(self.error_type.text());
        let show_value = !matches!(
            self.error_type,
            ErrorType::Required
                | ErrorType::Forbidden
                | ErrorType::TooLong
                | ErrorType::InternalError
        );
        if show_value && let Some(v) = self.bad_value.render() {
            s.push_str(": ");
            s.push_str(&v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// The cause type for `Status.details.causes[].reason` (e.g. `FieldValueInvalid`).
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Joins errors as upstream's aggregate does: duplicates (by message) dropped, one error
/// printed alone, several as `[a, b]`.
pub fn aggregate(errors: &[FieldError]) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut msgs = Vec::new();
    for e in errors {
        let m = e.to_string();
        if seen.insert(m.clone()) {
            msgs.push(m);
        }
    }
    match msgs.len() {
        0 => String::new(),
        1 => msgs.remove(0),
        _ => format!("[{}]", msgs.join(", ")),
    }
}

/// The `message` of upstream's 422 `Invalid` Status (`apierrors.NewInvalid`):
/// `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: …`. The kind is
/// qualified by the group (`Deployment.apps`) except for the core group.
pub fn format_invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let agg = aggregate(errors);
    if agg.is_empty() {
        format!("{qualified} {} is invalid", go_quote(name))
    } else {
        format!("{qualified} {} is invalid: {agg}", go_quote(name))
    }
}

/// What kubectl prints for a 422 `Invalid` Status: `The Deployment "web" is invalid: …`,
/// built from `details.kind`, `details.name` and the causes (one per line when there are
/// several, as kubectl's `MultilineError` does).
pub fn format_kubectl_invalid(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let head = format!("The {kind} {} is invalid", go_quote(name));
    let mut seen = std::collections::HashSet::new();
    let msgs: Vec<String> = errors
        .iter()
        .map(|e| e.to_string())
        .filter(|m| seen.insert(m.clone()))
        .collect();
    match msgs.len() {
        0 => head,
        1 => format!("{head}: {}", msgs[0]),
        _ => {
            let mut s = format!("{head}: \n");
            for m in msgs {
                s.push_str("* ");
                s.push_str(&m);
                s.push('\n');
            }
            s
        }
    }
}

/// Quotes a string as Go's `%q` / `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Formats a float as Go's `%v` does for the common cases.
fn go_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else if f.is_finite() && (f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4)) {
        let s = format!("{f:e}");
        // Rust prints `1e21`, Go `1e+21`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
            Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as Go prints them).
pub fn go_string_map(m: Option<&BTreeMap<String, String>>) -> BadValue {
    match m {
        None => BadValue::Raw("map[string]string(nil)".to_string()),
        Some(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            BadValue::Raw(format!("map[string]string{{{}}}", inner.join(", ")))
        }
    }
}

/// Go's `%#v` of a `[]string`.
pub fn go_string_slice(v: Option<&[String]>) -> BadValue {
    match v {
        None => BadValue::Raw("[]string(nil)".to_string()),
        Some(v) => BadValue::Raw(go_string_slice_text(v)),
    }
}

pub fn go_string_slice_text(v: &[String]) -> String {
    let inner: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_upstream() {
        let p = Path::new("spec").child("replicas");
        assert_eq!(
            FieldError::invalid(&p, -1i64, "must be greater than or equal to 0").to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let p = Path::new("spec").child("strategy").child("type");
        assert_eq!(
            FieldError::not_supported(&p, "Foo", &["Recreate", "RollingUpdate"]).to_string(),
            "spec.strategy.type: Unsupported value: \"Foo\": supported values: \"Recreate\", \"RollingUpdate\""
        );
        let p = Path::new("spec").child("containers").index(0).child("name");
        assert_eq!(
            FieldError::required(&p, "").to_string(),
            "spec.containers[0].name: Required value"
        );
        let p = Path::new("metadata").child("annotations");
        assert_eq!(
            FieldError::too_long(&p, "", 262144).to_string(),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
        assert_eq!(
            FieldError::too_many(&p, 5, 4).body(),
            "Too many: 5: must have at most 4 items"
        );
        assert_eq!(FieldError::forbidden(&p, "nope").body(), "Forbidden: nope");
        assert_eq!(
            FieldError::duplicate(&p, "x").body(),
            "Duplicate value: \"x\""
        );
    }

    #[test]
    fn aggregates_like_upstream() {
        let p = Path::new("spec");
        let a = FieldError::required(&p.child("a"), "");
        let b = FieldError::required(&p.child("b"), "");
        assert_eq!(
            format_invalid("apps", "Deployment", "web", std::slice::from_ref(&a)),
            "Deployment.apps \"web\" is invalid: spec.a: Required value"
        );
        assert_eq!(
            format_invalid("", "Pod", "p", &[a.clone(), b.clone(), a.clone()]),
            "Pod \"p\" is invalid: [spec.a: Required value, spec.b: Required value]"
        );
        assert_eq!(
            format_kubectl_invalid("Deployment", "web", &[a]),
            "The Deployment \"web\" is invalid: spec.a: Required value"
        );
    }

    #[test]
    fn go_formatting() {
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(3.0), "3");
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(
            go_string_map(Some(&m)).render().as_deref(),
            Some("map[string]string{\"a\":\"1\", \"b\":\"2\"}")
        );
    }
}
