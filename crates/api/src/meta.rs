//! `metadata` of objects held as JSON: reading and writing names, labels, resource versions,
//! timestamps; the selectable fields of each built-in resource (for field selectors); and
//! RFC 3339 time formatting as the API writes it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

/// `metadata`, created if missing (and replacing a non-object).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("object");
    let m = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("object")
}

fn str_field<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> Option<&str> {
    str_field(obj, "name").filter(|s| !s.is_empty())
}

pub fn generate_name(obj: &Value) -> Option<&str> {
    str_field(obj, "generateName").filter(|s| !s.is_empty())
}

pub fn namespace(obj: &Value) -> Option<&str> {
    str_field(obj, "namespace").filter(|s| !s.is_empty())
}

pub fn uid(obj: &Value) -> Option<&str> {
    str_field(obj, "uid").filter(|s| !s.is_empty())
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    str_field(obj, "resourceVersion").filter(|s| !s.is_empty())
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    str_field(obj, "deletionTimestamp").filter(|s| !s.is_empty())
}

pub fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "labels")
}

pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "annotations")
}

fn string_map(obj: &Value, field: &str) -> BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set(obj: &mut Value, field: &str, value: impl Into<Value>) {
    meta_mut(obj).insert(field.to_string(), value.into());
}

pub fn remove(obj: &mut Value, field: &str) -> Option<Value> {
    meta_mut(obj).remove(field)
}

/// The value at a dotted path (`spec.nodeName`), if present.
pub fn path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, part| v.get(part))
}

fn path_str(obj: &Value, dotted: &str) -> String {
    match path(obj, dotted) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The fields of a resource that field selectors may name, beyond `metadata.name` and
/// `metadata.namespace` (upstream's per-resource field label conversions).
pub fn selectable_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["spec.signerName"],
        _ => &[],
    }
}

/// The values of an object's selectable fields, for matching a field selector.
pub fn field_set(group: &str, plural: &str, obj: &Value) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    out.insert("metadata.name", name(obj).unwrap_or("").to_string());
    out.insert(
        "metadata.namespace",
        namespace(obj).unwrap_or("").to_string(),
    );
    for &field in selectable_fields(group, plural) {
        let value = match (plural, field) {
            // Upstream's values for these are "" when unset, except hostNetwork's "false".
            ("pods", "spec.hostNetwork") => {
                let v = path_str(obj, field);
                if v.is_empty() { "false".to_string() } else { v }
            }
            ("nodes", "spec.unschedulable") => {
                let v = path_str(obj, field);
                if v.is_empty() { "false".to_string() } else { v }
            }
            ("events", "source") => path_str(obj, "source.component"),
            _ => path_str(obj, field),
        };
        out.insert(field, value);
    }
    out
}

/// Checks that every field a selector names is selectable for the resource.
pub fn check_field_selector(
    group: &str,
    plural: &str,
    sel: &crate::selectors::FieldSelector,
) -> Result<(), String> {
    let allowed = selectable_fields(group, plural);
    for t in &sel.terms {
        if t.field != "metadata.name"
            && t.field != "metadata.namespace"
            && !allowed.contains(&t.field.as_str())
        {
            return Err(format!("field label not supported: {}", t.field));
        }
    }
    Ok(())
}

/// Seconds and nanoseconds since the Unix epoch, now.
pub fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// Days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-22T05:01:02Z` (what `metav1.Time` serialises to).
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// `2026-11-22T05:01:02.123456Z` (what `metav1.MicroTime` serialises to).
pub fn rfc3339_micros(secs: i64, nanos: u32) -> String {
    let base = rfc3339(secs);
    format!("{}.{:06}Z", &base[..base.len() - 1], nanos / 1000)
}

/// The current time as `metav1.Time`.
pub fn now_rfc3339() -> String {
    rfc3339(now().0)
}

/// The current time as `metav1.MicroTime`.
pub fn now_rfc3339_micros() -> String {
    let (s, n) = now();
    rfc3339_micros(s, n)
}

/// Parses an RFC 3339 timestamp (`Z` or `±hh:mm` offset, optional fraction) into seconds
/// since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_325_349), "2026-11-22T05:29:09Z");
        assert_eq!(
            rfc3339_micros(0, 123_456_789),
            "1970-01-01T00:00:00.123456Z"
        );
        assert_eq!(parse_rfc3339("2026-11-22T05:29:09Z"), Some(1_795_325_349));
        assert_eq!(
            parse_rfc3339("2026-11-22T06:29:09+01:00"),
            Some(1_795_325_349)
        );
        assert_eq!(parse_rfc3339("2026-11-22T05:29:09.5Z"), Some(1_795_325_349));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z").map(rfc3339).unwrap(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(parse_rfc3339("nope"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn metadata_access() {
        let mut pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
                             "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert_eq!(name(&pod), Some("p"));
        assert_eq!(labels(&pod).get("a").map(String::as_str), Some("b"));
        set(&mut pod, "resourceVersion", "5");
        assert_eq!(resource_version(&pod), Some("5"));
        let f = field_set("", "pods", &pod);
        assert_eq!(f["spec.nodeName"], "n1");
        assert_eq!(f["spec.hostNetwork"], "false");
        assert_eq!(f["status.phase"], "Running");
        let sel = crate::selectors::FieldSelector::parse("spec.foo=x").unwrap();
        assert_eq!(
            check_field_selector("", "pods", &sel).unwrap_err(),
            "field label not supported: spec.foo"
        );
    }
}
