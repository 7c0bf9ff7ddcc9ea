//! Decoding JSON objects into `k8s-openapi` structs with upstream's error text.
//!
//! Before a typed decode, the JSON is checked against the type's OpenAPI schema (from
//! `k8s-openapi`'s `schemars` implementations) so that a value of the wrong JSON type is
//! reported as upstream's Go decoder reports it:
//! `Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal
//! string into Go struct field DeploymentSpec.spec.replicas of type int32`.
//! Upstream answers such requests with 400 Bad Request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::quantity::Quantity;

/// A request body that cannot be decoded into the kind's type (upstream: 400 BadRequest).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The full message, as upstream's Status `message` carries it.
    pub message: String,
}

struct TypeSchema {
    root: Value,
    defs: Map<String, Value>,
    /// Where the type holds quantities.
    quantities: QuantityTree,
}

fn schema_for<T: JsonSchema>() -> Arc<TypeSchema> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<TypeSchema>>>> = OnceLock::new();
    let name = T::schema_name().into_owned();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().ok().and_then(|c| c.get(&name).cloned()) {
        return s;
    }
    let mut generator = SchemaGenerator::default();
    let root = generator.subschema_for::<T>().to_value();
    let defs = generator.definitions().clone();
    let quantities = QuantityTree::new(&root, &defs);
    let schema = Arc::new(TypeSchema {
        root,
        defs,
        quantities,
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(name, schema.clone());
    }
    schema
}

/// Decodes `value` as `T`, reporting type mismatches as upstream does.
pub(crate) fn decode<T: DeserializeOwned + JsonSchema>(
    kind: &str,
    version: &str,
    value: &Value,
) -> Result<T, DecodeError> {
    let wrap = |msg: String| DecodeError {
        message: format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {msg}"),
    };
    if !value.is_object() {
        return Err(wrap(format!(
            "json: cannot unmarshal {} into Go value of type {}",
            json_kind(value),
            go_type_name(&T::schema_name())
        )));
    }
    let schema = schema_for::<T>();
    let checker = Checker { defs: &schema.defs };
    let mut path = Vec::new();
    checker
        .check(&schema.root, value, kind, &mut path)
        .map_err(wrap)?;
    T::deserialize(value).map_err(|e| wrap(e.to_string()))
}

/// [`decode`] for the common case of a well-formed object: straight into the type, with the
/// schema walk that words upstream's error only when that fails. The schema walk also
/// rejects malformed quantities, which the typed decode accepts as any string: callers
/// check them with [`canonicalize_quantities`] and fall back to [`decode`] for the error.
pub(crate) fn decode_fast<T: DeserializeOwned + JsonSchema>(
    kind: &str,
    version: &str,
    value: &Value,
) -> Result<T, DecodeError> {
    match T::deserialize(value) {
        Ok(t) => Ok(t),
        Err(_) => decode(kind, version, value),
    }
}

/// Encodes a typed object back to JSON.
pub(crate) fn encode<T: Serialize>(obj: &T) -> Result<Value, DecodeError> {
    serde_json::to_value(obj).map_err(|e| DecodeError {
        message: format!("failed to encode object: {e}"),
    })
}

/// A malformed quantity met by [`canonicalize_quantities`].
#[derive(Debug)]
pub(crate) struct BadQuantity;

/// Rewrites every quantity in `value` (a `T` as JSON) in the canonical form upstream
/// serializes; a quantity that does not parse is left as it is and reported.
pub(crate) fn canonicalize_quantities<T: JsonSchema>(value: &mut Value) -> Result<(), BadQuantity> {
    let schema = schema_for::<T>();
    if schema.quantities.canonicalize(value) {
        Ok(())
    } else {
        Err(BadQuantity)
    }
}

/// The parts of a type's schema that lead to quantities, computed once per type, so that
/// canonicalizing an object visits only those fields (a Pod's containers' resources and its
/// overhead) instead of walking the whole object against the schema.
struct QuantityTree {
    nodes: Vec<QuantityNode>,
    root: Option<usize>,
}

enum QuantityNode {
    Quantity,
    Object {
        properties: Vec<(String, usize)>,
        additional: Option<usize>,
    },
    Array(usize),
}

impl QuantityTree {
    fn new(root: &Value, defs: &Map<String, Value>) -> QuantityTree {
        let mut tree = QuantityTree {
            nodes: Vec::new(),
            root: None,
        };
        let mut built = HashMap::new();
        let mut visiting = Vec::new();
        tree.root = tree.build(root, defs, &mut built, &mut visiting);
        tree
    }

    /// The node for `schema`, or `None` when no quantity lies under it. Types that refer to
    /// themselves (JSONSchemaProps) are cut where they recur; none of them holds quantities.
    fn build(
        &mut self,
        schema: &Value,
        defs: &Map<String, Value>,
        built: &mut HashMap<String, Option<usize>>,
        visiting: &mut Vec<String>,
    ) -> Option<usize> {
        let mut resolved = schema;
        let mut name = None;
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let n = r.rsplit('/').next().unwrap_or(r);
            if n.ends_with(".Quantity") {
                self.nodes.push(QuantityNode::Quantity);
                return Some(self.nodes.len() - 1);
            }
            if let Some(found) = built.get(n) {
                return *found;
            }
            if visiting.iter().any(|v| v == n) {
                return None;
            }
            resolved = defs.get(n)?;
            name = Some(n.to_string());
            visiting.push(n.to_string());
        }
        let node = if let Some(props) = resolved.get("properties").and_then(Value::as_object) {
            let properties: Vec<(String, usize)> = props
                .iter()
                .filter_map(|(k, ps)| Some((k.clone(), self.build(ps, defs, built, visiting)?)))
                .collect();
            (!properties.is_empty()).then_some(QuantityNode::Object {
                properties,
                additional: None,
            })
        } else if let Some(ap) = resolved
            .get("additionalProperties")
            .filter(|a| a.is_object())
        {
            self.build(ap, defs, built, visiting)
                .map(|a| QuantityNode::Object {
                    properties: Vec::new(),
                    additional: Some(a),
                })
        } else if let Some(items) = resolved.get("items") {
            self.build(items, defs, built, visiting)
                .map(QuantityNode::Array)
        } else {
            None
        };
        let index = node.map(|n| {
            self.nodes.push(n);
            self.nodes.len() - 1
        });
        if let Some(n) = name {
            visiting.pop();
            built.insert(n, index);
        }
        index
    }

    /// Canonicalizes the quantities in `v`; false if one does not parse.
    fn canonicalize(&self, v: &mut Value) -> bool {
        self.root.is_none_or(|r| self.canonicalize_at(r, v))
    }

    fn canonicalize_at(&self, node: usize, v: &mut Value) -> bool {
        match &self.nodes[node] {
            QuantityNode::Quantity => {
                let parsed = match v {
                    Value::String(s) => Quantity::parse(s),
                    Value::Number(n) => Quantity::parse(&n.to_string()),
                    _ => return true,
                };
                match parsed {
                    Ok(q) => {
                        let canonical = q.canonical();
                        if v.as_str() != Some(canonical.as_str()) {
                            *v = Value::String(canonical);
                        }
                        true
                    }
                    Err(_) => false,
                }
            }
            QuantityNode::Object {
                properties,
                additional,
            } => {
                let Value::Object(obj) = v else {
                    return true;
                };
                let mut ok = true;
                for (k, child) in properties {
                    if let Some(c) = obj.get_mut(k) {
                        ok &= self.canonicalize_at(*child, c);
                    }
                }
                if let Some(a) = additional {
                    for c in obj.values_mut() {
                        ok &= self.canonicalize_at(*a, c);
                    }
                }
                ok
            }
            QuantityNode::Array(items) => {
                let Value::Array(list) = v else {
                    return true;
                };
                list.iter_mut().all(|c| self.canonicalize_at(*items, c))
            }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `io.k8s.api.core.v1.PodSpec` → `v1.PodSpec`.
fn go_type_name(schema_name: &str) -> String {
    let mut parts = schema_name.rsplit('.');
    let name = parts.next().unwrap_or(schema_name);
    match parts.next() {
        Some(pkg) => format!("{pkg}.{name}"),
        None => name.to_string(),
    }
}

fn struct_name(schema_name: &str) -> &str {
    schema_name.rsplit('.').next().unwrap_or(schema_name)
}

struct Checker<'a> {
    defs: &'a Map<String, Value>,
}

impl Checker<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> (&'s Value, Option<&'s str>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            if let Some(s) = self.defs.get(name) {
                return (s, Some(name));
            }
        }
        (schema, None)
    }

    fn go_type(&self, schema: &Value) -> String {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            return go_type_name(r.rsplit('/').next().unwrap_or(r));
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => {
                if schema.get("format").and_then(Value::as_str) == Some("byte") {
                    "[]uint8".into()
                } else {
                    "string".into()
                }
            }
            Some("integer") => match schema.get("format").and_then(Value::as_str) {
                Some("int32") => "int32".into(),
                Some("int64") => "int64".into(),
                _ => "int".into(),
            },
            Some("number") => "float64".into(),
            Some("boolean") => "bool".into(),
            Some("array") => match schema.get("items") {
                Some(items) => format!("[]{}", self.go_type(items)),
                None => "[]interface {}".into(),
            },
            Some("object") => match schema.get("additionalProperties") {
                Some(v) if v.is_object() => format!("map[string]{}", self.go_type(v)),
                _ => "map[string]interface {}".into(),
            },
            _ => "interface {}".into(),
        }
    }

    fn mismatch(
        &self,
        v: &Value,
        schema: &Value,
        resolved: &Value,
        owner: &str,
        path: &[String],
    ) -> String {
        let what = match v {
            Value::Number(n)
                if matches!(
                    resolved.get("type").and_then(Value::as_str),
                    Some("integer")
                ) =>
            {
                format!("number {n}")
            }
            _ => json_kind(v).to_string(),
        };
        if path.is_empty() {
            format!(
                "json: cannot unmarshal {what} into Go value of type {}",
                self.go_type(schema)
            )
        } else {
            format!(
                "json: cannot unmarshal {what} into Go struct field {owner}.{} of type {}",
                path.join("."),
                self.go_type(schema)
            )
        }
    }

    /// Checks `v` against `schema`; `owner` is the Go struct that holds the field.
    fn check(
        &self,
        schema: &Value,
        v: &Value,
        owner: &str,
        path: &mut Vec<String>,
    ) -> Result<(), String> {
        if v.is_null() {
            return Ok(());
        }
        let (resolved, name) = self.resolve(schema);
        if resolved.get("x-kubernetes-int-or-string").is_some() {
            let is_quantity = name.is_some_and(|n| n.ends_with(".Quantity"));
            return match v {
                Value::String(s) if is_quantity => {
                    Quantity::parse(s).map(|_| ()).map_err(|e| e.to_string())
                }
                Value::Number(_) if is_quantity => Ok(()),
                Value::String(_) => Ok(()),
                Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Ok(()),
                Value::Number(n) => Err(format!(
                    "json: cannot unmarshal number {n} into Go value of type int32"
                )),
                _ => Err(format!(
                    "json: cannot unmarshal {} into Go value of type int32",
                    json_kind(v)
                )),
            };
        }
        let ty = resolved.get("type").and_then(Value::as_str);
        let ok = match (ty, v) {
            (None, _) => true,
            (Some("object"), Value::Object(_)) => true,
            (Some("array"), Value::Array(_)) => true,
            (Some("string"), Value::String(s)) => {
                if resolved.get("format").and_then(Value::as_str) == Some("byte") && !is_base64(s) {
                    return Err(base64_error(s));
                }
                true
            }
            (Some("boolean"), Value::Bool(_)) => true,
            (Some("number"), Value::Number(_)) => true,
            (Some("integer"), Value::Number(n)) => match n.as_i64() {
                Some(i) => {
                    resolved.get("format").and_then(Value::as_str) != Some("int32")
                        || i32::try_from(i).is_ok()
                }
                None => false,
            },
            _ => false,
        };
        if !ok {
            return Err(self.mismatch(v, schema, resolved, owner, path));
        }
        match v {
            Value::Object(obj) => {
                let owner_here = name.map(struct_name).unwrap_or(owner);
                if let Some(props) = resolved.get("properties").and_then(Value::as_object) {
                    for (k, child) in obj {
                        if let Some(ps) = props.get(k) {
                            path.push(k.clone());
                            self.check(ps, child, owner_here, path)?;
                            path.pop();
                        }
                    }
                } else if let Some(ap) = resolved
                    .get("additionalProperties")
                    .filter(|a| a.is_object())
                {
                    for child in obj.values() {
                        self.check(ap, child, owner, path)?;
                    }
                }
            }
            Value::Array(items) => {
                if let Some(is) = resolved.get("items") {
                    for child in items {
                        self.check(is, child, owner, path)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return false;
    }
    b[..b.len() - pad]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

fn base64_error(s: &str) -> String {
    let b = s.as_bytes();
    let bad = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='))
        .unwrap_or(b.len() - b.len() % 4);
    format!("illegal base64 data at input byte {bad}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Pod, Secret};
    use serde_json::json;

    #[test]
    fn wrong_types_read_like_go() {
        let v = json!({"metadata": {"name": "a"}, "spec": {"replicas": "3"}});
        let e = decode::<Deployment>("Deployment", "v1", &v).unwrap_err();
        assert_eq!(
            e.message,
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        let v = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 1.5}]}]}});
        let e = decode::<Pod>("Pod", "v1", &v).unwrap_err();
        assert_eq!(
            e.message,
            "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal number 1.5 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
        );
        let v = json!({"spec": "x"});
        let e = decode::<Pod>("Pod", "v1", &v).unwrap_err();
        assert!(
            e.message
                .ends_with("Go struct field Pod.spec of type v1.PodSpec"),
            "{}",
            e.message
        );
        let v = json!({"metadata": {"labels": {"a": 1}}});
        let e = decode::<Pod>("Pod", "v1", &v).unwrap_err();
        assert!(
            e.message
                .ends_with("Go struct field ObjectMeta.metadata.labels of type string"),
            "{}",
            e.message
        );
    }

    #[test]
    fn quantities_and_bytes() {
        let v = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "x1"}}}]}});
        let e = decode::<Pod>("Pod", "v1", &v).unwrap_err();
        assert!(e.message.ends_with("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
        let v =
            json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": 1}}}]}});
        assert!(decode::<Pod>("Pod", "v1", &v).is_ok());
        let v = json!({"data": {"a": "not base64!"}});
        let e = decode::<Secret>("Secret", "v1", &v).unwrap_err();
        assert!(
            e.message.contains("illegal base64 data at input byte 3"),
            "{}",
            e.message
        );
        let v = json!({"data": {"a": "aGk="}});
        assert!(decode::<Secret>("Secret", "v1", &v).is_ok());
    }
}
