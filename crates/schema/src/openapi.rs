//! The `x-kubernetes-*` OpenAPI extensions of built-in definitions, as upstream publishes
//! them in `/openapi/v2` and `/openapi/v3` (kubectl's client-side apply reads
//! `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` from there).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::builtin::Catalog;
use crate::types::{Field, ListKind, MapKind, Resolved, Type};

impl Catalog {
    /// Definition-level extensions: `x-kubernetes-group-version-kind` (top-level kinds) and
    /// `x-kubernetes-map-type: atomic` (atomic structs). `None` for unknown definitions.
    pub fn definition_extensions(&self, name: &str) -> Option<Map<String, Value>> {
        let def = self.definition(name)?;
        let mut ext = Map::new();
        if !def.gvks.is_empty() {
            let gvks: Vec<Value> = def
                .gvks
                .iter()
                .map(|g| json!({"group": g.group, "kind": g.kind, "version": g.version}))
                .collect();
            ext.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
        if let Type::Struct(s) = &def.ty
            && s.map_kind == MapKind::Atomic
        {
            ext.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
        Some(ext)
    }

    /// Per property of a struct definition, its extensions (properties without any are
    /// left out). `None` for unknown or non-struct definitions.
    pub fn property_extensions(&self, name: &str) -> Option<BTreeMap<String, Map<String, Value>>> {
        let fields = self.definition(name)?.fields()?;
        let mut out = BTreeMap::new();
        for (fname, field) in fields {
            let ext = field_extensions(field);
            if !ext.is_empty() {
                out.insert(fname.clone(), ext);
            }
        }
        Some(out)
    }

    /// Adds the extensions to one definition's schema object (`{"type": "object",
    /// "properties": {...}}`), keeping extensions it already has.
    pub fn augment_definition_schema(&self, name: &str, schema: &mut Value) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        if let Some(ext) = self.definition_extensions(name) {
            for (k, v) in ext {
                obj.entry(k).or_insert(v);
            }
        }
        let Some(props_ext) = self.property_extensions(name) else {
            return;
        };
        let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) else {
            return;
        };
        for (pname, ext) in props_ext {
            if let Some(p) = props.get_mut(&pname).and_then(Value::as_object_mut) {
                for (k, v) in ext {
                    p.entry(k).or_insert(v);
                }
            }
        }
    }

    /// Adds the extensions to every known definition of an OpenAPI v2 document
    /// (`definitions`).
    pub fn augment_openapi_v2(&self, doc: &mut Value) {
        if let Some(defs) = doc.get_mut("definitions").and_then(Value::as_object_mut) {
            for (name, schema) in defs.iter_mut() {
                self.augment_definition_schema(name, schema);
            }
        }
    }

    /// Adds the extensions to every known schema of an OpenAPI v3 document
    /// (`components.schemas`).
    pub fn augment_openapi_v3(&self, doc: &mut Value) {
        if let Some(defs) = doc
            .get_mut("components")
            .and_then(|c| c.get_mut("schemas"))
            .and_then(Value::as_object_mut)
        {
            for (name, schema) in defs.iter_mut() {
                self.augment_definition_schema(name, schema);
            }
        }
    }
}

/// The extensions of one field: list type and keys, map type, patch strategy and merge key.
pub fn field_extensions(field: &Field) -> Map<String, Value> {
    let mut ext = Map::new();
    match field.ty.resolve() {
        Resolved::List(l) if !matches!(field.ty, Type::Named(_)) => {
            let (t, keys) = match &l.kind {
                ListKind::Atomic => ("atomic", None),
                ListKind::Set => ("set", None),
                ListKind::Map { keys, .. } => ("map", Some(keys)),
            };
            ext.insert("x-kubernetes-list-type".into(), t.into());
            if let Some(keys) = keys {
                ext.insert(
                    "x-kubernetes-list-map-keys".into(),
                    Value::Array(keys.iter().map(|k| Value::String(k.clone())).collect()),
                );
            }
        }
        Resolved::Map(m)
            if m.map_kind == MapKind::Atomic && !matches!(field.ty, Type::Named(_)) =>
        {
            ext.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
        _ => {}
    }
    if let Some(k) = field.map_kind {
        ext.insert(
            "x-kubernetes-map-type".into(),
            match k {
                MapKind::Atomic => "atomic",
                MapKind::Granular => "granular",
            }
            .into(),
        );
    }
    if let Some(s) = field.patch.strategy_string() {
        ext.insert("x-kubernetes-patch-strategy".into(), s.into());
    }
    if let Some(k) = &field.patch.merge_key {
        ext.insert("x-kubernetes-patch-merge-key".into(), k.clone().into());
    }
    ext
}
