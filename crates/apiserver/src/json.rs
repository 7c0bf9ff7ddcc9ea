//! Parsing JSON request bodies in one pass into a `serde_json::Value` while noting the
//! fields that appear more than once in an object. `serde_json` keeps the last of them
//! silently; upstream's decoder keeps the last too but reports each duplicate, which
//! `fieldValidation` turns into an error (Strict) or a warning (Warn).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A parsed document and the paths (`spec.replicas`,
/// `spec.containers[0].name`) of its duplicate fields, in document order.
pub fn parse_noting_duplicates(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let mut state = State::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Seed { state: &mut state }.deserialize(&mut de)?;
    de.end()?;
    Ok((value, state.duplicates))
}

enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct State {
    path: Vec<Segment>,
    duplicates: Vec<String>,
}

impl State {
    fn path_with(&self, last: &str) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Segment::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(last);
        s
    }
}

struct Seed<'a> {
    state: &'a mut State,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
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
        let mut items = Vec::new();
        loop {
            self.state.path.push(Segment::Index(items.len()));
            let next = seq.next_element_seed(Seed {
                state: &mut *self.state,
            });
            self.state.path.pop();
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // The key is the last path segment while its value is parsed (moved, not copied).
            self.state.path.push(Segment::Key(key));
            let value = map.next_value_seed(Seed {
                state: &mut *self.state,
            });
            let Some(Segment::Key(key)) = self.state.path.pop() else {
                return Err(serde::de::Error::custom(
                    "internal error: lost the field name",
                ));
            };
            let value = value?;
            if out.contains_key(&key) {
                let path = self.state.path_with(&key);
                self.state.duplicates.push(path);
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_noted_with_their_paths_and_the_last_wins() {
        let doc = br#"{"kind":"Pod","spec":{"a":1,"containers":[{"name":"x","name":"y"}],"a":2},"kind":"Pod"}"#;
        let (v, dups) = parse_noting_duplicates(doc).unwrap();
        assert_eq!(v["spec"]["a"], 2);
        assert_eq!(v["spec"]["containers"][0]["name"], "y");
        assert_eq!(dups, ["spec.containers[0].name", "spec.a", "kind"]);
    }

    #[test]
    fn same_values_as_serde_json_without_duplicates() {
        let doc = br#"{"n":-1,"u":18446744073709551615,"f":1.5,"s":"\u00e9\"","b":[true,null,{}],"e":[]}"#;
        let (v, dups) = parse_noting_duplicates(doc).unwrap();
        assert!(dups.is_empty());
        assert_eq!(v, serde_json::from_slice::<Value>(doc).unwrap());
    }

    #[test]
    fn malformed_documents_are_errors() {
        for doc in [&b"{bad"[..], b"{\"a\":1} x", b"", b"[1,]"] {
            assert!(parse_noting_duplicates(doc).is_err(), "{doc:?}");
        }
    }
}
