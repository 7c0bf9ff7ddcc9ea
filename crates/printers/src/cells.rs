//! Reading fields of objects held as JSON the way Go reads a decoded struct: an absent or
//! mistyped field is its zero value (`""`, `0`, `false`, empty list or map).

use serde_json::{Map, Value};

static EMPTY_MAP: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// A string field (`""` when absent).
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A string field, `None` when absent or `null` (a Go `*string`).
pub fn opt_s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// An integer field (0 when absent).
pub fn int(v: &Value) -> i64 {
    opt_int(v).unwrap_or(0)
}

/// An integer field, `None` when absent or `null` (a Go `*int32`).
pub fn opt_int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
}

/// A boolean field (false when absent).
pub fn boolean(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

/// A list field (empty when absent).
pub fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A map field (empty when absent).
pub fn map(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap_or(&EMPTY_MAP)
}

/// The number of entries of a list or map field.
pub fn len(v: &Value) -> i64 {
    match v {
        Value::Array(a) => a.len() as i64,
        Value::Object(m) => m.len() as i64,
        _ => 0,
    }
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    s(&obj["metadata"]["name"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

/// The `Age` cell.
pub fn age(obj: &Value, now: i64) -> Value {
    crate::duration::since(&obj["metadata"]["creationTimestamp"], now).into()
}

/// An annotation's value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}
