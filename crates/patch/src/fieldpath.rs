//! Field paths and sets of them, as server-side apply records ownership: upstream's
//! `fieldpath.Set` and its `FieldsV1` JSON form (`f:name`, `k:{"name":"x"}`, `v:value`,
//! `i:index`, and `.` marking that a node with children is itself a member).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::error::PatchError;

/// One step of a path into an object.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A struct field or map key.
    Field(String),
    /// An item of a list-map, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// An item of a set, by value.
    Value(Value),
    /// An item of an atomic or deduced list, by position (rarely recorded).
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element (`f:spec`, `k:{"name":"x"}`, `v:"a"`, `i:0`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            PathElement::Key(kv) => {
                let mut m = Map::new();
                for (k, v) in kv {
                    m.insert(k.clone(), v.clone());
                }
                format!("k:{}", canonical(&Value::Object(m)))
            }
            PathElement::Value(v) => format!("v:{}", canonical(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key.
    pub fn from_fields_v1_key(s: &str) -> Result<PathElement, PatchError> {
        let bad = || {
            PatchError::BadRequest(format!(
                "invalid managedFields: unrecognized path element {s:?}"
            ))
        };
        let (prefix, rest) = s.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => {
                    let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                    kv.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(kv))
                }
                _ => Err(bad()),
            },
            "v" => serde_json::from_str::<Value>(rest)
                .map(PathElement::Value)
                .map_err(|_| bad()),
            "i" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// Canonical compact JSON with sorted object keys (serde_json's map is sorted unless the
/// `preserve_order` feature is on somewhere in the build, so sort explicitly).
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Upstream's `value.ToString` for path strings: strings quoted, others as JSON.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => canonical(other),
    }
}

impl fmt::Display for PathElement {
    /// Upstream's path element form: `.name`, `[k1="a",k2=80]`, `[="v"]`, `[3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(kv) => {
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                let ca: Vec<(&String, String)> = a.iter().map(|(k, v)| (k, canonical(v))).collect();
                let cb: Vec<(&String, String)> = b.iter().map(|(k, v)| (k, canonical(v))).collect();
                ca.cmp(&cb)
            }
            (PathElement::Value(a), PathElement::Value(b)) => canonical(a).cmp(&canonical(b)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A path: a sequence of elements from the object's root.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Path {
    /// A path of field names (`Path::fields(&["spec", "replicas"])`).
    pub fn fields(names: &[&str]) -> Path {
        Path(
            names
                .iter()
                .map(|n| PathElement::Field(n.to_string()))
                .collect(),
        )
    }
}

/// A set of paths, as a tree: `members` are paths ending at this node's children,
/// `children` hold deeper paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    pub members: BTreeSet<PathElement>,
    pub children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds a path (the empty path is ignored).
    pub fn insert(&mut self, path: &[PathElement]) {
        // Elements are cloned only where the set does not have them yet (walks insert every
        // leaf path, and most of each path is already there).
        match path {
            [] => {}
            [last] => {
                if !self.members.contains(last) {
                    self.members.insert(last.clone());
                }
            }
            [first, rest @ ..] => match self.children.get_mut(first) {
                Some(child) => child.insert(rest),
                None => {
                    let mut child = Set::new();
                    child.insert(rest);
                    self.children.insert(first.clone(), child);
                }
            },
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree under one element.
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out.prune_empty();
        out
    }

    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Removes every path of `self` that is in `other` or lies under a member of `other`.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let d = match other.children.get(pe) {
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    fn prune_empty(&mut self) {
        self.children.retain(|_, c| !c.is_empty());
    }

    /// Every path in the set (members at any depth), sorted.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out.sort();
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            let child = self.children.get(pe).filter(|c| !c.is_empty());
            let v = match child {
                Some(c) => {
                    let mut inner = match c.to_fields_v1() {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    if self.members.contains(pe) {
                        inner.insert(".".to_string(), Value::Object(Map::new()));
                    }
                    Value::Object(inner)
                }
                None => Value::Object(Map::new()),
            };
            m.insert(pe.to_fields_v1_key(), v);
        }
        Value::Object(m)
    }

    /// Parses the `FieldsV1` JSON form.
    pub fn from_fields_v1(v: &Value) -> Result<Set, PatchError> {
        let obj = v.as_object().ok_or_else(|| {
            PatchError::BadRequest("invalid managedFields: fieldsV1 must be an object".to_string())
        })?;
        let mut set = Set::new();
        for (k, child) in obj {
            if k == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(k)?;
            let child_obj = child.as_object().ok_or_else(|| {
                PatchError::BadRequest(format!(
                    "invalid managedFields: value of {k:?} must be an object"
                ))
            })?;
            if child_obj.is_empty() || child_obj.contains_key(".") {
                set.members.insert(pe.clone());
            }
            if child_obj.keys().any(|k| k != ".") {
                let sub = Set::from_fields_v1(child)?;
                if !sub.is_empty() {
                    set.children.insert(pe, sub);
                }
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(n: &str) -> PathElement {
        PathElement::Field(n.to_string())
    }

    #[test]
    fn fields_v1_round_trip_with_dot_members() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}},
                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {}
                }}}
            },
            "f:metadata2": {"f:finalizers": {"v:\"a/b\"": {}}, "f:list": {"i:3": {}}}
        });
        let set = Set::from_fields_v1(&v).expect("valid");
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.has(&[f("spec")]));
        assert!(set.has(&[f("spec"), f("replicas")]));
        let key = PathElement::Key(vec![("name".into(), json!("nginx"))]);
        assert!(set.has(&[
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            key.clone()
        ]));
        assert!(set.has(&[
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            key,
            f("image")
        ]));
        assert!(set.has(&[
            f("metadata2"),
            f("finalizers"),
            PathElement::Value(json!("a/b"))
        ]));
        assert!(set.has(&[f("metadata2"), f("list"), PathElement::Index(3)]));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn path_strings_match_upstream() {
        let p = Path(vec![
            f("spec"),
            f("containers"),
            PathElement::Key(vec![
                ("containerPort".into(), json!(80)),
                ("protocol".into(), json!("TCP")),
            ]),
            f("hostPort"),
        ]);
        assert_eq!(
            p.to_string(),
            ".spec.containers[containerPort=80,protocol=\"TCP\"].hostPort"
        );
        assert_eq!(
            Path(vec![f("finalizers"), PathElement::Value(json!("x"))]).to_string(),
            ".finalizers[=\"x\"]"
        );
        assert_eq!(
            Path(vec![f("a"), PathElement::Index(2)]).to_string(),
            ".a[2]"
        );
    }

    #[test]
    fn set_operations() {
        let mut a = Set::new();
        a.insert(&[f("a"), f("b")]);
        a.insert(&[f("a"), f("c")]);
        a.insert(&[f("d")]);
        let mut b = Set::new();
        b.insert(&[f("a"), f("b")]);
        b.insert(&[f("e")]);
        let d = a.difference(&b);
        assert_eq!(
            d.paths(),
            vec![Path::fields(&["a", "c"]), Path::fields(&["d"])]
        );
        let i = a.intersection(&b);
        assert_eq!(i.paths(), vec![Path::fields(&["a", "b"])]);
        let u = a.union(&b);
        assert_eq!(u.paths().len(), 4);
        let mut top = Set::new();
        top.insert(&[f("a")]);
        assert_eq!(
            a.recursive_difference(&top).paths(),
            vec![Path::fields(&["d"])]
        );
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn bad_fields_v1_is_a_bad_request() {
        for bad in [
            json!({"x:y": {}}),
            json!({"f:a": 1}),
            json!([]),
            json!({"k:notjson": {}}),
        ] {
            assert!(
                matches!(Set::from_fields_v1(&bad), Err(PatchError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
