//! Formatting helpers shared by the printers: label maps and label selectors as upstream's
//! `labels` package prints them, container names and images, `IntOrString`, access modes and
//! "a,b,c + 2 more..." lists.

use rkube_api::selectors::validate_key;
use serde_json::Value;

use crate::cells::{list, map, s};

/// `labels.FormatLabels`: `k=v` pairs sorted as strings, joined with `,`; `<none>` when
/// empty.
pub fn labels(m: &Value) -> String {
    let mut pairs: Vec<String> = map(m)
        .iter()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// One requirement of a label selector.
struct Requirement<'a> {
    key: &'a str,
    op: &'static str,
    values: Vec<&'a str>,
}

impl Requirement<'_> {
    fn render(&self) -> String {
        let mut values = self.values.clone();
        values.sort_unstable();
        let values = values.join(",");
        match self.op {
            "=" => format!("{}={values}", self.key),
            "in" => format!("{} in ({values})", self.key),
            "notin" => format!("{} notin ({values})", self.key),
            "exists" => self.key.to_string(),
            _ => format!("!{}", self.key),
        }
    }
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn requirement<'a>(
    key: &'a str,
    op: &'static str,
    values: Vec<&'a str>,
) -> Option<Requirement<'a>> {
    validate_key(key).ok()?;
    let count_ok = match op {
        "=" => values.len() == 1,
        "in" | "notin" => !values.is_empty(),
        _ => values.is_empty(),
    };
    if !count_ok || !values.iter().all(|v| valid_value(v)) {
        return None;
    }
    Some(Requirement { key, op, values })
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `matchLabels`
/// as `k=v`, expressions as `k in (a,b)`, `k notin (a)`, `k`, `!k`. A null or empty
/// selector prints as the empty string; `None` when the selector is invalid.
pub fn label_selector(sel: &Value) -> Option<String> {
    if !sel.is_object() {
        return if sel.is_null() {
            Some(String::new())
        } else {
            None
        };
    }
    let mut reqs = Vec::new();
    for (k, v) in map(&sel["matchLabels"]) {
        reqs.push(requirement(k, "=", vec![v.as_str()?])?);
    }
    for e in list(&sel["matchExpressions"]) {
        let op = match s(&e["operator"]) {
            "In" => "in",
            "NotIn" => "notin",
            "Exists" => "exists",
            "DoesNotExist" => "!",
            _ => return None,
        };
        let values = list(&e["values"])
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()?;
        reqs.push(requirement(s(&e["key"]), op, values)?);
    }
    // Stable, as Go's sort of so few requirements is.
    reqs.sort_by(|a, b| a.key.cmp(b.key));
    Some(
        reqs.iter()
            .map(Requirement::render)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: `<none>` for a null or empty selector, `<error>` for an
/// invalid one.
pub fn format_label_selector(sel: &Value) -> String {
    match label_selector(sel) {
        None => "<error>".into(),
        Some(s) if s.is_empty() => "<none>".into(),
        Some(s) => s,
    }
}

/// `layoutContainerCells`: container names and images, comma-separated.
pub fn containers(containers: &Value) -> (String, String) {
    let cs = list(containers);
    let names: Vec<&str> = cs.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

/// `intstr.IntOrString.String()`.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

/// `helper.GetAccessModesAsString`: `RWO,ROX,RWX,RWOP`, in that order, each once.
pub fn access_modes(modes: &Value) -> String {
    let has = |m: &str| list(modes).iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `listWithMoreString`: the first `max` items, then ` + N more...`; `<unset>` when empty.
pub fn list_with_more(items: &[String], max: usize) -> String {
    if items.len() > max {
        format!("{} + {} more...", items[..max].join(","), items.len() - max)
    } else if items.is_empty() {
        "<unset>".into()
    } else {
        items.join(",")
    }
}

/// `printBoolPtr`: `True`, `False` or `<unset>`.
pub fn bool_ptr(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_maps_sort_as_strings() {
        assert_eq!(labels(&json!({})), "<none>");
        assert_eq!(labels(&json!(null)), "<none>");
        assert_eq!(labels(&json!({"b": "2", "a": "1"})), "a=1,b=2");
        // "a.b=y" sorts before "a=x" ('.' < '=').
        assert_eq!(labels(&json!({"a": "x", "a.b": "y"})), "a.b=y,a=x");
    }

    #[test]
    fn selectors() {
        assert_eq!(format_label_selector(&json!(null)), "<none>");
        assert_eq!(format_label_selector(&json!({})), "<none>");
        assert_eq!(
            format_label_selector(&json!({"matchLabels": {"tier": "web", "app": "x"}})),
            "app=x,tier=web"
        );
        assert_eq!(
            format_label_selector(&json!({
                "matchLabels": {"b": "1"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "a", "operator": "Exists"},
                    {"key": "c", "operator": "NotIn", "values": ["x"]},
                    {"key": "d", "operator": "DoesNotExist"},
                    {"key": "e", "operator": "In", "values": ["only"]},
                ]
            })),
            "a,b=1,c notin (x),!d,e in (only),env in (dev,prod)"
        );
        for bad in [
            json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchLabels": {"bad key": "x"}}),
            json!({"matchLabels": {"k": "-bad"}}),
            json!("nonsense"),
        ] {
            assert_eq!(format_label_selector(&bad), "<error>", "{bad}");
            assert_eq!(label_selector(&bad), None, "{bad}");
        }
    }

    #[test]
    fn small_helpers() {
        assert_eq!(
            containers(&json!([{"name": "a", "image": "x:1"}, {"name": "b", "image": "y"}])),
            ("a,b".to_string(), "x:1,y".to_string())
        );
        assert_eq!(containers(&json!(null)), (String::new(), String::new()));
        assert_eq!(int_or_string(&json!(2)), "2");
        assert_eq!(int_or_string(&json!("50%")), "50%");
        assert_eq!(
            access_modes(&json!(["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"])),
            "RWO,RWX"
        );
        assert_eq!(
            access_modes(&json!(["ReadWriteOncePod", "ReadOnlyMany"])),
            "ROX,RWOP"
        );
        let items: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&items[..3], 3), "a,b,c");
        assert_eq!(list_with_more(&[], 3), "<unset>");
        assert_eq!(bool_ptr(&json!(true)), "True");
        assert_eq!(bool_ptr(&json!(null)), "<unset>");
    }
}
