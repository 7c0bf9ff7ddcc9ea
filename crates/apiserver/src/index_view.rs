//! The part of a stored object the watch cache indexes, decoded without building the rest:
//! `metadata` scalars and labels, and the scalar fields one level down (every selectable
//! field — `spec.nodeName`, `status.phase`, `involvedObject.name`, `type`... — lies there).
//! Everything deeper (containers, managedFields, annotations, ...) is skipped by the parser
//! and comes out as `null`.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Decodes the indexed view of the JSON object in `bytes`.
pub fn decode(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Level::Root.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Where the parser is in the object.
#[derive(Clone, Copy)]
enum Level {
    /// The object itself.
    Root,
    /// A top-level field; `metadata` keeps its labels whole.
    Field { metadata: bool },
    /// Two levels down: scalars kept, objects and lists skipped.
    Leaf,
}

impl<'de> DeserializeSeed<'de> for Level {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        match self {
            Level::Root => {
                while let Some(key) = map.next_key::<String>()? {
                    let metadata = key == "metadata";
                    let v = map.next_value_seed(Level::Field { metadata })?;
                    out.insert(key, v);
                }
            }
            Level::Field { metadata } => {
                while let Some(key) = map.next_key::<String>()? {
                    let v = if metadata && key == "labels" {
                        map.next_value::<Value>()?
                    } else {
                        map.next_value_seed(Level::Leaf)?
                    };
                    out.insert(key, v);
                }
            }
            Level::Leaf => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(Value::Null);
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_the_cache_indexes_and_skips_the_rest() {
        let doc = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d", "resourceVersion": "7",
                         "labels": {"app": "x"}, "annotations": {"a": "b"},
                         "managedFields": [{"manager": "m"}]},
            "spec": {"nodeName": "n1", "hostNetwork": true, "priority": 5,
                     "containers": [{"name": "c"}], "nodeSelector": {"k": "v"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready"}]},
            "type": "Opaque",
        });
        let view = decode(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(
            view,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "d", "resourceVersion": "7",
                             "labels": {"app": "x"}, "annotations": null,
                             "managedFields": null},
                "spec": {"nodeName": "n1", "hostNetwork": true, "priority": 5,
                         "containers": null, "nodeSelector": null},
                "status": {"phase": "Running", "conditions": null},
                "type": "Opaque",
            })
        );
    }

    #[test]
    fn refuses_what_is_not_json() {
        assert!(decode(b"{\"metadata\": ").is_err());
        assert!(decode(b"{} trailing").is_err());
    }
}
