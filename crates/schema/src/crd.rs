//! Building a [`Type`] from a CustomResourceDefinition version's OpenAPI v3 schema
//! (`spec.versions[].schema.openAPIV3Schema`), reading the `x-kubernetes-*` extensions the
//! way upstream's structured-merge-diff conversion does:
//!
//! - `type: object` with `properties` is a struct; with `additionalProperties` a map;
//!   `x-kubernetes-map-type: atomic` makes either atomic;
//! - `type: array`: `x-kubernetes-list-type` `atomic` (default), `set`, or `map` with
//!   `x-kubernetes-list-map-keys`;
//! - `x-kubernetes-preserve-unknown-fields: true` keeps unknown fields (merged as deduced
//!   JSON); `x-kubernetes-int-or-string` is a scalar; `x-kubernetes-embedded-resource`
//!   adds `apiVersion`, `kind` and `metadata`;
//! - at the root, `apiVersion`, `kind` and `metadata` (ObjectMeta) are always declared.
//!
//! A schema may also carry `x-kubernetes-patch-strategy` / `-merge-key`; they are kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::SchemaError;
use crate::types::{
    Field, ListKind, ListType, MapKind, MapType, PatchMeta, Scalar, StructType, Type,
};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The type of a custom resource from its version's `openAPIV3Schema`. `None` (no schema)
/// gives a type that keeps everything, with `apiVersion`, `kind` and `metadata` declared.
pub fn from_openapi_v3(schema: Option<&Value>) -> Result<Type, SchemaError> {
    let mut root = match schema {
        Some(s) => convert(s, "")?,
        None => Type::Struct(Arc::new(StructType {
            preserve_unknown: true,
            ..StructType::default()
        })),
    };
    // The root is always an object with the standard fields.
    root = match root {
        Type::Struct(s) => {
            let mut s = Arc::unwrap_or_clone(s);
            add_object_fields(&mut s);
            Type::Struct(Arc::new(s))
        }
        Type::Deduced => {
            let mut s = StructType {
                preserve_unknown: true,
                ..StructType::default()
            };
            add_object_fields(&mut s);
            Type::Struct(Arc::new(s))
        }
        _ => {
            return Err(SchemaError::new(
                "",
                "the root of a custom resource schema must be an object",
            ));
        }
    };
    Ok(root)
}

fn add_object_fields(s: &mut StructType) {
    for name in ["apiVersion", "kind"] {
        s.fields
            .insert(name.to_string(), plain(name, Type::Scalar(Scalar::String)));
    }
    s.fields.insert(
        "metadata".to_string(),
        plain("metadata", Type::named(OBJECT_META)),
    );
}

fn plain(name: &str, ty: Type) -> Field {
    Field {
        name: name.to_string(),
        ty,
        patch: PatchMeta::default(),
        map_kind: None,
    }
}

fn convert(schema: &Value, path: &str) -> Result<Type, SchemaError> {
    let obj = schema
        .as_object()
        .ok_or_else(|| SchemaError::new(path, "a schema must be an object"))?;
    let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("x-kubernetes-int-or-string") {
        return Ok(Type::Scalar(Scalar::Untyped));
    }
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let map_kind = match obj.get("x-kubernetes-map-type").and_then(Value::as_str) {
        Some("atomic") => MapKind::Atomic,
        Some("granular") | None => MapKind::Granular,
        Some(other) => {
            return Err(SchemaError::new(
                path,
                format!("unknown x-kubernetes-map-type {other:?}"),
            ));
        }
    };
    let ty = obj.get("type").and_then(Value::as_str);
    match ty {
        Some("string") => Ok(Type::Scalar(Scalar::String)),
        Some("integer") => Ok(Type::Scalar(Scalar::Integer)),
        Some("number") => Ok(Type::Scalar(Scalar::Number)),
        Some("boolean") => Ok(Type::Scalar(Scalar::Boolean)),
        Some("array") => {
            let items = match obj.get("items") {
                Some(i) => convert(i, &format!("{path}[]"))?,
                None => Type::Deduced,
            };
            let kind = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
                None | Some("atomic") => ListKind::Atomic,
                Some("set") => ListKind::Set,
                Some("map") => {
                    let keys: Vec<String> = obj
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    if keys.is_empty() {
                        return Err(SchemaError::new(
                            path,
                            "x-kubernetes-list-type map needs x-kubernetes-list-map-keys",
                        ));
                    }
                    // Key defaults from the item schema.
                    let mut key_defaults = BTreeMap::new();
                    if let Some(props) = obj
                        .get("items")
                        .and_then(|i| i.get("properties"))
                        .and_then(Value::as_object)
                    {
                        for k in &keys {
                            if let Some(d) = props.get(k).and_then(|p| p.get("default")) {
                                key_defaults.insert(k.clone(), d.clone());
                            }
                        }
                    }
                    ListKind::Map { keys, key_defaults }
                }
                Some(other) => {
                    return Err(SchemaError::new(
                        path,
                        format!("unknown x-kubernetes-list-type {other:?}"),
                    ));
                }
            };
            Ok(Type::List(Arc::new(ListType { items, kind })))
        }
        Some("object") | None => {
            let props = obj.get("properties").and_then(Value::as_object);
            let additional = obj.get("additionalProperties");
            let embedded = flag("x-kubernetes-embedded-resource");
            if props.is_none() && !embedded {
                if let Some(add) = additional.filter(|a| a.is_object()) {
                    let values = convert(add, &format!("{path}.*"))?;
                    return Ok(Type::Map(Arc::new(MapType { values, map_kind })));
                }
                if preserve || ty.is_none() {
                    return Ok(if map_kind == MapKind::Atomic {
                        Type::AtomicAny
                    } else {
                        Type::Deduced
                    });
                }
            }
            let mut fields = BTreeMap::new();
            if let Some(props) = props {
                for (name, sub) in props {
                    let sub_path = format!("{path}.{name}");
                    let fty = convert(sub, &sub_path)?;
                    let patch = PatchMeta::from_strategy(
                        sub.get("x-kubernetes-patch-strategy")
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                        sub.get("x-kubernetes-patch-merge-key")
                            .and_then(Value::as_str),
                    );
                    fields.insert(
                        name.clone(),
                        Field {
                            name: name.clone(),
                            ty: fty,
                            patch,
                            map_kind: None,
                        },
                    );
                }
            }
            let mut s = StructType {
                fields,
                map_kind,
                preserve_unknown: preserve,
            };
            if embedded {
                add_object_fields(&mut s);
            }
            Ok(Type::Struct(Arc::new(s)))
        }
        Some(other) => Err(SchemaError::new(path, format!("unknown type {other:?}"))),
    }
}
