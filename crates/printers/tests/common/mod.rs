//! Shared by the printer tests: a fixed "now" and timestamps relative to it.

#![allow(dead_code)]

use serde_json::Value;

/// 2025-06-01T12:00:00Z.
pub const NOW: i64 = 1_748_779_200;

/// The RFC 3339 timestamp `secs` seconds before [`NOW`].
pub fn ago(secs: i64) -> String {
    rkube_api::meta::rfc3339(NOW - secs)
}

/// The cells of `obj` as printed for `group`/`resource` at [`NOW`].
pub fn cells(group: &str, resource: &str, obj: &Value) -> Vec<Value> {
    let row = rkube_printers::row(group, resource, obj, NOW);
    assert_eq!(
        row.cells.len(),
        rkube_printers::columns(group, resource).len(),
        "one cell per column"
    );
    row.cells
}

/// The column names and priorities of a resource.
pub fn headers(group: &str, resource: &str) -> Vec<(&'static str, i32)> {
    rkube_printers::columns(group, resource)
        .iter()
        .map(|c| (c.name, c.priority))
        .collect()
}
